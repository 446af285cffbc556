"""The seed article's calculations for people (SPEC §10): scalars in, a float out.

Every price and PnL comes from ``backtest.kernels.contracts`` — the functions the simulation
kernels use — so the calculator and a backtest can never disagree (one implementation, two
faces). This module only validates inputs, picks the instrument's numbers, and formats.

Conventions (SPEC §1): rates are fractions (0.005 = 0.5 %), leverage a multiple, prices in
the quote currency, money (margin, PnL, funding) in the instrument's account currency.
``side`` is ``"long"`` or ``"short"``; ``instrument`` a rules name (``"simple"``,
``"binance"``, ``"bitmex"``), a preset name (``"bitmex:XBTUSD"``) or an ``Instrument``.

Imports numpy, pandas, ``backtest.instruments`` and ``backtest.kernels.contracts``; must not
import the engine or result modules.
"""

from __future__ import annotations

import difflib
import math
import warnings

import numpy as np
import pandas as pd

from backtest.checks import finite_number
from backtest.instruments.instrument import Instrument
from backtest.instruments.presets import get_instrument
from backtest.kernels import contracts as _k

__all__ = [
    "annualised_funding", "bankruptcy_price", "borrow_interest", "exposure", "funding_payment",
    "funding_table", "liquidation_distance", "liquidation_price", "liquidation_table", "pnl",
    "risk_size",
]

_HOUR_NS = 3_600_000_000_000
# SPEC §11: a funding rate above 5 % per interval is implausible (percent passed as fraction).
_MAX_FUNDING_RATE = 0.05


# -- validation helpers ------------------------------------------------------------------

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


# -- the calculator ----------------------------------------------------------------------

def exposure(margin: float, leverage: float) -> float:
    """Position notional controlled by ``margin`` at ``leverage`` (same currency as margin).

    >>> exposure(1_000, 10)
    10000.0
    """
    return _positive("exposure", "margin", margin) * _leverage("exposure", leverage)


def pnl(entry: float, exit: float, size: float, side: str,
        instrument: str | Instrument = "linear") -> float:
    """Profit of a position closed at ``exit`` (account currency), before fees and funding.

    ``size`` is in base units (linear) or contracts (inverse, quanto). Linear:
    ``side·q·(X − E)``; inverse: ``side·q·cs·(1/E − 1/X)`` (coin); quanto:
    ``side·q·m·(X − E)`` (settlement coin).

    >>> pnl(40_000, 42_000, 0.25, "long")      # +5 % on a 10,000 USDT position
    500.0
    >>> round(pnl(750, 800, 15_000, "long", "bitmex:XBTUSD"), 12)  # XBT
    1.25
    """
    inst = _instrument("pnl", instrument)
    e = _positive("pnl", "entry", entry)
    x = _positive("pnl", "exit", exit)
    q = _positive("pnl", "size", size, f" ({inst.size_unit})")
    s = _side("pnl", side)
    return float(_k.upnl(inst.settlement_code, s, q, e, x, inst.contract_size))


def liquidation_price(entry: float, side: str, *, leverage: float | None = None,
                      size: float | None = None, wallet: float | None = None,
                      instrument: str | Instrument = "simple", mmr: float | None = None,
                      maint_amount: float | None = None, funding_rate: float = 0.0,
                      other_maintenance: float = 0.0, other_upnl: float = 0.0,
                      interest: float = 0.0) -> float:
    """Mark price at which the position is liquidated (quote currency), per the
    instrument's rules (SPEC §3).

    Parameters
    ----------
    entry : float
        Entry price.
    side : {"long", "short"}
    leverage : float, optional
        Sets the isolated margin ``notional(size, entry) / leverage`` when ``wallet`` is not
        given, and is checked against the tier's maximum (unless ``mmr``/``maint_amount``
        override the tiers). One of ``leverage`` and ``wallet`` is required.
    size : float, optional
        Base units (linear) or contracts (inverse/quanto). Default: one unit of the base
        coin — 1 BTC for linear, and for inverse/quanto the fractional number of contracts
        whose notional at entry is 1 coin of the account currency. Only the tier row
        depends on it when the margin comes from ``leverage``.
    wallet : float, optional
        Margin standing behind the position, account currency: the isolated margin, or the
        cross wallet balance (then pass ``other_*``).
    instrument : str or Instrument
        Rules name, preset name or instrument.
    mmr, maint_amount : float, optional
        Override the tier lookup with one row ``MM = notional·mmr − maint_amount``
        (``mmr`` defaults to the tier's rate at the entry notional, ``maint_amount`` to 0).
    funding_rate : float
        Next funding rate; BitMEX reserves ``max(0, side·F)`` of notional in MM. Other rules
        ignore it (with a warning).
    other_maintenance, other_upnl : float
        Cross margin: the other positions' maintenance margin and uPnL at their mark.
    interest : float
        Spot margin only: interest accrued and not yet repaid, account currency (e.g.
        ``borrow_interest(...)``; a short's base interest valued in quote). It counts
        among the liabilities, so it raises a long's liquidation price and lowers a
        short's.

    Returns
    -------
    float
        The price; ``0.0`` for a long that cannot be liquidated, ``inf`` for such a short.
        BitMEX prices are rounded to the tick toward the entry.

    Notes
    -----
    ``spot_margin`` instruments liquidate when assets / liabilities falls to
    ``liquidation_margin_level`` ``m``, margin level = assets / (liabilities + interest):
    a long borrows ``D = notional − wallet`` quote, a short borrows ``size`` base units.
    Both map onto the kernels' equation ``W + uPnL(P) = a·notional(P) + b`` (the same
    function the simulator uses, ``kernels.contracts.spot_margin_liquidation_price``, with
    ``W = wallet − interest``): long ``a = 0, b = (m − 1)·(D + I)``, short ``a = m − 1,
    b = (m − 1)·I``.

    Examples
    --------
    >>> liquidation_price(40_000, "long", leverage=10, mmr=0.005)
    36200.0
    >>> liquidation_price(40_000, "short", leverage=10, mmr=0.005)
    43800.0
    >>> liquidation_price(5_000, "long", leverage=25, size=1_000, instrument="bitmex:XBTUSD",
    ...                   mmr=0.005, funding_rate=-0.000139)
    4831.0
    """
    func = "liquidation_price"
    inst, e, s, q, w, lev = _position(func, entry, side, leverage, size, wallet, instrument)
    f_rate = _funding_rate(func, funding_rate)
    other_mm = _number(func, "other_maintenance", other_maintenance)
    other_u = _number(func, "other_upnl", other_upnl)
    accrued = _number(func, "interest", interest)
    if accrued < 0.0:
        raise ValueError(f"calc.liquidation_price: interest must be >= 0 (accrued, account "
                         f"currency), got {interest!r}.")
    if accrued and inst.kind != "spot_margin":
        raise ValueError("calc.liquidation_price: interest= applies to spot-margin "
                         f"instruments; {inst.symbol!r} is a {inst.kind}. Fix: leave it "
                         "unset, or use e.g. instrument='binance-margin:BTCUSDT'.")
    if f_rate != 0.0 and inst.rules != "bitmex":
        warnings.warn(f"calc.liquidation_price: funding_rate is BitMEX's maintenance reserve; "
                      f"{inst.rules!r} rules ignore it.", stacklevel=2)
    value = float(_k.notional(inst.settlement_code, q, e, inst.contract_size))
    if inst.kind == "spot_margin":
        price = _spot_margin_liquidation(inst, e, s, q, w, value, mmr, maint_amount,
                                         other_mm, other_u, accrued)
    else:
        floor, tier_mmr, tier_cum = _tiers(func, inst, value, mmr, maint_amount)
        price = float(_k.liquidation_price(
            inst.rules_code, inst.settlement_code, s, q, e, w, inst.contract_size, floor,
            tier_mmr, tier_cum, f_rate, other_mm, other_u, inst.tick_size))
    if lev is not None:
        _check_leverage(func, inst, lev, value, e, s, price, wallet is None,
                        override=mmr is not None or maint_amount is not None)
    return price


def _spot_margin_liquidation(inst: Instrument, e: float, s: int, q: float, w: float,
                             value: float, mmr: object, maint_amount: object,
                             other_mm: float, other_u: float, interest: float) -> float:
    if mmr is not None or maint_amount is not None or other_mm or other_u:
        raise ValueError("calc.liquidation_price: spot margin liquidates by margin level "
                         f"({inst.liquidation_margin_level}); mmr, maint_amount and other_* "
                         "do not apply. Fix: leave them unset, or use a derivatives instrument.")
    level = float(inst.liquidation_margin_level)  # type: ignore[arg-type]
    borrowed = max(value - w, 0.0) if s > 0 else 0.0
    # the kernel's convention: interest already taken from the margin W
    return float(_k.spot_margin_liquidation_price(inst.settlement_code, s, q, e,
                                                  w - interest, inst.contract_size, borrowed,
                                                  interest, level))


def _check_leverage(func: str, inst: Instrument, lev: float, value: float, entry: float,
                    side: int, price: float, isolated: bool, *, override: bool) -> None:
    if not override:
        limit = inst.max_leverage_at(value)
        if lev > limit * (1.0 + 1e-12):
            raise ValueError(f"calc.{func}: leverage={lev:g} is above the maximum {limit:g}x of "
                             f"{inst.symbol} at a notional of {value:g} "
                             f"{inst.account_currency} (SPEC §11). Fix: leverage <= {limit:g}.")
    if isolated and ((side > 0 and price >= entry) or (side < 0 and price <= entry)):
        raise ValueError(f"calc.{func}: at leverage={lev:g} the maintenance margin exceeds the "
                         f"margin: the position would be liquidated at entry. Fix: lower the "
                         f"leverage (below 1/mmr) or the mmr.")


def bankruptcy_price(entry: float, side: str, *, leverage: float | None = None,
                     size: float | None = None, wallet: float | None = None,
                     instrument: str | Instrument = "simple") -> float:
    """Price at which the margin is exhausted: ``wallet + uPnL(P) = 0`` (quote currency).

    Same inputs as ``liquidation_price``. BitMEX rounds it to the tick toward the entry.

    >>> bankruptcy_price(40_000, "long", leverage=10)
    36000.0
    >>> bankruptcy_price(3_582.5, "long", leverage=1, size=100, instrument="bitmex:XBTUSD")
    1791.5
    """
    func = "bankruptcy_price"
    inst, e, s, q, w, _ = _position(func, entry, side, leverage, size, wallet, instrument)
    return float(_k.bankruptcy_price(inst.rules_code, inst.settlement_code, s, q, e, w,
                                     inst.contract_size, inst.tick_size))


def liquidation_distance(leverage: float, mmr: float = 0.0) -> float:
    """Adverse move, as a fraction of entry, that liquidates a ``simple`` linear position:
    ``1/L − mmr``.

    >>> round(liquidation_distance(10), 12), round(liquidation_distance(100), 12)
    (0.1, 0.01)
    """
    func = "liquidation_distance"
    lev = _leverage(func, leverage)
    m = _fraction(func, "mmr", mmr, example="0.005 = 0.5 %")
    if m * lev > 1.0:
        raise ValueError(f"calc.{func}: mmr={m:g} at leverage={lev:g} exceeds the margin "
                         f"(mmr > 1/leverage): liquidated at entry. Fix: leverage <= "
                         f"{1.0 / m:g}.")
    # A long of one unit at price 1: the distance is 1 - liquidation price.
    price = _k.liquidation_price(_k.RULES_SIMPLE, _k.LINEAR, 1, 1.0, 1.0, 1.0 / lev, 1.0,
                                 _readonly(0.0), _readonly(m), _readonly(0.0), 0.0, 0.0, 0.0,
                                 0.0)
    return float(1.0 - price)


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


# -- text tables for the command line ------------------------------------------------------

def _fmt(value: float, decimals: int | None = None) -> str:
    if not math.isfinite(value):
        return "none (cannot be reached)" if value > 0 else str(value)
    if decimals is None:
        mag = abs(value)
        decimals = 2 if mag >= 100 or mag == 0 else max(2, 5 - int(math.floor(math.log10(mag))))
    return f"{value:,.{decimals}f}"


def _table(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join([title] + [f"  {k.ljust(width)}  {v}" for k, v in rows])


def liquidation_table(entry: float, side: str, *, leverage: float | None = None,
                      size: float | None = None, wallet: float | None = None,
                      instrument: str | Instrument = "simple", mmr: float | None = None,
                      maint_amount: float | None = None, funding_rate: float = 0.0,
                      other_maintenance: float = 0.0, other_upnl: float = 0.0) -> str:
    """Liquidation and bankruptcy price, distance to liquidation (% of entry) and exposure
    per unit of margin, as an aligned text table (``backtest calc liquidation``).

    Same parameters as ``liquidation_price``.
    """
    func = "liquidation_table"
    liq = liquidation_price(entry, side, leverage=leverage, size=size, wallet=wallet,
                            instrument=instrument, mmr=mmr, maint_amount=maint_amount,
                            funding_rate=funding_rate, other_maintenance=other_maintenance,
                            other_upnl=other_upnl)
    bank = bankruptcy_price(entry, side, leverage=leverage, size=size, wallet=wallet,
                            instrument=instrument)
    inst, e, s, q, w, _ = _position(func, entry, side, leverage, size, wallet, instrument)
    value = float(_k.notional(inst.settlement_code, q, e, inst.contract_size))
    acc = inst.account_currency
    name = instrument if isinstance(instrument, str) else inst.symbol
    row = inst.tiers.row(value)
    if inst.kind == "spot_margin":
        mm_text = f"liquidated at margin level {inst.liquidation_margin_level:g}"
    elif mmr is None and maint_amount is None:
        mm_text = f"{inst.tiers.mmr[row]:.3%} (tier {row + 1} at the entry notional)"
    else:
        used = inst.tiers.mmr[row] if mmr is None else float(mmr)
        mm_text = f"{used:.3%}, maintenance amount {maint_amount or 0:g} {acc} (given)"
    rows = [
        ("instrument", f"{name} ({inst.settlement} {inst.kind}, {inst.rules} rules)"),
        ("side", str(side)),
        ("entry price", _fmt(e)),
        ("size", f"{q:,.10g} {inst.size_unit}"),
        ("notional", f"{_fmt(value)} {acc}"),
        ("margin", f"{_fmt(w)} {acc}"),
        ("maintenance rate", mm_text),
        ("liquidation price", _fmt(liq) if liq > 0 else "none (cannot be reached)"),
        ("bankruptcy price", _fmt(bank) if bank > 0 else "none (cannot be reached)"),
    ]
    if math.isfinite(liq) and liq > 0:
        rows.append(("distance to liq.", f"{abs(e - liq) / e:.2%} of entry "
                                         f"({'down' if s > 0 else 'up'})"))
    rows.append(("exposure / margin", f"{value / w:.2f}x" if w > 0 else "n/a (no margin)"))
    return _table("Liquidation (SPEC §3; prices in quote currency)", rows)


def funding_table(rate: float, interval_hours: float = 8.0, notional: float = 10_000.0) -> str:
    """Funding on a position of ``notional`` (account currency): payment per interval, per
    day, and annualised (365 days) — as an aligned text table (``backtest calc funding``).
    """
    func = "funding_table"
    r = _funding_rate(func, rate)
    hours = _positive(func, "interval_hours", interval_hours, " (e.g. 8)")
    n = _positive(func, "notional", notional)
    # A linear position of `notional` units at price 1 has notional `notional`.
    per_interval = funding_payment(n, 1.0, r, "long", "linear")
    payer = "longs pay shorts" if r > 0 else ("shorts pay longs" if r < 0 else "no payment")
    rows = [
        ("rate", f"{r:.4%} per {hours:g} h ({payer})"),
        ("notional", _fmt(n)),
        ("per interval", _fmt(per_interval, 4)),
        ("per day", _fmt(per_interval * 24.0 / hours, 4)),
        ("annualised", f"{annualised_funding(r, hours):.2%} of notional (365 days, simple)"),
    ]
    return _table("Funding (SPEC §6; paid by a long, received by a short)", rows)
