"""Self-contained HTML report of a rolled position (consecutive dated futures).

Owns :func:`write_roll_report`: the figure, the stats of the continuous account, P&L by
leg, the legs' spans, trades and events with their leg, and the parameters. Page and
sections come from ``html``; computes no statistic.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.atomic import write_atomic
from backtest.presentation.plotting.common import figure_png
from backtest.presentation.plotting.roll import plot_roll
from backtest.presentation.reports.html import (
    cells,
    esc,
    events_table,
    img,
    page,
    params_table,
    stats_table,
    table,
    trades_table,
)

__all__ = ["write_roll_report"]


def roll_report_html(result: Any, title: str | None = None, **plot_kwargs: Any) -> str:
    """The HTML text of :func:`write_roll_report`."""
    legs = " → ".join(leg.name for leg in result.roll.legs)
    title = title or f"Roll {legs} {result.params['leverage']:g}× — backtest report"
    by_leg = result.pnl_by_leg.reset_index().rename(columns={"index": "leg"})
    spans = result.roll.spans.astype({"first_bar": str, "last_bar": str, "expiry": str})
    body = (f"<p>{esc(repr(result)[1:-1])}</p>"
            f"{img(figure_png(plot_roll(result, **plot_kwargs)), 'roll figure')}"
            f"<h2>Statistics</h2>{stats_table(result.stats, result.account_currency)}"
            f"<h2>P&amp;L by leg</h2>{table(cells(by_leg), left=('leg',))}"
            f"<h2>Legs</h2>{table(cells(pd.DataFrame(spans)), left=('leg',))}"
            f"<h2>Trades</h2>{trades_table(result)}"
            f"<h2>Events by kind</h2>{events_table(result)}"
            f"<h2>Parameters</h2>{params_table(result.params)}")
    return page(title, body)


def write_roll_report(result: Any, path: str | os.PathLike[str], title: str | None = None,
                      **plot_kwargs: Any) -> Path:
    """Write a roll's self-contained HTML report to ``path`` (atomically); returns the path."""
    return write_atomic(path, roll_report_html(result, title, **plot_kwargs))
