"""Position maths for people (SPEC §10): exposure, PnL, liquidation and bankruptcy prices.

Every price and PnL comes from ``backtest.kernels.contracts`` — the functions the simulation
kernels use — so the calculator and a backtest can never disagree (one implementation, two
faces). This module only validates inputs and picks the instrument's numbers.

Conventions (SPEC §1): rates are fractions (0.005 = 0.5 %), leverage a multiple, prices in
the quote currency, money (margin, PnL, funding) in the instrument's account currency.
``side`` is ``"long"`` or ``"short"``; ``instrument`` a rules name (``"simple"``,
``"binance"``, ``"bitmex"``), a preset name (``"bitmex:XBTUSD"``) or an ``Instrument``.

Imports ``backtest.instruments``, ``backtest.kernels.contracts`` and the sibling ``inputs``.
"""

from __future__ import annotations

import warnings

from backtest.calc.inputs import (
    _fraction,
    _funding_rate,
    _instrument,
    _leverage,
    _number,
    _position,
    _positive,
    _readonly,
    _side,
    _tiers,
)
from backtest.instruments.instrument import Instrument
from backtest.kernels import contracts as _k


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
        cross wallet balance (then pass ``other_*``). Isolated, with ``leverage`` too, the
        two must agree (``wallet = notional / leverage``), else ``ValueError``: neither
        silently overrides the other.
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
    inst, e, s, q, w, lev = _position(func, entry, side, leverage, size, wallet, instrument,
                                      cross=bool(other_maintenance) or bool(other_upnl))
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
                             f"{inst.account_currency}. Fix: leverage <= {limit:g}.")
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
