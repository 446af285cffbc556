"""The sweep's hot lanes: the transposed state slots the cheap path reads and writes.

A tile of at most ``TILE`` combinations mirrors the state slots of ``HOT_SLOTS`` in ``h``
(float64[N_HOT * TILE], slot ``H_x`` of lane ``c`` at ``H_x * TILE + c``) and its per-lane
constants in ``q`` (float64[N_Q * TILE]), so that loops over lanes vectorise. ``guards``
turns a state row into the four price levels whose touch needs the full ``step_bar``;
``to_hot``/``to_row`` copy between a state row and a lane; ``partition`` keeps the lanes
holding a position or an order first. Used by ``quiet.py`` (the passes) and ``sweep.py``
(the tiles).

Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.records import (
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
)

# Combinations per tile. The hot rows are indexed ``slot * TILE + c`` with a compile-time
# TILE, so LLVM sees that different slots never overlap and vectorises the quiet pass.
TILE = 256

# Hot slots: what the cheap path reads (up to H_GUARD_LAST_HI) and what it also writes (from
# FIRST_WRITTEN on; copied back to the state row before a full step). H_INV_ENTRY caches
# 1 / entry for inverse contracts (the same division upnl makes); the four guards are the
# levels whose touch by the bar's extremes needs the full step (``guards``).
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


@njit(cache=True, nogil=True)
def guards(st, trigger_mark):
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
def is_active(h, c):
    """Lane ``c`` holds a position or (not ruined) a resting entry order."""
    return h[H_SIDE * TILE + c] != 0.0 or (h[H_PENDING * TILE + c] != 0.0
                                           and h[H_RUINED * TILE + c] == 0.0)


@njit(cache=True, nogil=True)
def partition(h, q, perm, n):
    """Reorder lanes so the active ones come first; returns their count. Lanes are
    independent, so their order changes nothing but which pass they take."""
    i = 0
    j = n - 1
    while True:
        while i <= j and is_active(h, i):
            i += 1
        while i <= j and not is_active(h, j):
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
def to_hot(h, q, c, st):
    """Copy a state row into hot lane ``c`` (every hot slot, ``HOT_SLOTS`` order, unrolled:
    an indexed loop over the slot table costs twice as much) and set its guards."""
    h[H_SIDE * TILE + c] = st[S_SIDE]
    h[H_PENDING * TILE + c] = st[S_PENDING_SIDE]
    h[H_LIQ * TILE + c] = st[S_LIQ]
    h[H_WALLET * TILE + c] = st[S_WALLET]
    h[H_SIZE * TILE + c] = st[S_SIZE]
    h[H_ENTRY * TILE + c] = st[S_ENTRY]
    h[H_INV_ENTRY * TILE + c] = 1.0 / st[S_ENTRY] if st[S_SIDE] != 0.0 else 0.0
    g_mark_lo, g_mark_hi, g_last_lo, g_last_hi = guards(st, q[Q_TRIGGER_MARK * TILE + c] != 0.0)
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
def to_row(h, c, st):
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
