"""One market, many combinations, stats only (SPEC §9).

``sweep_stats(params, mk, inst, tiers, sig, active, bar_ns, n_blocks, fast, out)`` fills
``out[c]`` (float64[N_STATS], ``stats.STAT_NAMES``) for every row ``c`` of ``params``
(float64[n_combos, N_PARAMS], ``records.P_*``; ``P_SIGNAL_SET`` picks the column of the
signal matrices). Nothing per bar is stored: each combination keeps a state row
(``records.S_*``) and the trade/event matrices have zero rows, so ``step_bar`` only counts.

Layout: the combinations are split into ``n_blocks`` contiguous blocks (one per thread,
``prange``); inside a block, tiles of ``TILE`` combinations whose state stays in cache are
run **bars outer, combinations inner**. Every combination is an independent sequence of
``step_bar`` calls, so the results do not depend on the blocks, tiles or threads.

The cheap path: most bars can have no event for most combinations. ``needs_full_step``
decides from the bar's extremes (open included) whether anything in ``step_bar`` could
happen -- a signal on ``t-1``/``t``, the last bar, a resting entry limit, funding while in a
position, a resting stop-limit, the mark reaching the liquidation price, the trigger series
reaching the stop (with the trailing reference already moved, the tighter case), the
take-profit. If not, ``quiet_step`` does exactly what ``step_bar`` would do on such a bar:
zero the bar's funding, move the trailing reference, ``update_bar_stats``, the ruin test.
Each condition is ``step.py``'s own comparison evaluated at the bar's extreme, which is at
least as far as the value ``step_bar`` compares (float subtraction is monotone), so the
check can only err towards the full step: the results are bit-identical with ``fast`` off
(``tests/test_sweep.py`` holds the two together).

``active[t, k]``: a signal of set ``k`` on bar ``t`` or ``t-1`` (see ``active_bars``).
Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit, prange

from backtest.kernels.records import (
    M_FUNDING_COUNT,
    M_HIGH,
    M_LOW,
    M_MARK_HIGH,
    M_MARK_LOW,
    M_MARK_OPEN,
    M_OPEN,
    N_EVENT_COLS,
    N_STATE,
    N_TRADE_COLS,
    P_INITIAL_CAPITAL,
    P_SIGNAL_SET,
    P_STOP_TRIGGER,
    P_TRAILING,
    S_EQUITY,
    S_FUNDING_BAR,
    S_LIQ,
    S_PENDING_SIDE,
    S_RUINED,
    S_SIDE,
    S_STOP,
    S_STOP_LIMIT,
    S_TAKE_PROFIT,
    S_TRAIL_REF,
    TRIGGER_MARK,
)
from backtest.kernels.stats import finalize_stats, update_bar_stats
from backtest.kernels.step import RUIN_FRACTION, init_state, step_bar

# Combinations per tile: their state and parameter rows (~600 bytes each) stay in L2 while
# the tile runs through every bar.
TILE = 256


@njit(cache=True, nogil=True)
def active_bars(sig):
    """bool[n_bars, n_sets]: any of the four signals of set ``k`` on bar ``t`` or ``t - 1``."""
    n_bars, n_sets = sig[0].shape
    active = np.zeros((n_bars, n_sets), dtype=np.bool_)
    for t in range(n_bars):
        for k in range(n_sets):
            if sig[0][t, k] or sig[1][t, k] or sig[2][t, k] or sig[3][t, k]:
                active[t, k] = True
                if t + 1 < n_bars:
                    active[t + 1, k] = True
    return active


@njit(cache=True, nogil=True)
def needs_full_step(st, p, busy, funding_due, mark_lo, mark_hi, last_lo, last_hi):
    """True unless ``step_bar`` can have no event on this bar for this combination.

    ``busy``: a signal on ``t``/``t-1`` or the last bar; ``funding_due``: funding events at
    this bar's open; ``*_lo``/``*_hi``: the bar's mark/last extremes including its open.
    """
    if busy:
        return True
    if st[S_RUINED] != 0.0:
        return False
    if st[S_PENDING_SIDE] != 0.0:
        return True
    side = st[S_SIDE]
    if side == 0.0:
        return False
    if funding_due or st[S_STOP_LIMIT] == st[S_STOP_LIMIT]:
        return True
    if side > 0.0:
        mark_adv, mark_fav, last_adv, last_fav = mark_lo, mark_hi, last_lo, last_hi
    else:
        mark_adv, mark_fav, last_adv, last_fav = mark_hi, mark_lo, last_hi, last_lo
    if side * (mark_adv - st[S_LIQ]) <= 0.0:
        return True
    if p[P_STOP_TRIGGER] == TRIGGER_MARK:
        trig_adv, trig_fav = mark_adv, mark_fav
    else:
        trig_adv, trig_fav = last_adv, last_fav
    if side * (trig_adv - st[S_STOP]) <= 0.0:
        return True
    trail = p[P_TRAILING]
    if trail == trail:
        ref = st[S_TRAIL_REF]
        if side * (trig_fav - ref) > 0.0:
            ref = trig_fav
        if side * (trig_adv - ref * (1.0 - side * trail)) <= 0.0:
            return True
    return side * (last_fav - st[S_TAKE_PROFIT]) >= 0.0


@njit(cache=True, nogil=True)
def quiet_step(st, p, t, mk, inst):
    """``step_bar`` on a bar where ``needs_full_step`` is False (same operations, same order)."""
    st[S_FUNDING_BAR] = 0.0
    if st[S_RUINED] != 0.0:
        update_bar_stats(st, p, t, mk, inst)
        return
    side = st[S_SIDE]
    if side != 0.0:
        if p[P_STOP_TRIGGER] == TRIGGER_MARK:
            best = mk[M_MARK_HIGH][t] if side > 0.0 else mk[M_MARK_LOW][t]
        else:
            best = mk[M_HIGH][t] if side > 0.0 else mk[M_LOW][t]
        if side * (best - st[S_TRAIL_REF]) > 0.0:
            st[S_TRAIL_REF] = best
    update_bar_stats(st, p, t, mk, inst)
    if st[S_EQUITY] <= RUIN_FRACTION * p[P_INITIAL_CAPITAL]:
        st[S_RUINED] = 1.0


@njit(cache=True, nogil=True)
def sweep_block(params, mk, inst, tiers, sig, active, bar_ns, fast, out):
    """Run every row of ``params`` over all bars (tiles, bars outer) into ``out``."""
    n_combos = params.shape[0]
    n_bars = mk[M_OPEN].shape[0]
    state = np.empty((min(TILE, n_combos), N_STATE))
    trades = np.empty((0, N_TRADE_COLS))
    events = np.empty((0, N_EVENT_COLS))
    for lo in range(0, n_combos, TILE):
        hi = min(lo + TILE, n_combos)
        for c in range(lo, hi):
            init_state(state[c - lo], params[c])
        for t in range(n_bars):
            last_bar = t == n_bars - 1
            funding_due = mk[M_FUNDING_COUNT][t] != 0.0
            mark_lo = min(mk[M_MARK_OPEN][t], mk[M_MARK_LOW][t])
            mark_hi = max(mk[M_MARK_OPEN][t], mk[M_MARK_HIGH][t])
            last_lo = min(mk[M_OPEN][t], mk[M_LOW][t])
            last_hi = max(mk[M_OPEN][t], mk[M_HIGH][t])
            for c in range(lo, hi):
                st = state[c - lo]
                p = params[c]
                busy = last_bar or active[t, int(p[P_SIGNAL_SET])]
                if fast and not needs_full_step(st, p, busy, funding_due, mark_lo, mark_hi,
                                                last_lo, last_hi):
                    quiet_step(st, p, t, mk, inst)
                else:
                    step_bar(t, st, p, mk, inst, tiers, sig, trades, events)
        for c in range(lo, hi):
            finalize_stats(state[c - lo], params[c], n_bars, bar_ns, out[c])


@njit(cache=True, nogil=True, parallel=True)
def sweep_stats(params, mk, inst, tiers, sig, active, bar_ns, n_blocks, fast, out):
    """Fill ``out[n_combos, N_STATS]``: ``n_blocks`` contiguous blocks of rows, in parallel."""
    n = params.shape[0]
    for b in prange(n_blocks):
        lo = b * n // n_blocks
        hi = (b + 1) * n // n_blocks
        if hi > lo:
            sweep_block(params[lo:hi], mk, inst, tiers, sig, active, bar_ns, fast, out[lo:hi])
