"""The portfolio sweep's cross-margin test on quiet bars, without the tier-table scans.

On a bar without funding (``portfolio_sweep``'s quiet bars) ``cross.cross_shortfall`` and
``cross._surplus_moved`` compute, per open position, ``upnl`` at a price and the
maintenance margin there: ``notional · mmr[row] − cum[row]`` with ``row`` found by
``contracts.tier_row`` (a scan of the whole table). Prices move little from bar to bar, so
the row rarely changes: ``rows[j]`` remembers the last row used and is taken when it is
still the row ``tier_row`` would return (its floor at or below the notional, the next floor
above it; floors ascending), else ``tier_row`` runs. Everything else is the same operations
in the same order as ``cross.py``, so the results are the same floats. BitMEX rules (whose
maintenance also reads the bar's next funding rate) and spot margin use ``cross.py``
itself (``fast_ok``).

Imports numpy, numba and kernels only.
"""

from numba import njit

from backtest.kernels.contracts import RULES_BINANCE, RULES_BITMEX, notional, tier_row, upnl
from backtest.kernels.ledger import tier_column
from backtest.kernels.records import (
    I_CONTRACT_SIZE,
    I_KIND,
    I_RULES,
    I_SETTLEMENT,
    KIND_SPOT_MARGIN,
    M_MARK_HIGH,
    M_MARK_LOW,
    S_ENTRY,
    S_SIDE,
    S_SIZE,
)

_NW = dict(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)


@njit(**_NW)
def fast_ok(insts, tiers):
    """Every market's maintenance can use the remembered rows: not BitMEX, not spot
    margin, and tier floors ascending."""
    for j in range(insts.shape[0]):
        if insts[j, I_RULES] == RULES_BITMEX or insts[j, I_KIND] == KIND_SPOT_MARGIN:
            return False
        floors = tier_column(tiers[j], int(0))
        for i in range(1, floors.shape[0]):
            if not floors[i] >= floors[i - 1]:
                return False
    return True


@njit(**_NW)
def _row(floors, value, hint):
    """``tier_row(floors, value)``, from ``hint`` when it is still that row."""
    last = floors.shape[0] - 1
    if floors[hint] <= value and (hint == last or floors[hint + 1] > value):
        return hint
    return tier_row(floors, value)


@njit(**_NW)
def _maintenance(st, inst, tiers, x, rows, j):
    """``contracts.maintenance_margin`` for the simple and binance rules at mark ``x``."""
    settle = int(inst[I_SETTLEMENT])
    cs = inst[I_CONTRACT_SIZE]
    floors = tier_column(tiers, int(0))
    if inst[I_RULES] == RULES_BINANCE:
        value = notional(settle, st[S_SIZE], x, cs)
    else:
        value = notional(settle, st[S_SIZE], st[S_ENTRY], cs)
    row = _row(floors, value, rows[j])
    rows[j] = row
    return value * tier_column(tiers, int(1))[row] - tier_column(tiers, int(2))[row]


@njit(**_NW)
def quiet_shortfall(states, bars, insts, tiers, wallet, rows):
    """``cross.cross_shortfall(...)[0]`` on a bar without funding (pay = 0)."""
    equity = wallet
    maintenance = 0.0
    for j in range(states.shape[0]):
        st = states[j]
        side = st[S_SIDE]
        if side == 0.0:
            continue
        inst = insts[j]
        x = bars[j, M_MARK_LOW] if side > 0.0 else bars[j, M_MARK_HIGH]
        mm = _maintenance(st, inst, tiers[j], x, rows, j)
        gain = upnl(int(inst[I_SETTLEMENT]), side, st[S_SIZE], st[S_ENTRY], x,
                    inst[I_CONTRACT_SIZE])
        equity += gain - 0.0
        maintenance += mm
    return equity - maintenance


@njit(**_NW)
def quiet_surplus_moved(states, bars, insts, tiers, wallet, d, rows):
    """``cross._surplus_moved(states, bars, insts, tiers, wallet, d)``."""
    surplus = wallet
    for j in range(states.shape[0]):
        side = states[j, S_SIDE]
        if side == 0.0:
            continue
        st = states[j]
        inst = insts[j]
        if side > 0.0:
            x = max(bars[j, M_MARK_LOW] * (1.0 - d), 1e-300)
        else:
            x = bars[j, M_MARK_HIGH] * (1.0 + d)
        mm = _maintenance(st, inst, tiers[j], x, rows, j)
        surplus += upnl(int(inst[I_SETTLEMENT]), side, st[S_SIZE], st[S_ENTRY], x,
                        inst[I_CONTRACT_SIZE]) - mm
    return surplus
