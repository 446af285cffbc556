"""Protective exits and liquidation inside a bar (SPEC §5 steps 2-5): the open's gaps,
the adverse and favourable legs in the path model's order, stop and liquidation fills.

Arguments as in ``step.py``'s module docstring (``st`` state, ``p`` parameters, ``bar`` the
bar's values, ``inst``/``tiers`` the instrument, ``trades``/``events`` flat row buffers);
every array argument 1-D, constants passed as ``int(...)``/``bool(...)`` (see there why).
No Python objects, no exceptions, no prints. Imports numpy, numba and kernels only.
"""

from numba import njit

from backtest.kernels.contracts import (
    notional,
    upnl,
)
from backtest.kernels.ledger import close_at_market, close_position, record_event
from backtest.kernels.records import (
    EV_AMBIGUOUS_BAR,
    EV_STOP_LIMIT_RESTING,
    I_CONTRACT_SIZE,
    I_KIND,
    I_SETTLEMENT,
    KIND_SPOT_MARGIN,
    LIQ_BANKRUPTCY,
    M_CLOSE,
    M_HIGH,
    M_LOW,
    M_MARK_HIGH,
    M_MARK_LOW,
    M_MARK_OPEN,
    M_OPEN,
    MODE_CROSS,
    ORDER_LIMIT,
    P_LIQUIDATION,
    P_LIQUIDATION_FEE,
    P_MAKER_FEE,
    P_MARGIN_MODE,
    P_NEGATIVE_EQUITY,
    P_PATH,
    P_STOP_LIMIT_OFFSET,
    P_STOP_ORDER,
    P_STOP_TRIGGER,
    P_TAKER_FEE,
    P_TRAILING,
    PATH_OHLC,
    R_LIQUIDATION,
    R_STOP_LOSS,
    R_TAKE_PROFIT,
    R_TRAILING,
    S_BANKRUPT,
    S_ENTRY,
    S_LIQ,
    S_MARGIN,
    S_SIDE,
    S_SIZE,
    S_STOP,
    S_STOP_LIMIT,
    S_STOP_LIMIT_REASON,
    S_TAKE_PROFIT,
    S_TRAIL_REF,
    S_WALLET,
    TRIGGER_MARK,
)

# A stop within this relative distance of the liquidation price does not lie strictly
# between the entry and it (docs/semantics.md step 4).
STOP_TIE = 1e-12


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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


@njit(cache=True, nogil=True, inline="always")
def trailing_reference(st, p, bar):
    """The trailing reference after ``bar``: the trigger series' favourable extreme when it
    is better than the current one, else the current one (unchanged when flat). Also used
    by the risk windows' quiet path (``kernels/windows.py``)."""
    side = st[S_SIDE]
    if p[P_STOP_TRIGGER] == TRIGGER_MARK:
        best = bar[M_MARK_HIGH] if side > 0.0 else bar[M_MARK_LOW]
    else:
        best = bar[M_HIGH] if side > 0.0 else bar[M_LOW]
    return best if side * (best - st[S_TRAIL_REF]) > 0.0 else st[S_TRAIL_REF]


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def move_trailing_reference(st, p, t, bar):
    """The trailing reference follows the trigger series' favourable extreme."""
    if st[S_SIDE] != 0.0:
        st[S_TRAIL_REF] = trailing_reference(st, p, bar)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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
