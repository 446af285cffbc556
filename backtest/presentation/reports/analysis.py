"""The analysis sections of a run's report: monthly returns, drawdown periods, exits by
reason (liquidations included), funding and fees per year, and the analysis figure.

Displays what ``result.monthly_returns()``, ``drawdown_periods()``, ``exit_breakdown()``
and ``costs_by_month()`` computed (duck-typed; computes nothing itself) with the package's
one table formatter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from backtest.presentation.plotting.analysis import plot_analysis
from backtest.presentation.plotting.common import figure_png
from backtest.presentation.reports.html import esc, img, wide
from backtest.presentation.tables import format_value, html_table

__all__ = ["analysis_html"]


def _monthly_html(table: pd.DataFrame) -> str:
    """Year × month grid, cells tinted green (gain) or red (loss)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in ["year", *table.columns])
    rows = []
    for year, row in table.iterrows():
        cells = [f"<td class='l'><b>{esc(year)}</b></td>"]
        for col, v in row.items():
            if not np.isfinite(v):
                cells.append("<td></td>")
                continue
            alpha = min(abs(v) / 0.3, 1.0) * 0.55 + 0.08
            rgb = "46,160,67" if v >= 0 else "214,39,40"
            weight = "font-weight:bold;" if col == "Year" else ""
            cells.append(f"<td style='{weight}background:rgba({rgb},{alpha:.2f})'>"
                         f"{esc(format_value('monthly_return', v))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f"<table class='bt-table'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _drawdowns_html(periods: pd.DataFrame) -> str:
    if periods.empty:
        return "<p>No drawdown: the equity never fell below its running peak.</p>"
    shown = periods.copy()
    for col in ("days_to_trough", "days_to_recovery", "length_days"):
        shown[col] = [f"{v:,.1f}" if np.isfinite(v) else "not recovered" for v in shown[col]]
    shown["recovery"] = [format_value("recovery", v) if not pd.isna(v) else "not recovered"
                         for v in shown["recovery"]]
    shown.index = pd.RangeIndex(1, len(shown) + 1, name="#")
    return html_table(shown)


def _costs_by_year(costs: pd.DataFrame) -> pd.DataFrame:
    years = costs.groupby(costs.index.year)
    out = pd.DataFrame({"funding": years["funding"].sum(), "fees": years["fees"].sum(),
                        "mean monthly drag": years["drag"].mean()})
    out.index.name = "year"
    return out


def analysis_html(result: Any, benchmark: bool = True, figure: bool = True) -> str:
    """The analysis part of a report (HTML): figure, monthly returns, drawdown periods,
    exit reasons, costs per year, and the buy-and-hold comparison when one exists.
    ``figure=False`` leaves out the figure (about 1 s to draw and encode), keeping the
    tables."""
    currency = esc(result.account_currency)
    parts = [img(figure_png(plot_analysis(result)), "monthly returns, trade PnL, costs")
             if figure else ""]
    parts.append(f"<h3>Monthly returns</h3>{wide(_monthly_html(result.monthly_returns()))}")
    parts.append("<h3>Drawdown periods (deepest first)</h3><p class='muted'>peak: last bar "
                 "at the running maximum; recovery: first bar back at that level.</p>"
                 + wide(_drawdowns_html(result.drawdown_periods(5))))
    exits = result.exit_breakdown()
    parts.append(f"<h3>Exits by reason ({currency})</h3>" + (
        html_table(exits) if len(exits) else "<p>No trade.</p>"))
    parts.append(f"<h3>Funding and fees per year ({currency})</h3>"
                 + html_table(_costs_by_year(result.costs_by_month())))
    hold = result.buy_and_hold() if benchmark else None
    if hold is not None:
        capital = float(result.params["initial_capital"])
        final = float(result.equity.iloc[-1])
        rows = pd.DataFrame({"final_equity": [final, float(hold.iloc[-1])],
                             "total_return": [final / capital - 1.0,
                                              float(hold.iloc[-1]) / capital - 1.0]},
                            index=pd.Index(["this run", "buy and hold (1x, no costs)"],
                                           name="equity"))
        parts.append(f"<h3>Against buy and hold ({currency})</h3>" + html_table(rows))
    return "<h2>Analysis</h2>" + "".join(parts)
