"""Step 1 of a bar (SPEC §6, §7): funding settlement and spot-margin interest.

Arguments as in ``step.py``'s module docstring (``st`` state, ``p`` parameters, ``bar`` the
bar's values, ``inst``/``tiers`` the instrument, ``trades``/``events`` flat row buffers);
every array argument 1-D, constants passed as ``int(...)``/``bool(...)`` (see there why).
No Python objects, no exceptions, no prints. Imports numpy, numba and kernels only.
"""

from numba import njit

from backtest.kernels.contracts import (
    notional,
)
from backtest.kernels.ledger import update_liquidation
from backtest.kernels.records import (
    I_CONTRACT_SIZE,
    I_SETTLEMENT,
    M_FUNDING_RATE,
    M_MARK_OPEN,
    MODE_CROSS,
    P_MARGIN_MODE,
    S_BORROWED,
    S_FUNDING_BAR,
    S_FUNDING_PAID,
    S_INTEREST_PAID,
    S_MARGIN,
    S_SIDE,
    S_SIZE,
    S_TRADE_FUNDING,
    S_TRADE_INTEREST,
    S_WALLET,
)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def settle_funding(st, p, t, bar, inst, tiers):
    """SPEC §6: pay ``side * notional(mark_open) * rate`` at the open; move the liq price."""
    settle = int(inst[I_SETTLEMENT])
    pay = st[S_SIDE] * notional(settle, st[S_SIZE], bar[M_MARK_OPEN],
                                inst[I_CONTRACT_SIZE]) * bar[M_FUNDING_RATE]
    st[S_WALLET] -= pay
    if p[P_MARGIN_MODE] != MODE_CROSS:
        st[S_MARGIN] -= pay
    st[S_TRADE_FUNDING] += pay
    st[S_FUNDING_PAID] += pay
    st[S_FUNDING_BAR] = pay
    update_liquidation(st, p, t, bar, inst, tiers)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def charge_interest(st, p, price, rate_hours):
    """Spot-margin interest for ``rate_hours`` (rate x hours) on the borrowed amount.

    A long owes quote (``S_BORROWED``); a short owes ``size`` base, valued at ``price`` when
    charged. Taken from the wallet and, isolated, from the position's margin.
    """
    if st[S_SIDE] > 0.0:
        cost = st[S_BORROWED] * rate_hours
    else:
        cost = st[S_SIZE] * price * rate_hours
    st[S_WALLET] -= cost
    if p[P_MARGIN_MODE] != MODE_CROSS:
        st[S_MARGIN] -= cost
    st[S_TRADE_INTEREST] += cost
    st[S_INTEREST_PAID] += cost
