"""Self-contained HTML reports of results (figures embedded as base64 PNG).

Owns :func:`write_result_report` (one run), :func:`write_comparison_report` (several runs,
e.g. one strategy at several leverages) and the shared table helpers; files are written
with :func:`backtest.atomic.write_atomic` (re-exported here). The portfolio and sweep
reports live in ``report_portfolio.py``; :func:`write_portfolio_report` and
:func:`write_sweep_report` here forward to them. Figures come from
:mod:`backtest.plotting`; nothing here computes a statistic.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.atomic import write_atomic

__all__ = ["write_atomic", "write_comparison_report", "write_portfolio_report",
           "write_result_report", "write_sweep_report"]

TRADE_ROWS = 50  # rows shown from each end of a trade list
_FRACTION_STATS = ("total_return", "cagr", "max_drawdown", "win_rate", "exposure",
                   "min_liq_distance")
_MONEY_STATS = ("final_equity", "funding_paid", "fees_paid")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1300px;color:#222;padding:0 16px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
img{max-width:100%;border:1px solid #eee}pre{background:#f7f7f7;padding:10px;overflow-x:auto}
.muted{color:#777}details{margin:6px 0}
"""


# --- formatting -------------------------------------------------------------------------

def _esc(x: Any) -> str:
    return html.escape(str(x))


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell formatted with :func:`_num` (``DataFrame.map`` is pandas >= 2.1)."""
    return frame.map(_num) if hasattr(frame, "map") else frame.applymap(_num)


def _num(x: Any) -> str:
    if x is pd.NaT:
        return ""
    if isinstance(x, (bool, np.bool_)) or x is None:
        return str(x)
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if not np.isfinite(x):
            return str(x)
        return f"{x:,.1f}" if abs(x) >= 1e5 else f"{x:,.6g}"
    if isinstance(x, pd.Timestamp):
        return x.strftime("%Y-%m-%d %H:%M")
    return str(x)


def _money(x: float) -> str:
    """Amounts: 2 decimals from 100 up, more below (coin-settled accounts hold e.g. 0.0123)."""
    if not np.isfinite(x):
        return str(x)
    decimals = 2 if abs(x) >= 100 or x == 0 else 4 if abs(x) >= 1 else 6
    return f"{x:,.{decimals}f}"


def _stat_display(key: str, value: Any, currency: str) -> str:
    if key in _FRACTION_STATS and isinstance(value, (float, np.floating)) and np.isfinite(value):
        sign = "+" if key in ("total_return", "cagr") else ""
        return f"{value:{sign}.2%}"
    if key in _MONEY_STATS and isinstance(value, (float, np.floating)):
        return f"{_money(float(value))} {currency}"
    return _num(value)


def _table(frame: pd.DataFrame, left: tuple[str, ...] = (), index: bool = False) -> str:
    """An escaped HTML table of already-formatted cells; ``left`` columns left-aligned."""
    cols = list(frame.columns)
    head = "".join(f"<th class='{'l' if c in left else ''}'>{_esc(c)}</th>" for c in cols)
    if index:
        head = f"<th class='l'>{_esc(frame.index.name or '')}</th>" + head
    rows = []
    for label, row in frame.iterrows():
        cells = "".join(f"<td class='{'l' if c in left else ''}'>{_esc(row[c])}</td>"
                        for c in cols)
        if index:
            cells = f"<td class='l'>{_esc(label)}</td>" + cells
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<img alt='{_esc(alt)}' src='data:image/png;base64,{data}'>"


def _page(title: str, body: str) -> str:
    from backtest import __version__

    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{_esc(title)}</h1>{body}<p class='muted'>backtest {_esc(__version__)}; "
            f"money in the account currency, rates and stats as fractions (shown as %).</p>"
            f"</body></html>\n")


# --- sections -----------------------------------------------------------------------------

def _stats_table(stats: pd.Series, currency: str) -> str:
    frame = pd.DataFrame({"key": list(stats.index),
                          "value": [_num(v) for v in stats.values],
                          "shown as": [_stat_display(k, v, currency) for k, v in
                                       stats.items()]})
    return _table(frame, left=("key",))


def _params_table(params: Mapping[str, Any]) -> str:
    frame = pd.DataFrame({"parameter": list(params), "value": [_num(v) if v is not None
                                                              else "None"
                                                              for v in params.values()]})
    return _table(frame, left=("parameter", "value"))


def _trades_table(result: Any) -> str:
    trades = result.trades
    n = len(trades)
    if n == 0:
        return "<p>No trades.</p>"
    shown = _cells(trades)
    shown.insert(0, "#", [str(i) for i in range(n)])
    left = ("market", "entry_time", "exit_time", "side", "exit_reason")
    if n <= 2 * TRADE_ROWS:
        return f"<p>{n} trades.</p>" + _table(shown, left=left)
    gap = pd.DataFrame([["…"] * shown.shape[1]], columns=shown.columns)
    gap.iloc[0, 1] = f"… {n - 2 * TRADE_ROWS} rows omitted …"
    part = pd.concat([shown.head(TRADE_ROWS), gap, shown.tail(TRADE_ROWS)], ignore_index=True)
    return (f"<p>{n} trades; the first and last {TRADE_ROWS} are shown.</p>"
            + _table(part, left=left))


def _events_table(result: Any) -> str:
    ev = result.events
    if len(ev) == 0:
        return "<p>No events.</p>"
    # Loader events carry their count in `value` and no time; simulation events are one row each.
    loader = ev["time"].isna()
    count = np.where(loader, ev["value"].to_numpy(float), 1.0)
    frame = ev.assign(count=count, source=np.where(loader, "data", "simulation"))
    rows = []
    for (kind, source), g in frame.groupby(["kind", "source"], sort=False):
        times = g["time"].dropna()
        detail = next((d for d in g["detail"] if d), "")
        rows.append({"kind": kind, "source": source, "count": _num(int(g["count"].sum())),
                     "first": _num(times.min()) if len(times) else "",
                     "last": _num(times.max()) if len(times) else "", "detail": detail})
    return _table(pd.DataFrame(rows), left=("kind", "source", "detail"))


def _data_section(market: Any, mark_source: str) -> str:
    from backtest.validation import fmt_interval

    inst = market.instrument
    span = (f"{_num(market.index[0])} → {_num(market.index[-1])} UTC, {market.n_bars:,} bars "
            f"every {fmt_interval(market.bar_ns)}")
    items = [("instrument", f"{inst.symbol} ({inst.kind}, {inst.settlement}, rules "
                            f"{inst.rules}, taker {inst.taker_fee:g}, maker {inst.maker_fee:g})"),
             ("account currency", inst.account_currency),
             ("span", span),
             ("mark source", mark_source + ("" if mark_source == "mark" else
                                            " — liquidations fire on last-price wicks")),
             ("irregular bar steps (gaps)", _num(market.n_gaps))]
    items += [(f"source: {k}", v) for k, v in market.sources.items()]
    repairs = market.repairs or {}
    items += [(f"repair: {k}", _num(v)) for k, v in repairs.items()] or [("repairs", "none")]
    frame = pd.DataFrame(items, columns=["item", "value"])
    return _table(frame, left=("item", "value"))


def _figure_png(result: Any, **plot_kwargs: Any) -> bytes:
    from backtest.plotting import figure_png, plot_result

    return figure_png(plot_result(result, **plot_kwargs))


def result_report_html(result: Any, title: str | None = None, png: bytes | None = None,
                       **plot_kwargs: Any) -> str:
    """The HTML text of :func:`write_result_report` (``png``: a pre-rendered figure)."""
    prm = result.params
    inst = result.market.instrument
    title = title or (f"{inst.symbol} {prm['leverage']:g}× {prm['margin_mode']} — backtest "
                      "report")
    png = png if png is not None else _figure_png(result, **plot_kwargs)
    body = (f"<p>{_esc(repr(result)[1:-1])}</p>{_img(png, 'result figure')}"
            f"<h2>Statistics</h2>{_stats_table(result.stats, result.account_currency)}"
            f"<h2>Trades</h2>{_trades_table(result)}"
            f"<h2>Events by kind</h2>{_events_table(result)}"
            f"<h2>Parameters</h2>{_params_table(prm)}"
            f"<h2>Data</h2>{_data_section(result.market, result.mark_source)}")
    return _page(title, body)


def write_result_report(result: Any, path: str | os.PathLike[str], title: str | None = None,
                        **plot_kwargs: Any) -> Path:
    """Write one run's self-contained HTML report to ``path`` (atomically).

    Contents: the :func:`~backtest.plotting.plot_result` figure (base64 PNG), the stats
    table (keys as in SPEC §8, fractions also shown as %), the trades (first and last
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
                            images: Mapping[str, bytes] | None = None, log: bool = True,
                            run_details: bool = True) -> Path:
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
    log : bool
        Log-scale the comparison chart's equity axis.
    run_details : bool
        Add one section per run: figure, trades, events and parameters.
    """
    from backtest.plotting import figure_png, plot_comparison

    if not results:
        raise ValueError("write_comparison_report: results is empty; pass {label: Result}.")
    images = dict(images or {})
    first = next(iter(results.values()))
    parts = [f"<pre>{_esc(notes)}</pre>" if notes else ""]
    parts.append(_img(figure_png(plot_comparison(results, log=log)), "equity comparison"))
    stats = pd.DataFrame({label: r.stats for label, r in results.items()}).T
    cur = {label: r.account_currency for label, r in results.items()}
    shown = pd.DataFrame({k: [_stat_display(k, v, cur[i]) for i, v in stats[k].items()]
                          for k in stats.columns}, index=stats.index)
    shown.index.name = "run"
    parts.append(f"<h2>Statistics</h2>{_table(shown, index=True)}")
    params = pd.DataFrame({label: pd.Series(r.params, dtype=object)
                           for label, r in results.items()})
    differ = params.apply(lambda row: row.map(_num).nunique() > 1, axis=1)
    if differ.any():
        varying = _cells(params[differ].T)
        varying.index.name = "run"
        parts.append(f"<h2>Parameters that differ</h2>{_table(varying, index=True)}")
    parts.append(f"<h2>Common parameters</h2>{_params_table(params[~differ].iloc[:, 0].to_dict())}")
    parts.append(f"<h2>Data</h2>{_data_section(first.market, first.mark_source)}")
    if run_details:
        for label, r in results.items():
            png = images.get(label) or _figure_png(r)
            parts.append(
                f"<h2>Run {_esc(label)}</h2><p>{_esc(repr(r)[1:-1])}</p>{_img(png, label)}"
                f"<details><summary>Trades ({len(r.trades)})</summary>{_trades_table(r)}"
                f"</details><details open><summary>Events by kind</summary>"
                f"{_events_table(r)}</details>")
    return write_atomic(path, _page(title, "".join(parts)))


def write_portfolio_report(result: Any, path: str | os.PathLike[str], title: str | None = None,
                           **plot_kwargs: Any) -> Path:
    """Write a portfolio's HTML report (see ``report_portfolio.write_portfolio_report``)."""
    from backtest import report_portfolio

    return report_portfolio.write_portfolio_report(result, path, title, **plot_kwargs)


def write_sweep_report(sweep: Any, path: str | os.PathLike[str], title: str | None = None,
                       **kwargs: Any) -> Path:
    """Write a sweep's HTML report (see ``report_portfolio.write_sweep_report``)."""
    from backtest import report_portfolio

    return report_portfolio.write_sweep_report(sweep, path, title, **kwargs)
