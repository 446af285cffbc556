"""Bootstrap paths as columns: the path kernel beside ``windows.rolling_block``.

``paths_block(params, hold, md, inst, tiers, signals, bar_ns, src, scale, hours, bounds,
block, n_blocks, out)``: every path is ``horizon = src.shape[1]`` bars long and its bar
``i`` is built on the fly (``path_bar``) from the historical bar ``src[p, i]`` of the
market matrix ``md`` with its eight prices (last and mark OHLC) times ``scale[p, i]``, its
funding and borrow columns as they are, and the path's clock hours ``hours[i]``
(float64[horizon, 2]); nothing of bars x paths is materialised. ``signals`` is
uint8[horizon, n_paths] (column = the path; unused for holding columns). Each column (path
x parameter row) is advanced by ``windows._advance`` exactly as a rolling window, so a row
equals ``run()`` on the path's ``Market`` (``risk.bootstrap.path_market``). ``out`` and the
chunking (``bounds``, ``block``, ``n_blocks``) are as in ``windows``.

Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.records import (
    M_CLOSE,
    M_HOURS_AFTER_OPEN,
    M_HOURS_IN_BAR,
    M_PREV_CLOSE,
    N_BAR,
    N_MARKET,
    N_STATE,
)
from backtest.kernels.stats import N_STATS
from backtest.kernels.views import unowned
from backtest.kernels.windows import (
    A_DONE,
    N_AUX,
    N_PRICES,
    _advance,
    _codes,
    _start_column,
)


@njit(cache=True, nogil=True)
def path_bar(bar, md, src, scale, hours, p, rel):
    """Bar ``rel`` of bootstrap path ``p``: the historical bar ``src[p, rel]`` with its
    eight prices times ``scale[p, rel]``, its funding/borrow columns as they are, the path's
    clock hours and the previous path bar's close (NaN on the first bar)."""
    s = src[p, rel]
    f = scale[p, rel]
    for j in range(N_PRICES):
        bar[j] = md[s, j] * f
    for j in range(N_PRICES, N_MARKET):
        bar[j] = md[s, j]
    bar[M_HOURS_IN_BAR] = hours[rel, 0]
    bar[M_HOURS_AFTER_OPEN] = hours[rel, 1]
    if rel > 0:
        bar[M_PREV_CLOSE] = md[src[p, rel - 1], M_CLOSE] * scale[p, rel - 1]
    else:
        bar[M_PREV_CLOSE] = np.nan


@njit(cache=True, nogil=True)
def paths_block(params, hold, md, inst, tiers, signals, bar_ns, src, scale, hours, bounds,
                block, n_blocks, out):
    """Bootstrap paths: chunks ``block, block + n_blocks, ...`` of ``bounds`` (path ranges),
    every path ``horizon = src.shape[1]`` bars long. See the module doc."""
    # Block-local copies: shared arrays' reference counts would bounce between cores.
    inst = inst.copy()
    tiers = tiers.copy()
    params = params.copy()
    hold = hold.copy()
    n_c = params.shape[0]
    most = 0
    for i in range(block, bounds.shape[0], n_blocks):
        most = max(most, bounds[i, 1] - bounds[i, 0])
    state = np.empty((most * n_c, N_STATE))
    aux = np.empty((most * n_c, N_AUX))
    bar = np.empty(N_BAR)
    stats = np.empty(N_STATS)
    backup = np.empty(N_STATE)
    trades = np.empty(0)
    events = np.empty(0)
    _path_chunks(params, hold, md, inst,
                 tiers, signals, bar_ns, src,
                 scale, hours, bounds, block, n_blocks,
                 out, state, aux, bar,
                 stats, backup, trades, events)


@njit(cache=True, nogil=True)
def _path_chunks(params, hold, md, inst, tiers, signals, bar_ns, src, scale, hours, bounds,
                 block, n_blocks, out, state, aux, bar, stats, backup, trades, events):
    """``paths_block``'s loop on borrowed views of its arrays."""
    # Borrowed views of the caller's arrays, made here: the caller's frame owns the
    # arrays for the whole call (a view made before the call could outlive its array).
    params = unowned(params)
    hold = unowned(hold)
    md = unowned(md)
    inst = unowned(inst)
    tiers = unowned(tiers)
    signals = unowned(signals)
    src = unowned(src)
    scale = unowned(scale)
    hours = unowned(hours)
    bounds = unowned(bounds)
    out = unowned(out)
    state = unowned(state)
    aux = unowned(aux)
    bar = unowned(bar)
    stats = unowned(stats)
    backup = unowned(backup)
    trades = unowned(trades)
    events = unowned(events)

    n_c = params.shape[0]
    horizon = src.shape[1]
    for i in range(block, bounds.shape[0], n_blocks):
        p_lo = bounds[i, 0]
        p_hi = bounds[i, 1]
        for p in range(p_lo, p_hi):
            for c in range(n_c):
                r = (p - p_lo) * n_c + c
                _start_column(state[r], aux[r], params[c])
        for rel in range(horizon):
            for p in range(p_lo, p_hi):
                base = (p - p_lo) * n_c
                loaded = False
                for c in range(n_c):
                    r = base + c
                    if aux[r, A_DONE] != 0.0:
                        continue
                    if not loaded:
                        path_bar(bar, md, src, scale, hours, p, rel)
                        loaded = True
                    sig_prev, sig_now = _codes(hold[c], rel, signals, rel, p)
                    _advance(rel, horizon, state[r], aux[r], params[c], hold[c], bar, sig_prev,
                             sig_now, inst, tiers, bar_ns, stats, trades, events, out,
                             p * n_c + c, backup)
