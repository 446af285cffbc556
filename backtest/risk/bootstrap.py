"""Joint block bootstrap of a market: paths beyond the one history, with its wicks kept.

A path of ``horizon`` bars is stitched from blocks of consecutive historical bars. Each
block carries its bars *jointly*: last OHLC, mark OHLC, funding (rate, count of events,
next rate) and the spot-margin borrow rate. Block ``j`` starting at historical bar ``s`` is
multiplied by ``f_j = C_path / close[s - 1]``, where ``C_path`` is the path's close just
before the block (the last close of the data for the first block): the block's first bar
then moves from the path's previous close as it moved from its own previous close in
history, so prices are continuous in returns, and every ratio inside the block (wick vs
close, mark vs last, open vs previous close) is the historical one. Funding rates are
fractions and are copied unchanged.

- ``"stationary"`` (Politis & Romano 1994): block lengths geometric with mean ``block``
  bars, block starts uniform over the history (a block that reaches the end of the data is
  cut there and the next one drawn).
- ``"moving"`` (Kuensch 1989): blocks of exactly ``block`` bars (the last one cut to fit
  the horizon), starts uniform over the ``n - block`` possible ones.

Assumptions and limits (``docs/leverage_risk.md``): the market's returns are stationary
and dependence beyond a block is ignored (volatility clustering longer than a block is
under-represented); the funding schedule inside a block is the block's own. A path is
described by two arrays, ``src[p, i]`` (the historical bar behind path bar ``i``) and
``scale[p, i]``; the kernel builds path bars on the fly from them (``kernels/windows.py``),
and :func:`path_market` builds the same bars as a ``Market`` (for signal functions and the
tests), with the same float operations. Reproducible: the same ``seed`` gives bit-identical
paths (``numpy.random.default_rng``).

Owns no simulation; used by ``api``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from backtest.simulation.arrays import clock_hours

METHODS = ("stationary", "moving")


def block_bars(block: Any, bar_ns: int, n_bars: int) -> int:
    """``block`` (an int number of bars, or a duration such as ``"1D"``) in bars, >= 1 and
    shorter than the data."""
    if isinstance(block, (int, np.integer)) and not isinstance(block, bool):
        bars = int(block)
    else:
        try:
            bars = int(pd.Timedelta(block).value // bar_ns)
        except (ValueError, TypeError):
            raise ValueError(f"leverage_risk(): block={block!r} is not a block length; pass "
                             "a duration such as '1D' or a number of bars.") from None
    if not 1 <= bars < n_bars - 1:
        raise ValueError(f"leverage_risk(): block={block!r} is {bars} bar(s); it must be at "
                         f"least one bar and shorter than the data ({n_bars} bars).")
    return bars


def resample(close: np.ndarray, n_paths: int, horizon: int, block: int, method: str,
             seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(src, scale)``: int64 and float64 ``[n_paths, horizon]`` (see the module doc)."""
    n = len(close)
    rng = np.random.default_rng(seed)
    src = np.empty((n_paths, horizon), dtype=np.int64)
    scale = np.empty((n_paths, horizon))
    for p in range(n_paths):
        level = close[-1]
        pos = 0
        while pos < horizon:
            if method == "moving":
                s = int(rng.integers(1, n - block + 1))
                length = block
            else:
                s = int(rng.integers(1, n))
                length = int(rng.geometric(1.0 / block))
                length = min(length, n - s)
            length = min(length, horizon - pos)
            f = level / close[s - 1]
            src[p, pos:pos + length] = np.arange(s, s + length)
            scale[p, pos:pos + length] = f
            level = close[s + length - 1] * f
            pos += length
    return src, scale


def path_index(market: Any, horizon: int) -> np.ndarray:
    """The bar times of every path: ``horizon`` bars right after the data's last bar."""
    return market.index_ns[-1] + market.bar_ns * np.arange(1, horizon + 1, dtype=np.int64)


def path_hours(market: Any, horizon: int) -> np.ndarray:
    """float64[horizon, 2]: the clock-hour columns of the path's bars (spot-margin interest)."""
    hours_in, hours_after = clock_hours(path_index(market, horizon), market.bar_ns)
    return np.ascontiguousarray(np.stack([hours_in, hours_after], axis=1))


_PRICES = ("open", "high", "low", "close", "mark_open", "mark_high", "mark_low", "mark_close")


def path_market(market: Any, src: np.ndarray, scale: np.ndarray) -> Any:
    """One path (``src``/``scale`` rows) as a ``Market`` on :func:`path_index`'s times."""
    cut: dict[str, Any] = {name: np.ascontiguousarray(getattr(market, name)[src] * scale)
                           for name in _PRICES}
    for name in ("funding_rate", "funding_count", "next_funding_rate", "volume"):
        cut[name] = np.ascontiguousarray(getattr(market, name)[src])
    if market.index_close is not None:
        cut["index_close"] = np.ascontiguousarray(market.index_close[src] * scale)
    return dataclasses.replace(market, index_ns=path_index(market, len(src)), n_gaps=0,
                               event_log=(), **cut)
