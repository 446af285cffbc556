"""Streaming statistics: updated once per bar per combination, finalised into SPEC §8 stats.

``update_bar_stats`` runs at the end of every bar (after the close) for ``run()`` and for
``sweep()`` alike, so both report identical numbers; ``backtest/metrics.py`` computes the same
definitions from the per-bar series (tests hold the two together). Definitions:
``docs/semantics.md`` ("Trades and stats").

Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.contracts import upnl
from backtest.kernels.records import (
    EV_AMBIGUOUS_BAR,
    I_CONTRACT_SIZE,
    I_SETTLEMENT,
    M_MARK_CLOSE,
    M_MARK_HIGH,
    M_MARK_LOW,
    P_INITIAL_CAPITAL,
    S_ENTRY,
    S_EQUITY,
    S_EVENT_COUNT0,
    S_EXPOSED_BARS,
    S_FEES_PAID,
    S_FUNDING_PAID,
    S_INTEREST_PAID,
    S_LIQ,
    S_MAX_DRAWDOWN,
    S_MIN_LIQ_DISTANCE,
    S_N_LIQUIDATIONS,
    S_N_RETURNS,
    S_N_STOPS,
    S_N_TRADES,
    S_N_WINS,
    S_PEAK,
    S_PREV_EQUITY,
    S_RET_DOWN_SQ,
    S_RET_M2,
    S_RET_MEAN,
    S_RUINED,
    S_SIDE,
    S_SIZE,
    S_SUM_LOSS,
    S_SUM_WIN,
    S_WALLET,
)

STAT_NAMES = ("final_equity", "total_return", "cagr", "max_drawdown", "sharpe", "sortino",
              "calmar", "n_trades", "win_rate", "profit_factor", "exposure", "n_liquidations",
              "n_stops", "funding_paid", "fees_paid", "n_ambiguous", "min_liq_distance",
              "ruined", "interest_paid")
N_STATS = len(STAT_NAMES)

NS_PER_YEAR = 365.0 * 86400.0 * 1e9
# Returns are log returns of the equity floored at this fraction of the initial capital (the
# ruin threshold): a bar that wipes the account out is one return of ln(1e-9) = -20.7, so a
# ruined run's mean return -- and its Sharpe and Sortino -- are negative whatever it made
# before (docs/semantics.md, "Trades and stats").
RETURN_FLOOR = 1e-9


@njit(cache=True, nogil=True, inline="always")
def log_return(equity, prev, floor):
    """One bar's return: ``ln(max(equity, floor) / max(prev, floor))`` (``floor`` = the ruin
    level, ``RETURN_FLOOR`` x initial capital). The sweep kernel calls it too."""
    return np.log(max(equity, floor) / max(prev, floor))


@njit(cache=True, nogil=True, inline="always")
def update_bar_stats(st, p, bar, inst):
    """Mark to market at the mark close and fold this bar into the running statistics."""
    side = st[S_SIDE]
    equity = st[S_WALLET]
    if side != 0.0:
        mark_close = bar[M_MARK_CLOSE]
        equity += upnl(int(inst[I_SETTLEMENT]), side, st[S_SIZE], st[S_ENTRY], mark_close,
                       inst[I_CONTRACT_SIZE])
        st[S_EXPOSED_BARS] += 1.0
        liq = st[S_LIQ]
        if side > 0.0:
            x = bar[M_MARK_LOW]
            dist = (x - liq) / x
        else:
            x = bar[M_MARK_HIGH]
            dist = (liq - x) / x
        if dist < st[S_MIN_LIQ_DISTANCE]:
            st[S_MIN_LIQ_DISTANCE] = dist
    st[S_EQUITY] = equity
    r = log_return(equity, st[S_PREV_EQUITY], RETURN_FLOOR * p[P_INITIAL_CAPITAL])
    n = st[S_N_RETURNS] + 1.0
    st[S_N_RETURNS] = n
    delta = r - st[S_RET_MEAN]
    st[S_RET_MEAN] += delta / n
    st[S_RET_M2] += delta * (r - st[S_RET_MEAN])
    if r < 0.0:
        st[S_RET_DOWN_SQ] += r * r
    if equity > st[S_PEAK]:
        st[S_PEAK] = equity
    dd = 1.0 - equity / st[S_PEAK]
    if dd > st[S_MAX_DRAWDOWN]:
        st[S_MAX_DRAWDOWN] = dd
    st[S_PREV_EQUITY] = equity


# A portfolio's combined equity (``portfolio.simulate_portfolio`` and ``portfolio_sweep``,
# so that a sweep row equals ``run()``): the running stats of one equity curve in
# ``acc`` float64[N_EQUITY], finalised in Python by ``results.portfolio.summary_values``.
EQ_PREV, EQ_N, EQ_MEAN, EQ_M2, EQ_DOWN, EQ_PEAK, EQ_MAXDD, EQ_FLOOR = range(8)
N_EQUITY = 8


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def init_equity_stats(acc, capital):
    """No bar yet: the previous equity and the peak are the initial capital."""
    acc[EQ_PREV] = capital
    acc[EQ_N] = 0.0
    acc[EQ_MEAN] = 0.0
    acc[EQ_M2] = 0.0
    acc[EQ_DOWN] = 0.0
    acc[EQ_PEAK] = capital
    acc[EQ_MAXDD] = 0.0
    acc[EQ_FLOOR] = RETURN_FLOOR * capital


@njit(cache=True, nogil=True, inline="always")
def update_equity_stats(acc, equity):
    """Fold one bar's equity in: the return (``log_return``; exactly 0 when the equity
    did not move, without the log), its running mean, M2 and downside sum (the order of
    ``update_bar_stats``), the peak (the initial capital counts) and the largest
    ``1 - equity / peak`` (0 at a peak; an unchanged equity repeats the last bar's)."""
    prev = acc[EQ_PREV]
    r = 0.0 if equity == prev else log_return(equity, prev, acc[EQ_FLOOR])
    n = acc[EQ_N] + 1.0
    acc[EQ_N] = n
    mean = acc[EQ_MEAN]
    delta = r - mean
    mean += delta / n
    acc[EQ_MEAN] = mean
    acc[EQ_M2] += delta * (r - mean)
    if r < 0.0:
        acc[EQ_DOWN] += r * r
    peak = acc[EQ_PEAK]
    if equity > peak:
        acc[EQ_PEAK] = equity
    elif equity < peak and equity != prev:
        dd = 1.0 - equity / peak
        if dd > acc[EQ_MAXDD]:
            acc[EQ_MAXDD] = dd
    acc[EQ_PREV] = equity


@njit(cache=True, nogil=True)
def finalize_stats(st, p, n_bars, bar_ns, out):
    """Write the SPEC §8 stats (``STAT_NAMES`` order) of a finished run into ``out``."""
    capital = p[P_INITIAL_CAPITAL]
    final = st[S_EQUITY]
    out[0] = final
    out[1] = final / capital - 1.0
    years = n_bars * bar_ns / NS_PER_YEAR
    if final <= 0.0:
        cagr = -1.0
    elif years > 0.0:
        # Via the log so that a few bars of a big move annualise to inf without overflowing
        # (also under NUMBA_DISABLE_JIT, where ** would warn).
        growth = np.log(final / capital) / years
        cagr = np.exp(growth) - 1.0 if growth < 700.0 else np.inf
    else:
        cagr = np.nan
    out[2] = cagr
    mdd = st[S_MAX_DRAWDOWN]
    out[3] = mdd
    n = st[S_N_RETURNS]
    bars_per_year = NS_PER_YEAR / bar_ns if bar_ns > 0 else np.nan
    mean = st[S_RET_MEAN]
    sharpe = np.nan
    if n > 1.0:
        std = np.sqrt(st[S_RET_M2] / (n - 1.0))
        if std > 0.0:
            sharpe = mean / std * np.sqrt(bars_per_year)
    out[4] = sharpe
    sortino = np.nan
    if n > 0.0:
        down = np.sqrt(st[S_RET_DOWN_SQ] / n)
        if down > 0.0:
            sortino = mean / down * np.sqrt(bars_per_year)
    out[5] = sortino
    out[6] = cagr / mdd if mdd > 0.0 else np.nan
    n_trades = st[S_N_TRADES]
    out[7] = n_trades
    out[8] = st[S_N_WINS] / n_trades if n_trades > 0.0 else np.nan
    if n_trades == 0.0:
        out[9] = np.nan
    elif st[S_SUM_LOSS] > 0.0:
        out[9] = st[S_SUM_WIN] / st[S_SUM_LOSS]
    else:
        out[9] = np.inf if st[S_SUM_WIN] > 0.0 else np.nan
    out[10] = st[S_EXPOSED_BARS] / n_bars if n_bars > 0 else np.nan
    out[11] = st[S_N_LIQUIDATIONS]
    out[12] = st[S_N_STOPS]
    out[13] = st[S_FUNDING_PAID]
    out[14] = st[S_FEES_PAID]
    out[15] = st[S_EVENT_COUNT0 + EV_AMBIGUOUS_BAR]
    # NaN when never in a position; +inf when no position could ever be liquidated.
    out[16] = st[S_MIN_LIQ_DISTANCE] if st[S_EXPOSED_BARS] > 0.0 else np.nan
    out[17] = st[S_RUINED]
    out[18] = st[S_INTEREST_PAID]
