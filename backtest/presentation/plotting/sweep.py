"""Figures of sweeps: :func:`plot_sweep` (one panel per metric: heatmap over two numeric
levels, leverage curve or bars, drawn by ``SweepResult``'s methods on Axes made here) and
:func:`sweep_figure_kind` (which of those by default).

Reads only the public attributes of ``SweepResult``; computes no statistic (display means
only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from backtest.presentation.plotting.common import new_figure
from backtest.presentation.tables import axis_label

__all__ = ["SWEEP_METRICS", "plot_sweep", "sweep_figure_kind"]

SWEEP_METRICS = ("total_return", "max_drawdown", "sharpe")


def _numeric_levels(sweep: Any) -> list[str]:
    """Swept levels whose values are numbers (None allowed, booleans not)."""
    out = []
    for name in sweep.names:
        values = sweep.index.get_level_values(name)
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            out.append(name)
    return out


def sweep_figure_kind(sweep: Any) -> tuple[str | None, list[str]]:
    """What :func:`plot_sweep` draws by default and over which levels.

    ``("heatmap", [x, y])`` with two numeric levels (leverage as x when swept), else
    ``("leverage", ["leverage"])`` when leverage was swept, else ``("bar", [first level])``,
    else ``(None, [])`` when nothing was swept.
    """
    numeric = _numeric_levels(sweep)
    if len(numeric) >= 2:
        x = "leverage" if "leverage" in numeric else numeric[0]
        return "heatmap", [x, next(n for n in numeric if n != x)]
    if "leverage" in sweep.names:
        return "leverage", ["leverage"]
    if sweep.names:
        return "bar", [sweep.names[0]]
    return None, []


def _sweep_bars(ax: Axes, sweep: Any, metric: str, level: str) -> None:
    frame = sweep.stats[[metric]].astype(float).reset_index()
    labels = [("None" if v is None or (isinstance(v, float) and np.isnan(v)) else
               f"{v:g}" if isinstance(v, float) else str(v)) for v in frame[level]]
    table = frame.assign(**{level: labels}).groupby(level, sort=False)[metric].mean()
    ax.bar(range(len(table)), table.to_numpy(float), color="tab:blue", alpha=0.75)
    ax.set_xticks(range(len(table)), [str(v) for v in table.index],
                  rotation=45 if len(table) > 8 else 0, ha="right" if len(table) > 8 else "center")
    ax.axhline(0.0, color="0.45", lw=0.6)
    ax.set_xlabel(axis_label(level))
    ax.set_ylabel(axis_label(metric))
    others = len(sweep.names) > 1
    ax.set_title(f"{metric}{' (mean over other levels)' if others else ''}", fontsize=9)


def plot_sweep(sweep: Any, metrics: Sequence[str] = SWEEP_METRICS, *, kind: str | None = None,
               figsize: tuple[float, float] | None = None) -> Figure:
    """One panel per metric: a heatmap over two numeric levels, the leverage curve, or bars.

    Parameters
    ----------
    sweep : SweepResult
    metrics : sequence of str
        Stats columns, one panel each.
    kind : {"heatmap", "leverage", "bar"}, optional
        Default :func:`sweep_figure_kind`: a heatmap (``SweepResult.heatmap``, mean over the
        other levels) when two levels are numeric, else ``SweepResult.leverage_curve`` when
        leverage was swept, else the mean of each metric per value of the first level.

    Returns
    -------
    matplotlib.figure.Figure
    """
    auto, levels = sweep_figure_kind(sweep)
    kind = kind or auto
    if kind is None:
        raise ValueError("plot_sweep: nothing was swept (one combination); use "
                         "sweep.run(0).plot() for its curves.")
    if kind not in ("heatmap", "leverage", "bar"):
        raise ValueError(f"plot_sweep: kind must be 'heatmap', 'leverage' or 'bar'; got "
                         f"{kind!r}.")
    if kind == "heatmap" and auto != "heatmap":
        raise ValueError(f"plot_sweep: a heatmap needs two numeric levels; this sweep's "
                         f"levels are {sweep.names}. Use kind='leverage' or 'bar'.")
    if kind != auto:
        levels = ["leverage"] if kind == "leverage" else sweep.names[:1]
    metrics = list(metrics)
    fig = new_figure(figsize or (4.6 * len(metrics), 4.0), layout="constrained")
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        if kind == "heatmap":
            sweep.heatmap(metric, x=levels[0], y=levels[1], ax=ax)
        elif kind == "leverage":
            sweep.leverage_curve(metric, ax=ax)
            values = sorted({float(v) for v in sweep.index.get_level_values("leverage")})
            ax.set_xticks(values, [f"{v:g}×" for v in values])
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        else:
            _sweep_bars(ax, sweep, metric, levels[0])
        ax.title.set_fontsize(9)
    return fig
