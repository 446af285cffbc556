"""Several markets on one bar index, one wallet (SPEC §5 "multi-market portfolio").

Each market keeps its own state vector and is advanced by ``step.step_bar`` (the one
implementation of a bar's logic); the wallet is shared by synchronising ``S_WALLET`` before
and after each market's step, and ``S_LOCKED`` tells a market how much of the wallet the
other markets' positions hold as margin (so sizing uses free funds only).

Cross margin across markets is tested once per bar before the markets step (``cross.py``):
with every cross position at its bar's adverse mark extreme at once (pessimistic) and this
bar's funding paid, the portfolio is liquidated when ``wallet + Σ uPnL ≤ Σ MM``. All cross
positions then close; under ``liquidation="bankruptcy"`` the trader loses everything above
zero (each position's share of that loss, by maintenance margin, is in its exit price), under
``"liquidation_price"`` the remaining equity less ``liquidation_fee`` is kept. A position
opened during a bar joins the cross test from the next bar. A cross spot-margin account
(all markets spot margin) is the same test with each position's maintenance replaced by
``(m − 1)(liabilities + interest)`` — margin level ≤ ``m`` across the account — this bar's
interest in place of funding, and the ``"liquidation_price"`` outcome.

Contract: ``simulate_portfolio(ps, md, insts, tiers, signals, bar_ns)`` with ``ps``
float64[n_markets, N_PARAMS] (one parameter row per market: fees follow the instrument), ``md``
float64[n_markets, n_bars, N_MARKET], ``insts`` float64[n_markets, N_INSTRUMENT], ``tiers``
float64[n_markets, 4 * max_rows] (flat tables as in ``step.py``; floors padded with +inf),
``signals`` uint8[n_markets, n_bars]. Returns ``(equity, wallet, per_market, trades,
trade_market, events, event_market, min_liq_distance, summary)``:
``equity``/``wallet`` float64[n_bars]; ``per_market`` float64[n_markets, 4, n_bars] (signed
position, margin, liquidation price, funding); trade and event rows as in ``simulate`` with
the market index of each row; ``min_liq_distance`` as in docs/semantics.md
"Portfolios"; ``summary`` float64[N_SUMMARY] (``portfolio_summary``: what the stats
read). ``portfolio_bar`` is one bar of one portfolio, shared with
``portfolio_sweep.py`` so that a sweep row and ``run()`` are the same computation.
Imports numpy, numba and kernels only.
"""


import numpy as np
from numba import njit

from backtest.kernels.contracts import upnl
from backtest.kernels.cross import any_open, cross_distance, cross_shortfall, liquidate_all
from backtest.kernels.records import (
    EV_AMBIGUOUS_BAR,
    I_CONTRACT_SIZE,
    I_SETTLEMENT,
    M_CLOSE,
    M_MARK_CLOSE,
    M_PREV_CLOSE,
    MODE_CROSS,
    N_BAR,
    N_EVENT_COLS,
    N_MARKET,
    N_STATE,
    N_TRADE_COLS,
    P_INITIAL_CAPITAL,
    P_MARGIN_MODE,
    S_ENTRY,
    S_EVENT_COUNT0,
    S_EXPOSED_BARS,
    S_FEES_PAID,
    S_FUNDING_BAR,
    S_FUNDING_PAID,
    S_INTEREST_PAID,
    S_LIQ,
    S_LOCKED,
    S_MARGIN,
    S_MIN_LIQ_DISTANCE,
    S_N_EVENT_ROWS,
    S_N_LIQUIDATIONS,
    S_N_STOPS,
    S_N_TRADE_ROWS,
    S_N_TRADES,
    S_N_WINS,
    S_RUINED,
    S_SHARED_CROSS,
    S_SIDE,
    S_SIZE,
    S_SUM_LOSS,
    S_SUM_WIN,
    S_WALLET,
)
from backtest.kernels.simulate import grow_buffer as _grow
from backtest.kernels.simulate import rows_of
from backtest.kernels.stats import N_EQUITY, init_equity_stats, update_equity_stats
from backtest.kernels.step import RUIN_FRACTION, init_state, step_bar

N_MARKET_SERIES = 4
# The summary of a finished portfolio: the combined equity's running stats
# (``stats.EQ_*``, slots 0..N_EQUITY-1), then these, the markets' totals in market order.
(U_EXPOSED, U_AMBIGUOUS, U_MIN_LIQ, U_N_TRADES, U_N_WINS, U_SUM_WIN, U_SUM_LOSS, U_N_LIQ,
 U_N_STOPS, U_FUNDING, U_FEES, U_INTEREST) = range(N_EQUITY, N_EQUITY + 12)
N_SUMMARY = N_EQUITY + 12
_TOTALS = (S_N_TRADES, S_N_WINS, S_SUM_WIN, S_SUM_LOSS, S_N_LIQUIDATIONS, S_N_STOPS,
           S_FUNDING_PAID, S_FEES_PAID, S_INTEREST_PAID)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def init_portfolio(states, p, cross):
    """Every market flat on the initial capital; ``S_SHARED_CROSS`` set in cross mode."""
    for j in range(states.shape[0]):
        init_state(states[j], p)
        states[j, S_SHARED_CROSS] = 1.0 if cross else 0.0


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def load_bars(bars, md, t):
    """Bar ``t`` of every market (``md`` float64[n_markets, n_bars, N_MARKET]) into
    ``bars`` float64[n_markets, N_BAR], as ``step.load_bar`` does for one market."""
    for j in range(md.shape[0]):
        for i in range(N_MARKET):
            bars[j, i] = md[j, t, i]
        bars[j, M_PREV_CLOSE] = md[j, t - 1, M_CLOSE] if t > 0 else np.nan


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def portfolio_equity(states, bars, insts, wallet):
    """Wallet plus every open position's uPnL at its mark close, in market order."""
    equity = wallet
    for j in range(states.shape[0]):
        side = states[j, S_SIDE]
        if side != 0.0:
            inst = insts[j]
            equity += upnl(int(inst[I_SETTLEMENT]), side, states[j, S_SIZE], states[j, S_ENTRY],
                           bars[j, M_MARK_CLOSE], inst[I_CONTRACT_SIZE])
    return equity


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def portfolio_bar(t, is_last, cross, states, ps, bars, insts, tiers, signals, wallet, trades,
                  trade_market, events, event_market, counts, liq_funding):
    """One bar of one portfolio: the cross test, then every market's ``step_bar`` on the
    shared wallet. Returns the wallet after the bar.

    ``counts`` int64[2]: trade and event rows written so far (updated); the row buffers must
    have room for this bar's rows (at most 4 trades and 8 events per market; zero-length
    buffers only count). ``liq_funding[j]`` gets the funding a cross liquidation settled.
    The caller computes the equity (``portfolio_equity``), the cross distance and ruin.
    """
    n_markets = states.shape[0]
    n_trades = counts[0]
    n_events = counts[1]
    for j in range(n_markets):
        liq_funding[j] = 0.0
    if cross and any_open(states):
        # also once ruined: no new order is placed, but an open position still meets
        # liquidation (docs/semantics.md step 6)
        surplus, equity, maintenance = cross_shortfall(states, bars, insts, tiers, wallet)
        if surplus <= 0.0:
            wallet, n_trades = liquidate_all(t, states, bars, insts, tiers, ps[0], wallet,
                                             equity, maintenance, trades, trade_market,
                                             n_trades, liq_funding)
    locked_total = 0.0
    for j in range(n_markets):
        locked_total += states[j, S_MARGIN]
    for j in range(n_markets):
        st = states[j]
        st[S_WALLET] = wallet
        st[S_LOCKED] = locked_total - st[S_MARGIN]
        st[S_N_TRADE_ROWS] = n_trades
        st[S_N_EVENT_ROWS] = n_events
        sig_prev = int(signals[j, t - 1]) if t > 0 else 0
        # Ruin is the combined equity's (tested by the caller), not one market's wallet +
        # uPnL: the step's own ruin test is undone.
        ruined = st[S_RUINED]
        step_bar(t, is_last, st, ps[j], bars[j], sig_prev, int(signals[j, t]), insts[j],
                 tiers[j], trades, events)
        st[S_RUINED] = ruined
        for r in range(n_trades, int(st[S_N_TRADE_ROWS])):
            trade_market[r] = j
        for r in range(n_events, int(st[S_N_EVENT_ROWS])):
            event_market[r] = j
        n_trades = int(st[S_N_TRADE_ROWS])
        n_events = int(st[S_N_EVENT_ROWS])
        locked_total = st[S_LOCKED] + st[S_MARGIN]
        wallet = st[S_WALLET]
    counts[0] = n_trades
    counts[1] = n_events
    return wallet


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def end_of_bar(t, cross, states, bars, insts, tiers, p, wallet, equity, min_cross):
    """After the markets stepped: the running cross distance and the combined ruin test.
    Returns the new ``min_cross``."""
    if cross and any_open(states):
        min_cross = cross_distance(states, bars, insts, tiers, wallet, min_cross)
    if equity <= RUIN_FRACTION * p[P_INITIAL_CAPITAL]:
        for j in range(states.shape[0]):
            states[j, S_RUINED] = 1.0
    return min_cross


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def min_liq_distance(states, cross, min_cross):
    """The portfolio's ``min_liq_distance`` (docs/semantics.md "Portfolios"): NaN if never
    in a position; cross: the running cross distance; isolated: the markets' minimum."""
    exposed = False
    min_isolated = np.inf
    for j in range(states.shape[0]):
        if states[j, S_EXPOSED_BARS] > 0.0:
            exposed = True
            min_isolated = min(min_isolated, states[j, S_MIN_LIQ_DISTANCE])
    return (min_cross if cross else min_isolated) if exposed else np.nan


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def portfolio_summary(states, acc, cross, min_cross, exposed, out):
    """``out`` float64[N_SUMMARY] of a finished portfolio: ``acc`` (the combined equity's
    ``stats.update_equity_stats``), the bars with a position, and the markets' ambiguous
    bars, ``min_liq_distance`` and trade, funding, fee and interest totals."""
    for i in range(N_EQUITY):
        out[i] = acc[i]
    out[U_EXPOSED] = exposed
    out[U_MIN_LIQ] = min_liq_distance(states, cross, min_cross)
    ambiguous = 0.0
    for j in range(states.shape[0]):
        ambiguous += states[j, S_EVENT_COUNT0 + EV_AMBIGUOUS_BAR]
    out[U_AMBIGUOUS] = ambiguous
    for k in range(len(_TOTALS)):
        total = 0.0
        for j in range(states.shape[0]):
            total += states[j, _TOTALS[k]]
        out[U_N_TRADES + k] = total


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _grow_index(rows, used):
    bigger = np.empty(rows.shape[0] * 2, dtype=np.int64)
    for i in range(used):   # a loop, not a slice copy: see simulate.grow_buffer
        bigger[i] = rows[i]
    return bigger


@njit(cache=True, nogil=True)
def simulate_portfolio(ps, md, insts, tiers, signals, bar_ns):
    """Simulate several markets sharing one wallet (shapes in the module docstring)."""
    p = ps[0]      # the account-wide fields (mode, liquidation, capital) are the same in every row
    n_markets = md.shape[0]
    n_bars = md.shape[1]
    cross = p[P_MARGIN_MODE] == MODE_CROSS
    states = np.empty((n_markets, N_STATE))
    init_portfolio(states, p, cross)
    bars = np.empty((n_markets, N_BAR))
    liq_funding = np.zeros(n_markets)
    equity_out = np.empty(n_bars)
    wallet_out = np.empty(n_bars)
    per_market = np.empty((n_markets, N_MARKET_SERIES, n_bars))
    cap = max(16, n_bars // 4)
    trades = np.empty(cap * N_TRADE_COLS)
    trade_market = np.empty(cap, dtype=np.int64)
    events = np.empty(cap * N_EVENT_COLS)
    event_market = np.empty(cap, dtype=np.int64)
    counts = np.zeros(2, dtype=np.int64)
    wallet = p[P_INITIAL_CAPITAL]
    min_cross = np.inf
    acc = np.empty(N_EQUITY)
    init_equity_stats(acc, wallet)
    exposed = 0.0
    for t in range(n_bars):
        while counts[0] + 4 * n_markets + 4 > trade_market.shape[0]:
            trades = _grow(trades, counts[0] * N_TRADE_COLS)
            trade_market = _grow_index(trade_market, counts[0])
        while counts[1] + 8 * n_markets + 8 > event_market.shape[0]:
            events = _grow(events, counts[1] * N_EVENT_COLS)
            event_market = _grow_index(event_market, counts[1])
        load_bars(bars, md, t)
        wallet = portfolio_bar(t, t == n_bars - 1, cross, states, ps, bars, insts, tiers,
                               signals, wallet, trades, trade_market, events, event_market,
                               counts, liq_funding)
        equity = portfolio_equity(states, bars, insts, wallet)
        for j in range(n_markets):
            st = states[j]
            side = st[S_SIDE]
            per_market[j, 0, t] = side * st[S_SIZE]
            per_market[j, 1, t] = st[S_MARGIN]
            per_market[j, 2, t] = st[S_LIQ] if not cross or side == 0.0 else np.nan
            per_market[j, 3, t] = st[S_FUNDING_BAR] + liq_funding[j]
        equity_out[t] = equity
        wallet_out[t] = wallet
        update_equity_stats(acc, equity)
        if any_open(states):
            exposed += 1.0
        min_cross = end_of_bar(t, cross, states, bars, insts, tiers, p, wallet, equity,
                               min_cross)
    n_trades = counts[0]
    n_events = counts[1]
    summary = np.empty(N_SUMMARY)
    portfolio_summary(states, acc, cross, min_cross, exposed, summary)
    return (equity_out, wallet_out, per_market,
            rows_of(trades, n_trades, int(N_TRADE_COLS)),
            trade_market[:n_trades].copy(),
            rows_of(events, n_events, int(N_EVENT_COLS)),
            event_market[:n_events].copy(), summary[U_MIN_LIQ], summary)
