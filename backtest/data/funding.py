"""Funding events onto the bar index (SPEC §6), and reading one input series.

Owns the funding policy of ``load_market`` (required for perpetuals, ``0`` for explicitly
none, ignored for futures and spot margin) and ``align_funding``: events settled at the open
of the bar containing them, never before. Imports numpy, pandas, ``backtest.errors`` and
:mod:`backtest.data.validation` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from backtest.data import validation as v
from backtest.errors import DataError


def _read(source: Any, name: str, required: Iterable[str], optional: Iterable[str],
          sources: dict[str, str]) -> v.Table:
    """Read and schema-check one series; records its source label."""
    df, label = v.read_frame(source, name)
    sources[name] = label
    return v.to_table(df, label, tuple(required), tuple(optional))


def _funding(funding: Any, inst: Any, bars_ts: np.ndarray, bar_ns: int,
             sources: dict[str, str], events: list[dict],
             funding_gaps: str = "error") -> dict[str, Any]:
    """Per-bar funding arrays (SPEC §6); see :func:`align_funding` for the timing."""
    _refuse_text_number(funding)
    n = len(bars_ts)
    none = {"funding_rate": np.zeros(n), "funding_count": np.zeros(n, dtype=np.int64),
            "next_funding_rate": np.zeros(n), "has_funding": False}
    perpetual = inst.kind == "perpetual"
    if funding is None:
        if perpetual:
            raise DataError(f"funding: {inst.symbol} is a perpetual and no funding was given. "
                            "Expected funding events (timestamp, rate). Fix: pass "
                            "funding='..._funding.parquet', or funding=0 to run explicitly "
                            "without funding.")
        return none
    if isinstance(funding, (bool, np.bool_)) or (
            isinstance(funding, (int, float, np.number)) and funding != 0):
        raise ValueError(f"load_market: funding as a number must be 0 (explicitly no funding); "
                         f"got {funding!r}. Pass a funding file/DataFrame for actual rates.")
    if isinstance(funding, (int, float, np.number)):
        sources["funding"] = "0 (explicitly none)"
        return none
    if not perpetual:
        events.append({"kind": "funding_ignored", "count": 0, "message":
                       f"funding: ignored, {inst.symbol} is a {inst.kind} (no funding)."})
        return none
    if isinstance(funding, pd.Series):
        frame, sources["funding"] = funding.rename("rate").to_frame(), "funding Series"
        t = v.to_table(frame, "funding Series", ("rate",))
    else:
        t = _read(funding, "funding", ("rate",), (), sources)
    interval = v.validate_funding(t)
    v.check_funding_coverage(t, interval, bars_ts, bar_ns)
    _check_interval(t, interval, events)
    _check_holes(t, interval, bars_ts, bar_ns, events, funding_gaps)
    out = align_funding(t.ts, t.cols["rate"], bars_ts, bar_ns, events, t.label)
    return {**out, "has_funding": True, "funding_interval_ns": interval}


def _refuse_text_number(funding: Any) -> None:
    """``funding="0"`` (e.g. from a config or a shell) is a number written as text."""
    if isinstance(funding, str) and funding.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError(f"load_market: funding={funding!r} is text, read as a file path. For "
                         "no funding pass the number 0 (funding=0, not funding='0'); for "
                         "funding events pass the path of a Parquet file (timestamp, rate).")


# Venues settle funding every 1 to 8 hours; a median step above a day means sampled or
# missing events (or times in the wrong unit), and the payments would be far too small.
_MAX_PLAUSIBLE_INTERVAL_NS = 24 * 3_600 * 10**9


def _check_interval(t: v.Table, interval: int, events: list[dict]) -> None:
    if interval > _MAX_PLAUSIBLE_INTERVAL_NS:
        events.append({"kind": "funding_interval", "count": 1, "message":
                       f"{t.label}: the funding interval inferred from the data (the median "
                       f"step between events) is {v.fmt_interval(interval)}; venues settle "
                       "every 1-8 h. Are events missing or sampled (e.g. one per month)? "
                       "Funding paid would be understated. Fix: pass the full funding "
                       "history."})


def _check_holes(t: v.Table, interval: int, bars_ts: np.ndarray, bar_ns: int,
                 events: list[dict], policy: str) -> None:
    """Holes in the funding history inside the run: an error unless ``funding_gaps="zero"``
    accepts them (no funding over the hole); always recorded as an event."""
    holes, text = v.funding_holes(t, interval, bars_ts, bar_ns)
    if not holes.size:
        return
    if policy == "error":
        raise DataError(f"{text}. Expected funding over the whole run; no funding would be "
                        "paid over the hole(s). Fix: supply the missing history, trim the "
                        "run to a span without holes with start=/end=, or pass "
                        "funding_gaps='zero' to accept no funding over the hole(s).")
    events.append({"kind": "funding_gaps", "count": int(holes.size), "message":
                   f"{text}; accepted with funding_gaps='zero': no funding over them."})


def align_funding(event_ns: np.ndarray, rate: np.ndarray, index_ns: np.ndarray, bar_ns: int,
                  events: list[dict] | None = None, label: str = "funding") -> dict[str, Any]:
    """Map funding events onto bars without look-ahead (SPEC §6).

    An event at τ is settled at the open of the bar containing τ,
    ``i = searchsorted(index_ns, τ, "right") - 1``. An event that falls in a gap of the bar
    index (no bar contains it) is settled at the next bar's open, never before τ. Events
    before the first bar or at/after the end of the last bar are outside the run: counted
    in ``events``, not used.

    Returns
    -------
    dict
        ``funding_rate`` (float64, summed per bar), ``funding_count`` (int64) and
        ``next_funding_rate`` (float64, first event at or after ``index_ns + bar_ns``).
    """
    n = len(index_ns)
    pos = np.searchsorted(index_ns, event_ns, side="right") - 1
    outside = (pos < 0) | (event_ns >= index_ns[-1] + bar_ns)
    p, tau = pos[~outside], event_ns[~outside]
    in_gap = tau >= index_ns[p] + bar_ns
    p = np.where(in_gap, p + 1, p)
    nxt = np.searchsorted(event_ns, index_ns + bar_ns, side="left")
    out = {"funding_rate": np.bincount(p, weights=rate[~outside], minlength=n).astype(np.float64),
           "funding_count": np.bincount(p, minlength=n).astype(np.int64),
           # index len(rate) (no later event) picks the appended 0.0
           "next_funding_rate": np.append(np.asarray(rate, dtype=np.float64), 0.0)[nxt]}
    if events is not None and outside.any():
        before = int((pos < 0).sum())
        events.append({"kind": "funding_outside_range", "count": int(outside.sum()), "message":
                       f"{label}: {before} funding event(s) before the first bar and "
                       f"{int(outside.sum()) - before} at/after the end of the last bar are "
                       "outside the run and were not used."})
    if events is not None and in_gap.any():
        events.append({"kind": "funding_in_gap", "count": int(in_gap.sum()), "message":
                       f"{label}: {int(in_gap.sum())} funding event(s) fall in gaps of the bars"
                       f" (first {v.fmt_ts(tau[in_gap][0])}); settled at the next bar's open."})
    return out
