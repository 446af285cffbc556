"""One market, many combinations, stats only (SPEC §9).

``sweep_block(params, md, inst, tiers, signals, bar_ns, fast, out, bounds, block, n_blocks)``
runs the tiles ``block, block + n_blocks, ...`` of ``bounds = tile_bounds(params)`` and
writes ``out[c]`` (float64[N_STATS], ``stats.STAT_NAMES``) for their rows ``c`` of
``params`` (float64[n_combos, N_PARAMS], ``records.P_*``; ``P_SIGNAL_SET`` picks the column
of the uint8 signal bitmask ``signals[n_bars, n_sets]``). ``md`` is the bar-major market
matrix and ``inst``/``tiers`` the instrument arrays, as for ``simulate``. Nothing per bar is
stored: each combination keeps a state row (``records.S_*``) and ``step_bar`` writes into
zero-length trade/event buffers, so it only counts. ``backtest/sweeps/single.py`` runs one
block per thread (``nogil``); every combination is an independent sequence of bars, so the
results depend neither on blocks, tiles nor threads.

Layout: a tile is at most ``TILE`` rows sharing a signal set, run **bars outer, combinations
inner**. Its state rows live in ``state[TILE, N_STATE]``; the slots the cheap path touches
are mirrored transposed in ``h`` (``HOT_SLOTS``: one contiguous row of ``TILE`` lanes per
slot) so that the per-bar loops over lanes vectorise. The lane layout, the guards and the
lane copies are ``lanes.py``; the cheap passes ``quiet.py``; this file runs the tiles.

Per bar and tile:

1. The last bar, or a bar at/after a future's expiry bar: ``step_bar`` for every lane.
2. Lanes holding a position or a resting order ("active", kept first by ``partition``) go
   through ``quiet_pass``, branch-free loops that evaluate ``signal_matters`` and
   ``needs_full_step`` and, where both are False, apply exactly what ``step_bar`` does on
   such a bar: the trailing reference follows the favourable extreme, the mark-to-market
   stats update (``stats.update_bar_stats``' arithmetic, same operations in the same order)
   and the ruin test. Flagged lanes are left untouched and then get the full ``step_bar`` on
   their state row (hot slots copied in before and back after). On a bar with a signal of
   the tile's set every lane goes through ``quiet_pass``. On a funding bar, ``_prefund``
   first runs ``step.settle_funding`` on a copy of each position's row, so the pass judges
   the bar on the post-funding state; quiet lanes keep the copy, flagged lanes are stepped
   from their untouched row.
3. The flat lanes (no position, no order) go through ``flat_pass``: their equity cannot
   move, so only the running mean/variance of returns advance (by a zero return).

``needs_full_step`` is ``step.py``'s own comparisons evaluated at the bar's extremes (open
included), which lie at least as far as any value ``step_bar`` compares (float subtraction
is monotone), so it can only err towards the full step. Two stats need a division that is
rarely decisive, the minimum liquidation distance and the maximum drawdown: the vector pass
proves with multiplications (margins of 2^-50, ``_min_liq_certain``/``_drawdown_certain``)
that the stored extreme cannot move, or flags the lane for the exact division in scalar
code. ``S_FUNDING_BAR`` (a per-bar output of ``simulate``, not a stat) is not refreshed by
the cheap path: the next full step resets it first.

``fast=False`` gives every lane the full step on every bar (the reference for tests): the
two are bit-identical, and equal to ``run()`` (``tests/test_sweep.py``).
Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.contracts import INVERSE, LINEAR
from backtest.kernels.lanes import (
    FLAG_FULL,
    H_RUINED,
    H_SIDE,
    N_HOT,
    N_Q,
    Q_FILL_CLOSE,
    Q_RUIN_LEVEL,
    Q_TRAILING,
    Q_TRIGGER_MARK,
    TILE,
    is_active,
    partition,
    to_hot,
    to_row,
)
from backtest.kernels.quiet import (
    exact_extremes,
    flat_pass,
    quiet_pass,
)
from backtest.kernels.records import (
    FILL_CLOSE,
    I_CONTRACT_SIZE,
    I_EXPIRY_BAR,
    I_KIND,
    I_SETTLEMENT,
    KIND_SPOT_MARGIN,
    M_FUNDING_COUNT,
    M_HOURS_IN_BAR,
    N_BAR,
    N_STATE,
    P_FILL,
    P_INITIAL_CAPITAL,
    P_SIGNAL_SET,
    P_STOP_TRIGGER,
    P_TRAILING,
    S_SIDE,
    TRIGGER_MARK,
)
from backtest.kernels.stats import finalize_stats
from backtest.kernels.step import RUIN_FRACTION, init_state, load_bar, settle_funding, step_bar
from backtest.kernels.views import unowned


@njit(cache=True, nogil=True)
def _full_step(t, is_last, row, h, q, c, p, bar, sig_prev, sig_now, inst, tiers, trades,
               events):
    """``step_bar`` on the state row of hot lane ``c`` (hot slots copied in and back)."""
    to_row(h, c, row)
    step_bar(t, is_last, row, p, bar, sig_prev, sig_now, inst, tiers, trades, events)
    to_hot(h, q, c, row)


@njit(cache=True, nogil=True)
def _prefund(t, row, h, q, c, p, bar, inst, tiers, scratch):
    """Step 1 of a funding bar, ahead of the quiet pass, on a copy of the state row.

    ``step.settle_funding`` runs on ``scratch`` and its result (wallet, liquidation price)
    goes to the hot lane, so the quiet pass judges the rest of the bar on the state
    ``step_bar`` would see after funding. A quiet lane then keeps the copy
    (``_commit_funding``); a flagged lane gets the full step on its untouched row (which
    settles the funding itself). ``scratch[S_SIDE] == 0`` marks "nothing settled".
    """
    scratch[S_SIDE] = 0.0
    if h[H_SIDE * TILE + c] == 0.0 or h[H_RUINED * TILE + c] != 0.0:
        return
    to_row(h, c, row)
    for i in range(N_STATE):   # element loops, not slices: see simulate.grow_buffer
        scratch[i] = row[i]
    settle_funding(scratch, p, t, bar, inst, tiers)
    to_hot(h, q, c, scratch)


@njit(cache=True, nogil=True)
def _commit_funding(row, scratch):
    if scratch[S_SIDE] != 0.0:
        for i in range(N_STATE):
            row[i] = scratch[i]


@njit(cache=True, nogil=True)
def _run_tile(params, md, inst, tiers, signals, fast, state, h, q, perm, flags, ret, bar_buf,
              funded, trades, events):
    """Rows ``params`` (one signal set, <= TILE) over every bar; final state in ``state``.

    Hot lane ``c`` belongs to row ``perm[c]``; lanes ``0..active-1`` hold a position or an
    order (the quiet pass), the rest are flat (``flat_pass``). ``ret[TILE]`` is scratch for
    the quiet pass's returns and ``funded[TILE, N_STATE]`` for ``_prefund``;
    ``trades``/``events`` have zero rows (counts only). Every array argument is owned by
    ``sweep_block``, which outlives the unowned views made here.
    """
    n = params.shape[0]
    n_bars = md.shape[0]
    k = int(params[0, P_SIGNAL_SET])
    expiry_bar = inst[I_EXPIRY_BAR]
    spot = inst[I_KIND] == KIND_SPOT_MARGIN
    inverse = int(inst[I_SETTLEMENT]) == INVERSE
    cs = 1.0 if int(inst[I_SETTLEMENT]) == LINEAR else inst[I_CONTRACT_SIZE]
    trades = unowned(trades)
    events = unowned(events)
    inst = unowned(inst)
    tiers = unowned(tiers)
    params = unowned(params)
    state = unowned(state)
    h = unowned(h)
    q = unowned(q)
    perm = unowned(perm)
    flags = unowned(flags)
    ret = unowned(ret)
    funded = unowned(funded)
    for c in range(n):
        perm[c] = c
        q[Q_TRIGGER_MARK * TILE + c] = 1.0 if params[c, P_STOP_TRIGGER] == TRIGGER_MARK else 0.0
        q[Q_TRAILING * TILE + c] = params[c, P_TRAILING]
        q[Q_RUIN_LEVEL * TILE + c] = RUIN_FRACTION * params[c, P_INITIAL_CAPITAL]
        q[Q_FILL_CLOSE * TILE + c] = 1.0 if params[c, P_FILL] == FILL_CLOSE else 0.0
        init_state(state[c], params[c])
        to_hot(h, q, c, state[c])
    bar = unowned(bar_buf)
    active = partition(h, q, perm, n)
    for t in range(n_bars):
        load_bar(bar, md, t)
        is_last = t == n_bars - 1
        sig_now = int(signals[t, k])
        sig_prev = int(signals[t - 1, k]) if t > 0 else 0
        if not fast or is_last or (expiry_bar >= 0.0 and t >= expiry_bar):
            for c in range(n):
                _full_step(t, is_last, state[perm[c]], h, q, c, params[perm[c]], bar, sig_prev,
                           sig_now, inst, tiers, trades, events)
            active = partition(h, q, perm, n)
            continue
        signal_bar = sig_now != 0 or sig_prev != 0
        lanes = n if signal_bar else active
        if lanes < n:
            # a view from lane ``lanes`` on: loops that start at 0 vectorise
            flat_pass(h[lanes:], n - lanes)
        if lanes == 0:
            continue
        funding = bar[M_FUNDING_COUNT] != 0.0
        if funding:
            for c in range(lanes):
                _prefund(t, state[perm[c]], h, q, c, params[perm[c]], bar, inst, tiers,
                         funded[c])
        due = spot and bar[M_HOURS_IN_BAR] != 0.0
        if quiet_pass(h, q, flags, ret, lanes, due, sig_prev, sig_now, inverse, cs, bar) == 0:
            if funding:
                for c in range(lanes):
                    _commit_funding(state[perm[c]], funded[c])
            continue
        moved = False          # a lane became active or flat: re-partition
        for c in range(lanes):
            flag = flags[c]
            if flag & FLAG_FULL:
                _full_step(t, is_last, state[perm[c]], h, q, c, params[perm[c]], bar, sig_prev,
                           sig_now, inst, tiers, trades, events)
                moved = moved or (c < active) != is_active(h, c)
                continue
            if funding:
                _commit_funding(state[perm[c]], funded[c])
            if flag:
                exact_extremes(h, c, flag, bar)
        if moved:
            active = partition(h, q, perm, n)
    for c in range(n):
        to_row(h, c, state[perm[c]])


@njit(cache=True, nogil=True)
def tile_bounds(params):
    """int64[n_tiles, 2]: row ranges of at most TILE rows sharing a signal set."""
    n = params.shape[0]
    bounds = np.empty((n // TILE + 2 + n // 2, 2), dtype=np.int64)
    count = 0
    lo = 0
    while lo < n:
        hi = lo + 1
        k = params[lo, P_SIGNAL_SET]
        while hi < n and hi - lo < TILE and params[hi, P_SIGNAL_SET] == k:
            hi += 1
        bounds[count, 0] = lo
        bounds[count, 1] = hi
        count += 1
        lo = hi
    return bounds[:count].copy()


@njit(cache=True, nogil=True)
def sweep_block(params, md, inst, tiers, signals, bar_ns, fast, out, bounds, block, n_blocks):
    """Tiles ``block, block + n_blocks, ...`` of ``bounds`` over all bars, into ``out``."""
    # Block-local copies: shared arrays' reference counts would bounce between cores.
    inst = inst.copy()
    tiers = tiers.copy()
    n_bars = md.shape[0]
    state = np.empty((TILE, N_STATE))
    h = np.empty(N_HOT * TILE)
    q = np.empty(N_Q * TILE)
    flags = np.zeros(TILE, dtype=np.int64)
    ret = np.empty(TILE)
    perm = np.empty(TILE, dtype=np.int64)
    funded = np.empty((TILE, N_STATE))
    bar = np.empty(N_BAR)
    # zero-length and 1-D like simulate's buffers, so that the step helpers compiled for
    # run() (same argument types) serve the sweep too instead of being compiled again
    trades = np.empty(0)
    events = np.empty(0)
    rows = np.empty((TILE, params.shape[1]))
    stats = np.empty(out.shape[1])
    for i in range(block, bounds.shape[0], n_blocks):
        lo = bounds[i, 0]
        hi = bounds[i, 1]
        tile = rows[:hi - lo]
        for r in range(hi - lo):
            for j in range(params.shape[1]):
                tile[r, j] = params[lo + r, j]
        _run_tile(tile, md, inst, tiers, signals, fast, state, h, q, perm, flags, ret, bar, funded,
                  trades, events)
        for c in range(hi - lo):
            finalize_stats(state[c], tile[c], n_bars, bar_ns, stats)
            for j in range(stats.shape[0]):
                out[lo + c, j] = stats[j]

