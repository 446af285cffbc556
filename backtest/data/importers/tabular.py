"""Tabular sources: freqtrade OHLCV files (JSON and feather) and a generic CSV with a
configurable time column, unit and open/close convention.

Owns those layouts; imports numpy, pandas, pyarrow, the standard library and the importers'
common helpers only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.data import validation as v
from backtest.data.importers import _common as c
from backtest.errors import DataError

FREQTRADE_COLUMNS = ("date", "open", "high", "low", "close", "volume")
UNITS = ("s", "ms", "us", "ns", "iso")
_TIMESTAMP_IS = ("open", "close")


def parse_freqtrade(path: str | Path) -> c.Part:
    """One freqtrade file: JSON ``[[ms, open, high, low, close, volume], ...]`` or feather
    (``date`` UTC, ``open``..``volume``); times are bar open times."""
    raw, label = c.read_bytes(path)
    if raw[:6] == b"ARROW1" or raw[:4] == b"PAR1":
        return _freqtrade_arrow(raw, label)
    try:
        rows = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{label}: neither feather nor JSON ({exc}). Expected a freqtrade "
                        "OHLCV file (.json or .feather). Fix: pass the file freqtrade "
                        "download-data wrote.") from exc
    if (not isinstance(rows, list) or not rows
            or any(not isinstance(r, list) or len(r) != 6 for r in rows)):
        bad = next((i for i, r in enumerate(rows) if not isinstance(r, list) or len(r) != 6), 0) \
            if isinstance(rows, list) else 0
        raise DataError(f"{label}: expected a non-empty JSON list of [ms, open, high, low, "
                        f"close, volume] rows; item {bad} is not. Fix: pass a freqtrade "
                        "OHLCV JSON file (not trades).")
    df = pd.DataFrame(rows, columns=list(FREQTRADE_COLUMNS))
    lines = np.arange(len(df), dtype=np.int64)
    ns, unit = c.epoch_ns(df["date"], label, "date", lines, where="item")
    frame = _ohlcv(df, label, lines, "item", ns)
    return c.Part(label, frame, lines, "item", [f"{label}: freqtrade JSON, times in "
                                                f"{c.UNIT_WORDS[unit]}"])


def _freqtrade_arrow(raw: bytes, label: str) -> c.Part:
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    try:
        reader = feather.read_table if raw[:6] == b"ARROW1" else pq.read_table
        df = reader(pa.BufferReader(raw)).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{label}: cannot read ({type(exc).__name__}: {exc}). Fix: check the "
                        "file is complete.") from exc
    missing = [k for k in FREQTRADE_COLUMNS if k not in df.columns]
    if missing:
        raise DataError(f"{label}: missing column(s) {missing}; found {list(df.columns)}. "
                        f"Expected freqtrade's {', '.join(FREQTRADE_COLUMNS)}. Fix: pass a "
                        "freqtrade OHLCV file.")
    lines = np.arange(len(df), dtype=np.int64)
    date = df["date"]
    if not isinstance(date.dtype, pd.DatetimeTZDtype):
        raise DataError(f"{label}: column 'date' has dtype {date.dtype}; expected tz-aware "
                        "UTC times (freqtrade writes them so). Fix: re-export with freqtrade, "
                        "or convert with the generic csv format and --unit.")
    ns = np.asarray(pd.DatetimeIndex(date).tz_convert("UTC").as_unit("ns").asi8, dtype=np.int64)
    return c.Part(label, _ohlcv(df, label, lines, "row", ns), lines, "row",
                  [f"{label}: freqtrade feather, 'date' in {date.dtype.tz}"])


def _ohlcv(df: pd.DataFrame, label: str, lines: np.ndarray, where: str,
           ns: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"timestamp": ns})
    for col in c.BAR_COLUMNS:
        if col in df.columns:
            frame[col] = c.numbers(df[col], label, col, lines, where, required=col != "volume")
    return frame


def parse_csv(path: str | Path, timestamp_column: str = "timestamp", unit: str | None = None,
              timestamp_is: str = "open") -> c.Part:
    """A CSV with a header: a time column and ``open, high, low, close[, volume]`` (any
    case) -> bars, or ``rate`` -> funding. Epoch numbers in ``unit`` (detected from the
    magnitude when None) or ISO text (no zone = UTC, said in the notes). ``timestamp_is =
    "close"`` shifts bar close times back by one interval (the median spacing)."""
    if unit is not None and unit not in UNITS:
        raise ValueError(f"--unit {unit!r}: expected one of {UNITS} (or leave it out to detect).")
    if timestamp_is not in _TIMESTAMP_IS:
        raise ValueError(f"--timestamp-is {timestamp_is!r}: expected 'open' or 'close'.")
    raw, label = c.read_bytes(path)
    df = c.read_csv(raw, label, header=True)
    df.columns = [str(k).strip().lower() for k in df.columns]
    key = timestamp_column.lower()
    kind = _csv_kind(df, label, key)
    lines = np.arange(len(df), dtype=np.int64) + 2
    ns, note = _csv_times(df[key], label, key, lines, unit)
    notes = [f"{label}: {note}"]
    if timestamp_is == "close":
        if kind == "funding":
            raise ValueError("--timestamp-is close applies to bars; funding times are event "
                             "times. Fix: leave it out.")
        ns, shifted = _close_to_open(ns, label)
        notes.append(f"{label}: {shifted}")
    frame = pd.DataFrame({"timestamp": ns})
    if kind == "funding":
        frame["rate"] = c.numbers(df["rate"], label, "rate", lines)
    else:
        frame = _ohlcv(df, label, lines, "line", ns)
    dropped = [k for k in df.columns if k not in (key, "rate", *c.BAR_COLUMNS)]
    if dropped:
        notes.append(f"{label}: column(s) not imported: {', '.join(dropped)}")
    return c.Part(label, frame, lines, notes=notes)


def _csv_kind(df: pd.DataFrame, label: str, key: str) -> str:
    """``'bars'`` (open/high/low/close present) or ``'funding'`` (``rate``); else an error."""
    cols = list(df.columns)
    dup = sorted({k for k in cols if cols.count(k) > 1})
    if dup:
        raise DataError(f"{label}: column(s) {dup} appear more than once (names are compared "
                        "in lower case). Fix: keep one of each in the source.")
    if key not in cols:
        s = v.suggest(key, cols, ("date", "datetime", "time", "open_time", "ts"))
        fix = f"pass --timestamp-column {s}" if s else "pass --timestamp-column NAME"
        raise DataError(f"{label}: missing time column {key!r}; found {cols}. Fix: {fix}.")
    if all(k in cols for k in v.PRICE_COLUMNS):
        return "bars"
    if "rate" in cols:
        return "funding"
    missing = [k for k in v.PRICE_COLUMNS if k not in cols]
    hints = {m: v.suggest(m, cols) for m in missing}
    renames = {s: m for m, s in hints.items() if s}
    fix = f"rename the columns {renames} in the source" if renames else "add them"
    raise DataError(f"{label}: missing column(s) {missing}; found {cols}. Expected a time "
                    f"column and open, high, low, close[, volume] (bars) or rate (funding). "
                    f"Fix: {fix}.")


def _csv_times(s: pd.Series, label: str, col: str, lines: np.ndarray, unit: str | None
               ) -> tuple[np.ndarray, str]:
    """Times of the generic CSV as int64 ns UTC and a note saying how they were read."""
    numeric = pd.to_numeric(s, errors="coerce")
    if unit != "iso" and (unit is not None or numeric.notna().all()):
        ns, used = c.epoch_ns(s, label, col, lines, unit)
        how = "given with --unit" if unit else "detected from the magnitude"
        return ns, f"'{col}' in epoch {c.UNIT_WORDS[used]} ({how})"
    text = s.astype(str).str.strip()
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{label}: column '{col}' has {bad.size:,} time(s) that are not ISO "
                        f"8601 text; first at line {int(lines[i])}: {s.iloc[i]!r}. Fix: correct "
                        "them, or pass --unit s/ms/us/ns for epoch numbers.")
    zoned = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    how = ("ISO text with a zone, converted to UTC" if zoned.all() else
           "ISO text without a zone, read as UTC" if not zoned.any() else
           f"ISO text, {int((~zoned).sum()):,} row(s) without a zone read as UTC")
    return np.asarray(pd.DatetimeIndex(parsed).as_unit("ns").asi8, dtype=np.int64), \
        f"'{col}' as {how}"


def _close_to_open(ns: np.ndarray, label: str) -> tuple[np.ndarray, str]:
    """Bar close times -> open times: minus the median spacing. Close times on the last
    ms/us/ns of a bar (Binance's ``close_time = open + interval - 1 ms``) are first moved to
    the bar end."""
    if len(ns) < 2:
        raise DataError(f"{label}: --timestamp-is close needs at least 2 rows to infer the "
                        "bar interval. Fix: import a longer file.")
    step = v.spacing(ns)[0]
    end = ""
    for eps, word in ((10**6, "millisecond"), (10**3, "microsecond"), (1, "nanosecond")):
        if np.all((ns + eps) % 10**9 == 0) and step % 10**9 == 0:
            ns, end = ns + eps, f" after adding 1 {word} (close times on the bar's last {word})"
            break
    return ns - step, (f"timestamps are bar close times: shifted back by one bar interval "
                       f"{v.fmt_interval(step)} (the median spacing){end}")

