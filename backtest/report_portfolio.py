"""Self-contained HTML reports of portfolios and sweeps (figures embedded as base64 PNG).

Owns :func:`write_portfolio_report` (several markets on one wallet) and
:func:`write_sweep_report` (one row per combination; a single market or a dict of markets).
Reuses the table helpers and :func:`~backtest.report.write_atomic` of ``report.py``; figures
come from :mod:`backtest.plotting`. Computes no statistic: it formats, sorts and counts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.report import (
    _data_section,
    _esc,
    _img,
    _money,
    _num,
    _page,
    _params_table,
    _stat_display,
    _stats_table,
    _table,
    _trades_table,
    write_atomic,
)

__all__ = ["SWEEP_ROWS", "write_portfolio_report", "write_sweep_report"]

SWEEP_ROWS = 500        # combinations shown in a sweep's full stats table
BEST_METRICS = ("sharpe", "total_return", "calmar", "max_drawdown")
_BEST_COLUMNS = ("total_return", "cagr", "max_drawdown", "sharpe", "calmar", "n_trades",
                 "win_rate", "n_liquidations", "min_liq_distance", "fees_paid",
                 "funding_paid", "ruined")
_MARGIN_NOTES = {
    "cross": "cross margin: one wallet backs every position, so a loss on one market eats "
             "the collateral of the others; the whole portfolio is liquidated when wallet + "
             "Σ uPnL ≤ Σ maintenance margin.",
    "isolated": "isolated margin: each position risks only its own margin; the wallet they "
                "share funds new entries (a loss elsewhere can leave too little to open one).",
}


def _wide(table: str) -> str:
    return f"<div style='overflow-x:auto'>{table}</div>"


def _data_sections(markets: Mapping[str, Any]) -> str:
    return "".join(f"<h3>{_esc(name)}</h3>{_data_section(m, m.mark_source)}"
                   for name, m in markets.items())


# --- portfolio ----------------------------------------------------------------------------

def _pnl_by_market_table(result: Any, currency: str) -> str:
    frame = result.pnl_by_market.copy()
    total = frame.sum(numeric_only=True)
    frame.loc["total"] = total
    shown = pd.DataFrame({
        "market": [str(m) for m in frame.index],
        "pnl": [_money(float(v)) for v in frame["pnl"]],
        "funding": [_money(float(v)) for v in frame["funding"]],
        "fees": [_money(float(v)) for v in frame["fees"]],
        "trades": [_num(int(v)) for v in frame["n_trades"]],
        "liquidations": [_num(int(v)) for v in frame["n_liquidations"]],
    })
    return (f"<p>Closed trades per market ({_esc(currency)}); pnl is net of fees and "
            f"funding (SPEC §8).</p>" + _table(shown, left=("market",)))


def _portfolio_events_table(result: Any) -> str:
    rows = []
    ev = result.events
    for (market, kind), g in ev.groupby(["market", "kind"], sort=False):
        rows.append({"market": market, "kind": kind, "source": "simulation",
                     "count": _num(len(g)), "first": _num(g["time"].min()),
                     "last": _num(g["time"].max()), "detail": ""})
    for name, m in result.markets.items():
        for e in m.events:
            rows.append({"market": name, "kind": e["kind"], "source": "data",
                         "count": _num(int(e.get("count", 1))), "first": "", "last": "",
                         "detail": e.get("message", "")})
    if not rows:
        return "<p>No events.</p>"
    frame = pd.DataFrame(rows).sort_values(["market", "source", "kind"], kind="stable")
    return _table(frame, left=("market", "kind", "source", "detail"))


def portfolio_report_html(result: Any, title: str | None = None, png: bytes | None = None,
                          **plot_kwargs: Any) -> str:
    """The HTML text of :func:`write_portfolio_report` (``png``: a pre-rendered figure)."""
    from backtest.plotting import figure_png, plot_portfolio

    prm = result.params
    currency = result.markets[result.names[0]].instrument.account_currency
    title = title or (f"{' + '.join(result.names)} {prm['leverage']:g}× "
                      f"{prm['margin_mode']} — portfolio report")
    png = png if png is not None else figure_png(plot_portfolio(result, **plot_kwargs))
    note = _MARGIN_NOTES.get(prm["margin_mode"], "")
    body = (f"<p>{_esc(repr(result)[1:-1])}</p><p class='muted'>{_esc(note)}</p>"
            f"{_img(png, 'portfolio figure')}"
            f"<h2>Statistics (combined equity)</h2>{_stats_table(result.stats, currency)}"
            f"<h2>P&amp;L by market</h2>{_pnl_by_market_table(result, currency)}"
            f"<h2>Trades</h2>{_wide(_trades_table(result))}"
            f"<h2>Events by market and kind</h2>{_portfolio_events_table(result)}"
            f"<h2>Parameters</h2>{_params_table(prm)}"
            f"<h2>Data</h2>{_data_sections(result.markets)}")
    return _page(title, body)


def write_portfolio_report(result: Any, path: str | os.PathLike[str], title: str | None = None,
                           **plot_kwargs: Any) -> Path:
    """Write a portfolio's self-contained HTML report to ``path`` (atomically).

    Contents: the :func:`~backtest.plotting.plot_portfolio` figure, the stats of the
    combined equity, ``pnl_by_market`` with a total row, the trades with their market
    (first and last ``report.TRADE_ROWS``), events counted by market and kind (simulation
    and data), the parameters, and one data section per market. ``plot_kwargs`` go to
    ``plot_portfolio``.

    Returns
    -------
    Path
        The written file.
    """
    return write_atomic(path, portfolio_report_html(result, title, **plot_kwargs))


# --- sweep --------------------------------------------------------------------------------

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
        out[key] = [_stat_display(key, v, currency) for v in flat[key]]
    return out


def _best_tables(sweep: Any, currency: str, top: int) -> str:
    parts = []
    for metric in BEST_METRICS:
        if metric not in sweep.stats.columns:
            continue
        best = sweep.best(metric, n=top)
        order = "lowest" if metric == "max_drawdown" else "highest"
        parts.append(f"<h3>By {_esc(metric)} ({order} first)</h3>"
                     + _wide(_table(_sweep_rows(sweep, best, _BEST_COLUMNS, currency),
                                    left=tuple(sweep.names))))
    return "".join(parts)


def _levels_table(sweep: Any) -> str:
    if not sweep.names:
        return "<p>Nothing was swept: one combination.</p>"
    params = sweep.params
    rows = []
    for name in sweep.names:
        values = list(dict.fromkeys(_label(v) for v in params[name]))
        rows.append({"level": name, "values": _num(len(values)), "list": ", ".join(values)})
    return _table(pd.DataFrame(rows), left=("level", "list"))


def _fixed_table(sweep: Any) -> str:
    from backtest.params import RUN_DEFAULTS

    first = sweep.params.iloc[0]
    rows = []
    for key in sweep.params.columns:
        if key in sweep.names:
            continue
        value = first[key]
        default = RUN_DEFAULTS.get(key, value)
        same = _label(value) == _label(default)
        rows.append({"parameter": key, "value": "None" if value is None else _num(value),
                     "source": "default" if same else "set"})
    return _table(pd.DataFrame(rows), left=("parameter", "value", "source"))


def _full_table(sweep: Any, currency: str, max_rows: int) -> str:
    n = len(sweep)
    stats = sweep.stats
    shown = stats.iloc[:max_rows]
    note = (f"<p>All {n:,} combination{'s' if n != 1 else ''}.</p>" if n <= max_rows else
            f"<p><b>Showing the first {max_rows:,} of {n:,} combinations</b> (in sweep "
            f"order; {n - max_rows:,} rows not shown). The complete table: "
            f"<code>sweep.stats.to_csv(...)</code>; the best ones are listed above.</p>")
    return note + _wide(_table(_sweep_rows(sweep, shown, list(stats.columns), currency),
                               left=tuple(sweep.names)))


def _sweep_figure(sweep: Any, metrics: Sequence[str]) -> str:
    from backtest.plotting import figure_png, plot_sweep, sweep_figure_kind

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
    return f"{_img(png, 'sweep figure')}<p class='muted'>{_esc(caption)}</p>"


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
    body = (f"<p>{_esc(summary)}</p>{_sweep_figure(sweep, metrics)}"
            + (f"<h2>Best combinations</h2>{_best_tables(sweep, currency, top)}" if n > 1
               else "")
            + f"<h2>Swept levels</h2>{_levels_table(sweep)}"
            f"<h2>Fixed parameters</h2>{_fixed_table(sweep)}"
            f"<h2>All combinations</h2>{_full_table(sweep, currency, max_rows)}"
            f"<h2>Data</h2>{_data_sections(markets)}")
    return _page(title, body)


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
