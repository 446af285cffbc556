"""Figures of a leverage-risk result: :func:`plot_risk`.

Three panels: the Kaplan-Meier survival curves (fraction not yet liquidated vs days held),
P(liquidation) vs leverage, and the median log growth per year vs leverage with its 5-95 %
band. One line per value of the other listed parameters (side, stop_loss, ...).

Duck-typed: reads ``result.table``, ``result.survival()``, ``result.describe()`` only; must
not import ``backtest.risk``. Computes no statistic.
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

__all__ = ["plot_risk"]


def _label(key: Any) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return ", ".join("none" if p is None or (isinstance(p, float) and np.isnan(p))
                     else f"{p:g}x" if isinstance(p, (int, float, np.number)) else str(p)
                     for p in parts)


def _groups(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Rows by the levels other than leverage (one line each), sorted by leverage."""
    flat = table.reset_index()
    others = [n for n in table.index.names if n != "leverage"]
    if not others:
        return [("", flat.sort_values("leverage"))]
    return [(_label(k if isinstance(k, tuple) else (k,)), g.sort_values("leverage"))
            for k, g in flat.groupby(others, sort=False, dropna=False)]


def _survival_panel(ax: Axes, survival: pd.DataFrame, max_curves: int) -> None:
    cols = list(survival.columns)
    if len(cols) > max_curves:
        keep = np.unique(np.linspace(0, len(cols) - 1, max_curves).round().astype(int))
        cols = [cols[i] for i in keep]
    days = survival.index / pd.Timedelta("1D")
    for col in cols:
        ax.step(days, survival[col].to_numpy(), where="post", label=_label(col), lw=1.3)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("days held")
    ax.set_ylabel("not yet liquidated (Kaplan-Meier)")
    ax.set_title("Survival")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)


def _vs_leverage(ax: Axes, table: pd.DataFrame, column: str, band: Sequence[str] | None,
                 ylabel: str) -> None:
    for name, g in _groups(table):
        lev = g["leverage"].to_numpy(float)
        y = g[column].to_numpy(float)
        y = np.where(np.isfinite(y), y, np.nan)
        ax.plot(lev, y, marker="o", ms=3, label=name or column)
        if band is not None:
            lo = g[band[0]].to_numpy(float)
            hi = g[band[1]].to_numpy(float)
            ax.fill_between(lev, np.where(np.isfinite(lo), lo, np.nan),
                            np.where(np.isfinite(hi), hi, np.nan), alpha=0.15)
    if (table.reset_index()["leverage"].astype(float) > 0).all():
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_xlabel("leverage")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(_groups(table)) > 1:
        ax.legend(fontsize=7)


def plot_risk(result: Any, ax: Sequence[Axes] | None = None, *, max_curves: int = 10,
              figsize: tuple[float, float] = (14.0, 4.2)) -> Figure:
    """Survival curves, P(liquidation) vs leverage and growth vs leverage (5-95 % band).

    Parameters
    ----------
    result : RiskResult
    ax : three Axes, optional
        Draw into these instead of a new Figure.
    max_curves : int
        At most this many survival curves (evenly picked from the table's rows).
    """
    if ax is None:
        fig = new_figure(figsize, layout="constrained")
        axes = fig.subplots(1, 3)
    else:
        axes = list(ax)
        fig = axes[0].figure
    table = result.table
    _survival_panel(axes[0], result.survival(), max_curves)
    _vs_leverage(axes[1], table, "p_liquidation", None, "P(liquidation) within the horizon")
    axes[1].set_title("Liquidation probability")
    _vs_leverage(axes[2], table, "growth_rate", ("growth_rate_q05", "growth_rate_q95"),
                 "log growth per year (median, 5-95 %)")
    axes[2].set_title("Growth")
    fig.suptitle(result.describe(), fontsize=9)
    return fig
