"""The account operations every event family uses: tier columns, event rows, the
liquidation price, closing a position (trade row, counters, wallet) and the ruin threshold.

Arguments as in ``step.py``'s module docstring (``st`` state, ``p`` parameters, ``bar`` the
bar's values, ``inst``/``tiers`` the instrument, ``trades``/``events`` flat row buffers);
every array argument 1-D, constants passed as ``int(...)``/``bool(...)`` (see there why).
No Python objects, no exceptions, no prints. Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.contracts import (
    bankruptcy_price,
    liquidation_price,
    notional,
    spot_margin_liquidation_price,
    upnl,
)
from backtest.kernels.records import (
    E_BAR,
    E_KIND,
    E_VALUE,
    I_CONTRACT_SIZE,
    I_KIND,
    I_MARGIN_LEVEL,
    I_RULES,
    I_SETTLEMENT,
    I_TICK,
    KIND_SPOT_MARGIN,
    M_NEXT_FUNDING_RATE,
    MODE_CROSS,
    N_EVENT_COLS,
    N_TRADE_COLS,
    P_LEVERAGE,
    P_MARGIN_MODE,
    P_SLIPPAGE,
    R_LIQUIDATION,
    R_STOP_LOSS,
    R_TRAILING,
    S_BANKRUPT,
    S_BORROWED,
    S_ENTRY,
    S_ENTRY_BAR,
    S_ENTRY_FEE,
    S_EVENT_COUNT0,
    S_FEES_PAID,
    S_LIQ,
    S_MARGIN,
    S_MARGIN0,
    S_N_EVENT_ROWS,
    S_N_LIQUIDATIONS,
    S_N_STOPS,
    S_N_TRADE_ROWS,
    S_N_TRADES,
    S_N_WINS,
    S_SHARED_CROSS,
    S_SIDE,
    S_SIZE,
    S_STOP_LIMIT,
    S_SUM_LOSS,
    S_SUM_WIN,
    S_TRADE_FUNDING,
    S_TRADE_INTEREST,
    S_WALLET,
    T_ENTRY_BAR,
    T_ENTRY_PRICE,
    T_EXIT_BAR,
    T_EXIT_PRICE,
    T_FEES,
    T_FUNDING,
    T_GROSS_PNL,
    T_INTEREST,
    T_LEVERAGE,
    T_MARGIN,
    T_PNL,
    T_REASON,
    T_SIDE,
    T_SIZE,
)

# Equity at or below this fraction of the initial capital counts as zero (ruin): a bankruptcy
# fill leaves a rounding residue of ~1e-13, which must not keep a dead account trading.
RUIN_FRACTION = 1e-9


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def tier_column(tiers, k):
    """Column ``k`` (0 floor, 1 mmr, 2 cum, 3 max leverage) of the flat tier table."""
    rows = tiers.shape[0] // 4
    return tiers[k * rows:(k + 1) * rows]


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def record_event(st, events, t, kind, value):
    """Count an event and write its row when the event matrix has room."""
    st[S_EVENT_COUNT0 + kind] += 1.0
    row = int(st[S_N_EVENT_ROWS])
    base = row * N_EVENT_COLS
    if base + N_EVENT_COLS <= events.shape[0]:
        events[base + E_BAR] = t
        events[base + E_KIND] = kind
        events[base + E_VALUE] = value
        st[S_N_EVENT_ROWS] = row + 1


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def update_liquidation(st, p, t, bar, inst, tiers):
    """Recompute the liquidation and bankruptcy prices from the margin now behind the position."""
    side = st[S_SIDE]
    if side == 0.0:
        st[S_LIQ] = np.nan
        st[S_BANKRUPT] = np.nan
        return
    if st[S_SHARED_CROSS] != 0.0:
        # A portfolio's cross margin is tested across all markets by kernels/portfolio.py;
        # this market alone never triggers it.
        st[S_LIQ] = 0.0 if side > 0.0 else np.inf
        st[S_BANKRUPT] = st[S_LIQ]
        return
    wallet = st[S_WALLET] if p[P_MARGIN_MODE] == MODE_CROSS else st[S_MARGIN]
    settle = int(inst[I_SETTLEMENT])
    rules = int(inst[I_RULES])
    st[S_BANKRUPT] = bankruptcy_price(rules, settle, side, st[S_SIZE], st[S_ENTRY], wallet,
                                      inst[I_CONTRACT_SIZE], inst[I_TICK])
    if inst[I_KIND] == KIND_SPOT_MARGIN:
        st[S_LIQ] = spot_margin_liquidation_price(settle, side, st[S_SIZE], st[S_ENTRY], wallet,
                                                  inst[I_CONTRACT_SIZE], st[S_BORROWED],
                                                  st[S_TRADE_INTEREST], inst[I_MARGIN_LEVEL])
        return
    st[S_LIQ] = liquidation_price(rules, settle, side, st[S_SIZE], st[S_ENTRY], wallet,
                                  inst[I_CONTRACT_SIZE], tier_column(tiers, int(0)),
                                  tier_column(tiers, int(1)), tier_column(tiers, int(2)),
                                  bar[M_NEXT_FUNDING_RATE], 0.0, 0.0, inst[I_TICK])


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def close_position(st, p, t, exit_price, gross, exit_fee, reason, trades):
    """Realise ``gross`` and ``exit_fee`` into the wallet, write the trade row, go flat."""
    st[S_WALLET] += gross - exit_fee
    fees = st[S_ENTRY_FEE] + exit_fee
    funding = st[S_TRADE_FUNDING]
    interest = st[S_TRADE_INTEREST]
    pnl = gross - fees - funding - interest
    st[S_FEES_PAID] += exit_fee
    st[S_N_TRADES] += 1.0
    if pnl > 0.0:
        st[S_N_WINS] += 1.0
        st[S_SUM_WIN] += pnl
    elif pnl < 0.0:
        st[S_SUM_LOSS] -= pnl
    if reason == R_LIQUIDATION:
        st[S_N_LIQUIDATIONS] += 1.0
    elif reason == R_STOP_LOSS or reason == R_TRAILING:
        st[S_N_STOPS] += 1.0
    row = int(st[S_N_TRADE_ROWS])
    base = row * N_TRADE_COLS
    if base + N_TRADE_COLS <= trades.shape[0]:
        trades[base + T_ENTRY_BAR] = st[S_ENTRY_BAR]
        trades[base + T_EXIT_BAR] = t
        trades[base + T_SIDE] = st[S_SIDE]
        trades[base + T_SIZE] = st[S_SIZE]
        trades[base + T_LEVERAGE] = p[P_LEVERAGE]
        trades[base + T_ENTRY_PRICE] = st[S_ENTRY]
        trades[base + T_EXIT_PRICE] = exit_price
        trades[base + T_MARGIN] = st[S_MARGIN0]
        trades[base + T_GROSS_PNL] = gross
        trades[base + T_FEES] = fees
        trades[base + T_FUNDING] = funding
        trades[base + T_PNL] = pnl
        trades[base + T_REASON] = reason
        trades[base + T_INTEREST] = interest
        st[S_N_TRADE_ROWS] = row + 1
    st[S_SIDE] = 0.0
    st[S_SIZE] = 0.0
    st[S_MARGIN] = 0.0
    st[S_STOP_LIMIT] = np.nan
    st[S_LIQ] = np.nan
    st[S_BANKRUPT] = np.nan


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def close_at_market(st, p, t, price, fee_rate, slipped, reason, inst, trades):
    """Close at ``price`` (moved against the trader by slippage when ``slipped``)."""
    side = st[S_SIDE]
    if slipped:
        price = price * (1.0 - side * p[P_SLIPPAGE])
    settle = int(inst[I_SETTLEMENT])
    cs = inst[I_CONTRACT_SIZE]
    gross = upnl(settle, side, st[S_SIZE], st[S_ENTRY], price, cs)
    fee = fee_rate * notional(settle, st[S_SIZE], price, cs)
    close_position(st, p, t, price, gross, fee, reason, trades)
