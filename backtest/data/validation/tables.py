"""Reading a source into a :class:`Table`: Parquet or DataFrame, schema, order.

Owns reading Parquet, the column checks (missing, duplicated, non-numeric, with rename
suggestions) and the conversion to a :class:`Table` of int64 ns times and float64 columns,
plus trimming and the time-order check common to every table. Imports pandas, numpy,
pyarrow, ``backtest.errors`` and the sibling ``timestamps`` module only.
"""

from __future__ import annotations

import decimal
import difflib
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.data.validation.timestamps import fmt_ts, timestamps
from backtest.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
# Names people give the time column; tried when `timestamp` is missing.
_TIME_ALIASES = ("date", "datetime", "time", "open_time", "opentime", "ts", "time_open", "index")


@dataclass
class Table:
    """One input series after the schema checks.

    Attributes
    ----------
    label : str
        The file path, or e.g. ``"bars DataFrame"``; starts every message.
    ts : np.ndarray
        int64 nanoseconds since the epoch (UTC), in file order.
    cols : dict[str, np.ndarray]
        float64 columns (private copies: repairs may write to them).
    rows : np.ndarray
        int64 row numbers in the original file/frame, kept through trimming for messages.
    """

    label: str
    ts: np.ndarray
    cols: dict[str, np.ndarray]
    rows: np.ndarray

    def take(self, sel: np.ndarray) -> Table:
        """Rows selected by a boolean mask or integer positions."""
        return Table(self.label, self.ts[sel], {k: v[sel] for k, v in self.cols.items()},
                     self.rows[sel])

    def where(self, i: int) -> str:
        """Human location of position ``i``: original row number and time."""
        return f"row {int(self.rows[i])} ({fmt_ts(self.ts[i])})"


def read_frame(source: Any, name: str) -> tuple[pd.DataFrame, str]:
    """Return ``(frame, label)`` for a Parquet path or a DataFrame.

    pyarrow errors (not Parquet, truncated, empty file) become a :class:`DataError` naming
    the file.
    """
    if isinstance(source, pd.DataFrame):
        return source, f"{name} DataFrame"
    if not isinstance(source, (str, Path)):
        raise TypeError(f"{name}: expected a Parquet path (str or Path) or a pandas DataFrame; "
                        f"got {type(source).__name__}.")
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(source).expanduser()
    check_readable_file(path, name)
    try:
        return pq.read_table(path).to_pandas(), str(path)
    except PermissionError as exc:
        raise DataError(f"{path}: permission denied reading the {name} file ({exc.strerror}). "
                        "Fix: make it readable (e.g. chmod u+r on it and its folders) or copy "
                        "it somewhere you can read.") from exc
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot read as Parquet ({type(exc).__name__}: {exc}). "
                        "Expected a Parquet file with columns timestamp, open, high, low, "
                        "close[, volume] or timestamp, rate. Fix: check that the file is "
                        "complete and is Parquet (convert CSV with `backtest data import`)."
                        ) from exc


def check_readable_file(path: Path, name: str, expected: str = "a Parquet file") -> None:
    """A regular file, or a clear error saying what the path is instead (directory, FIFO,
    device, socket, symlink loop or dangling link, missing)."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise DataError(f"{path}: the {name} path is a symbolic link that points to "
                            f"{os.readlink(path)}, which does not exist. Fix: point the link "
                            "at the file, or pass the file's own path.") from None
        raise DataError(f"{path}: {name} file not found. Fix: check the path (relative paths "
                        f"are resolved from {Path.cwd()}).") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{path}: the {name} path is a symbolic link loop (it points back "
                            "to itself). Fix: replace the link with the file, or pass the "
                            "file's own path.") from None
        if exc.errno == errno.EACCES:
            raise DataError(f"{path}: permission denied looking up the {name} file. Fix: "
                            "make its folders searchable (chmod u+x) or copy it elsewhere."
                            ) from None
        raise DataError(f"{path}: cannot open the {name} file ({exc.strerror}). Fix: check "
                        "the path and the file system.") from None
    if stat.S_ISREG(mode):
        return
    what = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    fix = (f"pass the file inside it ({expected}), not the folder" if stat.S_ISDIR(mode)
           else f"write the data to a regular file first ({expected})")
    raise DataError(f"{path}: the {name} path is {what}, not a regular file. Expected "
                    f"{expected}. Fix: {fix}.")


def suggest(name: str, columns: Sequence[Any], aliases: Sequence[str] = ()) -> str | None:
    """The column that was probably meant for ``name`` (case, spelling, known aliases)."""
    cols = [str(c) for c in columns]
    for c in cols:
        if c.lower() == name or c.lower() in aliases:
            return c
    for c in cols:  # e.g. 'fundingRate' for 'rate', 'close_price' for 'close'
        if name in c.lower():
            return c
    close = difflib.get_close_matches(name, cols, n=1, cutoff=0.6)
    return close[0] if close else None


def to_table(df: pd.DataFrame, label: str, required: Sequence[str],
             optional: Sequence[str] = ()) -> Table:
    """Check the schema of ``df`` and convert it to a :class:`Table`.

    The time comes from a ``timestamp`` column or, failing that, a tz-aware UTC
    DatetimeIndex. ``required`` and present ``optional`` columns must be numeric.
    """
    if len(df) == 0:
        raise DataError(f"{label}: empty (0 rows). Expected at least one row with columns "
                        f"timestamp, {', '.join(required)}. Fix: check the export or download "
                        "that wrote it.")
    check_columns(df, label, required)
    check_duplicate_columns(df, label, ["timestamp", *required, *optional])
    ts = timestamps(df, label)
    cols = {c: numeric_column(df[c], label, c)
            for c in [*required, *(o for o in optional if o in df.columns)]}
    return Table(label, ts, cols, np.arange(len(df), dtype=np.int64))


def check_columns(df: pd.DataFrame, label: str, required: Sequence[str]) -> None:
    """Missing columns, with a rename suggestion for near misses (``'Close'``, ``'clsoe'``)."""
    has_time = "timestamp" in df.columns or isinstance(df.index, pd.DatetimeIndex)
    missing = [c for c in required if c not in df.columns]
    if not has_time:
        missing.insert(0, "timestamp")
    if not missing:
        return
    renames = {}
    for c in missing:
        s = suggest(c, df.columns, _TIME_ALIASES if c == "timestamp" else ())
        if s is not None and s not in required:
            renames[s] = c
    fix = (f"rename: df = df.rename(columns={renames!r})" if renames else
           "add the missing columns, or point to the right file")
    if "timestamp" in missing:
        fix += "; the time may also be a tz-aware UTC DatetimeIndex"
    raise DataError(f"{label}: missing column(s) {missing}. Expected timestamp, "
                    f"{', '.join(required)}; found {[str(c) for c in df.columns]}. Fix: {fix}.")


def check_duplicate_columns(df: pd.DataFrame, label: str, used: Sequence[str]) -> None:
    """A column the loader reads must appear once (``df[c]`` would be a frame, not a column)."""
    names = [str(c) for c in df.columns]
    dup = [c for c in dict.fromkeys(used) if names.count(c) > 1]
    if dup:
        raise DataError(f"{label}: column(s) {dup} appear more than once; expected each column "
                        f"once. Found columns {names}. Fix: keep the right one, e.g. "
                        "df = df.loc[:, ~df.columns.duplicated()] (keeps the first).")


def numeric_column(s: pd.Series, label: str, col: str) -> np.ndarray:
    """A private float64 copy of column ``col``; non-numeric dtypes are an error.

    Integers and floats are taken (as float64); booleans and complex numbers are not prices.
    """
    if (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            and not pd.api.types.is_complex_dtype(s)):
        return np.array(s.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    sample = s.dropna()
    if len(sample) and all(isinstance(x, decimal.Decimal) for x in sample.iloc[:100]):
        raise DataError(f"{label}: column '{col}' holds Decimal values (exact decimals, e.g. "
                        f"{sample.iloc[0]!r}); expected float64 numbers. Fix: "
                        f"df['{col}'] = df['{col}'].astype(float) (for a Parquet file: read it "
                        "with pandas, convert, write it back).")
    coerced = pd.to_numeric(s, errors="coerce")
    bad = np.flatnonzero((coerced.isna() & s.notna()).to_numpy())
    first = f"; first non-number at row {bad[0]}: {s.iloc[bad[0]]!r}" if bad.size else ""
    raise DataError(f"{label}: column '{col}' has dtype {s.dtype}; expected numbers (float64)"
                    f"{first}. Fix: df['{col}'] = pd.to_numeric(df['{col}']) after cleaning "
                    "those values (the loader does not guess).")


def trim(t: Table, start: int | None, end: int | None) -> Table:
    """Rows with ``start <= ts < end`` (ns; None = unbounded), in file order."""
    keep = np.ones(len(t.ts), dtype=bool)
    if start is not None:
        keep &= t.ts >= start
    if end is not None:
        keep &= t.ts < end
    return t if keep.all() else t.take(keep)


def check_order(t: Table) -> None:
    """Times must be strictly increasing: unsorted rows, then duplicates."""
    d = np.diff(t.ts)
    back = np.flatnonzero(d < 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataError(f"{t.label}: column 'timestamp' is not sorted: {t.where(i)} comes after "
                        f"{t.where(i - 1)} ({back.size} backward step(s)). Expected strictly "
                        "increasing times. Fix: df = df.sort_values('timestamp'), after checking "
                        "why the source is out of order (e.g. sorted by local time across a "
                        "DST change).")
    dup = np.flatnonzero(d == 0)
    if dup.size:
        i = int(dup[0]) + 1
        raise DataError(f"{t.label}: column 'timestamp' has {dup.size} duplicate time(s); first "
                        f"at {t.where(i)}, same as row {int(t.rows[i - 1])}. Expected each time "
                        "once. Fix: check which row is right, then "
                        "df = df.drop_duplicates('timestamp', keep='last').")
