"""Many windows of one market, or many resampled paths, as columns of one bars-outer kernel.

The leverage-risk layer (``backtest/risk``) asks the same question of thousands of
histories: rolling windows ``[start, end]`` of the real bars (every start date), or block-
bootstrap paths. A *column* is one (window or path) x one parameter row. Every column is
advanced bar by bar by ``step.step_bar``, the one implementation of a bar, with the bar
index counted from the column's own first bar, so that a column is the same computation as
``run()`` on ``market.take(start, end)`` (resp. on the path's ``Market``).

Contract (shapes, units, timing)
--------------------------------
``params``  float64[n_combos, N_PARAMS] parameter rows (``records.P_*``).
``hold``    uint8[n_combos]: 0 = the column follows the signal matrix; otherwise the signal
            bitmask (``SIG_ENTRY`` or ``SIG_SHORT_ENTRY``) placed on the column's first bar
            and nothing else ("hold one position opened at the window's start": with
            ``fill="next_open"`` it fills at the second bar's open, with ``"close"`` at the
            first bar's close), i.e. ``run(..., entries=buy_and_hold(index))``.
``md``      float64[n_bars, N_MARKET] bar-major market matrix (``simulation.arrays``).
``inst``, ``tiers``: the instrument vector and flat tier table (no dated future: a window
            would need its own expiry bar).
``signals`` uint8[n_bars, n_sets] bitmask (rolling; column ``P_SIGNAL_SET``), or
            uint8[horizon, n_paths] (bootstrap; column = the path).
``bar_ns``  float, bar spacing in ns (annualisation in ``finalize_stats``).
Rolling: ``starts``/``ends`` int64[n_windows], first and last bar (inclusive) of each
            window, ``starts`` strictly increasing, ``ends`` non-decreasing, ``ends > starts``.
Bootstrap (``kernels/paths.py``, the same columns over resampled paths): ``src``
            int64[n_paths, horizon] the historical bar behind each path bar and
            ``scale`` float64[n_paths, horizon] the factor applied to its eight prices
            (last and mark OHLC); funding and borrow columns are copied, the clock-hour
            columns come from ``hours`` float64[horizon, 2] (the path's own time index).
``out``     float64[n_groups * n_combos, N_OUT], row ``group * n_combos + combo``:
            ``stats.STAT_NAMES`` (every stat of ``run()``), then ``O_LIQ_BAR`` the bar of the
            first liquidation counted from the column's first bar (-1: none),
            ``O_STOP_BAR`` the bar of the first stop-loss/trailing exit (-1: none) and
            ``O_N_BARS`` the column's length in bars.
``bounds`` int64[n_chunks, 2] group ranges; block ``b`` of ``n_blocks`` runs chunks
            ``b, b + n_blocks, ...`` (one block per thread, ``nogil``; chunks are disjoint
            columns, so results depend neither on chunks nor on threads).

Memory: the state rows of one chunk (``cap * n_combos`` rows, ``cap`` the most windows of
the chunk alive at one bar) plus the output; never bars x columns.

Speed: a held position on a bar where nothing can happen (``_quiet``: no level reached by
the bar's extremes, no order, no signal, not the last bar) takes ``_held_quietly``: what
``step_bar`` does on such a bar (funding settled by ``step.settle_funding``, the trailing
reference moved, ``stats.update_bar_stats``, the ruin test), without the event logic. The
block works on borrowed (reference-count free) views of its arrays (``views.unowned``), and the
per-column helpers are inlined into the loop (``inline="always"``): a call passing a dozen
arrays cost ~4x the quiet bar's arithmetic (90 -> 14 ns per column-bar, one thread).

Early exit: a column that is flat with nothing left to happen (ruined, or holding mode after
its position closed) stops calling ``step_bar``: its remaining bars can only fold a zero
return into the running statistics, which ``stats.update_bar_stats`` does for all of them at
once at that moment (same operations, same order, so every stat stays exact). A flat column
on a bar without an entry to execute takes the same one-line path.

Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.exits import trailing_reference
from backtest.kernels.records import (
    FILL_CLOSE,
    I_KIND,
    KIND_SPOT_MARGIN,
    M_FUNDING_COUNT,
    M_HIGH,
    M_HOURS_IN_BAR,
    M_LOW,
    M_MARK_HIGH,
    M_MARK_LOW,
    M_MARK_OPEN,
    M_OPEN,
    M_PREV_CLOSE,
    N_BAR,
    N_STATE,
    P_FILL,
    P_INITIAL_CAPITAL,
    P_SIGNAL_SET,
    P_STOP_TRIGGER,
    P_TRAILING,
    S_EQUITY,
    S_FUNDING_BAR,
    S_LIQ,
    S_N_LIQUIDATIONS,
    S_N_STOPS,
    S_PENDING_SIDE,
    S_RUINED,
    S_SIDE,
    S_STOP,
    S_STOP_LIMIT,
    S_TAKE_PROFIT,
    S_TRAIL_REF,
    SIG_ENTRY,
    SIG_SHORT_ENTRY,
    TRIGGER_MARK,
)
from backtest.kernels.stats import N_STATS, finalize_stats, update_bar_stats
from backtest.kernels.step import RUIN_FRACTION, init_state, load_bar, settle_funding, step_bar
from backtest.kernels.views import unowned

O_LIQ_BAR = N_STATS
O_STOP_BAR = N_STATS + 1
O_N_BARS = N_STATS + 2
N_OUT = N_STATS + 3
# Per-column bookkeeping beside the state row.
A_DONE, A_LIQ_BAR, A_STOP_BAR = 0, 1, 2
N_AUX = 3
N_PRICES = 8            # M_OPEN..M_MARK_CLOSE: the columns a bootstrap block rescales
_ENTRIES = SIG_ENTRY | SIG_SHORT_ENTRY


@njit(cache=True, nogil=True)
def _start_column(st, aux, p):
    init_state(st, p)
    aux[A_DONE] = 0.0
    aux[A_LIQ_BAR] = -1.0
    aux[A_STOP_BAR] = -1.0


@njit(cache=True, nogil=True)
def _finish(st, aux, p, rel, n_w, bar, inst, bar_ns, stats, out, row):
    """Fold the bars ``rel..n_w-1`` of a column that can no longer change (flat) into its
    statistics, write its output row and mark it done."""
    for _ in range(rel, n_w):
        update_bar_stats(st, p, bar, inst)
    finalize_stats(st, p, n_w, bar_ns, stats)
    for j in range(N_STATS):
        out[row, j] = stats[j]
    out[row, O_LIQ_BAR] = aux[A_LIQ_BAR]
    out[row, O_STOP_BAR] = aux[A_STOP_BAR]
    out[row, O_N_BARS] = n_w
    aux[A_DONE] = 1.0


@njit(cache=True, nogil=True, inline="always")
def _quiet(st, p, bar):
    """True when ``step_bar`` can have no event on this bar for a held position without
    a resting order: neither the liquidation level (mark), nor the effective stop (its
    trigger series; the trailing part taken at the reference this bar moves it to, the
    tighter level), nor the take-profit (last) is reached by the bar's extremes, the open
    included. These are ``step.py``'s own comparisons at prices at least as far, so the
    test can only err towards the full step."""
    side = st[S_SIDE]
    long = side > 0.0
    mark_open = bar[M_MARK_OPEN]
    last_open = bar[M_OPEN]
    mark_adv = min(mark_open, bar[M_MARK_LOW]) if long else max(mark_open, bar[M_MARK_HIGH])
    if side * (mark_adv - st[S_LIQ]) <= 0.0:
        return False
    last_adv = min(last_open, bar[M_LOW]) if long else max(last_open, bar[M_HIGH])
    last_fav = max(last_open, bar[M_HIGH]) if long else min(last_open, bar[M_LOW])
    trigger_mark = p[P_STOP_TRIGGER] == TRIGGER_MARK
    level = st[S_STOP]
    trail = p[P_TRAILING]
    if trail == trail:
        ref = trailing_reference(st, p, bar)
        trail_level = ref * (1.0 - side * trail)
        if level != level or side * (trail_level - level) > 0.0:
            level = trail_level
    trig_adv = mark_adv if trigger_mark else last_adv
    if level == level and side * (trig_adv - level) <= 0.0:
        return False
    tp = st[S_TAKE_PROFIT]
    return not (tp == tp and side * (last_fav - tp) >= 0.0)


@njit(cache=True, nogil=True, inline="always")
def _held_quietly(rel, st, p, bar, inst, tiers, backup):
    """What ``step_bar`` does on a bar where a held position meets no event, if this is
    such a bar (returns True): funding settled (``step.settle_funding``, step 1), the
    trailing reference moved, the mark-to-market statistics and the ruin test. On a funding
    bar the funding is settled first on the row, a copy kept in ``backup``; if the bar is
    then not quiet the row is restored for the full step."""
    funded = bar[M_FUNDING_COUNT] != 0.0
    if funded:
        for i in range(N_STATE):
            backup[i] = st[i]
        settle_funding(st, p, rel, bar, inst, tiers)
    if not _quiet(st, p, bar):
        if funded:
            for i in range(N_STATE):
                st[i] = backup[i]
        return False
    if not funded:
        st[S_FUNDING_BAR] = 0.0
    st[S_TRAIL_REF] = trailing_reference(st, p, bar)
    update_bar_stats(st, p, bar, inst)
    if st[S_EQUITY] <= RUIN_FRACTION * p[P_INITIAL_CAPITAL]:
        st[S_RUINED] = 1.0
    return True


@njit(cache=True, nogil=True, inline="always")
def _advance(rel, n_w, st, aux, p, hold, bar, sig_prev, sig_now, inst, tiers, bar_ns, stats,
             trades, events, out, row, backup):
    """Bar ``rel`` (of ``n_w``) of one column; writes its output row after its last bar."""
    fill_close = p[P_FILL] == FILL_CLOSE
    if (st[S_SIDE] != 0.0 and rel != n_w - 1 and (sig_now if fill_close else sig_prev) == 0
            and st[S_PENDING_SIDE] == 0.0 and st[S_STOP_LIMIT] != st[S_STOP_LIMIT]
            and not (inst[I_KIND] == KIND_SPOT_MARGIN and bar[M_HOURS_IN_BAR] != 0.0)
            and _held_quietly(rel, st, p, bar, inst, tiers, backup)):
        return
    if st[S_SIDE] == 0.0 and (st[S_PENDING_SIDE] == 0.0 or st[S_RUINED] != 0.0):
        entry_rel = 0 if fill_close else 1
        if st[S_RUINED] != 0.0 or (hold != 0 and rel > entry_rel):
            _finish(st, aux, p, rel, n_w, bar, inst, bar_ns, stats, out, row)
            return
        code = sig_now if fill_close else sig_prev
        if (code & _ENTRIES) == 0:
            # step_bar on a flat account without an entry to execute: the stats only
            update_bar_stats(st, p, bar, inst)
            if rel == n_w - 1:
                _finish(st, aux, p, n_w, n_w, bar, inst, bar_ns, stats, out, row)
            return
    liquidations = st[S_N_LIQUIDATIONS]
    stops = st[S_N_STOPS]
    step_bar(rel, rel == n_w - 1, st, p, bar, sig_prev, sig_now, inst, tiers, trades, events)
    if aux[A_LIQ_BAR] < 0.0 and st[S_N_LIQUIDATIONS] > liquidations:
        aux[A_LIQ_BAR] = rel
    if aux[A_STOP_BAR] < 0.0 and st[S_N_STOPS] > stops:
        aux[A_STOP_BAR] = rel
    if rel == n_w - 1:
        _finish(st, aux, p, n_w, n_w, bar, inst, bar_ns, stats, out, row)


@njit(cache=True, nogil=True, inline="always")
def _codes(hold, rel, signals, t, k):
    """(sig_prev, sig_now) of a column at its bar ``rel`` (global signal row ``t``)."""
    if hold != 0:
        return (np.int64(hold) if rel == 1 else np.int64(0),
                np.int64(hold) if rel == 0 else np.int64(0))
    prev = np.int64(signals[t - 1, k]) if rel > 0 else np.int64(0)
    return prev, np.int64(signals[t, k])


@njit(cache=True, nogil=True)
def rolling_block(params, hold, md, inst, tiers, signals, bar_ns, starts, ends, bounds, cap,
                  block, n_blocks, out):
    """Rolling windows: chunks ``block, block + n_blocks, ...`` of ``bounds`` (window
    ranges; at most ``cap`` of a chunk's windows alive at one bar). See the module doc."""
    # Block-local copies: shared arrays' reference counts would bounce between cores.
    inst = inst.copy()
    tiers = tiers.copy()
    params = params.copy()
    hold = hold.copy()
    n_c = params.shape[0]
    state = np.empty((cap * n_c, N_STATE))
    aux = np.empty((cap * n_c, N_AUX))
    bar = np.empty(N_BAR)
    first = np.empty(N_BAR)
    stats = np.empty(N_STATS)
    backup = np.empty(N_STATE)
    trades = np.empty(0)
    events = np.empty(0)
    ks = np.empty(n_c, dtype=np.int64)
    for c in range(n_c):
        ks[c] = int(params[c, P_SIGNAL_SET])
    return _rolling_chunks(params, hold, md, inst,
                           tiers, signals, bar_ns, starts,
                           ends, bounds, cap, block, n_blocks,
                           out, state, aux, bar,
                           first, stats, backup,
                           trades, events, ks)


@njit(cache=True, nogil=True)
def _rolling_chunks(params, hold, md, inst, tiers, signals, bar_ns, starts, ends, bounds, cap,
                    block, n_blocks, out, state, aux, bar, first, stats, backup, trades, events,
                    ks):
    """``rolling_block``'s loop on borrowed views of its arrays."""
    # Borrowed views of the caller's arrays, made here: the caller's frame owns the
    # arrays for the whole call (a view made before the call could outlive its array).
    params = unowned(params)
    hold = unowned(hold)
    md = unowned(md)
    inst = unowned(inst)
    tiers = unowned(tiers)
    signals = unowned(signals)
    starts = unowned(starts)
    ends = unowned(ends)
    bounds = unowned(bounds)
    out = unowned(out)
    state = unowned(state)
    aux = unowned(aux)
    bar = unowned(bar)
    first = unowned(first)
    stats = unowned(stats)
    backup = unowned(backup)
    trades = unowned(trades)
    events = unowned(events)
    ks = unowned(ks)

    n_c = params.shape[0]
    for i in range(block, bounds.shape[0], n_blocks):
        w_lo = bounds[i, 0]
        w_hi = bounds[i, 1]
        a = w_lo
        b = w_lo
        t = starts[w_lo]
        while a < w_hi:
            while b < w_hi and starts[b] <= t:
                base = (b % cap) * n_c
                for c in range(n_c):
                    _start_column(state[base + c], aux[base + c], params[c])
                b += 1
            load_bar(bar, md, t)
            for j in range(N_BAR):
                first[j] = bar[j]
            first[M_PREV_CLOSE] = np.nan          # a window's first bar has no previous bar
            for w in range(a, b):
                s = starts[w]
                rel = t - s
                n_w = ends[w] - s + 1
                if rel >= n_w:
                    continue
                base = (w % cap) * n_c
                here = first if rel == 0 else bar
                for c in range(n_c):
                    r = base + c
                    if aux[r, A_DONE] != 0.0:
                        continue
                    sig_prev, sig_now = _codes(hold[c], rel, signals, t, ks[c])
                    _advance(rel, n_w, state[r], aux[r], params[c], hold[c], here, sig_prev,
                             sig_now, inst, tiers, bar_ns, stats, trades, events, out,
                             w * n_c + c, backup)
            t += 1
            while a < b and ends[a] < t:
                a += 1
            if a == b and b < w_hi and starts[b] > t:
                t = starts[b]
