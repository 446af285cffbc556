"""One market, one combination: per-bar series, trade rows and event rows.

Contract: ``simulate(p, md, inst, tiers, signals, bar_ns)`` runs ``step_bar`` over every
bar and returns ``(series, trades, events, stats)`` where ``series`` is float64[6, n_bars] (rows:
equity, wallet, signed position, margin, liquidation price (NaN flat), funding paid in the
bar; all at the bar's close, account currency), ``trades`` float64[n_trades, N_TRADE_COLS],
``events`` float64[n_events, N_EVENT_COLS] and ``stats`` float64[N_STATS] (``STAT_NAMES``).
``md`` is the bar-major market matrix (n_bars, ``records.N_MARKET``), ``signals`` the uint8
bitmask matrix ``(n_bars, n_sets)`` (``records.SIG_*``); the rest as in ``step.py``.
Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.records import (
    N_BAR,
    N_EVENT_COLS,
    N_STATE,
    N_TRADE_COLS,
    P_SIGNAL_SET,
    S_EQUITY,
    S_FUNDING_BAR,
    S_LIQ,
    S_MARGIN,
    S_N_EVENT_ROWS,
    S_N_TRADE_ROWS,
    S_SIDE,
    S_SIZE,
    S_WALLET,
)
from backtest.kernels.stats import N_STATS, finalize_stats
from backtest.kernels.step import init_state, load_bar, step_bar

N_SERIES = 6


@njit(cache=True, nogil=True)
def simulate(p, md, inst, tiers, signals, bar_ns):
    """Simulate one combination over all bars (see the module docstring for shapes)."""
    n_bars = md.shape[0]
    st = np.empty(N_STATE)
    init_state(st, p)
    bar = np.empty(N_BAR)
    k = int(p[P_SIGNAL_SET])
    series = np.empty((N_SERIES, n_bars))
    # A position opens and closes at most a few times per bar; grow on demand below.
    trades = np.empty(max(16, n_bars // 4) * N_TRADE_COLS)
    events = np.empty(max(16, n_bars // 4) * N_EVENT_COLS)
    for t in range(n_bars):
        if (int(st[S_N_TRADE_ROWS]) + 4) * N_TRADE_COLS > trades.shape[0]:
            trades = grow_buffer(trades, int(st[S_N_TRADE_ROWS]) * N_TRADE_COLS)
        if (int(st[S_N_EVENT_ROWS]) + 8) * N_EVENT_COLS > events.shape[0]:
            events = grow_buffer(events, int(st[S_N_EVENT_ROWS]) * N_EVENT_COLS)
        load_bar(bar, md, t)
        sig_prev = int(signals[t - 1, k]) if t > 0 else 0
        step_bar(t, t == n_bars - 1, st, p, bar, sig_prev, int(signals[t, k]), inst, tiers, trades,
                 events)
        series[0, t] = st[S_EQUITY]
        series[1, t] = st[S_WALLET]
        series[2, t] = st[S_SIDE] * st[S_SIZE]
        series[3, t] = st[S_MARGIN]
        series[4, t] = st[S_LIQ]
        series[5, t] = st[S_FUNDING_BAR]
    stats = np.empty(N_STATS)
    finalize_stats(st, p, n_bars, bar_ns, stats)
    n_trades = int(st[S_N_TRADE_ROWS])
    n_events = int(st[S_N_EVENT_ROWS])
    return (series, rows_of(trades, n_trades, int(N_TRADE_COLS)),
            rows_of(events, n_events, int(N_EVENT_COLS)), stats)


# Element loops rather than slice assignment and ``reshape``: those compile Numba's
# shape-error messages (string formatting), ~4 s of a cold start, for no runtime gain.
@njit(cache=True, nogil=True)
def grow_buffer(flat, used):
    """A flat row buffer twice as long, with its first ``used`` values copied."""
    bigger = np.empty(flat.shape[0] * 2)
    for i in range(used):
        bigger[i] = flat[i]
    return bigger


@njit(cache=True, nogil=True)
def rows_of(flat, n_rows, n_cols):
    """The first ``n_rows`` rows of a flat row-major buffer, as a new (n_rows, n_cols) array."""
    out = np.empty((n_rows, n_cols))
    for i in range(n_rows):
        for j in range(n_cols):
            out[i, j] = flat[i * n_cols + j]
    return out
