"""The rolling-origin window plan: which bars start a window, where each window ends.

A window starting at bar ``s`` (open time ``T_s``) with horizon ``H`` holds the bars whose
open time lies in ``[T_s, T_s + H)``: bars ``s..e`` with ``e`` the last such bar. It is
*complete* when the data covers the whole horizon (``T_s + H <= T_last + bar``); otherwise
it is *cut by the end of the data*: it is still simulated (on the bars there are) and
enters the survival curves as censored, but not the table's probabilities and quantiles.
Windows of fewer than two bars are dropped (``run()`` needs two).

Owns no simulation; used by ``api``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class WindowPlan:
    """Windows sorted by start. ``starts``/``ends``: int64 first/last bar (inclusive);
    ``complete``: bool, the whole horizon is inside the data; ``horizon_ns``: int."""

    starts: np.ndarray
    ends: np.ndarray
    complete: np.ndarray
    horizon_ns: int

    @property
    def n_windows(self) -> int:
        return len(self.starts)


def horizon_ns(horizon: Any, bar_ns: int, where: str = "leverage_risk()") -> int:
    """``horizon`` (a Timedelta or a string such as ``"30D"``, ``"12h"``) in ns; at least
    two bars."""
    try:
        value = pd.Timedelta(horizon)
    except (ValueError, TypeError):
        raise ValueError(f"{where}: horizon={horizon!r} is not a duration; expected a pandas "
                         "Timedelta or a string such as '30D', '7D' or '12h' (months and "
                         "years are not fixed durations: write '30D' or '365D').") from None
    if value is pd.NaT or value.value < 2 * bar_ns:
        raise ValueError(f"{where}: horizon={horizon!r} is shorter than two bars "
                         f"({pd.Timedelta(2 * bar_ns)}); a window needs at least two bars. "
                         "Pass a longer horizon, e.g. horizon='30D'.")
    return int(value.value)


def start_bars(index_ns: np.ndarray, bar_ns: int, starts: Any,
               where: str = "leverage_risk()") -> np.ndarray:
    """Candidate start bars (int64, increasing, distinct) from ``starts``.

    ``None``: every bar. An int ``k``: every ``k``-th bar from the first. A duration
    (``"1D"``, Timedelta): the first bar at or after each multiple of it from the first
    bar's time. A sequence of times: the first bar at or after each (distinct, inside the
    data). A boolean array/Series with one value per bar: the bars marked True.
    """
    n = len(index_ns)
    if starts is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(starts, (int, np.integer)) and not isinstance(starts, bool):
        if starts < 1:
            raise ValueError(f"{where}: starts={starts!r}: an int means every k-th bar and "
                             "must be >= 1. Pass starts=24 for one start a day on hourly bars.")
        return np.arange(0, n, int(starts), dtype=np.int64)
    if isinstance(starts, (str, pd.Timedelta)):
        step = _step_ns(starts, where)
        times = np.arange(index_ns[0], index_ns[-1] + 1, step, dtype=np.int64)
        return np.unique(np.searchsorted(index_ns, times, side="left")).astype(np.int64)
    values = starts.to_numpy() if isinstance(starts, (pd.Series, pd.Index)) else \
        np.asarray(starts)
    if values.dtype == np.bool_:
        if values.shape != (n,):
            raise ValueError(f"{where}: starts as a boolean mask needs one value per bar "
                             f"({n}), got shape {values.shape}.")
        return np.flatnonzero(values).astype(np.int64)
    try:
        times = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").asi8
    except (ValueError, TypeError):
        raise TypeError(f"{where}: starts must be None, an int (every k-th bar), a duration "
                        "('1D') or a list of times; got "
                        f"{type(starts).__name__}.") from None
    if len(times) and times.max() > index_ns[-1]:
        raise ValueError(f"{where}: starts has a time after the last bar "
                         f"({pd.Timestamp(index_ns[-1], tz='UTC')}): "
                         f"{pd.Timestamp(times.max(), tz='UTC')}. Remove it.")
    bars = np.searchsorted(index_ns, np.sort(times), side="left").astype(np.int64)
    if len(np.unique(bars)) != len(bars):
        raise ValueError(f"{where}: two of the given starts fall on the same bar; pass "
                         "distinct bar times.")
    return bars


def _step_ns(value: Any, where: str) -> int:
    try:
        step = pd.Timedelta(value)
    except (ValueError, TypeError):
        raise ValueError(f"{where}: starts={value!r} is not a duration; expected e.g. '1D' "
                         "or '8h'.") from None
    if step is pd.NaT or step.value <= 0:
        raise ValueError(f"{where}: starts={value!r} must be a positive duration.")
    return int(step.value)


def plan_windows(market: Any, horizon: Any, starts: Any = None,
                 where: str = "leverage_risk()") -> WindowPlan:
    """The windows of ``market`` for ``horizon`` from ``starts`` (see the module doc)."""
    idx = market.index_ns
    h = horizon_ns(horizon, market.bar_ns, where)
    s = start_bars(idx, market.bar_ns, starts, where)
    ends = np.searchsorted(idx, idx[s] + h, side="left").astype(np.int64) - 1
    complete = idx[s] + h <= idx[-1] + market.bar_ns
    keep = ends > s
    plan = WindowPlan(starts=s[keep], ends=ends[keep], complete=complete[keep], horizon_ns=h)
    if plan.n_windows == 0:
        raise ValueError(f"{where}: no window of at least two bars; the market has "
                         f"{market.n_bars} bar(s). Pass more data or a later start.")
    if not plan.complete.any():
        raise ValueError(f"{where}: horizon={horizon!r} is longer than the data "
                         f"({pd.Timedelta(idx[-1] + market.bar_ns - idx[0])}); no window is "
                         "complete. Pass a shorter horizon or more data.")
    return plan
