"""Other formats -> the project's Parquet schema (SPEC §2, §10: ``backtest data import``).

Owns turning exchange and tool exports into bars (``timestamp`` timestamp[ns, UTC] = bar
OPEN time, ``open high low close`` float64, ``volume`` float64 nullable) or funding
(``timestamp`` = funding time, ``rate`` float64 fraction per interval), and writing them
atomically. Several source files are merged in time order; identical repeated rows are kept
once (counted), conflicting ones are an error naming both files; nothing is repaired or
dropped silently, and the result must pass :mod:`backtest.data.validation` before it is written.

Formats: ``binance-klines``, ``binance-mark-klines``, ``binance-funding``,
``bitmex-trades``, ``bitmex-funding``, ``freqtrade``, ``csv`` (see :data:`FORMATS`).

Imports numpy, pandas, pyarrow, the standard library, :mod:`backtest.errors`,
:mod:`backtest.data.validation` and :mod:`backtest.atomic` only: never the kernels, the engine or
matplotlib.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from backtest.atomic import write_atomic
from backtest.data import validation as v
from backtest.data.importers import _common as c
from backtest.data.importers import binance, bitmex, tabular
from backtest.errors import DataError

# format -> (what it produces, the options it takes)
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "binance-klines": ("bars", ()),
    "binance-mark-klines": ("bars", ()),
    "binance-funding": ("funding", ("symbol",)),
    "bitmex-trades": ("bars", ("symbol", "interval")),
    "bitmex-funding": ("funding", ("symbol",)),
    "freqtrade": ("bars", ()),
    "csv": ("bars or funding", ("timestamp_column", "unit", "timestamp_is")),
}
_FLAGS = {"symbol": "--symbol", "interval": "--interval", "timestamp_column":
          "--timestamp-column", "unit": "--unit", "timestamp_is": "--timestamp-is"}

__all__ = ["FORMATS", "import_files", "write_parquet", "summary"]


def _check_format(fmt: str, options: dict[str, object]) -> None:
    """Unknown formats (with a close match) and options the format does not take."""
    if fmt not in FORMATS:
        close = difflib.get_close_matches(str(fmt), list(FORMATS), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"data import: unknown format {fmt!r}.{hint} Expected one of "
                         f"{', '.join(FORMATS)}.")
    takes = FORMATS[fmt][1]
    for name, value in options.items():
        if value is not None and name not in takes:
            users = [f for f, (_, opts) in FORMATS.items() if name in opts]
            raise ValueError(f"data import {fmt}: {_FLAGS[name]} ({name}=) does not apply to "
                             f"this format; it applies to {', '.join(users)}. Fix: leave it "
                             "out.")
    if fmt == "bitmex-trades" and options.get("interval") is None:
        raise ValueError("data import bitmex-trades: --interval (interval=) is required: the "
                         "bar length to aggregate the trades into, e.g. '1m' or '1h'.")


def import_files(fmt: str, sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                 *, symbol: str | None = None, interval: str | None = None,
                 timestamp_column: str | None = None, unit: str | None = None,
                 timestamp_is: str | None = None) -> pd.DataFrame:
    """Read ``sources`` in format ``fmt`` and return bars or funding in our schema.

    Parameters
    ----------
    fmt : str
        One of :data:`FORMATS`.
    sources : path or sequence of paths
        CSV/JSON files, ``.gz`` or ``.zip`` (one file inside) too; freqtrade also feather.
        Merged in time order.
    symbol : str, optional
        bitmex-trades, bitmex-funding, binance-funding (JSON): the symbol to keep; required
        when a file holds several.
    interval : str, optional
        bitmex-trades (required): bar length, ``'1m'``, ``'1h'``, ``'1d'`` ...
    timestamp_column, unit, timestamp_is : str, optional
        csv: the time column (default ``'timestamp'``), its unit (``s/ms/us/ns`` epoch or
        ``iso`` text; detected when None), and whether it is the bar ``'open'`` (default)
        or ``'close'`` time.

    Returns
    -------
    pd.DataFrame
        Columns ``timestamp`` (datetime64[ns, UTC], bar open / funding time), then
        ``open high low close volume`` (float64; volume NaN = null) or ``rate`` (fraction).
        ``attrs``: ``kind`` ("bars"/"funding"), ``interval_ns`` (median step), ``notes``
        (what was detected, converted, de-duplicated, and the gaps), ``format``, ``sources``.

    Raises
    ------
    DataError
        Unreadable file, missing column, bad cell, conflicting duplicates, or a result that
        fails the load-time validation (SPEC §11).
    ValueError
        Unknown format (with a suggestion) or an option the format does not take.
    """
    options = {"symbol": symbol, "interval": interval, "timestamp_column": timestamp_column,
               "unit": unit, "timestamp_is": timestamp_is}
    _check_format(fmt, options)
    paths = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    if not paths:
        raise ValueError(f"data import {fmt}: no source files given.")
    label = str(paths[0]) + (f" (+{len(paths) - 1} more file(s))" if len(paths) > 1 else "")
    parts = [_parse(fmt, p, options) for p in paths]
    step_given = None
    for p in parts:
        if len(p.frame) == 0:
            raise DataError(f"{p.label}: no data rows. Fix: leave the file out or download "
                            "it again.")
    notes = [n for p in parts for n in p.notes]
    if fmt == "bitmex-trades":
        trades, more = bitmex.merge_trades(parts)
        step_given = bitmex.parse_interval(str(interval))
        frame, agg = bitmex.trades_to_bars(trades, step_given)
        more += agg
    else:
        kinds = {"rate" in p.frame for p in parts}
        if len(kinds) > 1:
            raise DataError(f"{label}: some files are bars and some funding. Fix: import them "
                            "separately.")
        cols = list(dict.fromkeys(k for p in parts for k in p.frame.columns[1:]))
        frame, more = c.merge(parts, cols)
    finish = c.finish_funding if "rate" in frame else c.finish_bars
    out, checked, step = finish(frame, label)
    out.attrs = {"kind": "funding" if "rate" in out else "bars",
                 "interval_ns": int(step_given or step), "notes": notes + more + checked,
                 "format": fmt, "sources": [str(p) for p in paths]}
    return out


def _parse(fmt: str, path: str | os.PathLike[str], o: dict) -> c.Part:
    if fmt in ("binance-klines", "binance-mark-klines"):
        return binance.parse_klines(path, mark=fmt == "binance-mark-klines")
    if fmt == "binance-funding":
        return binance.parse_funding(path, o["symbol"])
    if fmt == "bitmex-trades":
        return bitmex.parse_trades(path, o["symbol"])
    if fmt == "bitmex-funding":
        return bitmex.parse_funding(path, o["symbol"])
    if fmt == "freqtrade":
        return tabular.parse_freqtrade(path)
    return tabular.parse_csv(path, o["timestamp_column"] or "timestamp", o["unit"],
                             o["timestamp_is"] or "open")


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write an imported frame to Parquet atomically (temporary name, then rename).

    The schema is fixed: ``timestamp`` timestamp[ns, UTC], the other columns float64 (NaN
    volume is written as null). The whole file is rendered in memory first; on any error
    ``path`` is left as it was.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [pa.field("timestamp", pa.timestamp("ns", tz="UTC"), nullable=False)]
    fields += [pa.field(str(k), pa.float64()) for k in frame.columns if k != "timestamp"]
    table = pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return write_atomic(path, sink.getvalue().to_pybytes())


def summary(frame: pd.DataFrame, path: str | os.PathLike[str] | None = None) -> str:
    """A few lines for the command line: what was written, its span, interval and notes."""
    a = frame.attrs
    ts = frame["timestamp"]
    n_src = len(a.get("sources", []))
    what = "bars" if a.get("kind") == "bars" else "funding events"
    when = "bar open times" if a.get("kind") == "bars" else "funding times"
    lines = [f"backtest data import {a.get('format')}: {n_src} file(s) -> {path}",
             f"  {len(frame):,} {what}, {ts.iloc[0]:%Y-%m-%d %H:%M} -> "
             f"{ts.iloc[-1]:%Y-%m-%d %H:%M} UTC ({when}), interval "
             f"{v.fmt_interval(a.get('interval_ns', 0))}"]
    if a.get("kind") == "bars" and frame["volume"].isna().all():
        lines.append("  volume: null (not in the source)")
    lines += [f"  note: {n}" for n in a.get("notes", [])]
    return "\n".join(lines)

