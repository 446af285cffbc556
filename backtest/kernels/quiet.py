"""The sweep's cheap paths over hot lanes (``lanes.py``): bars on which a combination
can have no event cost a few branch-free operations instead of a ``step_bar``.

``quiet_pass`` (lanes holding a position or an order) decides per lane whether the bar
needs the full step (``signal_matters``, ``needs_full_step``) and otherwise applies what
``step_bar`` would: the trailing reference, the mark-to-market stats
(``stats.update_bar_stats``' arithmetic in the same order) and the ruin test. It runs as
three loops: ``_judge`` (vectorised: flags, equity, the floored equity ratio, peak,
certificates, ruin), ``_log_returns`` (the ratio's logarithm, the ``np.log`` of
``stats.log_return``: a libm call per lane, in a loop of its own so that the vectorised
loops around it keep their registers) and ``_fold_returns`` (vectorised: running
mean/variance/downside sums). ``flat_pass`` advances flat lanes (return exactly 0).
``exact_extremes`` does the two divisions the vector pass could not rule out. Why each
shortcut is exact: ``sweep.py``'s module docstring.

Imports numpy, numba and kernels only.
"""

import numpy as np
from numba import njit

from backtest.kernels.lanes import (
    FLAG_DRAWDOWN,
    FLAG_FULL,
    FLAG_MIN_LIQ,
    H_DOWN,
    H_ENTRY,
    H_EQUITY,
    H_EXPOSED,
    H_GUARD_LAST_HI,
    H_GUARD_LAST_LO,
    H_GUARD_MARK_HI,
    H_GUARD_MARK_LO,
    H_INV_ENTRY,
    H_LIQ,
    H_M2,
    H_MAXDD,
    H_MEAN,
    H_MINLIQ,
    H_N,
    H_PEAK,
    H_PREV,
    H_RUINED,
    H_SIDE,
    H_SIZE,
    H_TRAIL,
    H_WALLET,
    Q_FILL_CLOSE,
    Q_RUIN_LEVEL,
    Q_TRAILING,
    Q_TRIGGER_MARK,
    TILE,
)
from backtest.kernels.records import (
    M_HIGH,
    M_LOW,
    M_MARK_CLOSE,
    M_MARK_HIGH,
    M_MARK_LOW,
    M_MARK_OPEN,
    M_OPEN,
    SIG_ENTRY,
    SIG_EXIT,
    SIG_SHORT_ENTRY,
    SIG_SHORT_EXIT,
)

# Relative margins of the multiplication tests (see _min_liq_certain).
_UP_50 = 1.0 + 2.0 ** -50
_DOWN_50 = 1.0 - 2.0 ** -50
_UP_47 = 1.0 + 2.0 ** -47


@njit(cache=True, nogil=True, inline="always")
def needs_full_step(side, ruined, guard_mark_lo, guard_mark_hi, guard_last_lo, guard_last_hi,
                    trail_ref, trailing, trigger_mark, position_due, mark_lo, mark_hi, last_lo,
                    last_hi):
    """True unless ``step_bar`` can have no event on this bar for this combination.

    The guards (``guards``) hold the liquidation, stop and take-profit levels (or force
    the full step for a resting order); the trailing stop moves, so it is tested here, at
    the reference this bar moves it to (the tighter stop). ``position_due``: spot-margin
    interest is charged at this bar's open (funding is settled ahead by ``_prefund``);
    ``*_lo``/``*_hi``: the bar's mark/last extremes with its open included. Signals are
    judged by ``signal_matters``; the last bar and the bars from a future's expiry on
    never come here.
    """
    long = side > 0.0
    trig_adv = (mark_lo if long else mark_hi) if trigger_mark else (last_lo if long
                                                                    else last_hi)
    trig_fav = (mark_hi if long else mark_lo) if trigger_mark else (last_hi if long
                                                                    else last_lo)
    ref = trig_fav if side * (trig_fav - trail_ref) > 0.0 else trail_ref
    alive = (not ruined) & (side != 0.0)
    trail_hit = alive & (side * (trig_adv - ref * (1.0 - side * trailing)) <= 0.0)
    return ((mark_lo <= guard_mark_lo) | (mark_hi >= guard_mark_hi)
            | (last_lo <= guard_last_lo) | (last_hi >= guard_last_hi)
            | trail_hit | (alive & position_due))


@njit(cache=True, nogil=True, inline="always")
def signal_matters(code, side, ruined):
    """The signals executing in this bar (bitmask ``code``) change something for this
    combination (``step.process_signals``): an entry (opens, reverses, places a limit, or
    is counted as ignored/conflicting), an exit of the side held, or any signal after ruin
    (counted). Exits of a side not held are no-ops."""
    entry = (code & (SIG_ENTRY | SIG_SHORT_ENTRY)) != 0
    exit_held = (((code & SIG_EXIT) != 0) & (side > 0.0)) | (((code & SIG_SHORT_EXIT) != 0)
                                                             & (side < 0.0))
    return (code != 0) & (ruined | entry | exit_held)


@njit(cache=True, nogil=True, inline="always")
def _min_liq_certain(num, x, current):
    """``num / x >= current`` is certain (so the minimum cannot move), for ``x > 0``."""
    scale = _UP_50 if current >= 0.0 else _DOWN_50
    return num >= current * x * scale


@njit(cache=True, nogil=True, inline="always")
def _drawdown_certain(equity, prev, peak, max_dd):
    """``1 - equity / peak <= max_dd`` is certain, for ``peak > 0`` (peak already updated).

    At a new peak the drawdown is 0; with equity unchanged since the last bar (flat, or a
    ruined account) it is the last bar's, already folded in; otherwise a margin of 2^-47
    covers the three roundings of ``peak * (1 - max_dd) * _UP_47``.
    """
    return ((equity >= peak) | (equity == prev)
            | ((max_dd < 1.0) & (equity >= peak * (1.0 - max_dd) * _UP_47)))


@njit(cache=True, nogil=True, error_model="numpy")
def quiet_pass(h, q, flags, ret, n, position_due, code_open, code_close, inverse, cs, bar):
    """The cheap path over hot lanes ``0..n-1`` (see the module doc); returns the flagged
    count. ``code_open``/``code_close``: the signal bitmask executing at this bar's open
    (``fill="next_open"``: bar t-1's) and close (``fill="close"``: bar t's). ``ret``
    (float64[TILE]) is scratch for the returns: their logarithms are taken in a loop of
    their own, so the vectorised passes around it make no call."""
    count = _judge(h, q, flags, ret, n, position_due, code_open, code_close, inverse, cs, bar)
    _log_returns(ret, n)
    _fold_returns(h, flags, ret, n)
    return count


@njit(cache=True, nogil=True, error_model="numpy")
def _log_returns(ret, n):
    """``ret[c] := ln(ret[c])`` (``stats.log_return``'s logarithm of the floored ratio)."""
    for c in range(n):
        ret[c] = np.log(ret[c])


@njit(cache=True, nogil=True, error_model="numpy")
def _fold_returns(h, flags, ret, n):
    """The running mean/variance/downside of lanes without FLAG_FULL (return ``ret[c]``)."""
    for c in range(n):
        quiet = (flags[c] & FLAG_FULL) == 0
        r = ret[c]
        n0 = h[H_N * TILE + c]
        n1 = n0 + 1.0
        mean = h[H_MEAN * TILE + c]
        delta = r - mean
        mean1 = mean + delta / n1
        m2 = h[H_M2 * TILE + c]
        down = h[H_DOWN * TILE + c]
        h[H_N * TILE + c] = n1 if quiet else n0
        h[H_MEAN * TILE + c] = mean1 if quiet else mean
        h[H_M2 * TILE + c] = m2 + delta * (r - mean1) if quiet else m2
        h[H_DOWN * TILE + c] = down + r * r if quiet & (r < 0.0) else down


@njit(cache=True, nogil=True, error_model="numpy")
def _judge(h, q, flags, ret, n, position_due, code_open, code_close, inverse, cs, bar):
    """Flags, trailing reference, equity, peak, drawdown/min-liq certificates, ruin, and
    the floored equity ratio of each lane into ``ret`` (``stats.log_return``'s argument)."""
    mark_lo = min(bar[M_MARK_OPEN], bar[M_MARK_LOW])
    mark_hi = max(bar[M_MARK_OPEN], bar[M_MARK_HIGH])
    last_lo = min(bar[M_OPEN], bar[M_LOW])
    last_hi = max(bar[M_OPEN], bar[M_HIGH])
    mark_low = bar[M_MARK_LOW]
    mark_high = bar[M_MARK_HIGH]
    mark_close = bar[M_MARK_CLOSE]
    inv_close = 1.0 / mark_close
    high = bar[M_HIGH]
    low = bar[M_LOW]
    count = 0
    for c in range(n):
        side = h[H_SIDE * TILE + c]
        ruined = h[H_RUINED * TILE + c] != 0.0
        trigger_mark = q[Q_TRIGGER_MARK * TILE + c] != 0.0
        ref = h[H_TRAIL * TILE + c]
        liq = h[H_LIQ * TILE + c]
        code = code_close if q[Q_FILL_CLOSE * TILE + c] != 0.0 else code_open
        full = (signal_matters(code, side, ruined)
                | needs_full_step(side, ruined, h[H_GUARD_MARK_LO * TILE + c],
                                  h[H_GUARD_MARK_HI * TILE + c], h[H_GUARD_LAST_LO * TILE + c],
                                  h[H_GUARD_LAST_HI * TILE + c], ref, q[Q_TRAILING * TILE + c],
                                  trigger_mark, position_due, mark_lo, mark_hi, last_lo,
                                  last_hi))
        quiet = not full
        long = side > 0.0
        held = quiet & (side != 0.0)
        # step 5: the trailing reference (step.move_trailing_reference)
        best = (mark_high if long else mark_low) if trigger_mark else (high if long else low)
        move = held & (not ruined) & (side * (best - ref) > 0.0)
        h[H_TRAIL * TILE + c] = best if move else ref
        # mark to market (stats.update_bar_stats, operation for operation)
        k = side * h[H_SIZE * TILE + c] * cs
        diff = ((h[H_INV_ENTRY * TILE + c] - inv_close) if inverse
                else (mark_close - h[H_ENTRY * TILE + c]))
        wallet = h[H_WALLET * TILE + c]
        equity = wallet + k * diff if side != 0.0 else wallet
        exposed = h[H_EXPOSED * TILE + c]
        h[H_EXPOSED * TILE + c] = exposed + 1.0 if held else exposed
        x = mark_low if long else mark_high
        num = (x - liq) if long else (liq - x)
        min_liq = h[H_MINLIQ * TILE + c]
        liq_flag = held & (not _min_liq_certain(num, x, min_liq))
        old_equity = h[H_EQUITY * TILE + c]
        h[H_EQUITY * TILE + c] = equity if quiet else old_equity
        prev = h[H_PREV * TILE + c]
        floor = q[Q_RUIN_LEVEL * TILE + c]
        ret[c] = max(equity, floor) / max(prev, floor)
        peak = h[H_PEAK * TILE + c]
        peak1 = equity if equity > peak else peak
        max_dd = h[H_MAXDD * TILE + c]
        dd_flag = quiet & (not _drawdown_certain(equity, prev, peak1, max_dd))
        h[H_PEAK * TILE + c] = peak1 if quiet else peak
        h[H_PREV * TILE + c] = equity if quiet else prev
        ruin = quiet & (not ruined) & (equity <= floor)
        h[H_RUINED * TILE + c] = 1.0 if ruin else h[H_RUINED * TILE + c]
        flag = ((FLAG_FULL if full else 0) | (FLAG_MIN_LIQ if liq_flag else 0)
                | (FLAG_DRAWDOWN if dd_flag else 0))
        flags[c] = flag
        count += flag != 0
    return count


@njit(cache=True, nogil=True, error_model="numpy")
def flat_pass(h, n):
    """The cheap path when every lane is flat without a resting order (or ruined).

    ``stats.update_bar_stats`` with the equity unchanged since the last bar (the wallet only
    moves in full steps; every bar ends with previous equity := equity): the return is
    exactly 0, so peak, drawdown, downside sum, equity and the ruin test cannot change.
    """
    for c in range(n):
        n1 = h[H_N * TILE + c] + 1.0
        mean = h[H_MEAN * TILE + c]
        delta = 0.0 - mean
        mean1 = mean + delta / n1
        h[H_N * TILE + c] = n1
        h[H_MEAN * TILE + c] = mean1
        h[H_M2 * TILE + c] += delta * (0.0 - mean1)


@njit(cache=True, nogil=True)
def exact_extremes(h, c, flag, bar):
    """The divisions the quiet pass could not rule out (stats.update_bar_stats' own)."""
    if flag & FLAG_MIN_LIQ:
        liq = h[H_LIQ * TILE + c]
        if h[H_SIDE * TILE + c] > 0.0:
            x = bar[M_MARK_LOW]
            dist = (x - liq) / x
        else:
            x = bar[M_MARK_HIGH]
            dist = (liq - x) / x
        if dist < h[H_MINLIQ * TILE + c]:
            h[H_MINLIQ * TILE + c] = dist
    if flag & FLAG_DRAWDOWN:
        dd = 1.0 - h[H_EQUITY * TILE + c] / h[H_PEAK * TILE + c]
        if dd > h[H_MAXDD * TILE + c]:
            h[H_MAXDD * TILE + c] = dd
