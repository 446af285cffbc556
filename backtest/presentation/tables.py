"""One number formatter for every table: terminal text, HTML reports and Jupyter reprs.

Rules (the same everywhere, by column name):

- fractions (``total_return``, ``cagr``, ``max_drawdown``, ``win_rate``, ``exposure``,
  ``min_liq_distance`` and the fractional parameters ``stop_loss``, ``take_profit``,
  ``trailing_stop``, ...) as percent: ``+15,440.00 %`` (returns signed), ``12.34 %``;
- money (``final_equity``, ``fees_paid``, ``funding_paid``, ``interest_paid``, PnL columns)
  with thousands separators and 2 decimals from 100 up, more below (coin accounts);
- ratios (``sharpe``, ``sortino``, ``calmar``, ``profit_factor``) with 3 decimals;
- counts (``n_*``) as integers, ``ruined`` as ``yes``/``no``;
- missing values: ``none`` in a parameter column (``stop_loss=None`` means "no stop"),
  ``–`` in a stat column (undefined, e.g. the Sharpe ratio of a flat curve); ``inf`` stays
  ``inf``.

Imports numpy and pandas only; nothing from ``backtest``.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FRACTION_COLUMNS", "StatsFrame", "format_frame", "format_value", "html_table",
           "text_table"]

FRACTION_COLUMNS = ("total_return", "cagr", "max_drawdown", "win_rate", "exposure",
                    "min_liq_distance", "stop_loss", "take_profit", "trailing_stop",
                    "slippage", "limit_offset", "stop_limit_offset", "monthly_return",
                    "depth", "share", "drag", "mean monthly drag")
SIGNED_COLUMNS = ("total_return", "cagr", "monthly_return")
MONEY_COLUMNS = ("final_equity", "fees_paid", "funding_paid", "interest_paid", "pnl", "mean_pnl",
                 "gross_pnl", "fees", "funding", "interest", "initial_capital", "margin",
                 "equity", "wallet")
RATIO_COLUMNS = ("sharpe", "sortino", "calmar", "profit_factor")
PARAMETER_COLUMNS = ("leverage", "stop_loss", "take_profit", "trailing_stop", "margin_mode",
                     "size", "size_type", "signals", "slippage")
PLAIN_INT_COLUMNS = ("year", "#", "combination")
MISSING_STAT = "–"
REPR_ROWS = 20


def _missing(x: Any) -> bool:
    return x is None or x is pd.NaT or (isinstance(x, (float, np.floating))
                                        and math.isnan(float(x)))


def money(x: float) -> str:
    """Amounts: 2 decimals from 100 up (and 0), 4 from 1, 6 below (0.0123 BTC)."""
    if not np.isfinite(x):
        return str(x)
    decimals = 2 if abs(x) >= 100 or x == 0 else 4 if abs(x) >= 1 else 6
    return f"{x:,.{decimals}f}"


def format_value(column: str | None, value: Any) -> str:
    """``value`` of a column named ``column`` as shown in every table (rules above)."""
    name = column or ""
    if _missing(value):
        return "none" if name in PARAMETER_COLUMNS else MISSING_STAT
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (int, np.integer)):
        if name in PLAIN_INT_COLUMNS:
            return str(int(value))
        if name == "leverage":
            return f"{int(value)}x"
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if name in FRACTION_COLUMNS:
            return f"{x * 100:{'+' if name in SIGNED_COLUMNS else ''},.2f} %"
        if name in MONEY_COLUMNS:
            return money(x)
        if name in RATIO_COLUMNS:
            return f"{x:,.3f}"
        if name == "leverage":
            return f"{x:g}x"
        if name.startswith("n_") and x.is_integer():
            return f"{int(x):,}"
        return f"{x:,.1f}" if abs(x) >= 1e5 else f"{x:,.6g}"
    return str(value)


def format_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell and index value as text, formatted by its column (or level) name."""
    out = pd.DataFrame({c: [format_value(str(c), v) for v in frame[c].tolist()]
                        for c in frame.columns}, columns=list(frame.columns))
    index = frame.index
    if isinstance(index, pd.MultiIndex):
        arrays = [[format_value(name, v) for v in index.get_level_values(i).tolist()]
                  for i, name in enumerate(index.names)]
        out.index = pd.MultiIndex.from_arrays(arrays, names=index.names)
    elif isinstance(index, pd.RangeIndex):
        out.index = index
    else:
        out.index = pd.Index([format_value(index.name, v) for v in index.tolist()],
                             name=index.name)
    return out


def _shown_rows(frame: pd.DataFrame, limit: int) -> tuple[pd.DataFrame, int]:
    """The first and last rows of a long frame, and how many were left out."""
    if len(frame) <= limit:
        return frame, 0
    half = limit // 2
    return pd.concat([frame.iloc[:half], frame.iloc[-half:]]), len(frame) - 2 * half


def text_table(frame: pd.DataFrame, limit: int | None = None) -> str:
    """The frame as right-aligned terminal text (index first); long frames shortened."""
    shown, hidden = _shown_rows(frame, limit) if limit else (frame, 0)
    cells = format_frame(shown)
    index_names = [str(n) if n is not None else "" for n in cells.index.names]
    rows = [list(label) if isinstance(label, tuple) else [label] for label in cells.index]
    header = index_names + [str(c) for c in cells.columns]
    body = [[str(x) for x in r] + list(map(str, cells.iloc[i].tolist()))
            for i, r in enumerate(rows)]
    widths = [max([len(h)] + [len(b[j]) for b in body]) for j, h in enumerate(header)]
    n_index = len(index_names)

    def line(parts: list[str]) -> str:
        return "  ".join(p.ljust(w) if j < n_index else p.rjust(w)
                         for j, (p, w) in enumerate(zip(parts, widths, strict=True))).rstrip()

    lines = [line(header)] + [line(b) for b in body]
    if hidden:
        lines.insert(1 + len(shown) // 2, f"... {hidden:,} rows ...")
    return "\n".join(lines)


def html_table(frame: pd.DataFrame, limit: int | None = None, index: bool = True) -> str:
    """The frame as an HTML table (formatted cells, numbers right-aligned)."""
    shown, hidden = _shown_rows(frame, limit) if limit else (frame, 0)
    cells = format_frame(shown)
    names = [str(n) if n is not None else "" for n in cells.index.names] if index else []
    head = "".join(f"<th style='text-align:left'>{html.escape(n)}</th>" for n in names)
    head += "".join(f"<th style='text-align:right'>{html.escape(str(c))}</th>"
                    for c in cells.columns)
    body = []
    for k, (label, row) in enumerate(cells.iterrows()):
        if hidden and k == len(shown) // 2:
            body.append(f"<tr><td colspan='{len(names) + len(cells.columns)}'>... "
                        f"{hidden:,} rows ...</td></tr>")
        parts = list(label) if isinstance(label, tuple) else [label]
        tds = "".join(f"<td style='text-align:left'>{html.escape(str(p))}</td>"
                      for p in parts) if index else ""
        tds += "".join(f"<td style='text-align:right'>{html.escape(str(v))}</td>"
                       for v in row.tolist())
        body.append(f"<tr>{tds}</tr>")
    return (f"<table class='bt-table'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


class StatsFrame(pd.DataFrame):
    """A DataFrame of stats rows (a sweep's ``stats``, ``best()``) that prints with the
    one table formatter: in a terminal (``repr``/``print``) and in Jupyter. The numbers
    are unchanged (fractions stay fractions); only their display differs."""

    @property
    def _constructor(self) -> type:
        return StatsFrame

    def __repr__(self) -> str:
        return text_table(self, limit=REPR_ROWS)

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_html_(self) -> str:
        more = f"<p>{len(self):,} rows x {self.shape[1]} columns</p>" \
            if len(self) > REPR_ROWS else ""
        return html_table(self, limit=REPR_ROWS) + more


def stats_html(stats: pd.Series, currency: str | None = None) -> str:
    """A run's stats as a two-column HTML table (stat, value), each value formatted by its
    stat name; money stats carry the account currency."""
    rows = []
    for key, value in stats.items():
        text = format_value(str(key), value)
        if currency and key in MONEY_COLUMNS and text not in (MISSING_STAT, "none"):
            text += f" {currency}"
        rows.append(f"<tr><td style='text-align:left'>{html.escape(str(key))}</td>"
                    f"<td style='text-align:right'>{html.escape(text)}</td></tr>")
    return ("<table class='bt-table'><thead><tr><th style='text-align:left'>stat</th>"
            f"<th style='text-align:right'>value</th></tr></thead><tbody>{''.join(rows)}"
            "</tbody></table>")


_UNITS = {"leverage": "×", "stop_loss": "fraction of entry", "take_profit": "fraction of entry",
          "trailing_stop": "fraction", "size": "per size_type", "n_trades": "count",
          "n_liquidations": "count", "n_stops": "count", "n_ambiguous": "count",
          "sharpe": "annualised, log returns", "sortino": "annualised, log returns",
          "calmar": "ratio", "profit_factor": "ratio"}


def axis_label(name: str, currency: str = "account currency") -> str:
    """An axis label with its unit: ``total_return (fraction; 1 = +100 %)``,
    ``final_equity (USDT)``, ``leverage (×)``, ``sharpe (annualised, log returns)``."""
    if name in _UNITS:
        unit = _UNITS[name]
    elif name in FRACTION_COLUMNS:
        unit = "fraction; 1 = +100 %" if name in SIGNED_COLUMNS else "fraction"
    else:
        unit = currency if name in MONEY_COLUMNS else None
    return f"{name} ({unit})" if unit else name
