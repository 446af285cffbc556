"""The figure and the report of a run, chosen by its ``kind`` (``single``, ``portfolio``,
``roll``): the one place ``RunResult.plot()``/``.report()`` go through, so a new kind of
run adds one entry here rather than its own plot/report plumbing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from backtest.presentation.plotting import plot_portfolio, plot_result
from backtest.presentation.plotting.roll import plot_roll
from backtest.presentation.reports.portfolio import write_portfolio_report
from backtest.presentation.reports.roll import write_roll_report
from backtest.presentation.reports.single import write_result_report

_FIGURES = {"single": plot_result, "roll": plot_roll, "portfolio": plot_portfolio}
_REPORTS = {"single": write_result_report, "roll": write_roll_report,
            "portfolio": write_portfolio_report}


def _pick(table: dict[str, Any], result: Any, what: str) -> Any:
    kind = getattr(result, "kind", None)
    if kind not in table:
        raise TypeError(f"{what}: no {what} for a {type(result).__name__} (kind {kind!r}); "
                        f"known kinds: {sorted(table)}.")
    return table[kind]


def plot_run(result: Any, **kwargs: Any) -> Any:
    """The result's figure (a matplotlib Figure); ``kwargs`` go to the kind's plot function."""
    return _pick(_FIGURES, result, "plot")(result, **kwargs)


def write_run_report(result: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write the result's self-contained HTML report to ``path`` (atomically)."""
    return _pick(_REPORTS, result, "report")(result, path, **kwargs)
