"""A minimal sweep kernel: the floor ``sweep()``'s speed is measured against.

Bars outer, combinations inner, one linear isolated position per combination, the rules
cut to what every leveraged backtest must do per bar: 8-hourly funding taken from the
margin (which moves the liquidation price), liquidation on the mark low/high at the
``simple`` rules' price, a stop-loss on the last price, taker fees on both fills,
mark-to-market at the mark close, the running mean/variance of returns and the maximum
drawdown. Signals fill at the next open. No tiers, events, trade rows, limits, take-profits,
trailing stops, gaps or path models: the per-bar work of a real simulator minus the
features, so ``sweep()`` time / this time says what the features and exactness cost.

``reference_sweep(md, signals, params, out, lo, hi)``: ``md`` float64[n_bars, 8] (open,
high, low, close, mark low, mark high, mark close, funding rate or NaN), ``signals``
uint8[n_bars, n_sets] (bit 1 entry, bit 2 exit), ``params`` float64[n_combos, 6]
(signal set, side +1/-1, leverage, stop fraction or NaN, taker fee, mmr); ``out``
float64[n_combos, 3] (final equity, max drawdown, Sharpe numerator mean) for rows
``lo..hi-1``. Releases the GIL (one call per thread).
"""

from __future__ import annotations

import numpy as np
from numba import njit

OPEN, HIGH, LOW, CLOSE, MARK_LOW, MARK_HIGH, MARK_CLOSE, FUNDING = range(8)
N_MD = 8
CAPITAL = 10_000.0


@njit(cache=True, nogil=True, error_model="numpy")
def reference_sweep(md, signals, params, out, lo, hi):
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
