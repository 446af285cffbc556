"""The cross-margin test of a multi-market portfolio (SPEC §5), shared by
``portfolio.py`` (one combination) and ``portfolio_sweep.py`` (many).

``cross_shortfall``: with every cross position at its bar's adverse mark extreme at once
(pessimistic) and this bar's funding (or spot-margin interest) paid, equity minus
maintenance (> 0: safe). ``liquidate_all`` closes every cross position when it is not
(see ``portfolio.py``'s module docstring for the loss sharing). ``cross_distance`` keeps
the running minimum of the adverse move that would reach the threshold (docs/semantics.md
"Portfolios"). Arguments: ``states`` float64[n_markets, N_STATE], ``bars``
float64[n_markets, N_BAR] (this bar per market), ``insts``/``tiers`` per market as for
``simulate_portfolio``; amounts in the account currency.

Imports numpy, numba and kernels only.
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
    M_FUNDING_COUNT,
    M_FUNDING_RATE,
    M_HOURS_IN_BAR,
    M_MARK_HIGH,
    M_MARK_LOW,
    M_MARK_OPEN,
    M_NEXT_FUNDING_RATE,
    P_LIQUIDATION,
    P_LIQUIDATION_FEE,
    P_NEGATIVE_EQUITY,
    R_LIQUIDATION,
    S_BORROWED,
    S_ENTRY,
    S_FUNDING_PAID,
    S_INTEREST_PAID,
    S_N_TRADE_ROWS,
    S_SIDE,
    S_SIZE,
    S_TRADE_FUNDING,
    S_TRADE_INTEREST,
    S_WALLET,
)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _margin_level_reserve(st, inst, price, extra_interest):
    """A spot-margin position's term in the cross account's test: margin level
    (assets / (liabilities + interest)) at or below ``m`` across the account is
    ``wallet + Σ uPnL ≤ Σ (m − 1)(liabilities(price) + interest)`` (docs/semantics.md, the
    single-market equation summed). A long owes the quote it borrowed, a short its base
    valued at ``price``."""
    owed = st[S_BORROWED] if st[S_SIDE] > 0.0 else st[S_SIZE] * price
    return (inst[I_MARGIN_LEVEL] - 1.0) * (owed + st[S_TRADE_INTEREST] + extra_interest)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _maintenance_at(st, bar, inst, tiers, x, extra_interest):
    """Maintenance of one open position with its mark at ``x``: the venue's MM, or for spot
    margin the margin-level reserve."""
    if inst[I_KIND] == KIND_SPOT_MARGIN:
        return _margin_level_reserve(st, inst, x, extra_interest)
    return maintenance_margin(int(inst[I_RULES]), int(inst[I_SETTLEMENT]), st[S_SIDE],
                              st[S_SIZE], st[S_ENTRY], x, inst[I_CONTRACT_SIZE],
                              tier_column(tiers, int(0)), tier_column(tiers, int(1)),
                              tier_column(tiers, int(2)), bar[M_NEXT_FUNDING_RATE])


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def cross_shortfall(states, bars, insts, tiers, wallet):
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def cross_distance(states, bars, insts, tiers, wallet, below):
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _value_at_extreme(st, bar, inst):
    """Notional of an open position at its bar's adverse mark extreme."""
    x = bar[M_MARK_LOW] if st[S_SIDE] > 0.0 else bar[M_MARK_HIGH]
    return notional(int(inst[I_SETTLEMENT]), st[S_SIZE], x, inst[I_CONTRACT_SIZE])


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def liquidate_all(t, states, bars, insts, tiers, p, wallet, equity, maintenance, trades,
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def any_open(states):
    for j in range(states.shape[0]):
        if states[j, S_SIDE] != 0.0:
            return True
    return False

