"""Several markets on one bar index, one wallet (SPEC §5 "multi-market portfolio").

Each market keeps its own state vector and is advanced by ``step.step_bar`` (the one
implementation of a bar's logic); the wallet is shared by synchronising ``S_WALLET`` before
and after each market's step, and ``S_LOCKED`` tells a market how much of the wallet the
other markets' positions hold as margin (so sizing uses free funds only).

Cross margin across markets is tested here, once per bar before the markets step: with every
cross position at its bar's adverse mark extreme at once (pessimistic) and this bar's funding
paid, the portfolio is liquidated when ``wallet + Σ uPnL ≤ Σ MM``. All cross positions then
close; under ``liquidation="bankruptcy"`` the trader loses everything above zero (each
position's share of that loss, by maintenance margin, is in its exit price), under
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
trade_market, events, event_market, min_liq_distance)``:
``equity``/``wallet`` float64[n_bars]; ``per_market`` float64[n_markets, 4, n_bars] (signed
position, margin, liquidation price, funding); trade and event rows as in ``simulate`` with
the market index of each row; ``min_liq_distance`` as in docs/semantics.md
"Portfolios". Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.contracts import (
    funding_payment,
    maintenance_margin,
    notional,
    price_for_pnl,
    upnl,
)
from backtest.kernels.ledger import close_position, tier_column
from backtest.kernels.records import (
    I_CONTRACT_SIZE,
    I_KIND,
    I_MARGIN_LEVEL,
    I_RULES,
    I_SETTLEMENT,
    KIND_SPOT_MARGIN,
    LIQ_BANKRUPTCY,
    M_BORROW_RATE,
    M_CLOSE,
    M_FUNDING_COUNT,
    M_FUNDING_RATE,
    M_HOURS_IN_BAR,
    M_MARK_CLOSE,
    M_MARK_HIGH,
    M_MARK_LOW,
    M_MARK_OPEN,
    M_NEXT_FUNDING_RATE,
    M_PREV_CLOSE,
    MODE_CROSS,
    N_BAR,
    N_EVENT_COLS,
    N_MARKET,
    N_STATE,
    N_TRADE_COLS,
    P_INITIAL_CAPITAL,
    P_LIQUIDATION,
    P_LIQUIDATION_FEE,
    P_MARGIN_MODE,
    P_NEGATIVE_EQUITY,
    R_LIQUIDATION,
    S_BORROWED,
    S_ENTRY,
    S_EXPOSED_BARS,
    S_FUNDING_BAR,
    S_FUNDING_PAID,
    S_INTEREST_PAID,
    S_LIQ,
    S_LOCKED,
    S_MARGIN,
    S_MIN_LIQ_DISTANCE,
    S_N_EVENT_ROWS,
    S_N_TRADE_ROWS,
    S_RUINED,
    S_SHARED_CROSS,
    S_SIDE,
    S_SIZE,
    S_TRADE_FUNDING,
    S_TRADE_INTEREST,
    S_WALLET,
)
from backtest.kernels.simulate import grow_buffer as _grow
from backtest.kernels.simulate import rows_of
from backtest.kernels.step import RUIN_FRACTION, init_state, step_bar

N_MARKET_SERIES = 4


@njit(cache=True, nogil=True)
def _margin_level_reserve(st, inst, price, extra_interest):
    """A spot-margin position's term in the cross account's test: margin level
    (assets / (liabilities + interest)) at or below ``m`` across the account is
    ``wallet + Σ uPnL ≤ Σ (m − 1)(liabilities(price) + interest)`` (docs/semantics.md, the
    single-market equation summed). A long owes the quote it borrowed, a short its base
    valued at ``price``."""
    owed = st[S_BORROWED] if st[S_SIDE] > 0.0 else st[S_SIZE] * price
    return (inst[I_MARGIN_LEVEL] - 1.0) * (owed + st[S_TRADE_INTEREST] + extra_interest)


@njit(cache=True, nogil=True)
def _maintenance_at(st, bar, inst, tiers, x, extra_interest):
    """Maintenance of one open position with its mark at ``x``: the venue's MM, or for spot
    margin the margin-level reserve."""
    if inst[I_KIND] == KIND_SPOT_MARGIN:
        return _margin_level_reserve(st, inst, x, extra_interest)
    return maintenance_margin(int(inst[I_RULES]), int(inst[I_SETTLEMENT]), st[S_SIDE],
                              st[S_SIZE], st[S_ENTRY], x, inst[I_CONTRACT_SIZE],
                              tier_column(tiers, int(0)), tier_column(tiers, int(1)),
                              tier_column(tiers, int(2)), bar[M_NEXT_FUNDING_RATE])


@njit(cache=True, nogil=True)
def _adverse_terms(st, bar, inst, tiers):
    """(uPnL at the adverse mark extreme, this bar's funding payment or spot-margin
    interest, maintenance there) of one open position: the terms of the portfolio's
    cross-margin test."""
    side = st[S_SIDE]
    settle = int(inst[I_SETTLEMENT])
    cs = inst[I_CONTRACT_SIZE]
    q = st[S_SIZE]
    x = bar[M_MARK_LOW] if side > 0.0 else bar[M_MARK_HIGH]
    pay = 0.0
    if inst[I_KIND] == KIND_SPOT_MARGIN:
        # the interest charged at this bar's open (a short's base valued at the mark open)
        owed = st[S_BORROWED] if side > 0.0 else q * bar[M_MARK_OPEN]
        pay = owed * bar[M_BORROW_RATE] * bar[M_HOURS_IN_BAR]
    elif bar[M_FUNDING_COUNT] != 0.0:
        pay = funding_payment(settle, side, q, bar[M_MARK_OPEN], bar[M_FUNDING_RATE], cs)
    mm = _maintenance_at(st, bar, inst, tiers, x, pay)
    return upnl(settle, side, q, st[S_ENTRY], x, cs), pay, mm


@njit(cache=True, nogil=True)
def _cross_shortfall(states, bars, insts, tiers, wallet):
    """Equity minus maintenance with every cross position at its adverse mark extreme and
    this bar's funding paid (> 0: safe)."""
    equity = wallet
    maintenance = 0.0
    for j in range(states.shape[0]):
        if states[j, S_SIDE] == 0.0:
            continue
        gain, pay, mm = _adverse_terms(states[j], bars[j], insts[j], tiers[j])
        equity += gain - pay
        maintenance += mm
    return equity - maintenance, equity, maintenance


@njit(cache=True, nogil=True)
def _surplus_moved(states, bars, insts, tiers, wallet, d):
    """``wallet + Σ uPnL − Σ MM`` with every open position's mark moved adversely by the
    fraction ``d`` beyond its bar extreme (long ``low·(1 − d)``, short ``high·(1 + d)``)."""
    surplus = wallet
    for j in range(states.shape[0]):
        side = states[j, S_SIDE]
        if side == 0.0:
            continue
        st = states[j]
        inst = insts[j]
        settle = int(inst[I_SETTLEMENT])
        cs = inst[I_CONTRACT_SIZE]
        if side > 0.0:       # a long's price stops just above 0 (d >= 1)
            x = max(bars[j, M_MARK_LOW] * (1.0 - d), 1e-300)
        else:
            x = bars[j, M_MARK_HIGH] * (1.0 + d)
        mm = _maintenance_at(st, bars[j], inst, tiers[j], x, 0.0)
        surplus += upnl(settle, side, st[S_SIZE], st[S_ENTRY], x, cs) - mm
    return surplus


@njit(cache=True, nogil=True)
def _cross_distance(states, bars, insts, tiers, wallet, below):
    """The smallest adverse move ``d`` (fraction, see ``_surplus_moved``) at which the cross
    portfolio reaches its liquidation threshold, if it is below ``below``; else ``below``.

    0 when the threshold is already reached at the extremes (positions opened during the
    bar join the portfolio test only on the next bar); +inf when no move reaches it.
    """
    if below < np.inf and _surplus_moved(states, bars, insts, tiers, wallet, below) > 0.0:
        return below           # cannot improve the running minimum (surplus falls with d)
    if _surplus_moved(states, bars, insts, tiers, wallet, 0.0) <= 0.0:
        return 0.0
    lo = 0.0
    hi = 1.0
    while _surplus_moved(states, bars, insts, tiers, wallet, hi) > 0.0:
        lo = hi
        hi *= 2.0
        if hi > 1e9:
            return below
    for _ in range(200):     # bisection to a relative 1e-15
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi or hi - lo <= 1e-15 * hi:
            break
        if _surplus_moved(states, bars, insts, tiers, wallet, mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return hi if hi < below else below


@njit(cache=True, nogil=True)
def _value_at_extreme(st, bar, inst):
    """Notional of an open position at its bar's adverse mark extreme."""
    x = bar[M_MARK_LOW] if st[S_SIDE] > 0.0 else bar[M_MARK_HIGH]
    return notional(int(inst[I_SETTLEMENT]), st[S_SIZE], x, inst[I_CONTRACT_SIZE])


@njit(cache=True, nogil=True)
def _liquidate_all(t, states, bars, insts, tiers, p, wallet, equity, maintenance, trades,
                   trade_market, n_trades, funding_paid):
    """Close every cross position at its adverse mark extreme (see the module docstring).

    Returns the wallet and the trade-row count; ``funding_paid[j]`` gets this bar's funding.
    """
    negative_ok = p[P_NEGATIVE_EQUITY] != 0.0
    # Spot margin sells at the threshold and returns the rest, whatever `liquidation`
    # says (docs/semantics.md "Spot margin"); a portfolio is all spot margin or none.
    spot = insts[0, I_KIND] == KIND_SPOT_MARGIN
    at_bankruptcy = p[P_LIQUIDATION] == LIQ_BANKRUPTCY and not spot
    if at_bankruptcy:
        lost = equity if (equity > 0.0 or not negative_ok) else 0.0
    else:
        lost = equity if (equity < 0.0 and not negative_ok) else 0.0
    # The loss is shared by maintenance margin; with no maintenance at all (mmr 0 on every
    # market) by notional at the adverse extreme.
    total_value = 0.0
    if maintenance <= 0.0:
        for j in range(states.shape[0]):
            if states[j, S_SIDE] != 0.0:
                total_value += _value_at_extreme(states[j], bars[j], insts[j])
    for j in range(states.shape[0]):
        st = states[j]
        side = st[S_SIDE]
        if side == 0.0:
            continue
        inst = insts[j]
        settle = int(inst[I_SETTLEMENT])
        cs = inst[I_CONTRACT_SIZE]
        q = st[S_SIZE]
        gain, pay, mm = _adverse_terms(st, bars[j], inst, tiers[j])
        wallet -= pay
        if spot:
            st[S_TRADE_INTEREST] += pay
            st[S_INTEREST_PAID] += pay
        else:
            st[S_TRADE_FUNDING] += pay
            st[S_FUNDING_PAID] += pay
            funding_paid[j] = pay
        if maintenance > 0.0:
            share = mm / maintenance
        else:
            share = _value_at_extreme(st, bars[j], inst) / total_value
        gross = gain - share * lost
        # The exit price whose price move is exactly this gross PnL.
        price = price_for_pnl(settle, side, q, st[S_ENTRY], gross, cs)
        fee = 0.0
        if not at_bankruptcy:
            fee = p[P_LIQUIDATION_FEE] * notional(settle, q, price, cs)
        st[S_WALLET] = wallet
        st[S_N_TRADE_ROWS] = n_trades
        close_position(st, p, t, price, gross, fee, int(R_LIQUIDATION), trades)
        if int(st[S_N_TRADE_ROWS]) > n_trades:
            trade_market[n_trades] = j
            n_trades += 1
        wallet = st[S_WALLET]
    return wallet, n_trades


@njit(cache=True, nogil=True)
def _any_open(states):
    for j in range(states.shape[0]):
        if states[j, S_SIDE] != 0.0:
            return True
    return False


@njit(cache=True, nogil=True)
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
    for j in range(n_markets):
        init_state(states[j], p)
        states[j, S_SHARED_CROSS] = 1.0 if cross else 0.0
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
    n_trades = 0
    n_events = 0
    wallet = p[P_INITIAL_CAPITAL]
    min_cross = np.inf
    for t in range(n_bars):
        while n_trades + 4 * n_markets + 4 > trade_market.shape[0]:
            trades = _grow(trades, n_trades * N_TRADE_COLS)
            trade_market = _grow_index(trade_market, n_trades)
        while n_events + 8 * n_markets + 8 > event_market.shape[0]:
            events = _grow(events, n_events * N_EVENT_COLS)
            event_market = _grow_index(event_market, n_events)
        for j in range(n_markets):
            for i in range(N_MARKET):
                bars[j, i] = md[j, t, i]
            bars[j, M_PREV_CLOSE] = md[j, t - 1, M_CLOSE] if t > 0 else np.nan
        liq_funding[:] = 0.0
        if cross and _any_open(states):
            # also once ruined: no new order is placed, but an open position still meets
            # liquidation (docs/semantics.md step 6)
            surplus, equity, maintenance = _cross_shortfall(states, bars, insts, tiers, wallet)
            if surplus <= 0.0:
                wallet, n_trades = _liquidate_all(t, states, bars, insts, tiers, p, wallet,
                                                  equity, maintenance, trades, trade_market,
                                                  n_trades, liq_funding)
        locked_total = 0.0
        for j in range(n_markets):
            locked_total += states[j, S_MARGIN]
        is_last = t == n_bars - 1
        for j in range(n_markets):
            st = states[j]
            st[S_WALLET] = wallet
            st[S_LOCKED] = locked_total - st[S_MARGIN]
            st[S_N_TRADE_ROWS] = n_trades
            st[S_N_EVENT_ROWS] = n_events
            sig_prev = int(signals[j, t - 1]) if t > 0 else 0
            # Ruin is the combined equity's (tested below), not one market's wallet + uPnL:
            # the step's own ruin test is undone.
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
        equity = wallet
        for j in range(n_markets):
            st = states[j]
            side = st[S_SIDE]
            if side != 0.0:
                inst = insts[j]
                equity += upnl(int(inst[I_SETTLEMENT]), side, st[S_SIZE], st[S_ENTRY],
                               bars[j, M_MARK_CLOSE], inst[I_CONTRACT_SIZE])
            per_market[j, 0, t] = side * st[S_SIZE]
            per_market[j, 1, t] = st[S_MARGIN]
            per_market[j, 2, t] = st[S_LIQ] if not cross or side == 0.0 else np.nan
            per_market[j, 3, t] = st[S_FUNDING_BAR] + liq_funding[j]
        equity_out[t] = equity
        wallet_out[t] = wallet
        if cross and _any_open(states):
            min_cross = _cross_distance(states, bars, insts, tiers, wallet, min_cross)
        if equity <= RUIN_FRACTION * p[P_INITIAL_CAPITAL]:
            for j in range(n_markets):
                states[j, S_RUINED] = 1.0
    exposed = False
    min_isolated = np.inf
    for j in range(n_markets):
        if states[j, S_EXPOSED_BARS] > 0.0:
            exposed = True
            min_isolated = min(min_isolated, states[j, S_MIN_LIQ_DISTANCE])
    min_liq = (min_cross if cross else min_isolated) if exposed else np.nan
    return (equity_out, wallet_out, per_market,
            rows_of(trades, n_trades, int(N_TRADE_COLS)),
            trade_market[:n_trades].copy(),
            rows_of(events, n_events, int(N_EVENT_COLS)),
            event_market[:n_events].copy(), min_liq)
