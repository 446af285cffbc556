"""Times at the load boundary: int64 ns since the epoch (UTC), and their formatting.

Owns the conversion of a ``timestamp`` column or DatetimeIndex into int64 nanoseconds, the
refusal of naive, non-UTC, string and wrong-unit epoch times (the message says how to convert
them), and the compact formats of times and durations used in every data message. Imports
numpy, pandas and ``backtest.errors`` only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backtest.errors import DataError

_UTC_NAMES = {"UTC", "Etc/UTC", "UTC+00:00", "Z", "Zulu", "UCT", "Etc/UCT", "Etc/Zulu"}
# Integer epoch magnitude (median |value|) below which the unit is s / ms / us rather than ns.
_EPOCH_UNITS = ((1e11, "s", "seconds"), (1e14, "ms", "milliseconds"),
                (1e17, "us", "microseconds"))
# Earliest plausible bar/event time. Earlier times are nearly always epoch seconds, ms or us
# read as nanoseconds (they land in January 1970); no crypto market traded before 2009.
EARLIEST_NS = 631_152_000 * 10**9  # 1990-01-01 00:00 UTC


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
    s = _numpy_backed(s)
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


def _numpy_backed(s: pd.Series) -> pd.Series:
    """A pyarrow-backed timestamp column as the equivalent numpy-backed one (same zone)."""
    dt = s.dtype
    if isinstance(dt, pd.ArrowDtype) and dt.kind == "M":
        tz = getattr(dt.pyarrow_dtype, "tz", None)
        unit = getattr(dt.pyarrow_dtype, "unit", "ns")
        try:
            return s.astype(f"datetime64[{unit}, {tz}]" if tz else f"datetime64[{unit}]")
        except (TypeError, ValueError):
            return s
    return s


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
