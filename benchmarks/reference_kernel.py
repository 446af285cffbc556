"""Minimal sweep kernels: the floor ``sweep()``'s speed is measured against.

Both kernels implement the same rules, cut to what every leveraged backtest must do per bar,
for one linear isolated position per combination: 8-hourly funding taken from the margin
(which moves the liquidation price), liquidation on the mark low/high at the ``simple``
rules' price (the margin is lost), a stop-loss on the last price (filled at the stop), taker
fees on both fills, mark-to-market at the mark close, the running mean/variance of simple
returns and the maximum drawdown. Signals fill at the next open; a position opened at an open
meets its stop and liquidation from the next bar. Bar 0 only sets the start. No tiers,
events, trade rows, limits, take-profits, trailing stops, gaps, path models or ruin: the
per-bar work of a real simulator minus the features, so ``sweep()`` time / this time says
what the features and exactness cost. Bars outer, combinations inner in both.

- ``reference_sweep`` (the headline baseline, ``ratio_to_reference``) is written for speed:
  struct-of-arrays state of a tile of at most ``TILE`` combinations sharing a signal set
  (slot ``X`` of lane ``c`` at ``h[X * TILE + c]``, a compile-time stride, so LLVM sees that
  slots never overlap and vectorises), lanes holding a position kept first; per bar a
  branch-free vector pass over those lanes (guard levels for liquidation and stop, the
  mark-to-market stats written unless a guard is touched), a vector pass over the flat lanes
  (a zero return: only mean and variance move), scalar code only for the lanes whose guard
  was touched, for funding bars and for bars with a signal. No function call per
  combination (helpers are inlined), ``error_model="numpy"``.
- ``plain_reference_sweep`` is the same rules as one would first write them: a branchy
  scalar loop over every combination on every bar.

They evaluate the same expressions in the same order, so their outputs agree bit for bit
(``tests/test_benchmark_reference.py``; ``bench_sweep.py`` checks it on its own data).

``reference_sweep(md, signals, params, out, lo, hi)`` (and ``plain_reference_sweep``):
``md`` float64[n_bars, 8] (open, high, low, close, mark low, mark high, mark close, funding
rate or NaN), ``signals`` uint8[n_bars, n_sets] (bit 1 entry, bit 2 exit), ``params``
float64[n_combos, 6] (signal set, side +1/-1, leverage, stop fraction or NaN, taker fee,
mmr); writes ``out`` float64[n_combos, 3] (final equity, max drawdown, mean return) for rows
``lo..hi-1``. Release the GIL (one call per thread).
"""

from __future__ import annotations

import numpy as np
from numba import njit

OPEN, HIGH, LOW, CLOSE, MARK_LOW, MARK_HIGH, MARK_CLOSE, FUNDING = range(8)
N_MD = 8
CAPITAL = 10_000.0
TILE = 256

# Lane slots of the fast kernel: state, the four guard levels (mark low/high, last low/high
# at or beyond which the bar needs the scalar code) and the per-combination constants.
(SIDE, SIZE, ENTRY, MARGIN, LIQ, STOP, WALLET, PREV, PEAK, MAX_DD, MEAN, M2, G_MARK_LO,
 G_MARK_HI, G_LAST_LO, G_LAST_HI, WANT, LEV, STOP_FRAC, FEE, MMR, ROW) = range(22)
N_SLOTS = 22


@njit(cache=True, nogil=True, inline="always")
def _guards(h, c):
    """Guard levels of lane ``c`` from its side, liquidation price and stop (NaN: none)."""
    inf = np.inf
    side = h[SIDE * TILE + c]
    liq = h[LIQ * TILE + c]
    stop = h[STOP * TILE + c]
    stop_lo = stop if stop == stop else -inf
    stop_hi = stop if stop == stop else inf
    h[G_MARK_LO * TILE + c] = liq if side > 0.0 else -inf
    h[G_MARK_HI * TILE + c] = liq if side < 0.0 else inf
    h[G_LAST_LO * TILE + c] = stop_lo if side > 0.0 else -inf
    h[G_LAST_HI * TILE + c] = stop_hi if side < 0.0 else inf


@njit(cache=True, nogil=True, inline="always")
def _fund(h, c, o, rate):
    """Funding at the open of a held position, from wallet and margin; new liquidation price."""
    side = h[SIDE * TILE + c]
    size = h[SIZE * TILE + c]
    entry = h[ENTRY * TILE + c]
    pay = side * size * o * rate
    h[WALLET * TILE + c] -= pay
    h[MARGIN * TILE + c] -= pay
    h[LIQ * TILE + c] = entry - side * (h[MARGIN * TILE + c] / size - h[MMR * TILE + c] * entry)


@njit(cache=True, nogil=True, inline="always")
def _orders(h, c, code, o, mark_low, mark_high, low, high):
    """Liquidation, stop or exit signal of a held position; entry signal of a flat one."""
    side = h[SIDE * TILE + c]
    if side != 0.0:
        mark_x = mark_low if side > 0.0 else mark_high
        last_x = low if side > 0.0 else high
        stop = h[STOP * TILE + c]
        exit_price = np.nan
        if side * (mark_x - h[LIQ * TILE + c]) <= 0.0:
            h[WALLET * TILE + c] -= h[MARGIN * TILE + c]
            h[SIDE * TILE + c] = 0.0
        elif stop == stop and side * (last_x - stop) <= 0.0:
            exit_price = stop
        elif code & 2:
            exit_price = o
        if exit_price == exit_price:
            size = h[SIZE * TILE + c]
            h[WALLET * TILE + c] += side * size * (exit_price - h[ENTRY * TILE + c]) \
                - h[FEE * TILE + c] * size * exit_price
            h[SIDE * TILE + c] = 0.0
        if h[SIDE * TILE + c] == 0.0:
            h[SIZE * TILE + c] = 0.0
    elif code & 1:
        lev = h[LEV * TILE + c]
        fee = h[FEE * TILE + c]
        want = h[WANT * TILE + c]
        notional = h[WALLET * TILE + c] / (1.0 / lev + fee)
        h[SIDE * TILE + c] = want
        h[SIZE * TILE + c] = notional / o
        h[ENTRY * TILE + c] = o
        h[MARGIN * TILE + c] = notional / lev
        h[WALLET * TILE + c] -= fee * notional
        h[LIQ * TILE + c] = o * (1.0 - want * (1.0 / lev - h[MMR * TILE + c]))
        h[STOP * TILE + c] = o * (1.0 - want * h[STOP_FRAC * TILE + c])


@njit(cache=True, nogil=True, inline="always")
def _mark(h, c, t, mark_close, write):
    """Mark to market and fold the bar into the stats (written only where ``write``).

    A flat lane has size 0, so its equity is ``wallet + 0 = wallet`` exactly."""
    equity = h[WALLET * TILE + c] + h[SIDE * TILE + c] * h[SIZE * TILE + c] * (
        mark_close - h[ENTRY * TILE + c])
    prev = h[PREV * TILE + c]
    r = equity / prev - 1.0 if prev > 0.0 else 0.0
    mean = h[MEAN * TILE + c]
    delta = r - mean
    mean1 = mean + delta / t
    m2 = h[M2 * TILE + c]
    peak = h[PEAK * TILE + c]
    peak1 = equity if equity > peak else peak
    dd = 1.0 - equity / peak1
    max_dd = h[MAX_DD * TILE + c]
    h[MEAN * TILE + c] = mean1 if write else mean
    h[M2 * TILE + c] = m2 + delta * (r - mean1) if write else m2
    h[PEAK * TILE + c] = peak1 if write else peak
    h[MAX_DD * TILE + c] = dd if write & (dd > max_dd) else max_dd
    h[PREV * TILE + c] = equity if write else prev


@njit(cache=True, nogil=True, error_model="numpy")
def _quiet_pass(h, flags, n, t, mark_low, mark_high, low, high, mark_close):
    """Lanes ``0..n-1`` (holding a position) on a bar without a signal: stats where no
    guard is touched; returns how many lanes touched one (``flags``: 1 for those)."""
    count = 0
    for c in range(n):
        hit = ((mark_low <= h[G_MARK_LO * TILE + c]) | (mark_high >= h[G_MARK_HI * TILE + c])
               | (low <= h[G_LAST_LO * TILE + c]) | (high >= h[G_LAST_HI * TILE + c]))
        _mark(h, c, t, mark_close, not hit)
        flags[c] = hit
        count += hit
    return count


@njit(cache=True, nogil=True, error_model="numpy")
def _flat_pass(h, n, t):
    """Flat lanes (``h`` a view from the first flat lane): equity = previous equity, so
    the return is 0 and peak and drawdown cannot move."""
    for c in range(n):
        mean = h[MEAN * TILE + c]
        delta = 0.0 - mean
        mean1 = mean + delta / t
        h[MEAN * TILE + c] = mean1
        h[M2 * TILE + c] += delta * (0.0 - mean1)


@njit(cache=True, nogil=True)
def _partition(h, n):
    """Lanes holding a position first; returns their count."""
    i = 0
    j = n - 1
    while True:
        while i <= j and h[SIDE * TILE + i] != 0.0:
            i += 1
        while i <= j and h[SIDE * TILE + j] == 0.0:
            j -= 1
        if i >= j:
            return i
        for s in range(N_SLOTS):
            a = h[s * TILE + i]
            h[s * TILE + i] = h[s * TILE + j]
            h[s * TILE + j] = a


@njit(cache=True, nogil=True, error_model="numpy")
def _tile(md, signals, params, out, lo, hi, h, flags):
    """Rows ``lo..hi-1`` (one signal set, at most TILE) over every bar, into ``out``."""
    n = hi - lo
    k = int(params[lo, 0])
    for c in range(n):
        for s in range(N_SLOTS):
            h[s * TILE + c] = 0.0
        h[WANT * TILE + c] = params[lo + c, 1]
        h[LEV * TILE + c] = params[lo + c, 2]
        h[STOP_FRAC * TILE + c] = params[lo + c, 3]
        h[FEE * TILE + c] = params[lo + c, 4]
        h[MMR * TILE + c] = params[lo + c, 5]
        h[ROW * TILE + c] = lo + c
        h[WALLET * TILE + c] = CAPITAL
        h[PREV * TILE + c] = CAPITAL
        h[PEAK * TILE + c] = CAPITAL
        _guards(h, c)
    active = 0
    for t in range(1, md.shape[0]):
        o = md[t, OPEN]
        high = md[t, HIGH]
        low = md[t, LOW]
        mark_low = md[t, MARK_LOW]
        mark_high = md[t, MARK_HIGH]
        mark_close = md[t, MARK_CLOSE]
        rate = md[t, FUNDING]
        code = signals[t - 1, k]
        if code != 0:                        # a signal: the scalar rules on every lane
            for c in range(n):
                if rate == rate and h[SIDE * TILE + c] != 0.0:
                    _fund(h, c, o, rate)
                _orders(h, c, code, o, mark_low, mark_high, low, high)
                _mark(h, c, t, mark_close, True)
                _guards(h, c)
            active = _partition(h, n)
            continue
        if active < n:                       # flat since the last bar: stay flat
            _flat_pass(h[active:], n - active, t)
        if active > 0:
            if rate == rate:
                for c in range(active):
                    _fund(h, c, o, rate)
                    _guards(h, c)
            if _quiet_pass(h, flags, active, t, mark_low, mark_high, low, high,
                           mark_close) > 0:
                for c in range(active):
                    if flags[c]:
                        _orders(h, c, 0, o, mark_low, mark_high, low, high)
                        _mark(h, c, t, mark_close, True)
                        _guards(h, c)
                active = _partition(h, n)
    for c in range(n):
        row = int(h[ROW * TILE + c])
        out[row, 0] = h[PREV * TILE + c]
        out[row, 1] = h[MAX_DD * TILE + c]
        out[row, 2] = h[MEAN * TILE + c]


@njit(cache=True, nogil=True, error_model="numpy")
def reference_sweep(md, signals, params, out, lo, hi):
    """Tiles of at most TILE consecutive rows sharing a signal set (module doc)."""
    h = np.empty(N_SLOTS * TILE)
    flags = np.zeros(TILE, dtype=np.int64)
    a = lo
    while a < hi:
        b = a + 1
        while b < hi and b - a < TILE and params[b, 0] == params[a, 0]:
            b += 1
        _tile(md, signals, params, out, a, b, h, flags)
        a = b


@njit(cache=True, nogil=True, error_model="numpy")
def plain_reference_sweep(md, signals, params, out, lo, hi):
    """The same rules as ``reference_sweep``, as a plain branchy loop (module doc)."""
    n = hi - lo
    side = np.zeros(n)
    size = np.zeros(n)
    entry = np.zeros(n)
    margin = np.zeros(n)
    liq = np.zeros(n)
    stop = np.zeros(n)
    wallet = np.full(n, CAPITAL)
    prev = np.full(n, CAPITAL)
    peak = np.full(n, CAPITAL)
    max_dd = np.zeros(n)
    mean = np.zeros(n)
    m2 = np.zeros(n)
    # parameter columns as 1-D arrays: a row view per combination and bar would cost an
    # atomic reference count each
    sets = params[lo:hi, 0].astype(np.int64)
    want = params[lo:hi, 1].copy()
    lev = params[lo:hi, 2].copy()
    stop_frac = params[lo:hi, 3].copy()
    fee = params[lo:hi, 4].copy()
    mmr = params[lo:hi, 5].copy()
    for t in range(1, md.shape[0]):
        o = md[t, OPEN]
        rate = md[t, FUNDING]
        for i in range(n):
            code = signals[t - 1, sets[i]]
            if side[i] != 0.0:
                if rate == rate:                                  # funding at the open
                    pay = side[i] * size[i] * o * rate
                    wallet[i] -= pay
                    margin[i] -= pay
                    liq[i] = entry[i] - side[i] * (margin[i] / size[i]
                                                   - mmr[i] * entry[i])
                mark_x = md[t, MARK_LOW] if side[i] > 0.0 else md[t, MARK_HIGH]
                last_x = md[t, LOW] if side[i] > 0.0 else md[t, HIGH]
                exit_price = np.nan
                if side[i] * (mark_x - liq[i]) <= 0.0:            # liquidated: margin lost
                    wallet[i] -= margin[i]
                    side[i] = 0.0
                elif stop[i] == stop[i] and side[i] * (last_x - stop[i]) <= 0.0:
                    exit_price = stop[i]
                elif code & 2:
                    exit_price = o
                if exit_price == exit_price:
                    wallet[i] += side[i] * size[i] * (exit_price - entry[i]) \
                        - fee[i] * size[i] * exit_price
                    side[i] = 0.0
            elif code & 1:                                        # enter at the open
                notional = wallet[i] / (1.0 / lev[i] + fee[i])
                side[i] = want[i]
                size[i] = notional / o
                entry[i] = o
                margin[i] = notional / lev[i]
                wallet[i] -= fee[i] * notional
                liq[i] = o * (1.0 - want[i] * (1.0 / lev[i] - mmr[i]))
                stop[i] = o * (1.0 - want[i] * stop_frac[i])
            equity = wallet[i]
            if side[i] != 0.0:
                equity += side[i] * size[i] * (md[t, MARK_CLOSE] - entry[i])
            r = equity / prev[i] - 1.0 if prev[i] > 0.0 else 0.0
            delta = r - mean[i]
            mean[i] += delta / t
            m2[i] += delta * (r - mean[i])
            if equity > peak[i]:
                peak[i] = equity
            dd = 1.0 - equity / peak[i]
            if dd > max_dd[i]:
                max_dd[i] = dd
            prev[i] = equity
    for i in range(n):
        out[lo + i, 0] = prev[i]
        out[lo + i, 1] = max_dd[i]
        out[lo + i, 2] = mean[i]


def reference_inputs(market, sigs, params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The benchmark's market, two signal sets (long, short) and grid as the reference
    kernel's arrays: the same bars, funding bars, signals and combinations as the sweep."""
    from backtest.kernels import records as R
    from backtest.simulation.arrays import market_arrays

    full = market_arrays(market, None)          # the sweep's own market matrix
    n = full.shape[0]
    md = np.empty((n, N_MD))
    for col, src in ((OPEN, R.M_OPEN), (HIGH, R.M_HIGH), (LOW, R.M_LOW), (CLOSE, R.M_CLOSE),
                     (MARK_LOW, R.M_MARK_LOW), (MARK_HIGH, R.M_MARK_HIGH),
                     (MARK_CLOSE, R.M_MARK_CLOSE)):
        md[:, col] = full[:, src]
    md[:, FUNDING] = np.where(full[:, R.M_FUNDING_COUNT] != 0.0, full[:, R.M_FUNDING_RATE],
                              np.nan)
    signals = np.zeros((n, 2), dtype=np.uint8)
    for k, name in enumerate(("long", "short")):
        entries = sigs["entries"][name] | sigs["short_entries"][name]
        exits = sigs["exits"][name] | sigs["short_exits"][name]
        signals[:, k] = entries.astype(np.uint8) | (exits.astype(np.uint8) << 1)
    rows = []
    for k, side in ((0, 1.0), (1, -1.0)):
        for _mode in ("isolated", "cross"):
            for lev in params["leverage"]:
                for stop in params["stop_loss"]:
                    rows.append((k, side, lev, np.nan if stop is None else stop,
                                 params["fees"], 0.004))
    return md, signals, np.array(rows, dtype=np.float64)
