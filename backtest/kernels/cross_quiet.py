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

Certificates (``covered``/``certify``) skip even that on most quiet bars. Between two full
steps the wallet and the positions are fixed, so the surplus is a function of the marks
alone, and for linear contracts whose tier table has ``0 <= mmr <= 1`` it is
non-decreasing in a long's mark and non-increasing in a short's (uPnL moves by ``size`` per
unit of price, maintenance by ``size · mmr``; ``cum`` keeps it continuous across tiers, and
any jump a table has is bounded and allowed for: ``cert_pads``). ``certify`` evaluates the
surplus at marks somewhat more adverse than this bar's (by a share of what the surplus
could absorb; else at this bar's own), and when it exceeds ``_MARGIN`` of the magnitudes
involved (far above the rounding error of the evaluation, 2^-40 against ~2^-50) records
those marks: while every open position's mark
stays on the safe side of its recorded mark and within a factor 2 of it (so the
magnitudes stay bounded), the computed surplus is certainly > 0 and the exact evaluation
would say so. A certificate is per test (``d``: the adverse move of the marks, 0 for the
bar's own test) and is dropped after a full step.

Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.contracts import (
    LINEAR,
    RULES_BINANCE,
    RULES_BITMEX,
    notional,
    tier_row,
    upnl,
)
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
_MARGIN = 2.0 ** -40
# Certify at marks up to this fraction more adverse than the bar's (fewer
# re-certifications), by default a quarter of what the surplus could absorb.
_SLACK = 0.02
_SLACK_SHARE = 0.25
# Certificate layout: valid flag, its d, then the recorded (unmoved) mark per market.
C_VALID, C_D, C_MARK0 = 0, 1, 2


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


@njit(**_NW)
def cert_pads(insts, tiers, pads):
    """Whether certificates apply (every market linear, ``fast_ok``, ``0 <= mmr <= 1`` and
    finite ``cum``); ``pads[j]`` gets market j's allowance: ``_MARGIN`` of its largest
    ``|cum|`` plus, per tier, the largest upward jump of its maintenance at a tier floor
    (0 for a consistent table, up to rounding, which the allowance covers too)."""
    for j in range(insts.shape[0]):
        if int(insts[j, I_SETTLEMENT]) != LINEAR:
            return False
        floors = tier_column(tiers[j], int(0))
        mmr = tier_column(tiers[j], int(1))
        cum = tier_column(tiers[j], int(2))
        biggest = 0.0
        jump = 0.0
        count = 0
        for k in range(floors.shape[0]):
            if not floors[k] < np.inf:
                break
            if not (mmr[k] >= 0.0 and mmr[k] <= 1.0 and abs(cum[k]) < np.inf):
                return False
            count += 1
            biggest = max(biggest, abs(cum[k]))
            if k > 0:
                step = (floors[k] * mmr[k] - cum[k]) - (floors[k] * mmr[k - 1] - cum[k - 1])
                step += _MARGIN * (abs(floors[k]) + abs(cum[k]) + abs(cum[k - 1]))
                jump = max(jump, step)
        pads[j] = _MARGIN * biggest + 2.0 * count * jump
    return True


@njit(**_NW)
def _moved(side, x, d):
    """A mark moved adversely by ``d`` (``cross._surplus_moved``'s, ``d = 0``: ``x``)."""
    if side > 0.0:
        return max(x * (1.0 - d), 1e-300)
    return x * (1.0 + d)


@njit(cache=True, nogil=True, inline="always")
def covered(states, bars, cert, d):
    """The certificate ``cert`` (float64[2 + n_markets]) holds for this bar's marks moved
    by ``d``: the surplus there is certainly > 0."""
    if cert[C_VALID] == 0.0 or cert[C_D] != d:
        return False
    for j in range(states.shape[0]):
        side = states[j, S_SIDE]
        if side == 0.0:
            continue
        ref = cert[C_MARK0 + j]
        if side > 0.0:
            x = bars[j, M_MARK_LOW]
            if not (x >= ref and x <= 2.0 * ref):
                return False
        else:
            x = bars[j, M_MARK_HIGH]
            if not (x <= ref and x >= 0.5 * ref):
                return False
    return True


@njit(**_NW)
def _certified_at(states, bars, insts, tiers, wallet, rows, pads, d, slack, cert):
    """Evaluate the surplus with each mark ``slack`` beyond the bar's extreme and moved by
    ``d``; record the unmoved marks in ``cert`` when it clears the margin."""
    surplus = wallet
    scale = abs(wallet)
    pad = 0.0
    for j in range(states.shape[0]):
        st = states[j]
        side = st[S_SIDE]
        if side == 0.0:
            continue
        if side > 0.0:
            x = bars[j, M_MARK_LOW] * (1.0 - slack)
        else:
            x = bars[j, M_MARK_HIGH] * (1.0 + slack)
        cert[C_MARK0 + j] = x
        y = _moved(side, x, d)
        inst = insts[j]
        mm = _maintenance(st, inst, tiers[j], y, rows, j)
        surplus += upnl(int(inst[I_SETTLEMENT]), side, st[S_SIZE], st[S_ENTRY], y,
                        inst[I_CONTRACT_SIZE]) - mm
        scale += st[S_SIZE] * (4.0 * y + 2.0 * abs(st[S_ENTRY]))
        pad += pads[j]
    if surplus > _MARGIN * scale + pad:
        cert[C_VALID] = 1.0
        cert[C_D] = d
        return True
    return False


@njit(**_NW)
def certify(states, bars, insts, tiers, wallet, rows, pads, d, cert, surplus):
    """After an exact evaluation found ``surplus`` > 0 at this bar's marks moved by ``d``:
    a certificate at marks more adverse (by at most ``_SLACK``, and by about
    ``_SLACK_SHARE`` of the move the surplus could absorb at a rate of twice the positions'
    value), else at the bar's own, else none."""
    value = 0.0
    for j in range(states.shape[0]):
        side = states[j, S_SIDE]
        if side != 0.0:
            value += states[j, S_SIZE] * (bars[j, M_MARK_LOW] if side > 0.0
                                          else bars[j, M_MARK_HIGH])
    slack = _SLACK
    if value > 0.0:
        slack = min(_SLACK, _SLACK_SHARE * surplus / (2.0 * value))
    if not _certified_at(states, bars, insts, tiers, wallet, rows, pads, d, slack, cert):
        if not _certified_at(states, bars, insts, tiers, wallet, rows, pads, d, 0.0, cert):
            cert[C_VALID] = 0.0
