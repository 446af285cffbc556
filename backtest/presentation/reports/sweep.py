"""Self-contained HTML report of a sweep (one row per combination; one market or several).

Owns :func:`write_sweep_report`: the best rows by several metrics, the levels swept, the
fixed parameters (default or set), the full stats table and a figure. Page and sections
come from ``html``; computes no statistic: it formats, sorts and counts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.atomic import write_atomic
from backtest.presentation.plotting import figure_png, plot_sweep, sweep_figure_kind
from backtest.presentation.reports.html import (
    data_sections,
    esc,
    img,
    num,
    page,
    stat_display,
    table,
    wide,
)

__all__ = ["SWEEP_ROWS", "write_sweep_report"]

SWEEP_ROWS = 500        # combinations shown in a sweep's full stats table
BEST_METRICS = ("sharpe", "total_return", "calmar", "max_drawdown")
_BEST_COLUMNS = ("total_return", "cagr", "max_drawdown", "sharpe", "calmar", "n_trades",
                 "win_rate", "n_liquidations", "min_liq_distance", "fees_paid",
                 "funding_paid", "ruined")


def _label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def _markets_of(sweep: Any) -> dict[str, Any]:
    market = sweep.market
    if isinstance(market, Mapping):
        return dict(market)
    return {getattr(market.instrument, "symbol", "market"): market}


def _sweep_rows(sweep: Any, frame: pd.DataFrame, columns: Sequence[str], currency: str
                ) -> pd.DataFrame:
    """``frame`` (rows of ``sweep.stats``) with level labels and stats formatted."""
    flat = frame.reset_index()
    out = pd.DataFrame(index=range(len(flat)))
    for name in sweep.names or [flat.columns[0]]:
        out[name] = [_label(v) for v in flat[name]]
    for key in columns:
        out[key] = [stat_display(key, v, currency) for v in flat[key]]
    return out


def _best_tables(sweep: Any, currency: str, top: int) -> str:
    parts = []
    for metric in BEST_METRICS:
        if metric not in sweep.stats.columns:
            continue
        best = sweep.best(metric, n=top)
        order = "lowest" if metric == "max_drawdown" else "highest"
        parts.append(f"<h3>By {esc(metric)} ({order} first)</h3>"
                     + wide(table(_sweep_rows(sweep, best, _BEST_COLUMNS, currency),
                                    left=tuple(sweep.names))))
    return "".join(parts)


def _levels_table(sweep: Any) -> str:
    if not sweep.names:
        return "<p>Nothing was swept: one combination.</p>"
    params = sweep.params
    rows = []
    for name in sweep.names:
        values = list(dict.fromkeys(_label(v) for v in params[name]))
        rows.append({"level": name, "values": num(len(values)), "list": ", ".join(values)})
    return table(pd.DataFrame(rows), left=("level", "list"))


def _fixed_table(sweep: Any) -> str:
    first = sweep.params.iloc[0]
    rows = []
    for key in sweep.params.columns:
        if key in sweep.names:
            continue
        value = first[key]
        default = sweep.defaults.get(key, value)
        same = _label(value) == _label(default)
        rows.append({"parameter": key, "value": "None" if value is None else num(value),
                     "source": "default" if same else "set"})
    return table(pd.DataFrame(rows), left=("parameter", "value", "source"))


def _full_table(sweep: Any, currency: str, max_rows: int) -> str:
    n = len(sweep)
    stats = sweep.stats
    shown = stats.iloc[:max_rows]
    note = (f"<p>All {n:,} combination{'s' if n != 1 else ''}.</p>" if n <= max_rows else
            f"<p><b>Showing the first {max_rows:,} of {n:,} combinations</b> (in sweep "
            f"order; {n - max_rows:,} rows not shown). The complete table: "
            f"<code>sweep.stats.to_csv(...)</code>; the best ones are listed above.</p>")
    return note + wide(table(_sweep_rows(sweep, shown, list(stats.columns), currency),
                               left=tuple(sweep.names)))


def _sweep_figure(sweep: Any, metrics: Sequence[str]) -> str:
    kind, levels = sweep_figure_kind(sweep)
    if kind is None:
        return "<p>Nothing was swept, so there is no figure; use sweep.run(0).plot().</p>"
    others = [n for n in sweep.names if n not in levels]
    over = f"; mean over {', '.join(others)}" if others and kind != "leverage" else ""
    shown = ", ".join(metrics)
    if kind == "heatmap":
        caption = f"{shown} over {levels[1]} (rows) × {levels[0]} (columns){over}."
    elif kind == "leverage":
        caption = (f"{shown} against leverage"
                   + (f", one line per combination of {', '.join(others)}." if others else "."))
    else:
        caption = f"{shown} by {levels[0]}{over}."
    png = figure_png(plot_sweep(sweep, metrics))
    return f"{img(png, 'sweep figure')}<p class='muted'>{esc(caption)}</p>"


def sweep_report_html(sweep: Any, title: str | None = None, *,
                      metrics: Sequence[str] = ("total_return", "max_drawdown", "sharpe"),
                      max_rows: int = SWEEP_ROWS, top: int = 5) -> str:
    """The HTML text of :func:`write_sweep_report`."""
    markets = _markets_of(sweep)
    first = next(iter(markets.values()))
    currency = first.instrument.account_currency
    stats = sweep.stats
    n = len(sweep)
    combos = f"{n:,} combination{'s' if n != 1 else ''}"
    title = title or f"{' + '.join(markets)} — sweep of {combos}"
    levels = " × ".join(f"{name} [{stats.index.get_level_values(name).nunique(dropna=False)}]"
                        for name in sweep.names) or "nothing swept"
    elapsed = getattr(sweep, "elapsed", float("nan"))
    summary = (f"{combos} ({levels}) over {first.n_bars:,} bars of "
               f"{', '.join(markets)}; {int((stats['n_liquidations'] > 0).sum()):,} with "
               f"liquidations, {int(stats['ruined'].sum()):,} ruined"
               + (f"; kernel time {elapsed:.3g} s." if np.isfinite(elapsed) else "."))
    body = (f"<p>{esc(summary)}</p>{_sweep_figure(sweep, metrics)}"
            + (f"<h2>Best combinations</h2>{_best_tables(sweep, currency, top)}" if n > 1
               else "")
            + f"<h2>Swept levels</h2>{_levels_table(sweep)}"
            f"<h2>Fixed parameters</h2>{_fixed_table(sweep)}"
            f"<h2>All combinations</h2>{_full_table(sweep, currency, max_rows)}"
            f"<h2>Data</h2>{data_sections(markets)}")
    return page(title, body)


def write_sweep_report(sweep: Any, path: str | os.PathLike[str], title: str | None = None, *,
                       metrics: Sequence[str] = ("total_return", "max_drawdown", "sharpe"),
                       max_rows: int = SWEEP_ROWS, top: int = 5) -> Path:
    """Write a sweep's self-contained HTML report to ``path`` (atomically).

    Contents: a summary (combinations, levels, liquidated / ruined counts); a figure of
    ``metrics`` (:func:`~backtest.plotting.plot_sweep`: heatmap over two numeric levels, else
    the leverage curve, else bars); the ``top`` combinations by sharpe, total return, calmar
    and max drawdown; the swept levels and their values; the fixed parameters (marked
    ``default`` or ``set``); the full stats table, at most ``max_rows`` rows with a note
    giving the count when more; one data section per market (``sweep.market`` may be a
    Market or a dict name -> Market).

    Returns
    -------
    Path
        The written file.
    """
    return write_atomic(path, sweep_report_html(sweep, title, metrics=metrics,
                                                max_rows=max_rows, top=top))
