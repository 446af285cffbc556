"""Carry and sizing for people (SPEC §4, §6, §7): funding payments, annualised funding,
risk-based size and spot-margin borrow interest.

Conventions (SPEC §1): rates are fractions (0.005 = 0.5 %), leverage a multiple, prices in
the quote currency, money (margin, PnL, funding) in the instrument's account currency.
``side`` is ``"long"`` or ``"short"``; ``instrument`` a rules name (``"simple"``,
``"binance"``, ``"bitmex"``), a preset name (``"bitmex:XBTUSD"``) or an ``Instrument``.

Imports numpy, pandas, ``backtest.kernels.contracts`` and the sibling ``inputs``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backtest.calc.inputs import (
    _HOUR_NS,
    _fraction,
    _funding_rate,
    _instrument,
    _number,
    _positive,
    _side,
)
from backtest.instruments.instrument import Instrument
from backtest.kernels import contracts as _k


def funding_payment(size: float, mark: float, rate: float, side: str,
                    instrument: str | Instrument = "linear") -> float:
    """Funding paid by the trader at one funding time (account currency; < 0 = received):
    ``side · notional(mark) · rate`` (SPEC §6). Positive rates: longs pay shorts.

    >>> funding_payment(1, 40_000, 0.0001, "long")
    4.0
    >>> funding_payment(1, 40_000, 0.0001, "short")
    -4.0
    """
    func = "funding_payment"
    inst = _instrument(func, instrument)
    q = _positive(func, "size", size, f" ({inst.size_unit})")
    p = _positive(func, "mark", mark, " (mark price, quote currency)")
    r = _funding_rate(func, rate)
    s = _side(func, side)
    return float(_k.funding_payment(inst.settlement_code, s, q, p, r, inst.contract_size))


def annualised_funding(rate: float, interval_hours: float = 8) -> float:
    """A per-interval funding rate as a simple (not compounded) yearly fraction, 365 days.

    >>> annualised_funding(0.001)
    1.095
    """
    func = "annualised_funding"
    r = _funding_rate(func, rate)
    hours = _positive(func, "interval_hours", interval_hours, " (e.g. 8)")
    return r * (365.0 * 24.0 / hours)


def risk_size(equity: float, risk: float, stop_distance: float) -> float:
    """Notional whose loss at the stop is ``risk · equity`` (SPEC §4 ``size_type="risk"``):
    ``risk · equity / stop_distance``. Fees and slippage not included.

    >>> risk_size(10_000, 0.01, 0.02)
    5000.0
    """
    func = "risk_size"
    eq = _positive(func, "equity", equity)
    r = _fraction(func, "risk", risk, example="0.01 = risk 1 % of equity", allow_low=False)
    d = _fraction(func, "stop_distance", stop_distance,
                  example="0.02 = stop 2 % from entry", allow_low=False)
    return r * eq / d


def _timestamp_ns(func: str, name: str, value: object) -> int:
    if isinstance(value, bool):
        raise TypeError(f"calc.{func}: {name} must be a timestamp; got {value!r}.")
    if isinstance(value, (int, np.integer)):
        return int(value)  # already int64 ns since the epoch, UTC (SPEC §1)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(f"calc.{func}: {name} must be a timestamp (str, pandas Timestamp, "
                         f"datetime or int ns); got {value!r}.") from None
    if ts is pd.NaT:
        raise ValueError(f"calc.{func}: {name} must be a timestamp; got {value!r}.")
    # Naive times are read as UTC: exchanges count interest hours on the UTC clock.
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value)


def borrow_interest(principal: float, hourly_rate: float, start: object,
                    end: object) -> float:
    """Spot-margin interest for a borrow from ``start`` to ``end`` (SPEC §7), in the borrowed
    asset: ``principal · hourly_rate · hours``, where every started UTC clock hour counts
    (a borrow 13:20 → 14:15 is charged 2 hours, 13:00 → 18:00 five).

    ``start``/``end``: str, ``pandas.Timestamp``, ``datetime`` or int ns since the epoch;
    naive values are UTC. ``end == start`` costs nothing.

    >>> round(borrow_interest(1_000, 0.0002 / 24, "2024-01-01 13:20", "2024-01-01 14:15"), 8)
    0.01666667
    """
    func = "borrow_interest"
    p = _number(func, "principal", principal)
    if p < 0.0:
        raise ValueError(f"calc.{func}: principal must be >= 0; got {principal!r}.")
    rate = _fraction(func, "hourly_rate", hourly_rate,
                     example="a daily 0.02 % is 0.0002/24 per hour")
    t0 = _timestamp_ns(func, "start", start)
    t1 = _timestamp_ns(func, "end", end)
    if t1 < t0:
        raise ValueError(f"calc.{func}: end ({end!r}) is before start ({start!r}).")
    hours = 0 if t1 == t0 else -(-t1 // _HOUR_NS) - t0 // _HOUR_NS
    return p * rate * hours
