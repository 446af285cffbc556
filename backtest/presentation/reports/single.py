"""Self-contained HTML reports of single-market runs (figures embedded as base64 PNG).

Owns :func:`write_result_report` (one run) and :func:`write_comparison_report` (several
runs, e.g. one strategy at several leverages). The page and its sections come from
``html``; figures from ``backtest.presentation.plotting``; files are written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.atomic import write_atomic
from backtest.presentation.plotting import figure_png, plot_comparison, plot_result
from backtest.presentation.reports.analysis import analysis_html
from backtest.presentation.reports.html import (
    cells,
    data_section,
    esc,
    events_table,
    img,
    num,
    page,
    params_table,
    stat_display,
    stats_table,
    table,
    trades_table,
    wide,
)

__all__ = ["write_comparison_report", "write_result_report"]


def _figure_png(result: Any, **plot_kwargs: Any) -> bytes:
    return figure_png(plot_result(result, **plot_kwargs))


def result_report_html(result: Any, title: str | None = None, png: bytes | None = None,
                       **plot_kwargs: Any) -> str:
    """The HTML text of :func:`write_result_report` (``png``: a pre-rendered figure)."""
    prm = result.params
    inst = result.market.instrument
    title = title or (f"{inst.symbol} {prm['leverage']:g}× {prm['margin_mode']} — backtest "
                      "report")
    png = png if png is not None else _figure_png(result, **plot_kwargs)
    body = (f"<p>{esc(repr(result)[1:-1])}</p>{img(png, 'result figure')}"
            f"<h2>Statistics</h2>{stats_table(result.stats, result.account_currency)}"
            f"{analysis_html(result)}"
            f"<h2>Trades</h2>{trades_table(result)}"
            f"<h2>Events by kind</h2>{events_table(result)}"
            f"<h2>Parameters</h2>{params_table(prm)}"
            f"<h2>Data</h2>{data_section(result.market, result.mark_source)}")
    return page(title, body)


def write_result_report(result: Any, path: str | os.PathLike[str], title: str | None = None,
                        **plot_kwargs: Any) -> Path:
    """Write one run's self-contained HTML report to ``path`` (atomically).

    Contents: the :func:`~backtest.plotting.plot_result` figure (base64 PNG), the stats
    table (fractions also shown as %), the trades (first and last
    :data:`TRADE_ROWS` rows), events summarised by kind, the parameters, and the data: span,
    mark source, sources and counted repairs. ``plot_kwargs`` go to ``plot_result``.

    Returns
    -------
    Path
        The written file.
    """
    return write_atomic(path, result_report_html(result, title, **plot_kwargs))


def write_comparison_report(results: Mapping[str, Any], path: str | os.PathLike[str],
                            title: str = "Comparison of runs", *, notes: str | None = None,
                            images: Mapping[str, bytes] | None = None, log: bool | None = None,
                            run_details: bool = True, analysis_figures: bool = True,
                            comparison_image: bytes | None = None) -> Path:
    """Write an HTML report comparing several runs (e.g. one strategy at several leverages).

    Parameters
    ----------
    results : mapping of label -> Result
    path : str or PathLike
        Written atomically (temporary file + ``os.replace``).
    title : str
    notes : str, optional
        Preformatted text shown under the title (strategy description, a text table).
    images : mapping of label -> PNG bytes, optional
        Pre-rendered per-run figures (avoids drawing them twice); others are drawn with
        :func:`~backtest.plotting.plot_result`.
    log : bool, optional
        Log-scale the comparison chart's equity axis; default the rule of every equity axis
        (log beyond a 10× span).
    run_details : bool
        Add one section per run: figure, analysis, trades, events and parameters.
    analysis_figures : bool
        Draw each run's analysis figure (monthly grid, trade PnL, costs; about 1 s a run);
        False keeps the analysis tables only.
    comparison_image : bytes, optional
        The comparison chart already rendered (PNG, e.g. for a file beside the report);
        default: drawn here with ``log``.
    """
    if not results:
        raise ValueError("write_comparison_report: results is empty; pass {label: Result}.")
    images = dict(images or {})
    first = next(iter(results.values()))
    parts = [f"<pre>{esc(notes)}</pre>" if notes else ""]
    if comparison_image is None:
        comparison_image = figure_png(plot_comparison(results, log=log))
    parts.append(img(comparison_image, "equity comparison"))
    # One column per run, one row per stat: a few runs fit the page whatever the stats.
    shown = pd.DataFrame({label: [stat_display(k, v, r.account_currency)
                                  for k, v in r.stats.items()]
                          for label, r in results.items()}, index=first.stats.index)
    shown.index.name = "stat"
    parts.append(f"<h2>Statistics</h2>{wide(table(shown, index=True))}")
    params = pd.DataFrame({label: pd.Series(r.params, dtype=object)
                           for label, r in results.items()})
    differ = params.apply(lambda row: row.map(num).nunique() > 1, axis=1)
    if differ.any():
        varying = cells(params[differ].T)
        varying.index.name = "run"
        parts.append(f"<h2>Parameters that differ</h2>{table(varying, index=True)}")
    parts.append(f"<h2>Common parameters</h2>{params_table(params[~differ].iloc[:, 0].to_dict())}")
    parts.append(f"<h2>Data</h2>{data_section(first.market, first.mark_source)}")
    if run_details:
        for label, r in results.items():
            png = images.get(label) or _figure_png(r)
            parts.append(
                f"<h2>Run {esc(label)}</h2><p>{esc(repr(r)[1:-1])}</p>{img(png, label)}"
                f"<details><summary>Analysis: monthly returns, drawdown periods, exits by "
                f"reason, costs</summary>{analysis_html(r, figure=analysis_figures)}</details>"
                f"<details><summary>Trades ({len(r.trades)})</summary>{trades_table(r)}"
                f"</details><details open><summary>Events by kind</summary>"
                f"{events_table(r)}</details>")
    return write_atomic(path, page(title, "".join(parts)))
