"""One market, many combinations, stats only (SPEC §9).

``sweep_block(params, md, inst, tiers, signals, bar_ns, fast, out, bounds, block, n_blocks)``
runs the tiles ``block, block + n_blocks, ...`` of ``bounds = tile_bounds(params)`` and
writes ``out[c]`` (float64[N_STATS], ``stats.STAT_NAMES``) for their rows ``c`` of
``params`` (float64[n_combos, N_PARAMS], ``records.P_*``; ``P_SIGNAL_SET`` picks the column
of the uint8 signal bitmask ``signals[n_bars, n_sets]``). ``md`` is the bar-major market
matrix and ``inst``/``tiers`` the instrument arrays, as for ``simulate``. Nothing per bar is
stored: each combination keeps a state row (``records.S_*``) and ``step_bar`` writes into
zero-length trade/event buffers, so it only counts. ``backtest/sweeps.py`` runs one
block per thread (``nogil``); every combination is an independent sequence of bars, so the
results depend neither on blocks, tiles nor threads.

Layout: a tile is at most ``TILE`` rows sharing a signal set, run **bars outer, combinations
inner**. Its state rows live in ``state[TILE, N_STATE]``; the slots the cheap path touches
are mirrored transposed in ``h`` (``HOT_SLOTS``: one contiguous row of ``TILE`` lanes per
slot) so that the per-bar loops over lanes vectorise.

Per bar and tile:

1. The last bar, or a bar at/after a future's expiry bar: ``step_bar`` for every lane.
2. Lanes holding a position or a resting order ("active", kept first by ``_partition``) go
   through ``quiet_pass``, a branch-free loop that evaluates ``signal_matters`` and
   ``needs_full_step`` and, where both are False, applies exactly what ``step_bar`` does on
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
from numba import carray, config, njit, types
from numba.extending import intrinsic

from backtest.kernels.contracts import INVERSE, LINEAR
from backtest.kernels.records import (
    FILL_CLOSE,
    I_CONTRACT_SIZE,
    I_EXPIRY_BAR,
    I_KIND,
    I_SETTLEMENT,
    KIND_SPOT_MARGIN,
    M_FUNDING_COUNT,
    M_HIGH,
    M_HOURS_IN_BAR,
    M_LOW,
    M_MARK_CLOSE,
    M_MARK_HIGH,
    M_MARK_LOW,
    M_MARK_OPEN,
    M_OPEN,
    N_BAR,
    N_STATE,
    P_FILL,
    P_INITIAL_CAPITAL,
    P_SIGNAL_SET,
    P_STOP_TRIGGER,
    P_TRAILING,
    S_ENTRY,
    S_EQUITY,
    S_EXPOSED_BARS,
    S_LIQ,
    S_MAX_DRAWDOWN,
    S_MIN_LIQ_DISTANCE,
    S_N_RETURNS,
    S_PEAK,
    S_PENDING_SIDE,
    S_PREV_EQUITY,
    S_RET_DOWN_SQ,
    S_RET_M2,
    S_RET_MEAN,
    S_RUINED,
    S_SIDE,
    S_SIZE,
    S_STOP,
    S_STOP_LIMIT,
    S_TAKE_PROFIT,
    S_TRAIL_REF,
    S_WALLET,
    SIG_ENTRY,
    SIG_EXIT,
    SIG_SHORT_ENTRY,
    SIG_SHORT_EXIT,
    TRIGGER_MARK,
)
from backtest.kernels.stats import finalize_stats, log_return
from backtest.kernels.step import RUIN_FRACTION, init_state, load_bar, settle_funding, step_bar

# Combinations per tile. The hot rows are indexed ``slot * TILE + c`` with a compile-time
# TILE, so LLVM sees that different slots never overlap and vectorises the quiet pass.
TILE = 256

# Hot slots: what the cheap path reads (up to H_GUARD_LAST_HI) and what it also writes (from
# FIRST_WRITTEN on; copied back to the state row before a full step). H_INV_ENTRY caches
# 1 / entry for inverse contracts (the same division upnl makes); the four guards are the
# levels whose touch by the bar's extremes needs the full step (``_guards``).
(H_SIDE, H_PENDING, H_LIQ, H_WALLET, H_SIZE, H_ENTRY, H_INV_ENTRY, H_GUARD_MARK_LO,
 H_GUARD_MARK_HI, H_GUARD_LAST_LO, H_GUARD_LAST_HI, H_RUINED, H_TRAIL, H_EQUITY, H_PREV, H_N,
 H_MEAN, H_M2, H_DOWN, H_PEAK, H_MAXDD, H_EXPOSED, H_MINLIQ) = range(23)
N_HOT = 23
FIRST_WRITTEN = H_RUINED
HOT_SLOTS = np.array([S_SIDE, S_PENDING_SIDE, S_LIQ, S_WALLET, S_SIZE, S_ENTRY, -1, -1, -1, -1,
                      -1, S_RUINED, S_TRAIL_REF, S_EQUITY, S_PREV_EQUITY, S_N_RETURNS,
                      S_RET_MEAN, S_RET_M2, S_RET_DOWN_SQ, S_PEAK, S_MAX_DRAWDOWN,
                      S_EXPOSED_BARS, S_MIN_LIQ_DISTANCE], dtype=np.int64)
# Per-combination constants of the quiet pass.
Q_TRIGGER_MARK, Q_TRAILING, Q_RUIN_LEVEL, Q_FILL_CLOSE = 0, 1, 2, 3
N_Q = 4

FLAG_FULL, FLAG_MIN_LIQ, FLAG_DRAWDOWN = 1, 2, 4
_UP_50 = 1.0 + 2.0 ** -50
_DOWN_50 = 1.0 - 2.0 ** -50
_UP_47 = 1.0 + 2.0 ** -47


@njit(cache=True, nogil=True, inline="always")
def needs_full_step(side, ruined, guard_mark_lo, guard_mark_hi, guard_last_lo, guard_last_hi,
                    trail_ref, trailing, trigger_mark, position_due, mark_lo, mark_hi, last_lo,
                    last_hi):
    """True unless ``step_bar`` can have no event on this bar for this combination.

    The guards (``_guards``) hold the liquidation, stop and take-profit levels (or force
    the full step for a resting order); the trailing stop moves, so it is tested here, at
    the reference this bar moves it to (the tighter stop). ``position_due``: spot-margin
    interest is charged at this bar's open (funding is settled ahead by ``_prefund``);
    ``*_lo``/``*_hi``: the bar's mark/last extremes with its open included. Signals are
    judged by ``signal_matters``; the last bar and the bars from a future's expiry on
    never come here.
    """
    long = side > 0.0
    trig_adv = (mark_lo if long else mark_hi) if trigger_mark else (last_lo if long
                                                                    else last_hi)
    trig_fav = (mark_hi if long else mark_lo) if trigger_mark else (last_hi if long
                                                                    else last_lo)
    ref = trig_fav if side * (trig_fav - trail_ref) > 0.0 else trail_ref
    alive = (not ruined) & (side != 0.0)
    trail_hit = alive & (side * (trig_adv - ref * (1.0 - side * trailing)) <= 0.0)
    return ((mark_lo <= guard_mark_lo) | (mark_hi >= guard_mark_hi)
            | (last_lo <= guard_last_lo) | (last_hi >= guard_last_hi)
            | trail_hit | (alive & position_due))


@njit(cache=True, nogil=True)
def _guards(st, trigger_mark):
    """Levels (mark low, mark high, last low, last high) at or beyond which the bar's
    extreme needs the full step, from ``step.py``'s own tests: liquidation on the mark,
    the stop on its trigger series, the take-profit on the last price (long: lows at or
    below ``liq``/``stop``, highs at or above ``tp``; short: mirrored). ``x - L <= 0`` and
    ``x <= L`` agree exactly for floats, so the guards decide as ``step_bar`` would. A
    resting entry or stop-limit order always needs the full step; a ruined or flat account
    never does (signals aside)."""
    inf = np.inf
    mark_lo, mark_hi, last_lo, last_hi = -inf, inf, -inf, inf
    side = st[S_SIDE]
    if st[S_RUINED] != 0.0:
        return mark_lo, mark_hi, last_lo, last_hi
    if st[S_PENDING_SIDE] != 0.0 or st[S_STOP_LIMIT] == st[S_STOP_LIMIT]:
        return inf, mark_hi, last_lo, last_hi
    if side == 0.0:
        return mark_lo, mark_hi, last_lo, last_hi
    liq, stop, tp = st[S_LIQ], st[S_STOP], st[S_TAKE_PROFIT]
    if side > 0.0:
        if liq == liq:
            mark_lo = liq
        if stop == stop:
            if trigger_mark:
                mark_lo = max(mark_lo, stop)
            else:
                last_lo = stop
        if tp == tp:
            last_hi = tp
    else:
        if liq == liq:
            mark_hi = liq
        if stop == stop:
            if trigger_mark:
                mark_hi = min(mark_hi, stop)
            else:
                last_hi = stop
        if tp == tp:
            last_lo = tp
    return mark_lo, mark_hi, last_lo, last_hi


@njit(cache=True, nogil=True, inline="always")
def signal_matters(code, side, ruined):
    """The signals executing in this bar (bitmask ``code``) change something for this
    combination (``step.process_signals``): an entry (opens, reverses, places a limit, or
    is counted as ignored/conflicting), an exit of the side held, or any signal after ruin
    (counted). Exits of a side not held are no-ops."""
    entry = (code & (SIG_ENTRY | SIG_SHORT_ENTRY)) != 0
    exit_held = (((code & SIG_EXIT) != 0) & (side > 0.0)) | (((code & SIG_SHORT_EXIT) != 0)
                                                             & (side < 0.0))
    return (code != 0) & (ruined | entry | exit_held)


@njit(cache=True, nogil=True, inline="always")
def _min_liq_certain(num, x, current):
    """``num / x >= current`` is certain (so the minimum cannot move), for ``x > 0``."""
    scale = _UP_50 if current >= 0.0 else _DOWN_50
    return num >= current * x * scale


@njit(cache=True, nogil=True, inline="always")
def _drawdown_certain(equity, prev, peak, max_dd):
    """``1 - equity / peak <= max_dd`` is certain, for ``peak > 0`` (peak already updated).

    At a new peak the drawdown is 0; with equity unchanged since the last bar (flat, or a
    ruined account) it is the last bar's, already folded in; otherwise a margin of 2^-47
    covers the three roundings of ``peak * (1 - max_dd) * _UP_47``.
    """
    return ((equity >= peak) | (equity == prev)
            | ((max_dd < 1.0) & (equity >= peak * (1.0 - max_dd) * _UP_47)))


@njit(cache=True, nogil=True, error_model="numpy")
def quiet_pass(h, q, flags, n, position_due, code_open, code_close, inverse, cs, bar):
    """The cheap path over hot lanes ``0..n-1`` (see the module doc); returns the flagged
    count. ``code_open``/``code_close``: the signal bitmask executing at this bar's open
    (``fill="next_open"``: bar t-1's) and close (``fill="close"``: bar t's)."""
    mark_lo = min(bar[M_MARK_OPEN], bar[M_MARK_LOW])
    mark_hi = max(bar[M_MARK_OPEN], bar[M_MARK_HIGH])
    last_lo = min(bar[M_OPEN], bar[M_LOW])
    last_hi = max(bar[M_OPEN], bar[M_HIGH])
    mark_low = bar[M_MARK_LOW]
    mark_high = bar[M_MARK_HIGH]
    mark_close = bar[M_MARK_CLOSE]
    inv_close = 1.0 / mark_close
    high = bar[M_HIGH]
    low = bar[M_LOW]
    count = 0
    for c in range(n):
        side = h[H_SIDE * TILE + c]
        ruined = h[H_RUINED * TILE + c] != 0.0
        trigger_mark = q[Q_TRIGGER_MARK * TILE + c] != 0.0
        ref = h[H_TRAIL * TILE + c]
        liq = h[H_LIQ * TILE + c]
        code = code_close if q[Q_FILL_CLOSE * TILE + c] != 0.0 else code_open
        full = (signal_matters(code, side, ruined)
                | needs_full_step(side, ruined, h[H_GUARD_MARK_LO * TILE + c],
                                  h[H_GUARD_MARK_HI * TILE + c], h[H_GUARD_LAST_LO * TILE + c],
                                  h[H_GUARD_LAST_HI * TILE + c], ref, q[Q_TRAILING * TILE + c],
                                  trigger_mark, position_due, mark_lo, mark_hi, last_lo,
                                  last_hi))
        quiet = not full
        long = side > 0.0
        held = quiet & (side != 0.0)
        # step 5: the trailing reference (step.move_trailing_reference)
        best = (mark_high if long else mark_low) if trigger_mark else (high if long else low)
        move = held & (not ruined) & (side * (best - ref) > 0.0)
        h[H_TRAIL * TILE + c] = best if move else ref
        # mark to market (stats.update_bar_stats, operation for operation)
        k = side * h[H_SIZE * TILE + c] * cs
        diff = ((h[H_INV_ENTRY * TILE + c] - inv_close) if inverse
                else (mark_close - h[H_ENTRY * TILE + c]))
        wallet = h[H_WALLET * TILE + c]
        equity = wallet + k * diff if side != 0.0 else wallet
        exposed = h[H_EXPOSED * TILE + c]
        h[H_EXPOSED * TILE + c] = exposed + 1.0 if held else exposed
        x = mark_low if long else mark_high
        num = (x - liq) if long else (liq - x)
        min_liq = h[H_MINLIQ * TILE + c]
        liq_flag = held & (not _min_liq_certain(num, x, min_liq))
        old_equity = h[H_EQUITY * TILE + c]
        h[H_EQUITY * TILE + c] = equity if quiet else old_equity
        prev = h[H_PREV * TILE + c]
        r = log_return(equity, prev, q[Q_RUIN_LEVEL * TILE + c])
        n0 = h[H_N * TILE + c]
        n1 = n0 + 1.0
        mean = h[H_MEAN * TILE + c]
        delta = r - mean
        mean1 = mean + delta / n1
        m2 = h[H_M2 * TILE + c]
        down = h[H_DOWN * TILE + c]
        peak = h[H_PEAK * TILE + c]
        peak1 = equity if equity > peak else peak
        max_dd = h[H_MAXDD * TILE + c]
        dd_flag = quiet & (not _drawdown_certain(equity, prev, peak1, max_dd))
        h[H_N * TILE + c] = n1 if quiet else n0
        h[H_MEAN * TILE + c] = mean1 if quiet else mean
        h[H_M2 * TILE + c] = m2 + delta * (r - mean1) if quiet else m2
        h[H_DOWN * TILE + c] = down + r * r if quiet & (r < 0.0) else down
        h[H_PEAK * TILE + c] = peak1 if quiet else peak
        h[H_PREV * TILE + c] = equity if quiet else prev
        ruin = quiet & (not ruined) & (equity <= q[Q_RUIN_LEVEL * TILE + c])
        h[H_RUINED * TILE + c] = 1.0 if ruin else h[H_RUINED * TILE + c]
        flag = ((FLAG_FULL if full else 0) | (FLAG_MIN_LIQ if liq_flag else 0)
                | (FLAG_DRAWDOWN if dd_flag else 0))
        flags[c] = flag
        count += flag != 0
    return count


@njit(cache=True, nogil=True, error_model="numpy")
def flat_pass(h, n):
    """The cheap path when every lane is flat without a resting order (or ruined).

    ``stats.update_bar_stats`` with the equity unchanged since the last bar (the wallet only
    moves in full steps; every bar ends with previous equity := equity): the return is
    exactly 0, so peak, drawdown, downside sum, equity and the ruin test cannot change.
    """
    for c in range(n):
        n1 = h[H_N * TILE + c] + 1.0
        mean = h[H_MEAN * TILE + c]
        delta = 0.0 - mean
        mean1 = mean + delta / n1
        h[H_N * TILE + c] = n1
        h[H_MEAN * TILE + c] = mean1
        h[H_M2 * TILE + c] += delta * (0.0 - mean1)


@njit(cache=True, nogil=True, inline="always")
def _is_active(h, c):
    """Lane ``c`` holds a position or (not ruined) a resting entry order."""
    return h[H_SIDE * TILE + c] != 0.0 or (h[H_PENDING * TILE + c] != 0.0
                                           and h[H_RUINED * TILE + c] == 0.0)


@njit(cache=True, nogil=True)
def _partition(h, q, perm, n):
    """Reorder lanes so the active ones come first; returns their count. Lanes are
    independent, so their order changes nothing but which pass they take."""
    i = 0
    j = n - 1
    while True:
        while i <= j and _is_active(h, i):
            i += 1
        while i <= j and not _is_active(h, j):
            j -= 1
        if i >= j:
            return i
        for r in range(N_HOT):
            a = h[r * TILE + i]
            h[r * TILE + i] = h[r * TILE + j]
            h[r * TILE + j] = a
        for r in range(N_Q):
            a = q[r * TILE + i]
            q[r * TILE + i] = q[r * TILE + j]
            q[r * TILE + j] = a
        k = perm[i]
        perm[i] = perm[j]
        perm[j] = k


@njit(cache=True, nogil=True)
def _exact_extremes(h, c, flag, bar):
    """The divisions the quiet pass could not rule out (stats.update_bar_stats' own)."""
    if flag & FLAG_MIN_LIQ:
        liq = h[H_LIQ * TILE + c]
        if h[H_SIDE * TILE + c] > 0.0:
            x = bar[M_MARK_LOW]
            dist = (x - liq) / x
        else:
            x = bar[M_MARK_HIGH]
            dist = (liq - x) / x
        if dist < h[H_MINLIQ * TILE + c]:
            h[H_MINLIQ * TILE + c] = dist
    if flag & FLAG_DRAWDOWN:
        dd = 1.0 - h[H_EQUITY * TILE + c] / h[H_PEAK * TILE + c]
        if dd > h[H_MAXDD * TILE + c]:
            h[H_MAXDD * TILE + c] = dd


@njit(cache=True, nogil=True)
def _to_hot(h, q, c, st):
    """Copy a state row into hot lane ``c`` (every hot slot, ``HOT_SLOTS`` order, unrolled:
    an indexed loop over the slot table costs twice as much) and set its guards."""
    h[H_SIDE * TILE + c] = st[S_SIDE]
    h[H_PENDING * TILE + c] = st[S_PENDING_SIDE]
    h[H_LIQ * TILE + c] = st[S_LIQ]
    h[H_WALLET * TILE + c] = st[S_WALLET]
    h[H_SIZE * TILE + c] = st[S_SIZE]
    h[H_ENTRY * TILE + c] = st[S_ENTRY]
    h[H_INV_ENTRY * TILE + c] = 1.0 / st[S_ENTRY] if st[S_SIDE] != 0.0 else 0.0
    g_mark_lo, g_mark_hi, g_last_lo, g_last_hi = _guards(st, q[Q_TRIGGER_MARK * TILE + c] != 0.0)
    h[H_GUARD_MARK_LO * TILE + c] = g_mark_lo
    h[H_GUARD_MARK_HI * TILE + c] = g_mark_hi
    h[H_GUARD_LAST_LO * TILE + c] = g_last_lo
    h[H_GUARD_LAST_HI * TILE + c] = g_last_hi
    h[H_RUINED * TILE + c] = st[S_RUINED]
    h[H_TRAIL * TILE + c] = st[S_TRAIL_REF]
    h[H_EQUITY * TILE + c] = st[S_EQUITY]
    h[H_PREV * TILE + c] = st[S_PREV_EQUITY]
    h[H_N * TILE + c] = st[S_N_RETURNS]
    h[H_MEAN * TILE + c] = st[S_RET_MEAN]
    h[H_M2 * TILE + c] = st[S_RET_M2]
    h[H_DOWN * TILE + c] = st[S_RET_DOWN_SQ]
    h[H_PEAK * TILE + c] = st[S_PEAK]
    h[H_MAXDD * TILE + c] = st[S_MAX_DRAWDOWN]
    h[H_EXPOSED * TILE + c] = st[S_EXPOSED_BARS]
    h[H_MINLIQ * TILE + c] = st[S_MIN_LIQ_DISTANCE]


@njit(cache=True, nogil=True)
def _to_row(h, c, st):
    """Copy the slots the cheap path writes (``FIRST_WRITTEN`` on) back into a state row."""
    st[S_RUINED] = h[H_RUINED * TILE + c]
    st[S_TRAIL_REF] = h[H_TRAIL * TILE + c]
    st[S_EQUITY] = h[H_EQUITY * TILE + c]
    st[S_PREV_EQUITY] = h[H_PREV * TILE + c]
    st[S_N_RETURNS] = h[H_N * TILE + c]
    st[S_RET_MEAN] = h[H_MEAN * TILE + c]
    st[S_RET_M2] = h[H_M2 * TILE + c]
    st[S_RET_DOWN_SQ] = h[H_DOWN * TILE + c]
    st[S_PEAK] = h[H_PEAK * TILE + c]
    st[S_MAX_DRAWDOWN] = h[H_MAXDD * TILE + c]
    st[S_EXPOSED_BARS] = h[H_EXPOSED * TILE + c]
    st[S_MIN_LIQ_DISTANCE] = h[H_MINLIQ * TILE + c]


@intrinsic
def _as_pointer(typingctx, address, like):
    """An integer address as a pointer to ``like``'s dtype (for ``carray`` views)."""
    sig = types.CPointer(like.dtype)(types.intp, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _unowned(a):
    """A view of contiguous ``a`` without a reference count (NULL meminfo).

    Numba increments an array's reference count (an atomic operation, and a contended one
    when threads share the array) whenever it is passed to a function; ``step_bar`` passes
    its arrays to dozens of helpers. On a view without a meminfo those calls return at once.
    ``a`` must outlive the view (all of them live in ``sweep_block``'s frame).
    """
    return carray(_as_pointer(a.ctypes.data, a), a.shape)


if config.DISABLE_JIT:  # plain Python (coverage, tracebacks): no pointers, no counts
    def _unowned(a):  # noqa: F811
        return a


@njit(cache=True, nogil=True)
def _full_step(t, is_last, row, h, q, c, p, bar, sig_prev, sig_now, inst, tiers, trades,
               events):
    """``step_bar`` on the state row of hot lane ``c`` (hot slots copied in and back)."""
    _to_row(h, c, row)
    step_bar(t, is_last, row, p, bar, sig_prev, sig_now, inst, tiers, trades, events)
    _to_hot(h, q, c, row)


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
    _to_row(h, c, row)
    for i in range(N_STATE):   # element loops, not slices: see simulate.grow_buffer
        scratch[i] = row[i]
    settle_funding(scratch, p, t, bar, inst, tiers)
    _to_hot(h, q, c, scratch)


@njit(cache=True, nogil=True)
def _commit_funding(row, scratch):
    if scratch[S_SIDE] != 0.0:
        for i in range(N_STATE):
            row[i] = scratch[i]


@njit(cache=True, nogil=True)
def _run_tile(params, md, inst, tiers, signals, fast, state, h, q, perm, flags, bar_buf,
              funded, trades, events):
    """Rows ``params`` (one signal set, <= TILE) over every bar; final state in ``state``.

    Hot lane ``c`` belongs to row ``perm[c]``; lanes ``0..active-1`` hold a position or an
    order (the quiet pass), the rest are flat (``flat_pass``). ``funded[TILE, N_STATE]`` is
    scratch for ``_prefund``; ``trades``/``events`` have zero rows (counts only). Every array
    argument is owned by ``sweep_block``, which outlives the unowned views made here.
    """
    n = params.shape[0]
    n_bars = md.shape[0]
    k = int(params[0, P_SIGNAL_SET])
    expiry_bar = inst[I_EXPIRY_BAR]
    spot = inst[I_KIND] == KIND_SPOT_MARGIN
    inverse = int(inst[I_SETTLEMENT]) == INVERSE
    cs = 1.0 if int(inst[I_SETTLEMENT]) == LINEAR else inst[I_CONTRACT_SIZE]
    trades = _unowned(trades)
    events = _unowned(events)
    inst = _unowned(inst)
    tiers = _unowned(tiers)
    params = _unowned(params)
    state = _unowned(state)
    h = _unowned(h)
    q = _unowned(q)
    perm = _unowned(perm)
    flags = _unowned(flags)
    funded = _unowned(funded)
    for c in range(n):
        perm[c] = c
        q[Q_TRIGGER_MARK * TILE + c] = 1.0 if params[c, P_STOP_TRIGGER] == TRIGGER_MARK else 0.0
        q[Q_TRAILING * TILE + c] = params[c, P_TRAILING]
        q[Q_RUIN_LEVEL * TILE + c] = RUIN_FRACTION * params[c, P_INITIAL_CAPITAL]
        q[Q_FILL_CLOSE * TILE + c] = 1.0 if params[c, P_FILL] == FILL_CLOSE else 0.0
        init_state(state[c], params[c])
        _to_hot(h, q, c, state[c])
    bar = _unowned(bar_buf)
    active = _partition(h, q, perm, n)
    for t in range(n_bars):
        load_bar(bar, md, t)
        is_last = t == n_bars - 1
        sig_now = int(signals[t, k])
        sig_prev = int(signals[t - 1, k]) if t > 0 else 0
        if not fast or is_last or (expiry_bar >= 0.0 and t >= expiry_bar):
            for c in range(n):
                _full_step(t, is_last, state[perm[c]], h, q, c, params[perm[c]], bar, sig_prev,
                           sig_now, inst, tiers, trades, events)
            active = _partition(h, q, perm, n)
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
        if quiet_pass(h, q, flags, lanes, due, sig_prev, sig_now, inverse, cs, bar) == 0:
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
                moved = moved or (c < active) != _is_active(h, c)
                continue
            if funding:
                _commit_funding(state[perm[c]], funded[c])
            if flag:
                _exact_extremes(h, c, flag, bar)
        if moved:
            active = _partition(h, q, perm, n)
    for c in range(n):
        _to_row(h, c, state[perm[c]])


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
        _run_tile(tile, md, inst, tiers, signals, fast, state, h, q, perm, flags, bar, funded,
                  trades, events)
        for c in range(hi - lo):
            finalize_stats(state[c], tile[c], n_bars, bar_ns, stats)
            for j in range(stats.shape[0]):
                out[lo + c, j] = stats[j]
