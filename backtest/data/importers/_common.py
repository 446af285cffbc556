"""Shared pieces of the importers: reading source files (plain, ``.gz``, ``.zip``), numbers
and epoch times with messages naming the file, line and column, merging several files in
time order, and the final check against the project's own validation.

Owns nothing public; imports numpy, pandas, the standard library, :mod:`backtest.errors`
and :mod:`backtest.data.validation` only (never the kernels, the engine or matplotlib).
"""

from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.data import validation as v
from backtest.errors import DataError

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
# ns per unit of an epoch number; the magnitude of a time after 1990 tells the unit apart.
UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_UNIT_LIMITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))


@dataclass
class Part:
    """One source file parsed into our columns.

    Attributes
    ----------
    label : str
        The file path; starts every message about it.
    frame : pd.DataFrame
        ``timestamp`` (int64 ns since the epoch, UTC) and float64 value columns, in file order.
    lines : np.ndarray
        int64 location of each row in the source (CSV line number, or JSON item number).
    where : str
        ``"line"`` or ``"item"``: what ``lines`` counts.
    notes : list[str]
        What was detected or converted in this file.
    """

    label: str
    frame: pd.DataFrame
    lines: np.ndarray
    where: str = "line"
    notes: list[str] = field(default_factory=list)

    def at(self, i: int) -> str:
        """Human location of row ``i``: ``'file.csv line 12'``."""
        return f"{self.label} {self.where} {int(self.lines[i])}"


# Decompressed bytes allowed per source file, and the expansion ratio beyond which a small
# archive is refused early (CSV compresses 5-20x; a 5 MB .gz expanding past 8 GB is a bomb
# or a corrupt file). The content is held in memory for parsing, so this bounds the import.
MAX_EXPANDED_BYTES = 2 * 2**30
MAX_RATIO, RATIO_FLOOR = 200, 64 * 2**20
_CHUNK = 2**20


def read_bytes(path: str | Path, max_expanded: int = MAX_EXPANDED_BYTES) -> tuple[bytes, str]:
    """The content of ``path`` (a ``.gz`` is decompressed, a ``.zip`` must hold one file)
    and a label naming it (``'a.zip:a.csv'`` for a zip member). Compressed sources are
    decompressed in chunks and refused as soon as they expand beyond ``max_expanded`` bytes
    or :data:`MAX_RATIO` times their compressed size."""
    p = Path(path).expanduser()
    label = str(p)
    v.check_readable_file(p, "source", expected="a CSV/JSON file, or a .gz/.zip of one")
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
        size = p.stat().st_size
        if magic[:2] == b"\x1f\x8b":
            with gzip.open(p, "rb") as fh:
                return _bounded(fh, label, size, max_expanded), label
        if magic == b"PK\x03\x04":
            return _zip_member(p, label, size, max_expanded)
        return p.read_bytes(), label
    except PermissionError as exc:
        raise DataError(f"{label}: permission denied ({exc.strerror}). Fix: make it readable "
                        "(chmod u+r) or copy it somewhere you can read.") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{label}: cannot read ({type(exc).__name__}: {exc}). Expected a "
                        "complete CSV/JSON file, or a .gz/.zip holding one. Fix: download it "
                        "again or check its permissions.") from exc


def _bounded(fh: Any, label: str, compressed: int, max_expanded: int) -> bytes:
    """Read a decompressing stream chunk by chunk, refusing an excessive expansion."""
    limit = min(max_expanded, max(RATIO_FLOOR, MAX_RATIO * compressed))
    parts, total = [], 0
    while True:
        chunk = fh.read(_CHUNK)
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > limit:
            raise DataError(
                f"{label}: decompresses to more than {_mb(limit)} from {_mb(compressed)} "
                f"compressed (expansion above {limit / max(compressed, 1):,.0f}x); refused "
                "before it fills the memory. Expected a compressed CSV/JSON export "
                f"(at most {_mb(max_expanded)} and {MAX_RATIO}x its compressed size). Fix: "
                "check the archive (gzip -l / unzip -l); split a genuine large export into "
                "smaller files (e.g. one per day or month) and pass them all.")
        parts.append(chunk)


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _zip_member(path: Path, label: str, compressed: int, max_expanded: int
                ) -> tuple[bytes, str]:
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if len(names) != 1:
            raise DataError(f"{label}: zip archive holds {len(names)} files {names[:5]}; "
                            "expected exactly one CSV (as data.binance.vision ships them). "
                            "Fix: unzip it and pass the CSV files themselves.")
        with zf.open(names[0]) as fh:  # streamed: the declared size may lie
            return _bounded(fh, f"{label}:{names[0]}", compressed, max_expanded), \
                f"{label}:{names[0]}"


def read_csv(raw: bytes, label: str, header: bool) -> pd.DataFrame:
    """All cells as text (``header=False``: columns numbered 0, 1, ...)."""
    try:
        # only an empty cell is missing: 'n/a' or 'null' are shown as written in messages
        return pd.read_csv(io.BytesIO(raw), header=0 if header else None, dtype=str,
                           skip_blank_lines=True, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{label}: cannot parse as CSV ({type(exc).__name__}: {exc}). "
                        "Expected comma-separated text. Fix: check that the file is complete "
                        "and is the format named on the command line.") from exc


def looks_numeric(text: object) -> bool:
    """True for a cell like ``'1704067200000'`` or ``'-1.5e-4'`` (header detection)."""
    try:
        float(str(text))
    except ValueError:
        return False
    return True


def numbers(s: pd.Series, part_label: str, col: str, lines: np.ndarray, where: str = "line",
            required: bool = True) -> np.ndarray:
    """float64 of a text/number column; a non-number is an error, an empty cell is an error
    when ``required`` (prices) and NaN otherwise (volume, where ``NaN`` text is also taken)."""
    values = pd.to_numeric(s, errors="coerce")
    text = s.astype("string").str.strip()
    bad = values.isna() & s.notna() & (text != "")
    if required:
        bad |= s.isna() | (text == "")
    else:  # an optional column may say NaN for "not known"
        bad &= text.str.lower() != "nan"
    idx = np.flatnonzero(bad.to_numpy(dtype=bool))
    if idx.size:
        i = int(idx[0])
        raise DataError(f"{part_label}: column '{col}' has {idx.size:,} empty or non-number "
                        f"cell(s); first at {where} {int(lines[i])}: {s.iloc[i]!r}. Expected a "
                        "number on every row. Fix: correct or remove those rows in the source "
                        "(the importer does not fill values in).")
    return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def epoch_ns(s: pd.Series, part_label: str, col: str, lines: np.ndarray,
             unit: str | None = None, where: str = "line") -> tuple[np.ndarray, str]:
    """Epoch numbers (text or numbers) to int64 ns, exactly for integers; ``unit`` None
    detects s/ms/us/ns from the magnitude (one unit per file: a mix is an error).
    Returns ``(ns, unit)``."""
    values = numbers(s, part_label, col, lines, where)
    detected = np.select([np.abs(values) < lim for lim, _ in _UNIT_LIMITS],
                         [u for _, u in _UNIT_LIMITS], "ns")
    if unit is None:
        unit = str(detected[0]) if len(detected) else "ms"
        odd = np.flatnonzero(detected != unit)
        if odd.size:
            i = int(odd[0])
            raise DataError(f"{part_label}: column '{col}' mixes epoch units: {where} "
                            f"{int(lines[0])} looks like {UNIT_WORDS[unit]} "
                            f"({values[0]:.0f}) but {where} {int(lines[i])} like "
                            f"{UNIT_WORDS[str(detected[i])]} ({values[i]:.0f}). Expected one "
                            "unit per file. Fix: split the file where the unit changes.")
    exact = pd.to_numeric(s)
    if pd.api.types.is_integer_dtype(exact):
        return np.asarray(exact, dtype=np.int64) * UNIT_NS[unit], unit
    whole = np.floor(values)  # fractions of a unit: whole units exactly, the rest rounded
    ns = whole.astype(np.int64) * UNIT_NS[unit] + np.round((values - whole) * UNIT_NS[unit])
    return np.asarray(ns, dtype=np.int64), unit


def check_file_order(part: Part, strict: bool = False) -> None:
    """Rows of one file must go forward in time (equal times allowed unless ``strict``)."""
    d = np.diff(part.frame["timestamp"].to_numpy())
    back = np.flatnonzero(d <= 0 if strict else d < 0)
    if back.size:
        i = int(back[0]) + 1
        ts = part.frame["timestamp"].to_numpy()
        raise DataError(f"{part.at(i)}: column 'timestamp' goes back in time "
                        f"({v.fmt_ts(ts[i])} after {v.fmt_ts(ts[i - 1])} on the row before; "
                        f"{back.size:,} such step(s)). Expected the file's rows in time order. "
                        "Fix: sort the source file by time after checking why it is out of "
                        "order (the importer does not reorder rows inside a file).")


def merge(parts: list[Part], value_columns: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Concatenate files in time order; identical rows repeated across (or within) files are
    kept once and counted, rows with the same time and different values are an error naming
    both places. Returns ``(frame, notes)`` with a fresh RangeIndex."""
    for p in parts:
        check_file_order(p)
    order = sorted(range(len(parts)), key=lambda k: int(parts[k].frame["timestamp"].iloc[0]))
    both = pd.concat([parts[k].frame.assign(_part=k, _row=np.arange(len(parts[k].frame)))
                      for k in order], ignore_index=True)
    both = both.sort_values("timestamp", kind="stable", ignore_index=True)
    ts = both["timestamp"].to_numpy()
    dup = np.flatnonzero(ts[1:] == ts[:-1]) + 1
    if not dup.size:
        return both.drop(columns=["_part", "_row"]), []
    first = np.searchsorted(ts, ts[dup], side="left")
    vals = both[value_columns].to_numpy(dtype=np.float64)
    a, b = vals[first], vals[dup]
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    conflict = np.flatnonzero(differ.any(axis=1))
    if conflict.size:
        raise DataError(_conflict_message(parts, both, first, dup, differ, value_columns,
                                          int(conflict[0]), conflict.size))
    labels = sorted({parts[k].label for k in both["_part"].to_numpy()[dup]})
    note = (f"{dup.size:,} row(s) repeated with identical values (overlapping files) kept once "
            f"({', '.join(labels[:3])}{' ...' if len(labels) > 3 else ''})")
    return both.drop(index=dup).drop(columns=["_part", "_row"]).reset_index(drop=True), [note]


def _conflict_message(parts: list[Part], both: pd.DataFrame, first: np.ndarray,
                      dup: np.ndarray, differ: np.ndarray, cols: list[str], c: int,
                      n: int) -> str:
    i, j = int(first[c]), int(dup[c])
    pi, pj = (parts[int(both["_part"].iloc[k])] for k in (i, j))
    ri, rj = int(both["_row"].iloc[i]), int(both["_row"].iloc[j])
    diffs = ", ".join(f"{col} {float(both[col].iloc[i])!r} vs {float(both[col].iloc[j])!r}"
                      for col, d in zip(cols, differ[c], strict=True) if d)
    return (f"{pi.at(ri)} and {pj.at(rj)}: both have timestamp "
            f"{v.fmt_ts(both['timestamp'].iloc[i])} with different values ({diffs}); "
            f"{n:,} conflicting time(s) in all. Expected one row per time (identical "
            "repeats in overlapping files are kept once). Fix: find out which source is right "
            "and remove the other file (or its rows) from the import; nothing is dropped "
            "silently.")


def timestamp_column(ns: np.ndarray) -> pd.Series:
    """int64 ns as a ``datetime64[ns, UTC]`` Series named ``timestamp``."""
    return pd.Series(pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC"),
                     name="timestamp")


def finish_bars(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, list[str], int]:
    """Our bar schema, checked by :func:`backtest.data.validation.validate_bars` (gaps allowed and
    reported). Returns ``(bars, notes, interval_ns)``; nothing is repaired in ``bars``."""
    out = pd.DataFrame({"timestamp": timestamp_column(frame["timestamp"].to_numpy())})
    for c in BAR_COLUMNS:
        out[c] = (frame[c].to_numpy(dtype=np.float64) if c in frame
                  else np.full(len(frame), np.nan))
    events: list[dict] = []
    t = v.to_table(out, label, v.PRICE_COLUMNS, ("volume",))
    step, _ = v.validate_bars(t, "warn", events)
    notes = [e["message"].removeprefix(f"{label}: ") for e in events]
    return out, notes, step


def finish_funding(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, list[str], int]:
    """Our funding schema, checked by :func:`backtest.data.validation.validate_funding`."""
    out = pd.DataFrame({"timestamp": timestamp_column(frame["timestamp"].to_numpy()),
                        "rate": frame["rate"].to_numpy(dtype=np.float64)})
    t = v.to_table(out, label, ("rate",))
    step = v.validate_funding(t)
    irregular = v.spacing(t.ts)[1]
    notes = ([v.gaps_message(t, step, irregular, "events").removeprefix(f"{label}: ")]
             if irregular.size else [])
    return out, notes, step
