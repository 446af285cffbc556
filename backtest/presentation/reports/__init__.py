"""HTML reports: one page family (``html``) and one writer per kind of result (``single``,
``portfolio``, ``sweep``). The writers are re-exported here."""

from backtest.presentation.reports.portfolio import write_portfolio_report
from backtest.presentation.reports.single import write_comparison_report, write_result_report
from backtest.presentation.reports.sweep import write_sweep_report

__all__ = ["write_comparison_report", "write_portfolio_report", "write_result_report",
           "write_sweep_report"]
