"""Contract maths and venue rules (SPEC §3) as Numba functions: one implementation used by
the public calculator (``backtest.calc``) and by the simulation kernels.

Conventions
-----------
- ``settlement``: ``LINEAR`` (size in base units, account ccy = quote), ``INVERSE`` (size in
  contracts of ``contract_size`` quote each, account ccy = base), ``QUANTO`` (size in
  contracts, ``contract_size`` = multiplier in coin per quote unit, account ccy = coin).
- ``side``: +1 long, -1 short. ``size`` >= 0. Prices in quote currency. Money in account ccy.
- ``rules``: ``RULES_SIMPLE``, ``RULES_BINANCE``, ``RULES_BITMEX``.
- Tier tables are three arrays sorted by ``tier_floor`` (notional floor, account ccy),
  ``tier_mmr`` (fraction) and ``tier_cum`` (maintenance amount, account ccy).

Every liquidation/bankruptcy price solves one equation for the price ``P``::

    W + uPnL(P) = a * notional(P) + b

with ``W`` the margin standing behind the position (isolated margin, or for cross the wallet
less other positions' maintenance plus their uPnL). Bankruptcy: ``a = b = 0``.
Liquidation: ``simple`` -> ``a = 0, b = mmr * notional(E) - cum``; ``bitmex`` ->
``a = 0, b = (mmr + max(0, side * F)) * notional(E)`` (the funding reserve; the closing-fee
reserve appears on both sides and cancels); ``binance`` -> ``a = mmr(P), b = -cum(P)`` with
the tier re-chosen at ``notional(P)``.

Solutions: a long with no positive solution gets ``0.0`` (it cannot be liquidated); a short
with no finite positive solution gets ``+inf``.

Must not import pandas or anything outside numpy/numba.
"""

import numpy as np
from numba import njit

LINEAR = 0
INVERSE = 1
QUANTO = 2

RULES_SIMPLE = 0
RULES_BINANCE = 1
RULES_BITMEX = 2

_MAX_TIER_ITER = 16


@njit(cache=True, nogil=True)
def notional(settlement, size, price, contract_size):
    """Position value in account currency at ``price`` (>= 0)."""
    if settlement == INVERSE:
        return size * contract_size / price
    if settlement == QUANTO:
        return size * contract_size * price
    return size * price


@njit(cache=True, nogil=True)
def upnl(settlement, side, size, entry, price, contract_size):
    """Profit of ``side``/``size`` entered at ``entry`` and valued at ``price`` (account ccy)."""
    if settlement == INVERSE:
        return side * size * contract_size * (1.0 / entry - 1.0 / price)
    if settlement == QUANTO:
        return side * size * contract_size * (price - entry)
    return side * size * (price - entry)


@njit(cache=True, nogil=True)
def price_for_pnl(settlement, side, size, entry, pnl, contract_size):
    """The exit price whose PnL from ``entry`` is ``pnl`` (``upnl`` solved for the price).

    Inverse: ``+inf`` when no finite price gives it (a long's gain can approach but never
    reach ``size * contract_size / entry``; a short's loss likewise).
    """
    if settlement == INVERSE:
        inv = 1.0 / entry - pnl / (side * size * contract_size)
        return 1.0 / inv if inv > 0.0 else np.inf
    mult = contract_size if settlement == QUANTO else 1.0
    return entry + pnl / (side * size * mult)


@njit(cache=True, nogil=True)
def size_for_notional(settlement, value, price, contract_size):
    """Unrounded size whose notional at ``price`` is ``value`` (inverse of ``notional``)."""
    if settlement == INVERSE:
        return value * price / contract_size
    if settlement == QUANTO:
        return value / (contract_size * price)
    return value / price


@njit(cache=True, nogil=True)
def tier_row(tier_floor, value):
    """Index of the last tier whose floor is <= ``value`` (0 when below every floor)."""
    row = 0
    for i in range(tier_floor.shape[0]):
        if tier_floor[i] <= value:
            row = i
    return row


@njit(cache=True, nogil=True)
def funding_reserve(side, funding_rate):
    """BitMEX's maintenance reserve for the next funding payment, a fraction of notional:
    ``max(0, side * F)`` (only the side that will pay it reserves it)."""
    reserve = side * funding_rate
    return reserve if reserve > 0.0 else 0.0


@njit(cache=True, nogil=True)
def maintenance_margin(rules, settlement, side, size, entry, price, contract_size,
                       tier_floor, tier_mmr, tier_cum, funding_rate):
    """Maintenance margin (account ccy) of a position valued at ``price``.

    ``binance`` uses the notional at ``price``; ``simple`` and ``bitmex`` the notional at
    entry (their MM is fixed at entry). ``funding_rate`` is the next funding rate, of which
    BitMEX reserves ``funding_reserve(side, funding_rate)``; the other rules ignore it.
    """
    if rules == RULES_BINANCE:
        value = notional(settlement, size, price, contract_size)
        row = tier_row(tier_floor, value)
        return value * tier_mmr[row] - tier_cum[row]
    value = notional(settlement, size, entry, contract_size)
    row = tier_row(tier_floor, value)
    if rules == RULES_BITMEX:
        return value * (tier_mmr[row] + funding_reserve(side, funding_rate)) - tier_cum[row]
    return value * tier_mmr[row] - tier_cum[row]


@njit(cache=True, nogil=True)
def solve_price(settlement, side, size, entry, wallet, contract_size, a, b):
    """Price ``P`` solving ``wallet + uPnL(P) = a * notional(P) + b`` (see module doc)."""
    if size <= 0.0:
        return 0.0 if side > 0 else np.inf
    if settlement == INVERSE:
        denom = wallet - b + side * size * contract_size / entry
        price = (a + side) * size * contract_size / denom if denom != 0.0 else np.inf
    else:
        mult = contract_size if settlement == QUANTO else 1.0
        price = (b - wallet + side * size * mult * entry) / (size * mult * (side - a))
    if side > 0:
        if not (price > 0.0) or not np.isfinite(price):
            return 0.0
        return price
    if not (price > 0.0) or not np.isfinite(price):
        return np.inf
    return price


@njit(cache=True, nogil=True)
def round_toward_entry(price, entry, side, tick):
    """Round a long's trigger price up / a short's down to the tick (BitMEX convention).

    Never across the entry: a price before the entry that rounding would carry onto or past
    it (tiny prices, within a tick) stays unrounded.
    """
    if tick <= 0.0 or not np.isfinite(price) or price <= 0.0:
        return price
    steps = price / tick
    if side > 0:
        rounded = np.ceil(steps - 1e-9) * tick
        return price if price < entry <= rounded else rounded
    rounded = np.floor(steps + 1e-9) * tick
    return price if rounded <= entry < price else rounded


@njit(cache=True, nogil=True)
def bankruptcy_price(rules, settlement, side, size, entry, wallet, contract_size, tick):
    """Price at which ``wallet + uPnL`` reaches zero; BitMEX rounds it toward the entry."""
    price = solve_price(settlement, side, size, entry, wallet, contract_size, 0.0, 0.0)
    if rules == RULES_BITMEX:
        return round_toward_entry(price, entry, side, tick)
    return price


@njit(cache=True, nogil=True)
def liquidation_price(rules, settlement, side, size, entry, wallet, contract_size,
                      tier_floor, tier_mmr, tier_cum, funding_rate, other_mm, other_upnl,
                      tick):
    """Mark price at which the position is liquidated (SPEC §3).

    ``wallet`` is the isolated margin or the cross wallet; ``other_mm``/``other_upnl`` are the
    other cross positions' maintenance and uPnL at their mark (0 for isolated).
    ``funding_rate`` is the next funding rate (BitMEX reserves ``max(0, side * F)``).
    """
    w = wallet - other_mm + other_upnl
    if rules == RULES_BINANCE:
        row = tier_row(tier_floor, notional(settlement, size, entry, contract_size))
        price = solve_price(settlement, side, size, entry, w, contract_size,
                            tier_mmr[row], -tier_cum[row])
        for _ in range(_MAX_TIER_ITER):
            if not (np.isfinite(price) and price > 0.0):
                break
            new_row = tier_row(tier_floor, notional(settlement, size, price, contract_size))
            if new_row == row:
                break
            row = new_row
            price = solve_price(settlement, side, size, entry, w, contract_size,
                                tier_mmr[row], -tier_cum[row])
        return price
    value = notional(settlement, size, entry, contract_size)
    row = tier_row(tier_floor, value)
    mmr = tier_mmr[row]
    if rules == RULES_BITMEX:
        price = solve_price(settlement, side, size, entry, w, contract_size, 0.0,
                            value * (mmr + funding_reserve(side, funding_rate))
                            - tier_cum[row])
        return round_toward_entry(price, entry, side, tick)
    return solve_price(settlement, side, size, entry, w, contract_size, 0.0,
                       value * mmr - tier_cum[row])


@njit(cache=True, nogil=True)
def funding_payment(settlement, side, size, mark, rate, contract_size):
    """Funding paid by the trader (> 0 paid, < 0 received): ``side * notional(mark) * rate``."""
    return side * notional(settlement, size, mark, contract_size) * rate


@njit(cache=True, nogil=True)
def spot_margin_liquidation_price(settlement, side, size, entry, wallet, contract_size,
                                  borrowed, interest, level):
    """Price at which a spot-margin position's margin level falls to ``level`` (SPEC §7).

    Margin level = assets / (liabilities + interest). A long holds ``size`` base bought with
    ``wallet`` of its own and ``borrowed`` quote; a short sold ``size`` borrowed base and holds
    the proceeds plus ``wallet``. ``interest`` is the interest charged so far (account ccy),
    already deducted from ``wallet``. In the module's equation: long ``a = 0,
    b = (level - 1)(borrowed + interest)``; short ``a = level - 1, b = (level - 1) interest``.
    """
    if side > 0:
        return solve_price(settlement, side, size, entry, wallet, contract_size, 0.0,
                           (level - 1.0) * (borrowed + interest))
    return solve_price(settlement, side, size, entry, wallet, contract_size, level - 1.0,
                       (level - 1.0) * interest)
