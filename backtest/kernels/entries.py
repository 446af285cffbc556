"""Orders that open positions (SPEC §4): signal execution, sizing, entry limits.

Arguments as in ``step.py``'s module docstring (``st`` state, ``p`` parameters, ``bar`` the
bar's values, ``inst``/``tiers`` the instrument, ``trades``/``events`` flat row buffers);
every array argument 1-D, constants passed as ``int(...)``/``bool(...)`` (see there why).
No Python objects, no exceptions, no prints. Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.contracts import (
    notional,
    size_for_notional,
    tier_row,
)
from backtest.kernels.funding import charge_interest
from backtest.kernels.ledger import (
    RUIN_FRACTION,
    close_at_market,
    record_event,
    tier_column,
    update_liquidation,
)
from backtest.kernels.records import (
    EV_CONFLICTING_ENTRIES,
    EV_ENTRY_IGNORED,
    EV_INSUFFICIENT_MARGIN,
    EV_LEVERAGE_ABOVE_TIER,
    EV_LIMIT_EXPIRED,
    EV_SIZE_ZERO,
    I_CONTRACT_SIZE,
    I_KIND,
    I_LOT,
    I_SETTLEMENT,
    KIND_SPOT_MARGIN,
    M_BORROW_RATE,
    M_HIGH,
    M_HOURS_AFTER_OPEN,
    M_LOW,
    M_OPEN,
    ORDER_LIMIT,
    P_ENTRY_ORDER,
    P_INITIAL_CAPITAL,
    P_LEVERAGE,
    P_LIMIT_OFFSET,
    P_LIMIT_TTL,
    P_MAKER_FEE,
    P_SIZE,
    P_SIZE_TYPE,
    P_SLIPPAGE,
    P_STOP_LOSS,
    P_TAKE_PROFIT,
    P_TAKER_FEE,
    R_REVERSE,
    R_SIGNAL,
    S_BORROWED,
    S_ENTRY,
    S_ENTRY_BAR,
    S_ENTRY_FEE,
    S_FEES_PAID,
    S_LOCKED,
    S_MARGIN,
    S_MARGIN0,
    S_PENDING_EXPIRY,
    S_PENDING_PRICE,
    S_PENDING_SIDE,
    S_SIDE,
    S_SIZE,
    S_STOP,
    S_STOP_LIMIT,
    S_TAKE_PROFIT,
    S_TRADE_FUNDING,
    S_TRADE_INTEREST,
    S_TRAIL_REF,
    S_WALLET,
    SIG_ENTRY,
    SIG_EXIT,
    SIG_SHORT_ENTRY,
    SIG_SHORT_EXIT,
    SIZE_MARGIN,
    SIZE_NOTIONAL,
    SIZE_QTY,
    SIZE_RISK,
)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def entry_size(p, price, fee_rate, wallet, inst):
    """Size (base units or contracts) for an entry at ``price`` with ``wallet`` free funds
    (account currency), by ``size_type`` (docs/semantics.md "Sizing"), rounded down to the
    lot. May be <= 0 (the caller records ``size_zero``)."""
    settle = int(inst[I_SETTLEMENT])
    cs = inst[I_CONTRACT_SIZE]
    leverage = p[P_LEVERAGE]
    size_type = int(p[P_SIZE_TYPE])
    value = 0.0
    if size_type == SIZE_MARGIN:
        value = p[P_SIZE] * wallet / (1.0 / leverage + fee_rate)
    elif size_type == SIZE_NOTIONAL:
        value = p[P_SIZE]
    elif size_type == SIZE_RISK:
        value = p[P_SIZE] * wallet / p[P_STOP_LOSS]
    if size_type == SIZE_QTY:
        q = p[P_SIZE]
    else:
        q = size_for_notional(settle, value, price, cs)
    lot = inst[I_LOT]
    if lot > 0.0:
        q = np.floor(q / lot + 1e-9) * lot
    return q


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def open_position(st, p, t, side, price, is_limit, hours, bar, inst, tiers, events):
    """Size and open a position at ``price`` (slippage applied here for market orders).

    ``hours``: clock hours of spot-margin interest due at entry (the started hour, plus the
    hours that start later inside this bar when the fill is at the open).
    """
    if not is_limit:
        price = price * (1.0 + side * p[P_SLIPPAGE])
    fee_rate = p[P_MAKER_FEE] if is_limit else p[P_TAKER_FEE]
    leverage = p[P_LEVERAGE]
    wallet = st[S_WALLET] - st[S_LOCKED]   # what other markets' margin leaves free
    if st[S_LOCKED] > 0.0 and abs(wallet) <= RUIN_FRACTION * p[P_INITIAL_CAPITAL]:
        # After a market lost its whole margin, wallet - other margins is float dust
        # (~1e-13), which must not open a dust-sized position.
        wallet = 0.0
    settle = int(inst[I_SETTLEMENT])
    cs = inst[I_CONTRACT_SIZE]
    q = entry_size(p, price, fee_rate, wallet, inst)
    if not (q > 0.0):
        record_event(st, events, t, int(EV_SIZE_ZERO), q)
        return
    value = notional(settle, q, price, cs)
    margin = value / leverage
    fee = fee_rate * value
    # Checked in the order docs/semantics.md lists them ("Sizing").
    if margin + fee > wallet * (1.0 + 1e-12):
        record_event(st, events, t, int(EV_INSUFFICIENT_MARGIN), margin + fee)
        return
    max_leverage = tier_column(tiers, int(3))[tier_row(tier_column(tiers, int(0)), value)]
    if leverage > max_leverage * (1.0 + 1e-12):
        record_event(st, events, t, int(EV_LEVERAGE_ABOVE_TIER), value)
        return
    st[S_WALLET] -= fee
    st[S_FEES_PAID] += fee
    st[S_SIDE] = side
    st[S_SIZE] = q
    st[S_ENTRY] = price
    st[S_MARGIN] = margin
    st[S_MARGIN0] = margin
    st[S_ENTRY_FEE] = fee
    st[S_TRADE_FUNDING] = 0.0
    st[S_ENTRY_BAR] = t
    st[S_STOP] = price * (1.0 - side * p[P_STOP_LOSS])       # NaN propagates: no stop
    st[S_TAKE_PROFIT] = price * (1.0 + side * p[P_TAKE_PROFIT])
    st[S_TRAIL_REF] = price
    st[S_STOP_LIMIT] = np.nan
    st[S_TRADE_INTEREST] = 0.0
    st[S_BORROWED] = value - margin if side > 0.0 else 0.0
    if inst[I_KIND] == KIND_SPOT_MARGIN:
        charge_interest(st, p, price, bar[M_BORROW_RATE] * hours)
    update_liquidation(st, p, t, bar, inst, tiers)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def enter(st, p, t, side, price, hours, bar, inst, tiers, trades, events):
    """An entry signal for ``side`` executing at ``price``: open, reverse or ignore."""
    if st[S_SIDE] == side:
        record_event(st, events, t, int(EV_ENTRY_IGNORED), side)
        return
    if st[S_SIDE] != 0.0:
        close_at_market(st, p, t, price, p[P_TAKER_FEE], bool(True), int(R_REVERSE), inst, trades)
    open_position(st, p, t, side, price, bool(False), hours, bar, inst, tiers, events)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def process_signals(st, p, t, ts, code, price, signal_close, bar, inst, tiers, trades, events):
    """Execute the signals of bar ``ts`` (bitmask ``code``, ``SIG_*``) at ``price`` in bar
    ``t``: exits, then entries. ``signal_close`` is the signal bar's close (limit prices)."""
    long_entry = (code & SIG_ENTRY) != 0
    short_entry = (code & SIG_SHORT_ENTRY) != 0
    if (code & SIG_EXIT) != 0 and st[S_SIDE] > 0.0:
        close_at_market(st, p, t, price, p[P_TAKER_FEE], bool(True), int(R_SIGNAL), inst, trades)
    if (code & SIG_SHORT_EXIT) != 0 and st[S_SIDE] < 0.0:
        close_at_market(st, p, t, price, p[P_TAKER_FEE], bool(True), int(R_SIGNAL), inst, trades)
    if long_entry and short_entry:
        record_event(st, events, t, int(EV_CONFLICTING_ENTRIES), 0.0)
        return
    if not (long_entry or short_entry):
        return
    side = 1.0 if long_entry else -1.0
    if p[P_ENTRY_ORDER] == ORDER_LIMIT:
        if st[S_SIDE] == side:
            record_event(st, events, t, int(EV_ENTRY_IGNORED), side)
            return
        st[S_PENDING_SIDE] = side
        st[S_PENDING_PRICE] = signal_close * (1.0 - side * p[P_LIMIT_OFFSET])
        st[S_PENDING_EXPIRY] = ts + p[P_LIMIT_TTL]
        return
    hours = 1.0 if ts == t else 1.0 + bar[M_HOURS_AFTER_OPEN]
    enter(st, p, t, side, price, hours, bar, inst, tiers, trades, events)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def check_entry_limit(st, p, t, bar, inst, tiers, trades, events):
    """A resting entry limit fills at the open or when the bar's range reaches it."""
    side = st[S_PENDING_SIDE]
    if side == 0.0:
        return
    if t > st[S_PENDING_EXPIRY]:
        st[S_PENDING_SIDE] = 0.0
        record_event(st, events, t, int(EV_LIMIT_EXPIRED), st[S_PENDING_PRICE])
        return
    limit = st[S_PENDING_PRICE]
    last_open = bar[M_OPEN]
    reach = bar[M_LOW] if side > 0.0 else bar[M_HIGH]
    price = np.nan
    if side * (limit - last_open) >= 0.0:
        price = last_open
    elif side * (limit - reach) >= 0.0:
        price = limit
    if price != price:
        if t == st[S_PENDING_EXPIRY]:
            st[S_PENDING_SIDE] = 0.0
            record_event(st, events, t, int(EV_LIMIT_EXPIRED), limit)
        return
    st[S_PENDING_SIDE] = 0.0
    if st[S_SIDE] == side:
        record_event(st, events, t, int(EV_ENTRY_IGNORED), side)
        return
    if st[S_SIDE] != 0.0:
        close_at_market(st, p, t, price, p[P_TAKER_FEE], bool(False), int(R_REVERSE), inst, trades)
    open_position(st, p, t, side, price, bool(True), 1.0 + bar[M_HOURS_AFTER_OPEN], bar, inst,
                  tiers, events)
