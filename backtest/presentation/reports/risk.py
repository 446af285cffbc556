"""Self-contained HTML report of a leverage-risk result (the shared page family of ``html``).

Owns :func:`write_risk_report` and :func:`risk_table_html` (also the notebook display).
Duck-typed: reads ``result.table``, ``result.describe()``, ``result.scalars``,
``result.market`` and ``result.plot()``'s figure; must not import ``backtest.risk``.
Computes no statistic: it formats.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.atomic import write_atomic
from backtest.presentation.plotting.common import figure_png
from backtest.presentation.plotting.risk import plot_risk
from backtest.presentation.reports.html import (
    data_section,
    esc,
    img,
    num,
    page,
    params_table,
    table,
    wide,
)

__all__ = ["risk_table_html", "write_risk_report"]

_PERCENT = ("p_", "total_return_", "max_drawdown_")


def _cell(column: str, value: Any) -> str:
    if isinstance(value, pd.Timedelta):
        return str(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) \
            and column.startswith(_PERCENT):
        return f"{value:.2%}"
    if isinstance(value, (float, np.floating)) and column.startswith("growth_rate"):
        return f"{value:+.3f}" if np.isfinite(value) else ("−inf" if value < 0 else str(value))
    return num(value)


def risk_table_html(result: Any) -> str:
    """The table, formatted (probabilities and return quantiles in %)."""
    tab = result.table.reset_index()
    shown = pd.DataFrame({c: [_cell(str(c), v) for v in tab[c]] for c in tab.columns})
    return wide(table(shown, left=tuple(result.table.index.names)))


def risk_report_html(result: Any, title: str | None = None) -> str:
    title = title or f"Leverage risk: {result.market.instrument.symbol}"
    fig = plot_risk(result)
    body = (f"<p>{esc(result.describe())}.</p>"
            f"{img(figure_png(fig), 'survival and liquidation probability by leverage')}"
            f"<h2>By combination</h2>{risk_table_html(result)}"
            "<p class='muted'>Probabilities and quantiles over the complete windows (or "
            "the paths); growth = log(final / initial) per year, −inf when ruined; "
            "definitions in docs/leverage_risk.md.</p>"
            f"<h2>Fixed parameters</h2>{params_table(result.scalars)}"
            f"<h2>Data</h2>{data_section(result.market, result.market.mark_source)}")
    return page(title, body)


def write_risk_report(result: Any, path: str | os.PathLike[str], title: str | None = None
                      ) -> Path:
    """Write the report to ``path`` (atomically); returns the path."""
    return write_atomic(path, risk_report_html(result, title))
