"""The HTML page family every report shares: one stylesheet, one number formatter, and the
sections (stats, parameters, trades, events, data) that the writers compose.

Pages are self-contained (figures as base64 PNG). Nothing here computes a statistic.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from backtest.presentation.tables import MONEY_COLUMNS, format_value
from backtest.version import __version__

TRADE_ROWS = 50  # rows shown from each end of a trade list
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1300px;color:#222;padding:0 16px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
img{max-width:100%;border:1px solid #eee}
pre{background:#f7f7f7;padding:10px;overflow-x:auto;white-space:pre-wrap}
.muted{color:#777}details{margin:6px 0}
"""


# --- formatting -------------------------------------------------------------------------

def esc(x: Any) -> str:
    return html.escape(str(x))


def cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell formatted with :func:`num` (``DataFrame.map`` is pandas >= 2.1)."""
    return frame.map(num) if hasattr(frame, "map") else frame.applymap(num)


def num(x: Any) -> str:
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


def money(x: float) -> str:
    """Amounts: 2 decimals from 100 up, more below (coin-settled accounts hold e.g. 0.0123)."""
    if not np.isfinite(x):
        return str(x)
    decimals = 2 if abs(x) >= 100 or x == 0 else 4 if abs(x) >= 1 else 6
    return f"{x:,.{decimals}f}"


def stat_display(key: str, value: Any, currency: str) -> str:
    """A stat as every table shows it (``backtest.presentation.tables.format_value``),
    money with its currency."""
    text = format_value(key, value)
    if key in MONEY_COLUMNS and isinstance(value, (float, np.floating)) and np.isfinite(value):
        text += f" {currency}"
    return text


def source_label(source: Any) -> str:
    """A data source as a report shows it: the file name, never the local folder (a report
    is shared; ``/home/me/...`` means nothing to its reader and tells what it should not)."""
    text = str(source)
    if "/" in text or "\\" in text:
        return text.replace("\\", "/").rsplit("/", 1)[-1]
    return text


def table(frame: pd.DataFrame, left: tuple[str, ...] = (), index: bool = False) -> str:
    """An escaped HTML table of already-formatted cells; ``left`` columns left-aligned."""
    cols = list(frame.columns)
    head = "".join(f"<th class='{'l' if c in left else ''}'>{esc(c)}</th>" for c in cols)
    if index:
        head = f"<th class='l'>{esc(frame.index.name or '')}</th>" + head
    rows = []
    for label, row in frame.iterrows():
        cells = "".join(f"<td class='{'l' if c in left else ''}'>{esc(row[c])}</td>"
                        for c in cols)
        if index:
            cells = f"<td class='l'>{esc(label)}</td>" + cells
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{data}'>"


# An absolute POSIX path in text (after a space, quote, bracket or tag), folders and all.
_ABS_PATH = re.compile(r"(?<=[\s'\"(=>])/(?:[^\s/'\"<>:;,()]+/)+(?=[^\s/'\"<>:;,()]+)")


def strip_folders(text: str) -> str:
    """``text`` with the folders of absolute paths removed (file names kept): messages of
    the loader name their file, and a shared report must not carry the author's disk."""
    return _ABS_PATH.sub("", text)


def page(title: str, body: str) -> str:
    """The whole self-contained page; absolute folders are stripped from it."""
    body = strip_folders(body)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{esc(title)}</h1>{body}<p class='muted'>backtest {esc(__version__)}; "
            f"money in the account currency, rates and stats as fractions (shown as %).</p>"
            f"</body></html>\n")


# --- sections -----------------------------------------------------------------------------

def stats_table(stats: pd.Series, currency: str) -> str:
    frame = pd.DataFrame({"key": list(stats.index),
                          "value": [num(v) for v in stats.values],
                          "shown as": [stat_display(k, v, currency) for k, v in
                                       stats.items()]})
    return table(frame, left=("key",))


def params_table(params: Mapping[str, Any]) -> str:
    frame = pd.DataFrame({"parameter": list(params), "value": [num(v) if v is not None
                                                              else "None"
                                                              for v in params.values()]})
    return table(frame, left=("parameter", "value"))


def trades_table(result: Any) -> str:
    trades = result.trades
    n = len(trades)
    if n == 0:
        return "<p>No trades.</p>"
    shown = cells(trades)
    shown.insert(0, "#", [str(i) for i in range(n)])
    left = ("market", "entry_time", "exit_time", "side", "exit_reason")
    if n <= 2 * TRADE_ROWS:
        return f"<p>{n} trades.</p>" + table(shown, left=left)
    gap = pd.DataFrame([["…"] * shown.shape[1]], columns=shown.columns)
    gap.iloc[0, 1] = f"… {n - 2 * TRADE_ROWS} rows omitted …"
    part = pd.concat([shown.head(TRADE_ROWS), gap, shown.tail(TRADE_ROWS)], ignore_index=True)
    return (f"<p>{n} trades; the first and last {TRADE_ROWS} are shown.</p>"
            + table(part, left=left))


def events_table(result: Any) -> str:
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
        rows.append({"kind": kind, "source": source, "count": num(int(g["count"].sum())),
                     "first": num(times.min()) if len(times) else "",
                     "last": num(times.max()) if len(times) else "", "detail": detail})
    return table(pd.DataFrame(rows), left=("kind", "source", "detail"))


def data_section(market: Any, mark_source: str) -> str:
    from backtest.data.validation import fmt_interval

    inst = market.instrument
    span = (f"{num(market.index[0])} → {num(market.index[-1])} UTC, {market.n_bars:,} bars "
            f"every {fmt_interval(market.bar_ns)}")
    items = [("instrument", f"{inst.symbol} ({inst.kind}, {inst.settlement}, rules "
                            f"{inst.rules}, taker {inst.taker_fee:g}, maker {inst.maker_fee:g})"),
             ("account currency", inst.account_currency),
             ("span", span),
             ("mark source", mark_source + ("" if mark_source == "mark" else
                                            " — liquidations fire on last-price wicks")),
             ("irregular bar steps (gaps)", num(market.n_gaps))]
    items += [(f"source: {k}", source_label(v)) for k, v in market.sources.items()]
    repairs = market.repairs or {}
    items += [(f"repair: {k}", num(v)) for k, v in repairs.items()] or [("repairs", "none")]
    frame = pd.DataFrame(items, columns=["item", "value"])
    return table(frame, left=("item", "value"))


def wide(table: str) -> str:
    return f"<div style='overflow-x:auto'>{table}</div>"


def data_sections(markets: Mapping[str, Any]) -> str:
    return "".join(f"<h3>{esc(name)}</h3>{data_section(m, m.mark_source)}"
                   for name, m in markets.items())
