"""Signal helpers for demos and examples: price Series in, boolean Series out (SPEC §4).

Every helper is causal: the value on bar ``t`` uses prices up to and including ``close[t]``
only, so it may be passed to ``run(..., fill="next_open")`` (the default), which fills the
order at ``open[t+1]``. Bars without enough history are ``False``, never NaN. The output
has the input's index (the market index, ``market.index``).

Owns nothing but these helpers; imports pandas and numpy only (no kernels, no matplotlib).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["breakout", "buy_and_hold", "crossover", "crossunder", "ma_cross"]


def _series(name: str, x: Any) -> pd.Series:
    if not isinstance(x, pd.Series):
        raise TypeError(f"signals: {name} must be a pandas Series on the market index "
                        f"(e.g. market.bars['close']); got {type(x).__name__}.")
    return x.astype(float)


def _other(fn: str, ref: pd.Series, other: Any, name: str = "slow") -> pd.Series:
    """``other`` as a Series on ``ref.index``: a Series with the same index, or a number."""
    if isinstance(other, pd.Series):
        if not other.index.equals(ref.index):
            raise ValueError(f"{fn}: both Series must share one index (the market index); "
                             f"got {len(ref)} and {len(other)} rows with different labels. "
                             "Fix: build both from the same market, or .reindex() first.")
        return other.astype(float)
    if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(other, bool):
        return pd.Series(float(other), index=ref.index)
    raise TypeError(f"{fn}: {name} must be a Series on the same index or a number; got "
                    f"{type(other).__name__}.")


def _window(fn: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{fn}: {name} must be a positive number of bars (int); got "
                         f"{value!r}.")
    return int(value)


def crossover(fast: pd.Series, slow: pd.Series | float) -> pd.Series:
    """``True`` on the bar where ``fast`` crosses above ``slow``.

    Bar ``t`` is ``True`` when ``fast[t] > slow[t]`` and ``fast[t-1] <= slow[t-1]``: it uses
    values up to bar ``t`` only. The first bar, and bars where either value at ``t`` or
    ``t-1`` is NaN, are ``False``.

    Parameters
    ----------
    fast : pd.Series
        On the market index.
    slow : pd.Series or float
        Same index as ``fast``, or a constant level.

    Returns
    -------
    pd.Series
        bool, on ``fast.index``, named ``"crossover"``.
    """
    f = _series("fast", fast)
    s = _other("crossover", f, slow)
    out = (f > s) & (f.shift(1) <= s.shift(1))
    return out.fillna(False).astype(bool).rename("crossover")


def crossunder(fast: pd.Series, slow: pd.Series | float) -> pd.Series:
    """``True`` on the bar where ``fast`` crosses below ``slow`` (mirror of :func:`crossover`).

    Bar ``t`` is ``True`` when ``fast[t] < slow[t]`` and ``fast[t-1] >= slow[t-1]``; the
    first bar and NaN bars are ``False``.
    """
    f = _series("fast", fast)
    s = _other("crossunder", f, slow)
    out = (f < s) & (f.shift(1) >= s.shift(1))
    return out.fillna(False).astype(bool).rename("crossunder")


def ma_cross(close: pd.Series, fast: int = 24, slow: int = 168) -> tuple[pd.Series, pd.Series]:
    """Simple-moving-average cross: ``(entries, exits)``.

    The averages on bar ``t`` are the means of ``close[t-n+1 .. t]`` (``n`` = ``fast`` or
    ``slow`` bars, the current close included; no look-ahead). ``entries`` is
    :func:`crossover` of the fast over the slow average, ``exits`` its :func:`crossunder`.
    The first ``slow`` bars are ``False`` (the slow average is undefined before bar
    ``slow - 1`` and a cross needs the bar before). With the default ``fill="next_open"``
    the order fills at the next bar's open. For a long/short strategy pass
    ``entries=entries, short_entries=exits`` (an opposite entry reverses the position).

    Parameters
    ----------
    close : pd.Series
        Last-price closes on the market index.
    fast, slow : int
        Window lengths in bars, ``0 < fast < slow`` (on 1h bars 24/168 = one day/one week).
    """
    fast = _window("ma_cross", "fast", fast)
    slow = _window("ma_cross", "slow", slow)
    if fast >= slow:
        raise ValueError(f"ma_cross: fast ({fast}) must be shorter than slow ({slow}).")
    c = _series("close", close)
    f = c.rolling(fast, min_periods=fast).mean()
    s = c.rolling(slow, min_periods=slow).mean()
    return crossover(f, s).rename("entries"), crossunder(f, s).rename("exits")


def breakout(close: pd.Series, window: int = 20, high: pd.Series | None = None,
             low: pd.Series | None = None) -> tuple[pd.Series, pd.Series]:
    """Channel (Donchian) breakout: ``(up, down)``.

    ``up[t]`` is ``True`` when ``close[t]`` is above the highest ``high`` of the ``window``
    bars *before* ``t`` (``t-window .. t-1``); ``down[t]`` when it is below the lowest
    ``low`` of those bars. The current bar's own high/low is excluded so the channel is known
    before the bar closes; the signal uses data up to ``close[t]``. The first ``window``
    bars are ``False``. Without ``high``/``low`` the channel is built from closes.

    Parameters
    ----------
    close : pd.Series
        Last-price closes on the market index.
    window : int
        Channel length in bars.
    high, low : pd.Series, optional
        Bar highs/lows on the same index (e.g. ``market.bars["high"]``).

    Returns
    -------
    (pd.Series, pd.Series)
        bool ``up`` (e.g. ``entries``) and ``down`` (e.g. ``short_entries``).
    """
    window = _window("breakout", "window", window)
    c = _series("close", close)
    h = c if high is None else _other("breakout", c, high, "high")
    lo = c if low is None else _other("breakout", c, low, "low")
    upper = h.rolling(window, min_periods=window).max().shift(1)
    lower = lo.rolling(window, min_periods=window).min().shift(1)
    up = (c > upper).fillna(False).astype(bool).rename("breakout_up")
    down = (c < lower).fillna(False).astype(bool).rename("breakout_down")
    return up, down


def buy_and_hold(index: pd.Index) -> pd.Series:
    """Entry on the first bar only (a benchmark).

    ``True`` on bar 0, ``False`` elsewhere. With ``fill="next_open"`` the position opens at
    ``open[1]``; with ``fill="close"`` at ``close[0]``. It is held until a stop,
    liquidation or the end of the data (closed at the last close, reason ``end``).

    Parameters
    ----------
    index : pd.Index
        The market index (``market.index``); a Series or DataFrame gives its index.
    """
    if isinstance(index, (pd.Series, pd.DataFrame)):
        index = index.index
    if not isinstance(index, pd.Index):
        raise TypeError(f"buy_and_hold: index must be the market index (market.index); got "
                        f"{type(index).__name__}.")
    values = np.zeros(len(index), dtype=bool)
    values[:1] = True
    return pd.Series(values, index=index, name="buy_and_hold")
