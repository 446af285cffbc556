"""Many combinations of one portfolio (SPEC §9 over several markets), bars outer,
combinations inner, markets innermost.

``portfolio_sweep_block(params, md, insts, tiers, signals, lo, hi, summary, quiet)`` runs
combinations ``lo..hi-1`` of ``params`` (float64[n_combos, n_markets, N_PARAMS]: one
``portfolio.simulate_portfolio`` parameter block per combination) over every bar;
``md``/``insts``/``tiers``/``signals`` as for ``simulate_portfolio``. Outputs, per
combination ``c``: ``summary[c]`` (float64[n_combos, N_SUMMARY]) is exactly
``simulate_portfolio``'s ``summary`` (``portfolio.portfolio_summary``: the running stats of
the combined equity and the markets' totals, which is all the stats read, so
``sweeps/portfolio.py`` finalises each row with ``run()``'s own ``summary_values``);
``quiet[c]`` counts the bars that took the quiet path (a diagnostic). Nothing per bar is
stored; trade and event rows are only counted (zero-length buffers).

Every bar of a combination is ``portfolio.portfolio_bar`` (the one bar of ``run()``),
except a bar on which nothing can happen to it: no signal executing in it changes
anything (``_signals_clear``), no market settles funding, none holds a resting order
(``_after_step``'s flags, which only a full step changes), every position's liquidation,
stop and take-profit levels lie beyond the bar's extremes (``_levels_clear``: ``lanes.guards`` and
``quiet.needs_full_step``, the single-market sweep's tests), and in cross mode the
portfolio's cross test passes (``_cross_safe``: a ``cross_quiet`` certificate, else the
exact test). On such a bar ``step_bar`` would only move the trailing references and update
each market's statistics; the quiet path does what of that the outputs read
(``_quiet_equity``), then the combined equity's stats and ``end_of_bar`` (in cross mode
the running cross distance, skipped when a certificate shows it cannot move). The quiet
path is written into the bar loop, without calls taking arrays: such a call costs more
than the test itself. A flat portfolio's equity is its wallet; a ruined one with no
position left costs one comparison per bar (early exit). Markets with an expiry or
spot-margin interest always take the full step. Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.contracts import upnl
from backtest.kernels.cross import any_open, cross_shortfall
from backtest.kernels.cross_quiet import (
    C_VALID,
    cert_pads,
    certify,
    covered,
    fast_ok,
    quiet_shortfall,
    quiet_surplus_moved,
)
from backtest.kernels.exits import move_trailing_reference
from backtest.kernels.lanes import guards
from backtest.kernels.portfolio import (
    end_of_bar,
    init_portfolio,
    load_bars,
    portfolio_bar,
    portfolio_equity,
    portfolio_summary,
)
from backtest.kernels.quiet import needs_full_step, signal_matters
from backtest.kernels.records import (
    FILL_CLOSE,
    I_CONTRACT_SIZE,
    I_EXPIRY_BAR,
    I_KIND,
    I_SETTLEMENT,
    KIND_SPOT_MARGIN,
    M_FUNDING_COUNT,
    M_HIGH,
    M_LOW,
    M_MARK_CLOSE,
    M_MARK_HIGH,
    M_MARK_LOW,
    M_MARK_OPEN,
    M_OPEN,
    MODE_CROSS,
    N_BAR,
    N_STATE,
    P_FILL,
    P_INITIAL_CAPITAL,
    P_MARGIN_MODE,
    P_STOP_TRIGGER,
    P_TRAILING,
    S_ENTRY,
    S_EXPOSED_BARS,
    S_LIQ,
    S_MIN_LIQ_DISTANCE,
    S_PENDING_SIDE,
    S_RUINED,
    S_SIDE,
    S_SIZE,
    S_STOP_LIMIT,
    S_TRAIL_REF,
    TRIGGER_MARK,
)
from backtest.kernels.stats import N_EQUITY, init_equity_stats, update_equity_stats
from backtest.kernels.step import RUIN_FRACTION
from backtest.kernels.views import unowned


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _extremes(bars, ext):
    """Per market: mark low/high and last low/high with the open included (the levels
    ``needs_full_step`` compares)."""
    for j in range(bars.shape[0]):
        ext[j, 0] = min(bars[j, M_MARK_OPEN], bars[j, M_MARK_LOW])
        ext[j, 1] = max(bars[j, M_MARK_OPEN], bars[j, M_MARK_HIGH])
        ext[j, 2] = min(bars[j, M_OPEN], bars[j, M_LOW])
        ext[j, 3] = max(bars[j, M_OPEN], bars[j, M_HIGH])


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _bar_can_be_quiet(md, signals, t, n_bars, allowed):
    """(No market settles funding at t and t is not the last bar, some market has a
    signal at bar t-1 or t)."""
    if not allowed or t == n_bars - 1:
        return False, False
    signal = False
    for j in range(md.shape[0]):
        if md[j, t, M_FUNDING_COUNT] != 0.0:
            return False, False
        if signals[j, t] != 0 or (t > 0 and signals[j, t - 1] != 0):
            signal = True
    return True, signal


@njit(cache=True, nogil=True, inline="always")
def _signals_clear(states, c, fill_close, signals, t):
    """No signal executing in bar t (bar t-1's at the open, or with ``fill="close"`` bar
    t's at the close; the others do nothing before the last bar) changes anything for
    combination ``c`` (``quiet.signal_matters``; not ruined)."""
    for j in range(states.shape[1]):
        if fill_close[c, j]:
            code = np.int64(signals[j, t])
        else:
            code = np.int64(signals[j, t - 1]) if t > 0 else np.int64(0)
        if signal_matters(code, states[c, j, S_SIDE], False):
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def _levels_clear(states, c, g, trailing, trig, ext):
    """No open position of combination ``c`` meets a guard level, a stop or its trailing
    stop on this bar (``quiet.needs_full_step`` per market)."""
    for j in range(states.shape[1]):
        side = states[c, j, S_SIDE]
        if side != 0.0 and needs_full_step(side, False, g[c, j, 0], g[c, j, 1], g[c, j, 2],
                                           g[c, j, 3], states[c, j, S_TRAIL_REF],
                                           trailing[c, j], trig[c, j], False, ext[j, 0],
                                           ext[j, 1], ext[j, 2], ext[j, 3]):
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def _quiet_equity(t, states, c, ps, bars, insts, trailing, wallet, cross):
    """What ``step_bar`` does on a quiet bar that the outputs read, for every open position
    of combination ``c``: the trailing reference (when a trailing stop is set), the
    exposure count and, isolated, the minimum liquidation distance (``stats.
    update_bar_stats``' arithmetic; a cross portfolio reports its cross distance instead);
    returns the combined equity (``portfolio.portfolio_equity``, same order)."""
    equity = wallet
    for j in range(states.shape[1]):
        side = states[c, j, S_SIDE]
        if side == 0.0:
            continue
        if trailing[c, j] == trailing[c, j]:
            move_trailing_reference(states[c, j], ps[j], t, bars[j])
        states[c, j, S_EXPOSED_BARS] += 1.0
        if not cross:
            liq = states[c, j, S_LIQ]
            if side > 0.0:
                x = bars[j, M_MARK_LOW]
                dist = (x - liq) / x
            else:
                x = bars[j, M_MARK_HIGH]
                dist = (liq - x) / x
            if dist < states[c, j, S_MIN_LIQ_DISTANCE]:
                states[c, j, S_MIN_LIQ_DISTANCE] = dist
        equity += upnl(int(insts[j, I_SETTLEMENT]), side, states[c, j, S_SIZE],
                       states[c, j, S_ENTRY], bars[j, M_MARK_CLOSE], insts[j, I_CONTRACT_SIZE])
    return equity


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _cross_safe(states, bars, insts, tiers, wallet, fast, rows, cert, pads):
    """The cross test of ``portfolio_bar`` passes on a quiet bar (surplus > 0): from the
    certificate when it covers the bar, else evaluated exactly (and re-certified)."""
    certs = pads.shape[0] != 0
    if not fast:
        return cross_shortfall(states, bars, insts, tiers, wallet)[0] > 0.0
    if certs and covered(states, bars, cert, 0.0):
        return True
    surplus = quiet_shortfall(states, bars, insts, tiers, wallet, rows)
    if surplus > 0.0:
        if certs:
            certify(states, bars, insts, tiers, wallet, rows, pads, 0.0, cert, surplus)
        return True
    return False


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _moved_safe(states, bars, insts, tiers, wallet, d, rows, cert, pads):
    """``cross._surplus_moved(..., d) > 0``, from the certificate when it covers the bar."""
    certs = pads.shape[0] != 0
    if certs and covered(states, bars, cert, d):
        return True
    surplus = quiet_surplus_moved(states, bars, insts, tiers, wallet, d, rows)
    if surplus > 0.0:
        if certs:
            certify(states, bars, insts, tiers, wallet, rows, pads, d, cert, surplus)
        return True
    return False


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _end_of_bar(t, cross, states, bars, insts, tiers, p, wallet, equity, min_cross, fast,
                rows, cert, pads):
    """``portfolio.end_of_bar``, skipping ``cross.cross_distance``'s own first test when
    ``_moved_safe`` shows that it returns ``min_cross`` unchanged."""
    if fast and cross and min_cross < np.inf and any_open(states) and (
            _moved_safe(states, bars, insts, tiers, wallet, min_cross, rows, cert, pads)):
        if equity <= RUIN_FRACTION * p[P_INITIAL_CAPITAL]:
            for j in range(states.shape[0]):
                states[j, S_RUINED] = 1.0
        return min_cross
    return end_of_bar(t, cross, states, bars, insts, tiers, p, wallet, equity, min_cross)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _after_step(states, ps, g, flags):
    """After a full step: each market's ``lanes.guards`` into ``g`` (they change only
    when a full step changes the state; the quiet path moves only the trailing reference,
    which the guards do not read) and ``flags`` = (holds a position, no resting order)."""
    held = False
    idle = True
    for j in range(states.shape[0]):
        st = states[j]
        trigger_mark = ps[j, P_STOP_TRIGGER] == TRIGGER_MARK
        g[j, 0], g[j, 1], g[j, 2], g[j, 3] = guards(st, trigger_mark)
        held = held or st[S_SIDE] != 0.0
        idle = idle and st[S_PENDING_SIDE] == 0.0 and st[S_STOP_LIMIT] != st[S_STOP_LIMIT]
    flags[0] = held
    flags[1] = idle


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _quiet_allowed(insts):
    for j in range(insts.shape[0]):
        if insts[j, I_KIND] == KIND_SPOT_MARGIN or insts[j, I_EXPIRY_BAR] >= 0.0:
            return False
    return True


@njit(cache=True, nogil=True)
def portfolio_sweep_block(params, md, insts, tiers, signals, lo, hi, summary, quiet):
    """Combinations ``lo..hi-1`` over every bar (shapes in the module docstring; every
    array C-contiguous and alive until this returns: the kernel reads them through
    unowned views)."""
    n_markets = md.shape[0]
    n = hi - lo
    # Block-local copies and unowned views: shared arrays' reference counts would bounce
    # between threads, and every helper call would count them (views.py).
    insts_own = insts.copy()
    tiers_own = tiers.copy()
    states_own = np.empty((n, n_markets, N_STATE))
    bars_own = np.empty((n_markets, N_BAR))
    ext_own = np.empty((n_markets, 4))
    counts_own = np.zeros((n, 2), dtype=np.int64)
    liq_own = np.zeros(n_markets)
    trades_own = np.empty(0)
    trade_market_own = np.empty(0, dtype=np.int64)
    rows_own = np.zeros((n, 2, n_markets), dtype=np.int64)
    guards_own = np.empty((n, n_markets, 4))
    acc_own = np.empty((n, N_EQUITY))
    cert_own = np.zeros((n, 2, 2 + n_markets))
    pads_own = np.empty(n_markets)
    if not cert_pads(insts_own, tiers_own, pads_own):
        pads_own = np.empty(0)
    # The owned arrays live in this frame for the whole call: _run_block only makes views
    # of them without a reference count (an array whose last use was its view would be
    # freed under the view).
    _run_block(params, md, insts_own, tiers_own, signals, lo, hi, summary, quiet, states_own,
               bars_own, ext_own, counts_own, liq_own, trades_own, trade_market_own,
               rows_own, guards_own, acc_own, cert_own, pads_own)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _run_block(params, md, insts_own, tiers_own, signals, lo, hi, summary, quiet, states_own,
               bars_own, ext_own, counts_own, liq_own, trades_own, trade_market_own,
               rows_own, guards_own, acc_own, cert_own, pads_own):
    """The bar loop of ``portfolio_sweep_block`` over arrays it owns (see there)."""
    n_markets = md.shape[0]
    n_bars = md.shape[1]
    n = hi - lo
    wallets = np.empty(n)
    min_cross = np.full(n, np.inf)
    crosses = np.empty(n, dtype=np.bool_)
    exposed = np.zeros(n)
    ruin_level = np.empty(n)
    flags = np.empty((n, 2), dtype=np.bool_)
    trailing = np.empty((n, n_markets))
    trig = np.empty((n, n_markets), dtype=np.bool_)
    fill_close = np.empty((n, n_markets), dtype=np.bool_)
    insts_v = unowned(insts_own)
    tiers_v = unowned(tiers_own)
    states = unowned(states_own)
    bars = unowned(bars_own)
    ext = unowned(ext_own)
    counts = unowned(counts_own)
    liq_funding = unowned(liq_own)
    trades = unowned(trades_own)
    trade_market = unowned(trade_market_own)
    params = unowned(params)
    md = unowned(md)
    signals = unowned(signals)
    summary = unowned(summary)
    quiet = unowned(quiet)
    acc = unowned(acc_own)
    allowed = _quiet_allowed(insts_v)
    fast = fast_ok(insts_v, tiers_v)
    rows = unowned(rows_own)
    g = unowned(guards_own)
    cert = unowned(cert_own)
    pads = unowned(pads_own)
    for c in range(n):
        p = params[lo + c, 0]
        crosses[c] = p[P_MARGIN_MODE] == MODE_CROSS
        init_portfolio(states[c], p, crosses[c])
        _after_step(states[c], params[lo + c], g[c], flags[c])
        wallets[c] = p[P_INITIAL_CAPITAL]
        ruin_level[c] = RUIN_FRACTION * p[P_INITIAL_CAPITAL]
        init_equity_stats(acc[c], p[P_INITIAL_CAPITAL])
        quiet[lo + c] = 0.0
        for j in range(n_markets):
            trailing[c, j] = params[lo + c, j, P_TRAILING]
            trig[c, j] = params[lo + c, j, P_STOP_TRIGGER] == TRIGGER_MARK
            fill_close[c, j] = params[lo + c, j, P_FILL] == FILL_CLOSE
    for t in range(n_bars):
        load_bars(bars, md, t)
        _extremes(bars, ext)
        is_last = t == n_bars - 1
        bar_quiet, signal = _bar_can_be_quiet(md, signals, t, n_bars, allowed)
        for c in range(n):
            cross = crosses[c]
            wallet = wallets[c]
            held = flags[c, 0]
            ruined = states[c, 0, S_RUINED] != 0.0
            # what follows the bar's equity: 0 nothing, 1 the ruin test, 2 end_of_bar
            tail = 0
            if ruined and not held:      # nothing can move: one comparison (early exit)
                eq = wallet
                quiet[lo + c] += 1.0
            elif (bar_quiet and not ruined and flags[c, 1]
                    and (not signal or _signals_clear(states, c, fill_close, signals, t))
                    and _levels_clear(states, c, g, trailing, trig, ext)
                    and (not cross or not held or covered(states[c], bars, cert[c, 0], 0.0)
                         or _cross_safe(states[c], bars, insts_v, tiers_v, wallet, fast,
                                        rows[c, 0], cert[c, 0], pads))):
                quiet[lo + c] += 1.0
                eq = wallet       # flat: the wallet, which passed the ruin test when it moved
                if held:
                    eq = _quiet_equity(t, states, c, params[lo + c], bars, insts_v, trailing,
                                       wallet, cross)
                    exposed[c] += 1.0
                    # end_of_bar: the cross distance cannot move (certified), or isolated
                    tail = 1 if not cross or (min_cross[c] < np.inf and covered(
                        states[c], bars, cert[c, 1], min_cross[c])) else 2
            else:
                wallet = portfolio_bar(t, is_last, cross, states[c], params[lo + c], bars,
                                       insts_v, tiers_v, signals, wallet, trades,
                                       trade_market, trades, trade_market, counts[c],
                                       liq_funding)
                wallets[c] = wallet
                _after_step(states[c], params[lo + c], g[c], flags[c])
                cert[c, 0, C_VALID] = 0.0
                cert[c, 1, C_VALID] = 0.0
                eq = portfolio_equity(states[c], bars, insts_v, wallet)
                if flags[c, 0]:
                    exposed[c] += 1.0
                tail = 2
            update_equity_stats(acc[c], eq)
            if tail == 1 and eq <= ruin_level[c]:
                for j in range(n_markets):
                    states[c, j, S_RUINED] = 1.0
            elif tail == 2:
                min_cross[c] = _end_of_bar(t, cross, states[c], bars, insts_v, tiers_v,
                                           params[lo + c, 0], wallet, eq, min_cross[c], fast,
                                           rows[c, 1], cert[c, 1], pads)
    for c in range(n):
        portfolio_summary(states[c], acc[c], crosses[c], min_cross[c], exposed[c],
                          summary[lo + c])
