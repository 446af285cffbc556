"""Binance sources: kline CSVs of data.binance.vision (trade and mark/index price klines) and
funding-rate history (the fundingRate CSV and the REST ``/fapi/v1/fundingRate`` JSON).

Owns the parsing of those layouts into :class:`~backtest.importers._common.Part`; imports
numpy, pandas, the standard library and the importers' common helpers only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.data.importers import _common as c
from backtest.errors import DataError

# data.binance.vision kline layout (older files have no header row, newer ones this one).
KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                 "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
FUNDING_CSV_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")


def _table(raw: bytes, label: str, columns: tuple[str, ...]) -> tuple[pd.DataFrame, bool]:
    """The CSV with ``columns`` as names; a first row that is not numbers is a header."""
    df = c.read_csv(raw, label, header=False)
    if len(df) == 0:
        raise DataError(f"{label}: empty file. Expected rows of {', '.join(columns)}. Fix: "
                        "download it again.")
    header = not c.looks_numeric(df.iloc[0, 0])
    if header:
        df = df.iloc[1:].reset_index(drop=True)
    if df.shape[1] != len(columns):
        raise DataError(f"{label}: {df.shape[1]} column(s); expected the {len(columns)} of the "
                        f"documented layout ({', '.join(columns)}). Fix: pass a file of this "
                        "format, or import it with the generic `csv` format.")
    if len(df) == 0:
        raise DataError(f"{label}: a header row and no data. Fix: download the file again.")
    df.columns = list(columns)
    return df, header


def parse_klines(path: str | Path, mark: bool = False) -> c.Part:
    """One kline file: ``open_time`` (bar open; ms, or us in spot files from 2025) -> bars.

    ``mark=True`` (mark or index price klines): ``volume`` is written as null, and a
    non-zero volume is an error (the file is probably trade klines).
    """
    raw, label = c.read_bytes(path)
    df, header = _table(raw, label, KLINE_COLUMNS)
    lines = np.arange(len(df), dtype=np.int64) + 1 + int(header)
    ns, unit = c.epoch_ns(df["open_time"], label, "open_time", lines)
    frame = pd.DataFrame({"timestamp": ns})
    for col in ("open", "high", "low", "close"):
        frame[col] = c.numbers(df[col], label, col, lines)
    volume = c.numbers(df["volume"], label, "volume", lines, required=False)
    notes = [f"{label}: open_time in {c.UNIT_WORDS[unit]} (detected from the magnitude), "
             f"{'a header row' if header else 'no header row'}"]
    if mark:
        nonzero = np.flatnonzero(np.nan_to_num(volume) != 0)
        if nonzero.size:
            i = int(nonzero[0])
            raise DataError(f"{label}: column 'volume' is non-zero in {nonzero.size:,} row(s), "
                            f"first at line {int(lines[i])}: {volume[i]!r}; mark and index "
                            "price klines carry volume 0. Is this a trade kline file "
                            "(klines/ rather than markPriceKlines/)? Fix: import it with "
                            "binance-klines.")
        volume = np.full(len(df), np.nan)
    frame["volume"] = volume
    return c.Part(label, frame, lines, notes=notes)


def parse_funding(path: str | Path, symbol: str | None = None) -> c.Part:
    """One funding file: the fundingRate CSV (``calc_time`` ms = funding time,
    ``last_funding_rate`` a fraction) or the REST JSON list (``fundingTime``,
    ``fundingRate``; ``symbol`` selects one when the list holds several)."""
    raw, label = c.read_bytes(path)
    if raw.lstrip()[:1] in (b"[", b"{"):
        return _funding_json(raw, label, symbol)
    df, header = _table(raw, label, FUNDING_CSV_COLUMNS)
    lines = np.arange(len(df), dtype=np.int64) + 1 + int(header)
    ns, unit = c.epoch_ns(df["calc_time"], label, "calc_time", lines)
    rate = c.numbers(df["last_funding_rate"], label, "last_funding_rate", lines)
    hours = c.numbers(df["funding_interval_hours"], label, "funding_interval_hours", lines,
                      required=False)
    shown = ", ".join(f"{h:g}" for h in np.unique(hours[~np.isnan(hours)])) or "?"
    notes = [f"{label}: fundingRate CSV, calc_time in {c.UNIT_WORDS[unit]} (taken as the "
             f"funding time), funding_interval_hours {shown}"]
    return c.Part(label, pd.DataFrame({"timestamp": ns, "rate": rate}), lines, notes=notes)


def _funding_json(raw: bytes, label: str, symbol: str | None) -> c.Part:
    """The REST list ``[{"symbol", "fundingTime" (ms), "fundingRate" (text), ...}, ...]``."""
    try:
        items = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{label}: not valid JSON ({exc}). Expected the fundingRate REST "
                        "response (a list of objects). Fix: save the response body as is."
                        ) from exc
    if not isinstance(items, list) or not items or not all(isinstance(x, dict) for x in items):
        raise DataError(f"{label}: expected a non-empty JSON list of objects with fundingTime "
                        f"and fundingRate; got {type(items).__name__}. Fix: save the "
                        "/fapi/v1/fundingRate response body as is.")
    df = pd.DataFrame(items)
    missing = [k for k in ("fundingTime", "fundingRate") if k not in df.columns]
    if missing:
        raise DataError(f"{label}: JSON objects lack {missing}; found keys "
                        f"{[str(k) for k in df.columns]}. Expected fundingTime (ms) and "
                        "fundingRate (fraction). Fix: pass the fundingRate REST response.")
    lines = np.arange(len(df), dtype=np.int64)
    df, lines = select_symbol(df, lines, label, symbol)
    ns, unit = c.epoch_ns(df["fundingTime"], label, "fundingTime", lines, where="item")
    rate = c.numbers(df["fundingRate"], label, "fundingRate", lines, "item")
    notes = [f"{label}: REST JSON, fundingTime in {c.UNIT_WORDS[unit]}"]
    return c.Part(label, pd.DataFrame({"timestamp": ns, "rate": rate}), lines, "item", notes)


def select_symbol(df: pd.DataFrame, lines: np.ndarray, label: str, symbol: str | None
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of ``symbol`` (required when the ``symbol`` column holds several)."""
    if "symbol" not in df.columns:
        if symbol is not None:
            raise DataError(f"{label}: --symbol {symbol!r} given but the file has no 'symbol' "
                            "column. Fix: drop --symbol, or pass the right file.")
        return df, lines
    found = list(dict.fromkeys(df["symbol"].astype(str)))
    if symbol is None:
        if len(found) > 1:
            raise DataError(f"{label}: holds {len(found)} symbols {found[:8]}; expected one. "
                            f"Fix: pass --symbol (symbol=), e.g. --symbol {found[0]}.")
        return df, lines
    keep = (df["symbol"].astype(str) == symbol).to_numpy()
    if not keep.any():
        import difflib
        close = difflib.get_close_matches(symbol, found, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{label}: no rows of symbol {symbol!r}; the file holds {found[:8]}."
                        f"{hint} Fix: pass one of those with --symbol.")
    return df[keep].reset_index(drop=True), lines[keep]
