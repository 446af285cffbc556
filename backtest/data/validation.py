"""Checks of market-data tables at the load boundary (SPEC §11).

Owns reading Parquet, turning a DataFrame into a :class:`Table` (int64 ns times and float64
columns) and one function per validation concern. Every problem is a :class:`DataError` whose
message names the file (or "bars DataFrame"), the column, the first offending row and the
count, what was expected, what was found and a fix. Known real-data conventions are repaired
only where the SPEC allows it, and counted. Imports pandas, numpy, pyarrow and
``backtest.errors`` only; never the kernels or the engine.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
_UTC_NAMES = {"UTC", "Etc/UTC", "UTC+00:00", "Z", "Zulu", "UCT", "Etc/UCT", "Etc/Zulu"}
# Names people give the time column; tried when `timestamp` is missing.
_TIME_ALIASES = ("date", "datetime", "time", "open_time", "opentime", "ts", "time_open", "index")
# Integer epoch magnitude (median |value|) below which the unit is s / ms / us rather than ns.
_EPOCH_UNITS = ((1e11, "s", "seconds"), (1e14, "ms", "milliseconds"),
                (1e17, "us", "microseconds"))
# Earliest plausible bar/event time. Earlier times are nearly always epoch seconds, ms or us
# read as nanoseconds (they land in January 1970); no crypto market traded before 2009.
EARLIEST_NS = 631_152_000 * 10**9  # 1990-01-01 00:00 UTC
# Plausible prices (quote currency): beyond them money overflows float64 (e.g. an inverse
# contract's notional q*cs/P at P = 1e-300) and the data is surely in the wrong units.
MIN_PRICE, MAX_PRICE = 1e-12, 1e12
MAX_FUNDING_RATE = 0.05  # |rate| per interval above this cannot be a fraction
MAX_MEDIAN_FUNDING_RATE = 0.005


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


def fmt_ts(ns: int | np.integer) -> str:
    """Format ns-since-epoch as ``'YYYY-MM-DD HH:MM'`` UTC (seconds only when non-zero)."""
    t = pd.Timestamp(int(ns), unit="ns", tz="UTC")
    fine = t.second or t.microsecond or t.nanosecond
    return t.strftime("%Y-%m-%d %H:%M:%S" if fine else "%Y-%m-%d %H:%M")


def fmt_interval(ns: int | np.integer) -> str:
    """Format a duration in ns compactly: ``'8h'``, ``'1d'``, ``'1h30m'``, ``'250ms'``."""
    rem, parts = int(ns), []
    if rem <= 0:
        return f"{rem}ns"
    for unit, size in (("d", 86_400 * 10**9), ("h", 3_600 * 10**9), ("m", 60 * 10**9),
                       ("s", 10**9), ("ms", 10**6), ("ns", 1)):
        if rem >= size:
            parts.append(f"{rem // size}{unit}")
            rem %= size
    return "".join(parts)


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

    path = Path(source)
    if not path.is_file():
        raise DataError(f"{path}: {name} file not found. Fix: check the path "
                        f"(relative paths are resolved from {Path.cwd()}).")
    try:
        return pq.read_table(path).to_pandas(), str(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot read as Parquet ({type(exc).__name__}: {exc}). "
                        "Expected a Parquet file with columns timestamp, open, high, low, "
                        "close[, volume] or timestamp, rate. Fix: check that the file is "
                        "complete and is Parquet (convert CSV with `backtest data import`)."
                        ) from exc


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
    coerced = pd.to_numeric(s, errors="coerce")
    bad = np.flatnonzero((coerced.isna() & s.notna()).to_numpy())
    first = f"; first non-number at row {bad[0]}: {s.iloc[bad[0]]!r}" if bad.size else ""
    raise DataError(f"{label}: column '{col}' has dtype {s.dtype}; expected numbers (float64)"
                    f"{first}. Fix: df['{col}'] = pd.to_numeric(df['{col}']) after cleaning "
                    "those values (the loader does not guess).")


def timestamps(df: pd.DataFrame, label: str) -> np.ndarray:
    """Bar-open / event times as int64 ns since the epoch (UTC).

    Accepts datetime64 with a UTC zone (any resolution) or integer ns since the epoch.
    Naive, non-UTC, string and s/ms/us-integer times are errors whose message says how to
    convert them.
    """
    if "timestamp" in df.columns:
        s, where, conv, acc = df["timestamp"], "column 'timestamp'", "df['timestamp']", ".dt"
    else:
        s, where, conv, acc = pd.Series(df.index), "the DatetimeIndex", "df.index", ""
    fix_to = f"{conv} = "
    dt = s.dtype
    if isinstance(dt, pd.DatetimeTZDtype):
        if str(dt.tz) not in _UTC_NAMES:
            raise DataError(f"{label}: {where} is in time zone {dt.tz}; expected UTC. Fix: "
                            f"{fix_to}{conv}{acc}.tz_convert('UTC').")
        nat = np.flatnonzero(s.isna().to_numpy())
        if nat.size:
            raise DataError(f"{label}: {where} has {nat.size} missing time(s) (NaT); first at "
                            f"row {nat[0]}. Expected a time on every row. Fix: drop those rows "
                            "in the source.")
        try:
            ns = np.array(pd.DatetimeIndex(s).as_unit("ns").asi8, dtype=np.int64)
        except pd.errors.OutOfBoundsDatetime as exc:
            raise DataError(f"{label}: {where} has times outside 1677-2262, the range of "
                            f"timestamp[ns] ({exc}). Expected bar/event times in that range. "
                            "Fix: check the unit and the epoch of the source times.") from None
        return _check_epoch(ns, label, where, conv, f"{conv}{acc}.as_unit('ns').astype('int64')")
    if pd.api.types.is_datetime64_dtype(dt):
        raise DataError(f"{label}: {where} is naive (no time zone); expected tz-aware UTC "
                        f"times. Fix: {fix_to}{conv}{acc}.tz_localize('UTC') if the times are "
                        f"UTC (local times: {conv}{acc}.tz_localize('<zone>').tz_convert('UTC')).")
    if pd.api.types.is_integer_dtype(dt) or pd.api.types.is_float_dtype(dt):
        return _check_epoch(_epoch_numbers(s, label, where, fix_to, conv), label, where, conv,
                            conv)
    raise DataError(f"{label}: {where} has dtype {dt}; expected timestamp[ns, UTC]. Fix: "
                    f"{fix_to}pd.to_datetime({conv}, utc=True).")


def _check_epoch(ns: np.ndarray, label: str, where: str, conv: str, as_int: str
                 ) -> np.ndarray:
    """Times before :data:`EARLIEST_NS` are refused; the message guesses the unit mix-up.

    ``conv`` is the user's expression for the time column or index, ``as_int`` the one for
    the times as int64 nanoseconds.
    """
    early = np.flatnonzero(ns < EARLIEST_NS)
    if not early.size:
        return ns
    i = int(early[0])
    typical = float(np.median(np.abs(ns.astype(np.float64))))
    guess = next(((u, w) for limit, u, w in _EPOCH_UNITS if typical < limit), None)
    fix = (f"these look like {guess[1]} since the epoch read as nanoseconds; "
           f"{conv} = pd.to_datetime({as_int}, unit='{guess[0]}', utc=True)" if guess else
           "check the unit and the epoch of the source times")
    when = pd.Timestamp(int(ns[i]), unit="ns", tz="UTC")
    raise DataError(f"{label}: {where} has {early.size:,} time(s) before 1990, first at row {i}: "
                    f"{when}; expected the times of a crypto market (2009 or later). Fix: "
                    f"{fix}.")


def _epoch_numbers(s: pd.Series, label: str, where: str, fix_to: str, conv: str) -> np.ndarray:
    """Integer ns since the epoch are accepted; other units are recognised by magnitude."""
    v = s.to_numpy(dtype=np.float64, na_value=np.nan)
    typical = float(np.nanmedian(np.abs(v))) if np.isfinite(v).any() else 0.0
    for limit, unit, words in _EPOCH_UNITS:
        if typical < limit:
            raise DataError(f"{label}: {where} holds numbers like {typical:.0f}, which look like "
                            f"{words} since the epoch; expected timestamp[ns, UTC] (or int64 "
                            f"nanoseconds). Fix: {fix_to}pd.to_datetime({conv}, unit='{unit}', "
                            "utc=True).")
    if not pd.api.types.is_integer_dtype(s.dtype) or not np.isfinite(v).all():
        raise DataError(f"{label}: {where} holds floats (or NaN); expected timestamp[ns, UTC]. "
                        f"Fix: {fix_to}pd.to_datetime({conv}.astype('int64'), unit='ns', "
                        "utc=True).")
    return np.array(s.to_numpy(), dtype=np.int64)


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


def check_prices(t: Table) -> None:
    """open/high/low/close must be finite and > 0 (never repaired)."""
    for c in PRICE_COLUMNS:
        v = t.cols[c]
        nan, inf = np.isnan(v), np.isinf(v)
        nonpos = v <= 0
        bad = np.flatnonzero(nan | inf | nonpos)
        if bad.size:
            i = int(bad[0])
            kinds = ", ".join(f"{int(m.sum())} {k}" for k, m in
                              (("NaN", nan), ("inf", inf), ("zero or negative", nonpos)) if m.any())
            raise DataError(f"{t.label}: column '{c}' has {bad.size} invalid price(s) ({kinds});"
                            f" first at {t.where(i)}: {float(v[i])!r}. Expected finite prices > 0. "
                            "Fix: correct or drop those rows in the source, or trim them away "
                            "with start=/end= (prices are never filled in by the loader).")


def check_tick(t: Table, tick: float, symbol: str) -> None:
    """Prices below one tick of the instrument cannot be quoted on it (wrong instrument or
    wrong price units); run after :func:`repair_open`, so ``low`` covers the whole bar."""
    if not tick > 0:
        return
    low = t.cols["low"]
    bad = np.flatnonzero(low < tick)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{t.label}: column 'low' goes below the tick size {tick:g} of "
                        f"{symbol} in {bad.size:,} row(s); first at {t.where(i)}: "
                        f"{float(low[i])!r}. Expected prices of at least one tick (they cannot "
                        "be quoted otherwise). Fix: check the price units, or load the bars "
                        "with the instrument they belong to (generic: "
                        "instrument=bt.Instrument.simple(tick_size=0.0)).")


def check_price_magnitude(t: Table) -> None:
    """Finite positive prices must also lie in ``[MIN_PRICE, MAX_PRICE]`` (units, scaling)."""
    for c in PRICE_COLUMNS:
        v = t.cols[c]
        bad = np.flatnonzero((v < MIN_PRICE) | (v > MAX_PRICE))
        if bad.size:
            i = int(bad[0])
            raise DataError(f"{t.label}: column '{c}' has {bad.size:,} price(s) outside "
                            f"[{MIN_PRICE:g}, {MAX_PRICE:g}]; first at {t.where(i)}: "
                            f"{float(v[i])!r}. Expected prices in the quote currency. Fix: check "
                            "the units or scaling of the source prices (e.g. a multiplier "
                            "applied twice).")


def check_ranges(t: Table) -> None:
    """``high >= low`` and ``low <= close <= high`` (``open`` is handled by :func:`repair_open`)."""
    h, l, c = (t.cols[k] for k in ("high", "low", "close"))
    bad = np.flatnonzero(h < l)
    if bad.size:
        i = int(bad[0])
        hi, lo = float(h[i]), float(l[i])
        raise DataError(f"{t.label}: column 'high' is below 'low' in {bad.size} row(s); first at "
                        f"{t.where(i)}: high={hi!r}, low={lo!r}. Expected high >= low. "
                        "Fix: check the column order/mapping of the source.")
    bad = np.flatnonzero((c > h) | (c < l))
    if bad.size:
        i = int(bad[0])
        cl, lo, hi = float(c[i]), float(l[i]), float(h[i])
        raise DataError(f"{t.label}: column 'close' lies outside [low, high] in {bad.size} row(s);"
                        f" first at {t.where(i)}: close={cl!r}, low={lo!r}, high={hi!r}. "
                        "Expected low <= close <= high (only `open` may lie outside, the BitMEX "
                        "convention). Fix: check the column mapping or the aggregation that "
                        "built these bars.")


def repair_open(t: Table) -> int:
    """Widen high/low to include ``open`` where it lies outside ``[low, high]``.

    BitMEX buckets use the previous close as ``open`` (SPEC §2). For the price path the bar
    must contain its open, so ``high = max(high, open)``, ``low = min(low, open)``. Returns
    the number of bars changed; the caller reports it.
    """
    o, h, l = t.cols["open"], t.cols["high"], t.cols["low"]
    out = (o > h) | (o < l)
    np.maximum(h, o, out=h)
    np.minimum(l, o, out=l)
    return int(out.sum())


def check_volume(t: Table) -> None:
    """Volume may be NaN (absent); negative or infinite volume is an error."""
    if "volume" not in t.cols:
        return
    v = t.cols["volume"]
    bad = np.flatnonzero(np.isinf(v) | (v < 0))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{t.label}: column 'volume' has {bad.size} negative or infinite "
                        f"value(s); first at {t.where(i)}: {float(v[i])!r}. Expected volume >= 0 "
                        "or null. Fix: correct those rows, or drop the column if unused.")


def spacing(ts: np.ndarray) -> tuple[int, np.ndarray]:
    """Median step (ns) and the positions ``i`` where ``ts[i+1] - ts[i]`` differs from it."""
    d = np.diff(ts)
    step = int(round(float(np.median(d))))
    return step, np.flatnonzero(d != step)


def gaps_message(t: Table, step: int, irregular: np.ndarray, what: str = "bars") -> str:
    """Text listing the first irregular steps of ``t`` and their count."""
    shown = ", ".join(f"{fmt_ts(t.ts[i])} -> {fmt_ts(t.ts[i + 1])} "
                      f"({fmt_interval(t.ts[i + 1] - t.ts[i])})" for i in irregular[:5])
    more = f" and {irregular.size - 5} more" if irregular.size > 5 else ""
    return (f"{t.label}: column 'timestamp' has {irregular.size:,} irregular step(s) between "
            f"{what} (expected every {fmt_interval(step)}, the median step): {shown}{more}")


def validate_bars(t: Table, gaps: str, events: list[dict], prefix: str = "") -> tuple[int, int]:
    """All checks of a last-price bar table; returns ``(bar_ns, n_gaps)``.

    Repairs ``open`` outside the range in place (counted in ``events`` as
    ``prefix + "open_outside_range"``). Irregular spacing raises when ``gaps == "error"``,
    else it is recorded in ``events`` (kind ``"gaps"``).
    """
    if len(t.ts) < 2:
        raise DataError(f"{t.label}: only {len(t.ts)} bar(s) left; expected at least 2 to know "
                        "the bar interval. Fix: widen start=/end= or use a longer file.")
    check_order(t)
    check_prices(t)
    check_price_magnitude(t)
    check_ranges(t)
    check_volume(t)
    record_open_repair(t, events, prefix)
    step, irregular = spacing(t.ts)
    if irregular.size:
        text = gaps_message(t, step, irregular)
        if gaps == "error":
            raise DataError(f"{text}. Fix: fill the missing bars in the source, trim to a "
                            "regular span with start=/end=, or pass gaps='warn' to accept them "
                            "(each gap is then one long step between two bars).")
        events.append({"kind": "gaps", "count": int(irregular.size), "message": text + "."})
    return step, int(irregular.size)


def record_open_repair(t: Table, events: list[dict], prefix: str = "") -> int:
    """Apply :func:`repair_open` and record the count as an event."""
    n = repair_open(t)
    if n:
        events.append({"kind": prefix + "open_outside_range", "count": n, "message":
                       f"{t.label}: {n:,} bar(s) with open outside [low, high] (BitMEX convention:"
                       " open = previous close); used high=max(high, open), "
                       "low=min(low, open) for the price path."})
    return n


def validate_funding(t: Table) -> int:
    """Order, NaN and plausibility of funding rates; returns the interval (median step, ns)."""
    check_order(t)
    r = t.cols["rate"]
    bad = np.flatnonzero(~np.isfinite(r))
    if bad.size:
        raise DataError(f"{t.label}: column 'rate' has {bad.size} NaN/inf rate(s); first at "
                        f"{t.where(int(bad[0]))}. Expected a finite rate per funding event. Fix: "
                        "drop those rows (or set 0 only if you know nothing was paid).")
    hint = ("Expected fractions per interval (0.0001 = 0.01 %). Percent passed as fractions? "
            "Fix: divide the rates by 100 (basis points: by 10,000).")
    big = np.flatnonzero(np.abs(r) > MAX_FUNDING_RATE)
    if big.size:
        i = int(big[0])
        raise DataError(f"{t.label}: column 'rate' has {big.size} rate(s) with |rate| > "
                        f"{MAX_FUNDING_RATE}; first at {t.where(i)}: {float(r[i])!r}. {hint}")
    med = float(np.median(np.abs(r)))
    if med > MAX_MEDIAN_FUNDING_RATE:
        raise DataError(f"{t.label}: column 'rate' has median |rate| {med:.6g} > "
                        f"{MAX_MEDIAN_FUNDING_RATE}. {hint}")
    if len(r) < 2:
        raise DataError(f"{t.label}: only {len(r)} funding event(s); expected at least 2 to "
                        "infer the funding interval (never assumed to be 8 h). Fix: pass the "
                        "funding history that spans the bars, or funding=0 for none.")
    return spacing(t.ts)[0]


def check_funding_coverage(t: Table, interval: int, bars_ts: np.ndarray, bar_ns: int) -> None:
    """Funding must start <= one interval after the first bar and end >= one before the last."""
    first, last = int(t.ts[0]), int(t.ts[-1])
    problems, fixes = [], []
    if first > bars_ts[0] + interval:
        problems.append(f"funding starts {fmt_ts(first)}, more than one interval after the "
                        f"first bar {fmt_ts(bars_ts[0])}")
        fixes.append(f"start='{fmt_ts(first)}'")
    if last < bars_ts[-1] - interval:
        problems.append(f"funding ends {fmt_ts(last)}, more than one interval before the last "
                        f"bar {fmt_ts(bars_ts[-1])}")
        fixes.append(f"end='{fmt_ts(last + bar_ns)}'")
    if problems:
        raise DataError(f"{t.label}: funding does not cover the bars of this perpetual: "
                        f"{'; '.join(problems)} (funding interval {fmt_interval(interval)}, from "
                        f"the data). Expected funding over the whole run. Fix: pass "
                        f"{' and '.join(fixes)} to keep to the span with funding, supply the "
                        "missing history, or pass funding=0 to run explicitly without funding.")


def align_reference(ref: Table, bars_ts: np.ndarray, bar_ns: int, name: str) -> np.ndarray:
    """Positions in ``ref`` (mark or index bars) of every bar time; errors if any is missing.

    Rows outside the bar span are dropped (normal: files span different dates). Rows inside
    it must sit on bar times, except on-grid rows that fall into gaps of the bars.
    """
    span = f"the bars run {fmt_ts(bars_ts[0])} -> {fmt_ts(bars_ts[-1])}"
    if len(ref.ts) == 0:
        raise DataError(f"{ref.label}: no {name} rows in the selected span; {span}. Fix: pass "
                        f"{name} bars covering that span, or choose start=/end= inside them.")
    pos = np.minimum(np.searchsorted(ref.ts, bars_ts), len(ref.ts) - 1)
    found = ref.ts[pos] == bars_ts
    if not found.all():
        raise DataError(_coverage_message(ref, bars_ts, found, span, name, bar_ns))
    inside = ref.ts[(ref.ts >= bars_ts[0]) & (ref.ts <= bars_ts[-1])]
    extra = inside[~np.isin(inside, bars_ts)]
    off_grid = extra[(extra - bars_ts[0]) % bar_ns != 0]
    if off_grid.size:
        raise DataError(f"{ref.label}: {name} bars not aligned with the bars: {off_grid.size} "
                        f"{name} row(s) between bar times, first at {fmt_ts(off_grid[0])} "
                        f"(bar interval {fmt_interval(bar_ns)}, {name} interval "
                        f"{fmt_interval(spacing(ref.ts)[0]) if len(ref.ts) > 1 else '?'}). "
                        f"Expected one {name} bar per bar, at the same open times. Fix: resample "
                        f"the {name} bars to the bar interval, or use bars of the same interval.")
    return pos


def _bars_between(ts: np.ndarray) -> str:
    """``'1 bar at T'`` or ``'N bars from A to B'``."""
    if len(ts) == 1:
        return f"1 bar at {fmt_ts(ts[0])}"
    return f"{len(ts):,} bars from {fmt_ts(ts[0])} to {fmt_ts(ts[-1])}"


def _coverage_message(ref: Table, bars_ts: np.ndarray, found: np.ndarray, span: str,
                      name: str, bar_ns: int) -> str:
    """Which bars have no ``name`` row: before its start, after its end, or holes inside."""
    lead, trail = bars_ts < ref.ts[0], bars_ts > ref.ts[-1]
    hole = ~found & ~lead & ~trail
    parts, fixes = [], []
    if lead.any():
        parts.append(f"{_bars_between(bars_ts[lead])} before the {name} starts")
        fixes.append(f"start='{fmt_ts(ref.ts[0])}'")
    if trail.any():
        parts.append(f"{_bars_between(bars_ts[trail])} after the {name} ends")
        fixes.append(f"end='{fmt_ts(ref.ts[-1] + bar_ns)}'")
    if hole.any():
        parts.append(f"{int(hole.sum())} bar time(s) inside the {name} span with no {name} row, "
                     f"first {fmt_ts(bars_ts[hole][0])}")
    fix = (f"pass {' and '.join(fixes)} (the span the {name} covers)" if fixes else
           f"fill the {name} file's holes (is it at a coarser interval or shifted, e.g. "
           "close times instead of open times?)")
    return (f"{ref.label}: {name} bars do not cover the bars: the {name} covers "
            f"{fmt_ts(ref.ts[0])} -> {fmt_ts(ref.ts[-1])} but {span}; missing: "
            f"{'; '.join(parts)}. Expected a {name} bar at every bar time. Fix: {fix}"
            + (", or leave mark=None to use last prices (pessimistic)." if name == "mark" else "."))
