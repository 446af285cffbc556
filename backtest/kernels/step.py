"""One bar for one combination: the event logic of SPEC §5, exactly once.

``step_bar`` advances one combination's state vector (``records.S_*``) through bar ``t``:
funding, the open (liquidation gap, stop gap, resting stop-limit, take-profit gap), orders at
the open, the adverse and favourable legs, the close (``fill="close"`` orders, mark-to-market,
ruin, the end-of-data exit) and the streaming stats. ``simulate.py`` (one combination, per-bar
outputs) and ``sweep.py`` (many combinations, stats only) both call it, so a sweep row and
the equivalent ``run()`` are the same computation. The rules the SPEC leaves open are fixed
in ``docs/semantics.md``; this file follows that page section by section.

Arguments shared by the helpers:
    st      float64[N_STATE]   the combination's state (mutated)
    p       float64[N_PARAMS]  its parameters
    bar      tuple of N_MARKET float64[n_bars] arrays (``records.M_*`` order)
    inst    float64[N_INSTRUMENT]
    tiers   float64[4 * rows]: floor, mmr, cum and max leverage columns one after another
    trades  float64[k * N_TRADE_COLS], row-major trade rows written while they fit (k >= 0)
    events  float64[k * N_EVENT_COLS]; idem

Every array argument is 1-D on purpose: Numba reference-counts 2-D arrays and tuples of
arrays passed to a function at every call (~40-70 ns), which would dominate the bar.

Constant arguments are passed as ``int(R_END)`` / ``bool(True)``, never bare: Numba types a
bare constant as a literal and compiles a separate copy of the callee for every distinct
literal it is called with (``close_position`` was compiled 14 times, ``record_event`` 22),
which was most of the cold-start compile time. The wrapped value is a plain int64/bool.

No Python objects, no exceptions, no prints. Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.contracts import (
    bankruptcy_price,
    liquidation_price,
    notional,
    size_for_notional,
    spot_margin_liquidation_price,
    tier_row,
    upnl,
)
from backtest.kernels.records import (
    E_BAR,
    E_KIND,
    E_VALUE,
    EV_AMBIGUOUS_BAR,
    EV_CONFLICTING_ENTRIES,
    EV_ENTRY_IGNORED,
    EV_INSUFFICIENT_MARGIN,
    EV_LEVERAGE_ABOVE_TIER,
    EV_LIMIT_EXPIRED,
    EV_SIGNAL_AFTER_EXPIRY,
    EV_SIGNAL_AFTER_RUIN,
    EV_SIGNAL_DROPPED_LAST_BAR,
    EV_SIZE_ZERO,
    EV_STOP_LIMIT_RESTING,
    FILL_CLOSE,
    I_CONTRACT_SIZE,
    I_EXPIRY_BAR,
    I_KIND,
    I_LOT,
    I_MARGIN_LEVEL,
    I_RULES,
    I_SETTLE_PRICE,
    I_SETTLEMENT,
    I_TICK,
    KIND_SPOT_MARGIN,
    LIQ_BANKRUPTCY,
    M_BORROW_RATE,
    M_CLOSE,
    M_FUNDING_COUNT,
    M_FUNDING_RATE,
    M_HIGH,
    M_HOURS_AFTER_OPEN,
    M_HOURS_IN_BAR,
    M_LOW,
    M_MARK_HIGH,
    M_MARK_LOW,
    M_MARK_OPEN,
    M_NEXT_FUNDING_RATE,
    M_OPEN,
    M_PREV_CLOSE,
    MODE_CROSS,
    N_EVENT_COLS,
    N_MARKET,
    N_TRADE_COLS,
    ORDER_LIMIT,
    P_ENTRY_ORDER,
    P_FILL,
    P_INITIAL_CAPITAL,
    P_LEVERAGE,
    P_LIMIT_OFFSET,
    P_LIMIT_TTL,
    P_LIQUIDATION,
    P_LIQUIDATION_FEE,
    P_MAKER_FEE,
    P_MARGIN_MODE,
    P_NEGATIVE_EQUITY,
    P_PATH,
    P_SIZE,
    P_SIZE_TYPE,
    P_SLIPPAGE,
    P_STOP_LIMIT_OFFSET,
    P_STOP_LOSS,
    P_STOP_ORDER,
    P_STOP_TRIGGER,
    P_TAKE_PROFIT,
    P_TAKER_FEE,
    P_TRAILING,
    PATH_OHLC,
    R_END,
    R_EXPIRY,
    R_LIQUIDATION,
    R_REVERSE,
    R_SIGNAL,
    R_STOP_LOSS,
    R_TAKE_PROFIT,
    R_TRAILING,
    S_BANKRUPT,
    S_BORROWED,
    S_ENTRY,
    S_ENTRY_BAR,
    S_ENTRY_FEE,
    S_EQUITY,
    S_EVENT_COUNT0,
    S_FEES_PAID,
    S_FUNDING_BAR,
    S_FUNDING_PAID,
    S_INTEREST_PAID,
    S_LIQ,
    S_LOCKED,
    S_MARGIN,
    S_MARGIN0,
    S_MIN_LIQ_DISTANCE,
    S_N_EVENT_ROWS,
    S_N_LIQUIDATIONS,
    S_N_STOPS,
    S_N_TRADE_ROWS,
    S_N_TRADES,
    S_N_WINS,
    S_PEAK,
    S_PENDING_EXPIRY,
    S_PENDING_PRICE,
    S_PENDING_SIDE,
    S_PREV_EQUITY,
    S_RUINED,
    S_SHARED_CROSS,
    S_SIDE,
    S_SIZE,
    S_STOP,
    S_STOP_LIMIT,
    S_STOP_LIMIT_REASON,
    S_SUM_LOSS,
    S_SUM_WIN,
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
    T_ENTRY_BAR,
    T_ENTRY_PRICE,
    T_EXIT_BAR,
    T_EXIT_PRICE,
    T_FEES,
    T_FUNDING,
    T_GROSS_PNL,
    T_INTEREST,
    T_LEVERAGE,
    T_MARGIN,
    T_PNL,
    T_REASON,
    T_SIDE,
    T_SIZE,
    TRIGGER_MARK,
)
from backtest.kernels.stats import update_bar_stats

# Equity at or below this fraction of the initial capital counts as zero (ruin): a bankruptcy
# fill leaves a rounding residue of ~1e-13, which must not keep a dead account trading.
RUIN_FRACTION = 1e-9
# A stop within this relative distance of the liquidation price does not lie strictly
# between the entry and it (docs/semantics.md step 4).
STOP_TIE = 1e-12


@njit(cache=True, nogil=True)
def tier_column(tiers, k):
    """Column ``k`` (0 floor, 1 mmr, 2 cum, 3 max leverage) of the flat tier table."""
    rows = tiers.shape[0] // 4
    return tiers[k * rows:(k + 1) * rows]


@njit(cache=True, nogil=True)
def init_state(st, p):
    """Reset a state vector for a new run: flat, wallet = equity = initial capital."""
    st[:] = 0.0
    capital = p[P_INITIAL_CAPITAL]
    st[S_WALLET] = capital
    st[S_EQUITY] = capital
    st[S_PREV_EQUITY] = capital
    st[S_PEAK] = capital
    st[S_MIN_LIQ_DISTANCE] = np.inf
    for slot in (S_LIQ, S_BANKRUPT, S_STOP, S_TAKE_PROFIT, S_STOP_LIMIT):
        st[slot] = np.nan


@njit(cache=True, nogil=True)
def record_event(st, events, t, kind, value):
    """Count an event and write its row when the event matrix has room."""
    st[S_EVENT_COUNT0 + kind] += 1.0
    row = int(st[S_N_EVENT_ROWS])
    base = row * N_EVENT_COLS
    if base + N_EVENT_COLS <= events.shape[0]:
        events[base + E_BAR] = t
        events[base + E_KIND] = kind
        events[base + E_VALUE] = value
        st[S_N_EVENT_ROWS] = row + 1


@njit(cache=True, nogil=True)
def update_liquidation(st, p, t, bar, inst, tiers):
    """Recompute the liquidation and bankruptcy prices from the margin now behind the position."""
    side = st[S_SIDE]
    if side == 0.0:
        st[S_LIQ] = np.nan
        st[S_BANKRUPT] = np.nan
        return
    if st[S_SHARED_CROSS] != 0.0:
        # A portfolio's cross margin is tested across all markets by kernels/portfolio.py;
        # this market alone never triggers it.
        st[S_LIQ] = 0.0 if side > 0.0 else np.inf
        st[S_BANKRUPT] = st[S_LIQ]
        return
    wallet = st[S_WALLET] if p[P_MARGIN_MODE] == MODE_CROSS else st[S_MARGIN]
    settle = int(inst[I_SETTLEMENT])
    rules = int(inst[I_RULES])
    st[S_BANKRUPT] = bankruptcy_price(rules, settle, side, st[S_SIZE], st[S_ENTRY], wallet,
                                      inst[I_CONTRACT_SIZE], inst[I_TICK])
    if inst[I_KIND] == KIND_SPOT_MARGIN:
        st[S_LIQ] = spot_margin_liquidation_price(settle, side, st[S_SIZE], st[S_ENTRY], wallet,
                                                  inst[I_CONTRACT_SIZE], st[S_BORROWED],
                                                  st[S_TRADE_INTEREST], inst[I_MARGIN_LEVEL])
        return
    st[S_LIQ] = liquidation_price(rules, settle, side, st[S_SIZE], st[S_ENTRY], wallet,
                                  inst[I_CONTRACT_SIZE], tier_column(tiers, int(0)),
                                  tier_column(tiers, int(1)), tier_column(tiers, int(2)),
                                  bar[M_NEXT_FUNDING_RATE], 0.0, 0.0, inst[I_TICK])


@njit(cache=True, nogil=True)
def close_position(st, p, t, exit_price, gross, exit_fee, reason, trades):
    """Realise ``gross`` and ``exit_fee`` into the wallet, write the trade row, go flat."""
    st[S_WALLET] += gross - exit_fee
    fees = st[S_ENTRY_FEE] + exit_fee
    funding = st[S_TRADE_FUNDING]
    interest = st[S_TRADE_INTEREST]
    pnl = gross - fees - funding - interest
    st[S_FEES_PAID] += exit_fee
    st[S_N_TRADES] += 1.0
    if pnl > 0.0:
        st[S_N_WINS] += 1.0
        st[S_SUM_WIN] += pnl
    elif pnl < 0.0:
        st[S_SUM_LOSS] -= pnl
    if reason == R_LIQUIDATION:
        st[S_N_LIQUIDATIONS] += 1.0
    elif reason == R_STOP_LOSS or reason == R_TRAILING:
        st[S_N_STOPS] += 1.0
    row = int(st[S_N_TRADE_ROWS])
    base = row * N_TRADE_COLS
    if base + N_TRADE_COLS <= trades.shape[0]:
        trades[base + T_ENTRY_BAR] = st[S_ENTRY_BAR]
        trades[base + T_EXIT_BAR] = t
        trades[base + T_SIDE] = st[S_SIDE]
        trades[base + T_SIZE] = st[S_SIZE]
        trades[base + T_LEVERAGE] = p[P_LEVERAGE]
        trades[base + T_ENTRY_PRICE] = st[S_ENTRY]
        trades[base + T_EXIT_PRICE] = exit_price
        trades[base + T_MARGIN] = st[S_MARGIN0]
        trades[base + T_GROSS_PNL] = gross
        trades[base + T_FEES] = fees
        trades[base + T_FUNDING] = funding
        trades[base + T_PNL] = pnl
        trades[base + T_REASON] = reason
        trades[base + T_INTEREST] = interest
        st[S_N_TRADE_ROWS] = row + 1
    st[S_SIDE] = 0.0
    st[S_SIZE] = 0.0
    st[S_MARGIN] = 0.0
    st[S_STOP_LIMIT] = np.nan
    st[S_LIQ] = np.nan
    st[S_BANKRUPT] = np.nan


@njit(cache=True, nogil=True)
def close_at_market(st, p, t, price, fee_rate, slipped, reason, inst, trades):
    """Close at ``price`` (moved against the trader by slippage when ``slipped``)."""
    side = st[S_SIDE]
    if slipped:
        price = price * (1.0 - side * p[P_SLIPPAGE])
    settle = int(inst[I_SETTLEMENT])
    cs = inst[I_CONTRACT_SIZE]
    gross = upnl(settle, side, st[S_SIZE], st[S_ENTRY], price, cs)
    fee = fee_rate * notional(settle, st[S_SIZE], price, cs)
    close_position(st, p, t, price, gross, fee, reason, trades)


@njit(cache=True, nogil=True)
def liquidate(st, p, t, mark_open, at_open, inst, trades):
    """Liquidation fill (docs/semantics.md, "Liquidation fills")."""
    side = st[S_SIDE]
    settle = int(inst[I_SETTLEMENT])
    cs = inst[I_CONTRACT_SIZE]
    q = st[S_SIZE]
    backing = st[S_WALLET] if p[P_MARGIN_MODE] == MODE_CROSS else st[S_MARGIN]
    negative_equity = p[P_NEGATIVE_EQUITY] != 0.0
    bankrupt = st[S_BANKRUPT]
    # Spot margin is sold at the margin level's price (SPEC §7), never at bankruptcy.
    if p[P_LIQUIDATION] == LIQ_BANKRUPTCY and inst[I_KIND] != KIND_SPOT_MARGIN:
        # The trader loses exactly the margin behind the position (the reported exit price
        # is the venue's bankruptcy price, which BitMEX rounds to the tick).
        price = bankrupt
        gross = -backing
        if at_open and negative_equity and side * (mark_open - bankrupt) < 0.0:
            price = mark_open
            gross = upnl(settle, side, q, st[S_ENTRY], price, cs)
        close_position(st, p, t, price, gross, 0.0, int(R_LIQUIDATION), trades)
        return
    price = mark_open if at_open else st[S_LIQ]
    gross = upnl(settle, side, q, st[S_ENTRY], price, cs)
    fee = p[P_LIQUIDATION_FEE] * notional(settle, q, price, cs)
    if not negative_equity:
        if gross < -backing:
            gross = -backing
            price = bankrupt
        if gross - fee < -backing:
            fee = gross + backing
    close_position(st, p, t, price, gross, fee, int(R_LIQUIDATION), trades)


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def charge_interest(st, p, price, rate_hours):
    """Spot-margin interest for ``rate_hours`` (rate x hours) on the borrowed amount.

    A long owes quote (``S_BORROWED``); a short owes ``size`` base, valued at ``price`` when
    charged. Taken from the wallet and, isolated, from the position's margin.
    """
    if st[S_SIDE] > 0.0:
        cost = st[S_BORROWED] * rate_hours
    else:
        cost = st[S_SIZE] * price * rate_hours
    st[S_WALLET] -= cost
    if p[P_MARGIN_MODE] != MODE_CROSS:
        st[S_MARGIN] -= cost
    st[S_TRADE_INTEREST] += cost
    st[S_INTEREST_PAID] += cost


@njit(cache=True, nogil=True)
def effective_stop(st, p):
    """(level, reason) of the tighter of stop-loss and trailing stop; level NaN when none."""
    side = st[S_SIDE]
    level = st[S_STOP]
    reason = R_STOP_LOSS
    trail = p[P_TRAILING]
    if trail == trail:
        trail_level = st[S_TRAIL_REF] * (1.0 - side * trail)
        if level != level or side * (trail_level - level) > 0.0:
            level = trail_level
            reason = R_TRAILING
    return level, reason


@njit(cache=True, nogil=True)
def fill_stop(st, p, t, level, reason, gap_open, at_open, inst, trades, events):
    """The stop at ``level`` triggered: market fill, or stop-limit fill or resting order."""
    side = st[S_SIDE]
    if p[P_STOP_ORDER] == ORDER_LIMIT:
        limit = level * (1.0 - side * p[P_STOP_LIMIT_OFFSET])
        if not at_open:
            close_at_market(st, p, t, level, p[P_TAKER_FEE], bool(False), reason, inst, trades)
        elif side * (gap_open - limit) >= 0.0:
            close_at_market(st, p, t, gap_open, p[P_TAKER_FEE], bool(False), reason, inst, trades)
        else:
            st[S_STOP_LIMIT] = limit
            st[S_STOP_LIMIT_REASON] = reason
            record_event(st, events, t, int(EV_STOP_LIMIT_RESTING), limit)
        return
    price = level
    if at_open and side * (gap_open - level) < 0.0:
        price = gap_open
    close_at_market(st, p, t, price, p[P_TAKER_FEE], bool(True), reason, inst, trades)


@njit(cache=True, nogil=True)
def settle_funding(st, p, t, bar, inst, tiers):
    """SPEC §6: pay ``side * notional(mark_open) * rate`` at the open; move the liq price."""
    settle = int(inst[I_SETTLEMENT])
    pay = st[S_SIDE] * notional(settle, st[S_SIZE], bar[M_MARK_OPEN],
                                inst[I_CONTRACT_SIZE]) * bar[M_FUNDING_RATE]
    st[S_WALLET] -= pay
    if p[P_MARGIN_MODE] != MODE_CROSS:
        st[S_MARGIN] -= pay
    st[S_TRADE_FUNDING] += pay
    st[S_FUNDING_PAID] += pay
    st[S_FUNDING_BAR] = pay
    update_liquidation(st, p, t, bar, inst, tiers)


@njit(cache=True, nogil=True)
def check_open(st, p, t, bar, inst, trades, events):
    """Step 2: liquidation gap, stop gap, resting stop-limit, take-profit gap at the open."""
    side = st[S_SIDE]
    mark_open = bar[M_MARK_OPEN]
    last_open = bar[M_OPEN]
    if side * (mark_open - st[S_LIQ]) <= 0.0:
        liquidate(st, p, t, mark_open, bool(True), inst, trades)
        return
    trig_open = mark_open if p[P_STOP_TRIGGER] == TRIGGER_MARK else last_open
    if st[S_STOP_LIMIT] == st[S_STOP_LIMIT]:
        if side * (last_open - st[S_STOP_LIMIT]) >= 0.0:
            close_at_market(st, p, t, last_open, p[P_TAKER_FEE], bool(False),
                            int(st[S_STOP_LIMIT_REASON]), inst, trades)
        return
    level, reason = effective_stop(st, p)
    if level == level and side * (trig_open - level) <= 0.0:
        fill_stop(st, p, t, level, reason, last_open, bool(True), inst, trades, events)
        return
    tp = st[S_TAKE_PROFIT]
    if tp == tp and side * (last_open - tp) >= 0.0:
        close_at_market(st, p, t, last_open, p[P_MAKER_FEE], bool(False), int(R_TAKE_PROFIT),
                        inst, trades)


@njit(cache=True, nogil=True)
def enter(st, p, t, side, price, hours, bar, inst, tiers, trades, events):
    """An entry signal for ``side`` executing at ``price``: open, reverse or ignore."""
    if st[S_SIDE] == side:
        record_event(st, events, t, int(EV_ENTRY_IGNORED), side)
        return
    if st[S_SIDE] != 0.0:
        close_at_market(st, p, t, price, p[P_TAKER_FEE], bool(True), int(R_REVERSE), inst, trades)
    open_position(st, p, t, side, price, bool(False), hours, bar, inst, tiers, events)


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def adverse_leg(st, p, t, bar, inst, trades, events):
    """Step 4: stop vs liquidation on the adverse extremes; returns True if it closed."""
    side = st[S_SIDE]
    if side > 0.0:
        mark_x = bar[M_MARK_LOW]
        last_x = bar[M_LOW]
    else:
        mark_x = bar[M_MARK_HIGH]
        last_x = bar[M_HIGH]
    trig_x = mark_x if p[P_STOP_TRIGGER] == TRIGGER_MARK else last_x
    liq = st[S_LIQ]
    liq_hit = side * (mark_x - liq) <= 0.0
    if st[S_STOP_LIMIT] == st[S_STOP_LIMIT]:
        if liq_hit:
            liquidate(st, p, t, 0.0, bool(False), inst, trades)
            return True
        return False
    level, reason = effective_stop(st, p)
    stop_hit = level == level and side * (trig_x - level) <= 0.0
    # "Strictly between" with a relative margin: a stop computed to the same price as the
    # liquidation level (e.g. 125x, mmr 0.5 %, a 0.3 % stop) ties, and liquidation wins.
    if stop_hit and (not liq_hit or side * (level - liq) > STOP_TIE * liq):
        fill_stop(st, p, t, level, reason, 0.0, bool(False), inst, trades, events)
        return True
    if liq_hit:
        liquidate(st, p, t, 0.0, bool(False), inst, trades)
        return True
    return False


@njit(cache=True, nogil=True)
def favourable_leg(st, p, t, bar, inst, trades):
    """Step 5: resting stop-limit and take-profit on the favourable extreme, then trailing."""
    side = st[S_SIDE]
    last_x = bar[M_HIGH] if side > 0.0 else bar[M_LOW]
    limit = st[S_STOP_LIMIT]
    if limit == limit and side * (last_x - limit) >= 0.0:
        close_at_market(st, p, t, limit, p[P_TAKER_FEE], bool(False), int(st[S_STOP_LIMIT_REASON]),
                        inst, trades)
        return True
    tp = st[S_TAKE_PROFIT]
    if tp == tp and side * (last_x - tp) >= 0.0:
        close_at_market(st, p, t, tp, p[P_MAKER_FEE], bool(False), int(R_TAKE_PROFIT), inst, trades)
        return True
    return False


@njit(cache=True, nogil=True)
def move_trailing_reference(st, p, t, bar):
    """The trailing reference follows the trigger series' favourable extreme."""
    side = st[S_SIDE]
    if side == 0.0:
        return
    if p[P_STOP_TRIGGER] == TRIGGER_MARK:
        best = bar[M_MARK_HIGH] if side > 0.0 else bar[M_MARK_LOW]
    else:
        best = bar[M_HIGH] if side > 0.0 else bar[M_LOW]
    if side * (best - st[S_TRAIL_REF]) > 0.0:
        st[S_TRAIL_REF] = best


@njit(cache=True, nogil=True)
def count_ambiguous(st, p, t, bar, events):
    """Both a loss-side and a profit-side exit were reachable in this bar."""
    side = st[S_SIDE]
    tp = st[S_TAKE_PROFIT]
    if tp != tp:
        return
    if side > 0.0:
        mark_x, last_x, fav_x = bar[M_MARK_LOW], bar[M_LOW], bar[M_HIGH]
    else:
        mark_x, last_x, fav_x = bar[M_MARK_HIGH], bar[M_HIGH], bar[M_LOW]
    if side * (fav_x - tp) < 0.0:
        return
    trig_x = mark_x if p[P_STOP_TRIGGER] == TRIGGER_MARK else last_x
    level, _ = effective_stop(st, p)
    loss = side * (mark_x - st[S_LIQ]) <= 0.0 or (level == level and side * (trig_x - level) <= 0.0)
    if loss:
        record_event(st, events, t, int(EV_AMBIGUOUS_BAR), side)


@njit(cache=True, nogil=True)
def run_legs(st, p, t, bar, inst, trades, events):
    """Steps 4-5 in the order the path model gives."""
    count_ambiguous(st, p, t, bar, events)
    side = st[S_SIDE]
    favourable_first = False
    if p[P_PATH] == PATH_OHLC:
        green = bar[M_CLOSE] >= bar[M_OPEN]
        favourable_first = (side > 0.0) != green
    if favourable_first:
        if favourable_leg(st, p, t, bar, inst, trades):
            return
        move_trailing_reference(st, p, t, bar)
        adverse_leg(st, p, t, bar, inst, trades, events)
        return
    if adverse_leg(st, p, t, bar, inst, trades, events):
        return
    if favourable_leg(st, p, t, bar, inst, trades):
        return
    move_trailing_reference(st, p, t, bar)


@njit(cache=True, nogil=True, inline="always")
def load_bar(bar, md, t):
    """Copy bar ``t`` of the bar-major market matrix ``md`` (n_bars, N_MARKET) into ``bar``.

    A 2-D array rather than a tuple of arrays: reading arrays out of a tuple costs an atomic
    reference count per access in Numba (~100 ns per bar for 14 series).
    """
    for i in range(N_MARKET):
        bar[i] = md[t, i]
    bar[M_PREV_CLOSE] = md[t - 1, M_CLOSE] if t > 0 else np.nan


# Not inline="always": compiled once and called by simulate, sweep._full_step and the
# portfolio kernel alike (same argument types). Inlined, Numba typed and optimised its body
# once per caller: ~7 s more CPU on a cold run()+sweep(), for no measurable run-time gain.
@njit(cache=True, nogil=True)
def step_bar(t, is_last, st, p, bar, sig_prev, sig_now, inst, tiers, trades, events):
    """Advance one combination through bar ``t`` (SPEC §5, docs/semantics.md steps 1-6).

    ``bar`` holds bar ``t``'s values (``load_bar``); ``sig_prev``/``sig_now`` are the signal
    bitmasks (``SIG_*``) of bars ``t-1`` and ``t`` for this combination's signal set;
    ``is_last`` marks the final bar (end-of-data exit).
    """
    fill_close = p[P_FILL] == FILL_CLOSE
    # Signals that can no longer trade are recorded on their own (signal) bar.
    signal_bar = t if fill_close else t - 1
    if st[S_RUINED] != 0.0 and st[S_SIDE] == 0.0:
        # Trading has stopped; the signals that would have executed now are still counted.
        st[S_FUNDING_BAR] = 0.0
        if (sig_now if fill_close else sig_prev) != 0:
            record_event(st, events, signal_bar, int(EV_SIGNAL_AFTER_RUIN), 0.0)
        if not fill_close and is_last and sig_now != 0:
            record_event(st, events, t, int(EV_SIGNAL_DROPPED_LAST_BAR), 0.0)
        update_bar_stats(st, p, bar, inst)
        return
    expiry_bar = inst[I_EXPIRY_BAR]
    if expiry_bar >= 0.0 and t > expiry_bar:
        # A dated future after its expiry: nothing trades; signals are counted (SPEC §7).
        st[S_FUNDING_BAR] = 0.0
        if (sig_now if fill_close else sig_prev) != 0:
            record_event(st, events, signal_bar, int(EV_SIGNAL_AFTER_EXPIRY), 0.0)
        if not fill_close and is_last and sig_now != 0:
            # the last bar's own signals could fill on no bar, expired or not
            record_event(st, events, t, int(EV_SIGNAL_DROPPED_LAST_BAR), 0.0)
        update_bar_stats(st, p, bar, inst)
        return
    # 1. funding or interest, 2. the open
    st[S_FUNDING_BAR] = 0.0
    if st[S_SIDE] != 0.0:
        if bar[M_FUNDING_COUNT] != 0.0:
            settle_funding(st, p, t, bar, inst, tiers)
        if inst[I_KIND] == KIND_SPOT_MARGIN and bar[M_HOURS_IN_BAR] != 0.0:
            charge_interest(st, p, bar[M_MARK_OPEN], bar[M_BORROW_RATE] * bar[M_HOURS_IN_BAR])
            update_liquidation(st, p, t, bar, inst, tiers)
        check_open(st, p, t, bar, inst, trades, events)
    # 3. orders at the open (none once ruined: an open position still meets its stops,
    # liquidation and the end of the data, but no new order is placed)
    ruined = st[S_RUINED] != 0.0
    if not fill_close and sig_prev != 0:
        if ruined:
            record_event(st, events, t - 1, int(EV_SIGNAL_AFTER_RUIN), 0.0)
        else:
            process_signals(st, p, t, t - 1, sig_prev, bar[M_OPEN], bar[M_PREV_CLOSE], bar,
                            inst, tiers, trades, events)
    if st[S_PENDING_SIDE] != 0.0 and not ruined:
        check_entry_limit(st, p, t, bar, inst, tiers, trades, events)
    # 4-5. the legs
    if st[S_SIDE] != 0.0:
        run_legs(st, p, t, bar, inst, trades, events)
    # 6. the close
    if sig_now != 0:
        if fill_close and ruined:
            record_event(st, events, t, int(EV_SIGNAL_AFTER_RUIN), 0.0)
        elif fill_close:
            # np.int64: sig_now arrives as uint8, sig_prev as int64; one specialisation
            process_signals(st, p, t, t, np.int64(sig_now), bar[M_CLOSE], bar[M_CLOSE], bar,
                            inst, tiers, trades, events)
        elif is_last:
            record_event(st, events, t, int(EV_SIGNAL_DROPPED_LAST_BAR), 0.0)
    if t == expiry_bar and st[S_SIDE] != 0.0:
        close_at_market(st, p, t, inst[I_SETTLE_PRICE], p[P_TAKER_FEE], bool(False),
                        int(R_EXPIRY), inst, trades)
    if is_last and st[S_SIDE] != 0.0:
        close_at_market(st, p, t, bar[M_CLOSE], p[P_TAKER_FEE], bool(True), int(R_END), inst,
                        trades)
    update_bar_stats(st, p, bar, inst)
    if st[S_EQUITY] <= RUIN_FRACTION * p[P_INITIAL_CAPITAL]:
        st[S_RUINED] = 1.0
