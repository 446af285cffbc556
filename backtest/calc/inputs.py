"""Validation of the calculator's inputs, with the function and parameter in every message.

Conventions (SPEC §1): rates are fractions (0.005 = 0.5 %), leverage a multiple, prices in
the quote currency, money (margin, PnL, funding) in the instrument's account currency.
``side`` is ``"long"`` or ``"short"``; ``instrument`` a rules name (``"simple"``,
``"binance"``, ``"bitmex"``), a preset name (``"bitmex:XBTUSD"``) or an ``Instrument``.

Imports numpy, ``backtest.checks``, ``backtest.instruments`` and ``backtest.kernels``.
"""

from __future__ import annotations

import difflib

import numpy as np

from backtest.checks import finite_number
from backtest.instruments.instrument import Instrument
from backtest.instruments.presets import get_instrument
from backtest.kernels import contracts as _k

_HOUR_NS = 3_600_000_000_000
# SPEC §11: a funding rate above 5 % per interval is implausible (percent passed as fraction).
_MAX_FUNDING_RATE = 0.05


def _number(func: str, name: str, value: object) -> float:
    return finite_number(f"calc.{func}", name, value)


def _positive(func: str, name: str, value: object, what: str = "") -> float:
    out = _number(func, name, value)
    if out <= 0.0:
        raise ValueError(f"calc.{func}: {name} must be > 0{what}; got {value!r}.")
    return out


def _fraction(func: str, name: str, value: object, *, example: str, low: float = 0.0,
              allow_low: bool = True) -> float:
    """A rate as a fraction in ``[low, 1)`` (``(low, 1)`` when ``allow_low`` is False)."""
    out = _number(func, name, value)
    if abs(out) >= 1.0:
        raise ValueError(f"calc.{func}: {name}={value!r} is not plausible as a fraction "
                         f"(|{name}| must be < 1). Did you pass basis points/percent? "
                         f"Rates are fractions: {example}.")
    if out < low or (out == low and not allow_low):
        sign = ">=" if allow_low else ">"
        raise ValueError(f"calc.{func}: {name} must be {sign} {low}; got {value!r}.")
    return out


def _leverage(func: str, value: object) -> float:
    return _positive(func, "leverage", value,
                     " (a multiple, 10 = 10x). Fix: pass e.g. leverage=10")


def _funding_rate(func: str, value: object) -> float:
    out = _number(func, "rate", value)
    if abs(out) > _MAX_FUNDING_RATE:
        raise ValueError(f"calc.{func}: funding rate {value!r} is above 5 % per interval, "
                         f"implausible as a fraction. Did you pass percent/basis points? "
                         f"0.01 % per interval is 0.0001.")
    return out


def _side(func: str, side: object) -> int:
    if side == "long":
        return 1
    if side == "short":
        return -1
    close = difflib.get_close_matches(str(side).lower(), ["long", "short"], n=1, cutoff=0.3)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"calc.{func}: side must be 'long' or 'short'; got {side!r}.{hint}")


def _instrument(func: str, instrument: object) -> Instrument:
    try:
        return get_instrument(instrument)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"calc.{func}: instrument: {exc}") from None


def _default_size(inst: Instrument, entry: float) -> float:
    # One unit of the base coin: 1 BTC for linear; for inverse/quanto the (fractional)
    # number of contracts whose notional at entry is one unit of the account coin.
    if inst.settlement == "linear":
        return 1.0
    return float(_k.size_for_notional(inst.settlement_code, 1.0, entry, inst.contract_size))


def _readonly(*values: float) -> np.ndarray:
    a = np.array(values, dtype=np.float64)
    a.setflags(write=False)  # same array type as TierTable.arrays(): one kernel compilation
    return a


def _position(func: str, entry: object, side: object, leverage: object, size: object,
              wallet: object, instrument: object) -> tuple:
    """Validated ``(inst, entry, side, size, wallet, leverage)``; wallet defaults to the
    isolated margin ``notional(size, entry) / leverage``."""
    inst = _instrument(func, instrument)
    entry_f = _positive(func, "entry", entry, " (a price in the quote currency)")
    side_i = _side(func, side)
    lev = None if leverage is None else _leverage(func, leverage)
    size_f = (_default_size(inst, entry_f) if size is None
              else _positive(func, "size", size, f" ({inst.size_unit})"))
    if wallet is None:
        if lev is None:
            raise ValueError(f"calc.{func}: pass leverage= (isolated margin = notional / "
                             f"leverage) or wallet= (margin in {inst.account_currency}).")
        notional = _k.notional(inst.settlement_code, size_f, entry_f, inst.contract_size)
        wallet_f = notional / lev
    else:
        wallet_f = _number(func, "wallet", wallet)
    return inst, entry_f, side_i, size_f, wallet_f, lev


def _tiers(func: str, inst: Instrument, notional: float, mmr: object,
           maint_amount: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The instrument's tier arrays, or one row built from the overrides."""
    floor, tier_mmr, tier_cum, _ = inst.tiers.arrays()
    if mmr is None and maint_amount is None:
        return floor, tier_mmr, tier_cum
    row = inst.tiers.row(notional)
    m = (float(tier_mmr[row]) if mmr is None
         else _fraction(func, "mmr", mmr, example="0.005 = 0.5 %"))
    cum = 0.0 if maint_amount is None else _number(func, "maint_amount", maint_amount)
    if cum < 0.0:
        raise ValueError(f"calc.{func}: maint_amount must be >= 0 (account currency); "
                         f"got {maint_amount!r}.")
    return _readonly(0.0), _readonly(m), _readonly(cum)
