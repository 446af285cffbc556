"""BitMEX sources: the public trade dumps (public.bitmex.com ``data/trade/*.csv.gz``),
aggregated into bars, and funding history (``/api/v1/funding`` as JSON or CSV).

Owns those layouts and the trade -> bar aggregation; imports numpy, pandas, the standard
library and the importers' common helpers only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.data import validation as v
from backtest.data.importers import _common as c
from backtest.data.importers.binance import select_symbol
from backtest.errors import DataError

TRADE_COLUMNS = ("timestamp", "symbol", "size", "price")
FUNDING_COLUMNS = ("timestamp", "symbol", "fundingRate")
_INTERVAL = re.compile(r"^(\d+)(s|m|h|d)$")
_INTERVAL_NS = {"s": 10**9, "m": 60 * 10**9, "h": 3_600 * 10**9, "d": 86_400 * 10**9}


def parse_interval(text: str) -> int:
    """``'1m'``, ``'5m'``, ``'1h'``, ``'1d'``, ``'30s'`` -> ns (``m`` is minutes)."""
    m = _INTERVAL.match(str(text).strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"--interval {text!r}: expected a positive count and a unit s, m, h or "
                         "d (m = minutes), e.g. '1m', '15m', '1h', '1d'.")
    return int(m.group(1)) * _INTERVAL_NS[m.group(2)]


def _times(s: pd.Series, label: str, lines: np.ndarray, where: str) -> np.ndarray:
    """BitMEX times (``2019-10-01D00:00:01.123456789`` or ISO ``...T...Z``) -> int64 ns UTC."""
    text = s.astype(str).str.replace("D", "T", n=1, regex=False)
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{label}: column 'timestamp' has {bad.size:,} unreadable time(s); "
                        f"first at {where} {int(lines[i])}: {s.iloc[i]!r}. Expected "
                        "'2019-10-01D00:00:01.123456789' or ISO 8601 UTC. Fix: correct or "
                        "remove those rows.")
    return np.asarray(pd.DatetimeIndex(parsed).as_unit("ns").asi8, dtype=np.int64)


def _require(df: pd.DataFrame, label: str, needed: tuple[str, ...]) -> None:
    missing = [k for k in needed if k not in df.columns]
    if missing:
        raise DataError(f"{label}: missing column(s) {missing}; found "
                        f"{[str(k) for k in df.columns]}. Expected the BitMEX layout with "
                        f"{', '.join(needed)}. Fix: pass a file of this format (the header "
                        "row is required).")


def parse_trades(path: str | Path, symbol: str | None) -> c.Part:
    """One trade dump: rows ``timestamp,symbol,side,size,price,...`` -> trades of ``symbol``
    (``price`` in the quote currency, ``size`` in contracts), in file order."""
    raw, label = c.read_bytes(path)
    df = c.read_csv(raw, label, header=True)
    _require(df, label, TRADE_COLUMNS)
    lines = np.arange(len(df), dtype=np.int64) + 2
    df, lines = select_symbol(df, lines, label, symbol)
    frame = pd.DataFrame({"timestamp": _times(df["timestamp"], label, lines, "line"),
                          "price": c.numbers(df["price"], label, "price", lines),
                          "size": c.numbers(df["size"], label, "size", lines)})
    if "trdMatchID" in df.columns:
        frame["match_id"] = df["trdMatchID"].astype(str).to_numpy()
    return c.Part(label, frame, lines)


def merge_trades(parts: list[c.Part]) -> tuple[pd.DataFrame, list[str]]:
    """All trades in time order (stable: same-time trades keep file order). A trade seen in
    two files (same ``trdMatchID``) is kept once if identical, else an error; overlapping
    files without ``trdMatchID`` are an error (repeats could not be told from new trades)."""
    for p in parts:
        c.check_file_order(p)
    parts = sorted(parts, key=lambda p: int(p.frame["timestamp"].iloc[0]))
    with_id = all("match_id" in p.frame for p in parts)
    for a, b in zip(parts, parts[1:], strict=False):
        if not with_id and b.frame["timestamp"].iloc[0] <= a.frame["timestamp"].iloc[-1]:
            raise DataError(f"{a.label} and {b.label}: trade files overlap in time "
                            f"({v.fmt_ts(b.frame['timestamp'].iloc[0])}) and have no "
                            "trdMatchID to tell repeated trades from new ones. Fix: pass "
                            "files of disjoint days.")
    both = pd.concat([p.frame.assign(_part=k, _line=p.lines) for k, p in enumerate(parts)],
                     ignore_index=True).sort_values("timestamp", kind="stable",
                                                    ignore_index=True)
    if not with_id:
        return both, []
    rep = both.duplicated("match_id", keep="first").to_numpy()
    if not rep.any():
        return both, []
    firsts = both.drop_duplicates("match_id", keep="first").set_index("match_id")
    again = both[rep]
    ref = firsts.loc[again["match_id"]]
    same = ((ref[["timestamp", "price", "size"]].to_numpy()
             == again[["timestamp", "price", "size"]].to_numpy()).all(axis=1))
    if not same.all():
        k = int(np.flatnonzero(~same)[0])
        r, a = ref.iloc[k], again.iloc[k]
        raise DataError(f"{parts[int(r['_part'])].label} line {int(r['_line'])} and "
                        f"{parts[int(a['_part'])].label} line {int(a['_line'])}: trade "
                        f"{again['match_id'].iloc[k]} at {v.fmt_ts(a['timestamp'])} differs "
                        f"(price {float(r['price'])!r} vs {float(a['price'])!r}, size "
                        f"{float(r['size'])!r} vs {float(a['size'])!r}). Fix: find out which "
                        "file is right and drop the other; nothing is dropped silently.")
    note = f"{int(rep.sum()):,} trade(s) repeated in overlapping files (same trdMatchID) kept once"
    return both[~rep].reset_index(drop=True), [note]


def trades_to_bars(trades: pd.DataFrame, interval_ns: int) -> tuple[pd.DataFrame, list[str]]:
    """Bars of ``interval_ns`` opening at multiples of it since the epoch: OHLC from the
    trade prices in ``[t, t + interval)`` in time order, ``volume`` = sum of sizes
    (contracts). Intervals without a trade get no bar (a gap, counted in the notes)."""
    ts = trades["timestamp"].to_numpy()
    bucket = ts - ts % interval_ns
    g = trades.assign(timestamp=bucket).groupby("timestamp", sort=True)
    bars = pd.DataFrame({"open": g["price"].first(), "high": g["price"].max(),
                         "low": g["price"].min(), "close": g["price"].last(),
                         "volume": g["size"].sum()}).reset_index()
    b = bars["timestamp"].to_numpy()
    empty = int((b[-1] - b[0]) // interval_ns + 1 - len(b))
    notes = [f"{len(trades):,} trade(s) aggregated into {len(b):,} bar(s) of "
             f"{v.fmt_interval(interval_ns)} (open = first trade price, volume in contracts); "
             f"{empty:,} interval(s) between the first and last bar had no trade and have no "
             "bar (gaps are not filled)"]
    return bars, notes


def parse_funding(path: str | Path, symbol: str | None) -> c.Part:
    """One funding file (JSON list or CSV with a header): ``timestamp`` (the funding time,
    UTC) and ``fundingRate`` (fraction per interval) of ``symbol``."""
    raw, label = c.read_bytes(path)
    if raw.lstrip()[:1] == b"[":
        try:
            df = pd.DataFrame(json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise DataError(f"{label}: not a JSON list of funding objects ({exc}). Fix: save "
                            "the /api/v1/funding response body as is.") from exc
        lines, where = np.arange(len(df), dtype=np.int64), "item"
    else:
        df = c.read_csv(raw, label, header=True) if raw.strip() else pd.DataFrame()
        lines, where = np.arange(len(df), dtype=np.int64) + 2, "line"
    if len(df) == 0:
        raise DataError(f"{label}: no funding rows. Fix: download the history again.")
    _require(df, label, FUNDING_COLUMNS)
    df, lines = select_symbol(df, lines, label, symbol)
    frame = pd.DataFrame({"timestamp": _times(df["timestamp"], label, lines, where),
                          "rate": c.numbers(df["fundingRate"], label, "fundingRate", lines,
                                            where)})
    notes = [f"{label}: symbol {df['symbol'].iloc[0]}, fundingRate taken as the fraction per "
             "interval (fundingRateDaily ignored)"]
    return c.Part(label, frame, lines, where, notes)

