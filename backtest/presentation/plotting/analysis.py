"""The analysis figure of a run: monthly returns (a year × month grid), the distribution of
trade PnL by exit reason, and funding and fees month by month with their drag on equity.

Reads ``result.monthly_returns()``, ``result.trades`` and ``result.costs_by_month()``
(``backtest.results.analysis`` computes them); draws only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from backtest.presentation.plotting.common import _legend, _number_axis, new_figure

__all__ = ["plot_analysis"]

_REASON_COLORS = {"liquidation": "red", "stop_loss": "tab:orange",
                  "trailing_stop": "tab:orange", "take_profit": "tab:cyan",
                  "signal": "tab:blue", "reverse": "tab:blue", "end": "0.5", "expiry": "0.5"}


def _monthly_panel(ax: Axes, result: Any) -> None:
    table = result.monthly_returns()
    months = [c for c in table.columns if c != "Year"]
    data = table[months].to_numpy(float)
    finite = np.abs(data[np.isfinite(data)])
    scale = float(np.percentile(finite, 95)) if finite.size else 0.1
    image = ax.imshow(np.clip(data, -scale, scale), cmap="RdYlGn", vmin=-scale, vmax=scale,
                      aspect="auto")
    for (i, j), v in np.ndenumerate(data):
        if np.isfinite(v):
            ax.text(j, i, f"{v * 100:+.0f}", ha="center", va="center", fontsize=6.5)
    ax.set_xticks(range(len(months)), months, fontsize=7)
    ax.set_yticks(range(len(table.index)), [str(y) for y in table.index], fontsize=7)
    ax.set_xlabel("month")
    ax.set_ylabel("year")
    ax.set_title("Monthly returns (%)", fontsize=9)
    ax.figure.colorbar(image, ax=ax, label="monthly return (fraction)", shrink=0.8)


def _pnl_panel(ax: Axes, result: Any, account: str) -> None:
    trades = result.trades
    ax.set_title("Trade PnL by exit reason", fontsize=9)
    ax.set_xlabel(f"net PnL per trade ({account})")
    ax.set_ylabel("trades (count)")
    if trades.empty:
        ax.text(0.5, 0.5, "no trades", ha="center", va="center", transform=ax.transAxes)
        return
    pnl = trades["pnl"].to_numpy(float)
    bins = np.histogram_bin_edges(pnl[np.isfinite(pnl)], bins=40)
    groups = [(reason, pnl[(trades["exit_reason"] == reason).to_numpy()])
              for reason in trades["exit_reason"].value_counts().index]
    ax.hist([g for _, g in groups], bins=bins, stacked=True,
            color=[_REASON_COLORS.get(r, "0.4") for r, _ in groups],
            label=[f"{r} ({len(g)})" for r, g in groups])
    ax.axvline(0.0, color="0.3", lw=0.7)
    _legend(ax, loc="upper left")


def _costs_panel(ax: Axes, result: Any, account: str) -> None:
    costs = result.costs_by_month()
    t = costs.index.to_numpy(dtype="datetime64[ns]")
    width = np.timedelta64(12, "D")
    ax.bar(t - width / 2, costs["funding"].to_numpy(float), width=width, color="tab:brown",
           label="funding paid (< 0: received)")
    ax.bar(t + width / 2, costs["fees"].to_numpy(float), width=width, color="tab:gray",
           label="fees paid")
    ax.axhline(0.0, color="0.4", lw=0.6)
    ax.set_ylabel(f"per month ({account})")
    ax.set_xlabel("month (UTC)")
    _number_axis(ax)
    twin = ax.twinx()
    twin.plot(t, 100 * costs["drag"].to_numpy(float), color="black", lw=0.8,
              label="drag: (funding + fees) / mean equity")
    twin.set_ylabel("drag (% of equity per month)")
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(handles + h2, labels + l2, fontsize=7.5, loc="upper left", framealpha=0.85)
    ax.set_title("Funding and fees over time", fontsize=9)


def plot_analysis(result: Any, figsize: tuple[float, float] | None = None) -> Figure:
    """Monthly returns grid, trade PnL distribution by exit reason (liquidations in red),
    and funding and fees per month with their drag on equity; a pyplot-managed Figure.
    The grid's height grows with the number of years (``figsize`` overrides)."""
    account = result.account_currency
    years = result.index[-1].year - result.index[0].year + 1
    grid_height = min(0.45 * years + 1.2, 5.0)
    fig = new_figure(figsize or (12.0, grid_height + 4.0), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=(grid_height, 4.0))
    _monthly_panel(fig.add_subplot(grid[0, :]), result)
    _pnl_panel(fig.add_subplot(grid[1, 0]), result, account)
    _costs_panel(fig.add_subplot(grid[1, 1]), result, account)
    return fig
