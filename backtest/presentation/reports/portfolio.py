"""Self-contained HTML report of a portfolio (several markets on one wallet).

Owns :func:`write_portfolio_report`: the combined figure, stats, P&L by market, trades and
events with their market, the parameters and each market's data. Page and sections come
from ``html``; computes no statistic.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.atomic import write_atomic
from backtest.presentation.plotting import figure_png, plot_portfolio
from backtest.presentation.reports.analysis import analysis_html
from backtest.presentation.reports.html import (
    data_sections,
    esc,
    img,
    money,
    num,
    page,
    params_table,
    stats_table,
    table,
    trades_table,
    wide,
)

__all__ = ["write_portfolio_report"]

_MARGIN_NOTES = {
    "cross": "cross margin: one wallet backs every position, so a loss on one market eats "
             "the collateral of the others; the whole portfolio is liquidated when wallet + "
             "Σ uPnL ≤ Σ maintenance margin.",
    "isolated": "isolated margin: each position risks only its own margin; the wallet they "
                "share funds new entries (a loss elsewhere can leave too little to open one).",
}


def _pnl_by_market_table(result: Any, currency: str) -> str:
    frame = result.pnl_by_market.copy()
    total = frame.sum(numeric_only=True)
    frame.loc["total"] = total
    shown = pd.DataFrame({
        "market": [str(m) for m in frame.index],
        "pnl": [money(float(v)) for v in frame["pnl"]],
        "funding": [money(float(v)) for v in frame["funding"]],
        "fees": [money(float(v)) for v in frame["fees"]],
        "trades": [num(int(v)) for v in frame["n_trades"]],
        "liquidations": [num(int(v)) for v in frame["n_liquidations"]],
    })
    return (f"<p>Closed trades per market ({esc(currency)}); pnl is net of fees and "
            f"funding.</p>" + table(shown, left=("market",)))


def _portfolio_events_table(result: Any) -> str:
    rows = []
    ev = result.events
    for (market, kind), g in ev.groupby(["market", "kind"], sort=False):
        rows.append({"market": market, "kind": kind, "source": "simulation",
                     "count": num(len(g)), "first": num(g["time"].min()),
                     "last": num(g["time"].max()), "detail": ""})
    for name, m in result.markets.items():
        for e in m.events:
            rows.append({"market": name, "kind": e["kind"], "source": "data",
                         "count": num(int(e.get("count", 1))), "first": "", "last": "",
                         "detail": e.get("message", "")})
    if not rows:
        return "<p>No events.</p>"
    frame = pd.DataFrame(rows).sort_values(["market", "source", "kind"], kind="stable")
    return table(frame, left=("market", "kind", "source", "detail"))


def portfolio_report_html(result: Any, title: str | None = None, png: bytes | None = None,
                          **plot_kwargs: Any) -> str:
    """The HTML text of :func:`write_portfolio_report` (``png``: a pre-rendered figure)."""
    prm = result.params
    currency = result.markets[result.names[0]].instrument.account_currency
    title = title or (f"{' + '.join(result.names)} {prm['leverage']:g}× "
                      f"{prm['margin_mode']} — portfolio report")
    png = png if png is not None else figure_png(plot_portfolio(result, **plot_kwargs))
    note = _MARGIN_NOTES.get(prm["margin_mode"], "")
    body = (f"<p>{esc(repr(result)[1:-1])}</p><p class='muted'>{esc(note)}</p>"
            f"{img(png, 'portfolio figure')}"
            f"<h2>Statistics (combined equity)</h2>{stats_table(result.stats, currency)}"
            f"<h2>P&amp;L by market</h2>{_pnl_by_market_table(result, currency)}"
            f"{analysis_html(result)}"
            f"<h2>Trades</h2>{wide(trades_table(result))}"
            f"<h2>Events by market and kind</h2>{_portfolio_events_table(result)}"
            f"<h2>Parameters</h2>{params_table(prm)}"
            f"<h2>Data</h2>{data_sections(result.markets)}")
    return page(title, body)


def write_portfolio_report(result: Any, path: str | os.PathLike[str], title: str | None = None,
                           **plot_kwargs: Any) -> Path:
    """Write a portfolio's self-contained HTML report to ``path`` (atomically).

    Contents: the :func:`~backtest.plotting.plot_portfolio` figure, the stats of the
    combined equity, ``pnl_by_market`` with a total row, the analysis (monthly returns,
    drawdown periods, exits by reason, costs; ``reports.analysis``), the trades with their market
    (first and last ``report.TRADE_ROWS``), events counted by market and kind (simulation
    and data), the parameters, and one data section per market. ``plot_kwargs`` go to
    ``plot_portfolio``.

    Returns
    -------
    Path
        The written file.
    """
    return write_atomic(path, portfolio_report_html(result, title, **plot_kwargs))
