"""One bar for one combination: the event logic of SPEC §5, exactly once.

``step_bar`` advances one combination's state vector (``records.S_*``) through bar ``t``:
funding, the open (liquidation gap, stop gap, resting stop-limit, take-profit gap), orders at
the open, the adverse and favourable legs, the close (``fill="close"`` orders, mark-to-market,
ruin, the end-of-data exit) and the streaming stats. ``simulate.py`` (one combination, per-bar
outputs) and ``sweep.py`` (many combinations, stats only) both call it, so a sweep row and
the equivalent ``run()`` are the same computation. The rules the SPEC leaves open are fixed
in ``docs/semantics.md``; the bar's event families follow that page section by section:

    ledger.py    tier columns, event rows, liquidation price, closing a position, ruin level
    funding.py   step 1: funding settlement and spot-margin interest
    entries.py   orders that open positions: signals, sizing, entry limits
    exits.py     steps 2-5: gaps at the open, the legs, stops, take-profits, liquidation
    step.py      the bar driver (this file): which family runs when

``init_state``, ``load_bar``, ``step_bar``, ``settle_funding`` and ``RUIN_FRACTION`` are
imported from here by the kernels that drive bars (``simulate``, ``sweep``, ``portfolio``).

Arguments shared by the helpers:
    st      float64[N_STATE]   the combination's state (mutated)
    p       float64[N_PARAMS]  its parameters
    bar     float64[N_BAR]     bar ``t``'s values (``load_bar``; ``records.M_*`` order)
    inst    float64[N_INSTRUMENT]
    tiers   float64[4 * rows]: floor, mmr, cum and max leverage columns one after another
    trades  float64[k * N_TRADE_COLS], row-major trade rows written while they fit (k >= 0)
    events  float64[k * N_EVENT_COLS]; idem

Every array argument is 1-D on purpose: Numba reference-counts 2-D arrays and tuples of
arrays passed to a function at every call (~40-70 ns), which would dominate the bar.

Constant arguments are passed as ``int(R_END)`` / ``bool(True)``, never bare: Numba types a
bare constant as a literal and compiles a separate copy of the callee for every distinct
literal it is called with (``close_position`` was compiled 14 times, ``record_event`` 22),
which was most of the cold-start compile time. The wrapped value is a plain int64/bool.

Helpers that only kernels call (``ledger``, ``funding``, ``entries``, ``exits``, ``cross``,
the portfolio and portfolio-sweep helpers) are compiled with ``no_cpython_wrapper=True,
no_cfunc_wrapper=True``: no Python entry point to generate per function, ~1 s less of a
cold ``run()`` compile (10.1-10.3 s vs 11.2-11.3 s CPU, benchmarks/README.md). They cannot
be called from Python (the kernels that can: ``simulate``, ``sweep_block``,
``simulate_portfolio``, ``portfolio_sweep_block``, ``contracts``, ``lanes``, ``step_bar``).

No Python objects, no exceptions, no prints. Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.entries import check_entry_limit, process_signals
from backtest.kernels.exits import check_open, run_legs
from backtest.kernels.funding import charge_interest, settle_funding
from backtest.kernels.ledger import (
    RUIN_FRACTION,
    close_at_market,
    record_event,
    update_liquidation,
)
from backtest.kernels.records import (
    EV_SIGNAL_AFTER_EXPIRY,
    EV_SIGNAL_AFTER_RUIN,
    EV_SIGNAL_DROPPED_LAST_BAR,
    FILL_CLOSE,
    I_EXPIRY_BAR,
    I_KIND,
    I_SETTLE_PRICE,
    KIND_SPOT_MARGIN,
    M_BORROW_RATE,
    M_CLOSE,
    M_FUNDING_COUNT,
    M_HOURS_IN_BAR,
    M_MARK_OPEN,
    M_OPEN,
    M_PREV_CLOSE,
    N_MARKET,
    P_FILL,
    P_INITIAL_CAPITAL,
    P_TAKER_FEE,
    R_END,
    R_EXPIRY,
    S_BANKRUPT,
    S_EQUITY,
    S_FUNDING_BAR,
    S_LIQ,
    S_MIN_LIQ_DISTANCE,
    S_PEAK,
    S_PENDING_SIDE,
    S_PREV_EQUITY,
    S_RUINED,
    S_SIDE,
    S_STOP,
    S_STOP_LIMIT,
    S_TAKE_PROFIT,
    S_WALLET,
)
from backtest.kernels.stats import update_bar_stats


@njit(cache=True, nogil=True)
def init_state(st, p):
    """Reset a state vector for a new run: flat, wallet = equity = initial capital."""
    st[:] = 0.0
    capital = p[P_INITIAL_CAPITAL]
    st[S_WALLET] = capital
    st[S_EQUITY] = capital
    st[S_PREV_EQUITY] = capital
    st[S_PEAK] = capital
    st[S_MIN_LIQ_DISTANCE] = np.inf
    for slot in (S_LIQ, S_BANKRUPT, S_STOP, S_TAKE_PROFIT, S_STOP_LIMIT):
        st[slot] = np.nan


@njit(cache=True, nogil=True, inline="always")
def load_bar(bar, md, t):
    """Copy bar ``t`` of the bar-major market matrix ``md`` (n_bars, N_MARKET) into ``bar``.

    A 2-D array rather than a tuple of arrays: reading arrays out of a tuple costs an atomic
    reference count per access in Numba (~100 ns per bar for 14 series).
    """
    for i in range(N_MARKET):
        bar[i] = md[t, i]
    bar[M_PREV_CLOSE] = md[t - 1, M_CLOSE] if t > 0 else np.nan


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def idle_bar(st, p, t, signal_bar, is_last, sig_prev, sig_now, bar, inst, events, kind):
    """A bar on which nothing can trade (ruined and flat, or a future past its expiry): the
    signals that would have executed are counted as ``kind`` on their signal bar, the last
    bar's own signals (``fill="next_open"``) as dropped; the stats advance."""
    st[S_FUNDING_BAR] = 0.0
    fill_close = p[P_FILL] == FILL_CLOSE
    if (sig_now if fill_close else sig_prev) != 0:
        record_event(st, events, signal_bar, kind, 0.0)
    if not fill_close and is_last and sig_now != 0:
        # the last bar's own signals could fill on no bar, expired or not
        record_event(st, events, t, int(EV_SIGNAL_DROPPED_LAST_BAR), 0.0)
    update_bar_stats(st, p, bar, inst)


# Not inline="always": compiled once and called by simulate, sweep._full_step and the
# portfolio kernel alike (same argument types). Inlined, Numba typed and optimised its body
# once per caller: ~7 s more CPU on a cold run()+sweep(), for no measurable run-time gain.
@njit(cache=True, nogil=True)
def step_bar(t, is_last, st, p, bar, sig_prev, sig_now, inst, tiers, trades, events):
    """Advance one combination through bar ``t`` (SPEC §5, docs/semantics.md steps 1-6).

    ``bar`` holds bar ``t``'s values (``load_bar``); ``sig_prev``/``sig_now`` are the signal
    bitmasks (``SIG_*``) of bars ``t-1`` and ``t`` for this combination's signal set;
    ``is_last`` marks the final bar (end-of-data exit).
    """
    fill_close = p[P_FILL] == FILL_CLOSE
    # Signals that can no longer trade are recorded on their own (signal) bar.
    signal_bar = t if fill_close else t - 1
    if st[S_RUINED] != 0.0 and st[S_SIDE] == 0.0:
        # Trading has stopped; the signals that would have executed now are still counted.
        idle_bar(st, p, t, signal_bar, is_last, sig_prev, sig_now, bar, inst, events,
                 int(EV_SIGNAL_AFTER_RUIN))
        return
    expiry_bar = inst[I_EXPIRY_BAR]
    if expiry_bar >= 0.0 and t > expiry_bar:
        # A dated future after its expiry: nothing trades; signals are counted (SPEC §7).
        idle_bar(st, p, t, signal_bar, is_last, sig_prev, sig_now, bar, inst, events,
                 int(EV_SIGNAL_AFTER_EXPIRY))
        return
    # 1. funding or interest, 2. the open
    st[S_FUNDING_BAR] = 0.0
    if st[S_SIDE] != 0.0:
        if bar[M_FUNDING_COUNT] != 0.0:
            settle_funding(st, p, t, bar, inst, tiers)
        if inst[I_KIND] == KIND_SPOT_MARGIN and bar[M_HOURS_IN_BAR] != 0.0:
            charge_interest(st, p, bar[M_MARK_OPEN], bar[M_BORROW_RATE] * bar[M_HOURS_IN_BAR])
            update_liquidation(st, p, t, bar, inst, tiers)
        check_open(st, p, t, bar, inst, trades, events)
    # 3. orders at the open (none once ruined: an open position still meets its stops,
    # liquidation and the end of the data, but no new order is placed)
    ruined = st[S_RUINED] != 0.0
    if not fill_close and sig_prev != 0:
        if ruined:
            record_event(st, events, t - 1, int(EV_SIGNAL_AFTER_RUIN), 0.0)
        else:
            process_signals(st, p, t, t - 1, sig_prev, bar[M_OPEN], bar[M_PREV_CLOSE], bar,
                            inst, tiers, trades, events)
    if st[S_PENDING_SIDE] != 0.0 and not ruined:
        check_entry_limit(st, p, t, bar, inst, tiers, trades, events)
    # 4-5. the legs
    if st[S_SIDE] != 0.0:
        run_legs(st, p, t, bar, inst, trades, events)
    # 6. the close
    if sig_now != 0:
        if fill_close and ruined:
            record_event(st, events, t, int(EV_SIGNAL_AFTER_RUIN), 0.0)
        elif fill_close:
            # np.int64: sig_now arrives as uint8, sig_prev as int64; one specialisation
            process_signals(st, p, t, t, np.int64(sig_now), bar[M_CLOSE], bar[M_CLOSE], bar,
                            inst, tiers, trades, events)
        elif is_last:
            record_event(st, events, t, int(EV_SIGNAL_DROPPED_LAST_BAR), 0.0)
    if t == expiry_bar and st[S_SIDE] != 0.0:
        close_at_market(st, p, t, inst[I_SETTLE_PRICE], p[P_TAKER_FEE], bool(False),
                        int(R_EXPIRY), inst, trades)
    if is_last and st[S_SIDE] != 0.0:
        close_at_market(st, p, t, bar[M_CLOSE], p[P_TAKER_FEE], bool(True), int(R_END), inst,
                        trades)
    update_bar_stats(st, p, bar, inst)
    if st[S_EQUITY] <= RUIN_FRACTION * p[P_INITIAL_CAPITAL]:
        st[S_RUINED] = 1.0

