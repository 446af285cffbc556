"""Funding and reference (mark/index) series checked against the bars they belong to.

Owns the plausibility of funding rates, the funding coverage of a perpetual's bars and the
alignment of mark/index bars on the bar times (with a message saying which bars are missing
and how to fix it). Imports numpy, ``backtest.errors`` and the sibling modules only.
"""

from __future__ import annotations

import numpy as np

from backtest.data.validation.bars import spacing
from backtest.data.validation.tables import Table, check_order
from backtest.data.validation.timestamps import fmt_interval, fmt_ts
from backtest.errors import DataError

MAX_FUNDING_RATE = 0.05  # |rate| per interval above this cannot be a fraction
MAX_MEDIAN_FUNDING_RATE = 0.005


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


# Mark (or index) close / last close: the median must lie within MEDIAN_TOL of 1 and the
# 0.1 %..99.9 % quantiles within EXTREME_RANGE. Mark and last differ by basis points in calm
# markets and by a few percent in crashes; a file in cents (x100), a price doubled or
# halved, or another symbol's mark lies far outside.
REF_MEDIAN_TOL = 0.05
REF_EXTREME_RANGE = (2.0 / 3.0, 1.5)
REF_QUANTILES = (0.001, 0.999)


def check_reference_plausible(ref: Table, last_close: np.ndarray, last_label: str,
                              name: str) -> None:
    """Refuse ``name`` bars (mark or index, already aligned on the bars) whose closes are
    not plausible against the last prices; the message gives the numbers."""
    ratio = ref.cols["close"] / last_close
    med = float(np.median(ratio))
    lo, hi = (float(q) for q in np.quantile(ratio, REF_QUANTILES))
    if abs(med - 1.0) <= REF_MEDIAN_TOL and REF_EXTREME_RANGE[0] <= lo and \
            hi <= REF_EXTREME_RANGE[1]:
        return
    worst = int(np.argmax(np.abs(np.log(ratio))))
    scale = (f" (a factor of {med:.4g}: prices in other units, e.g. cents?)"
             if abs(med - 1.0) > REF_MEDIAN_TOL else "")
    raise DataError(
        f"{ref.label}: {name} prices are not plausible against the last prices of "
        f"{last_label}: {name} close / last close has median {med:.4g}{scale} and "
        f"{REF_QUANTILES[0]:.1%}..{REF_QUANTILES[1]:.1%} quantiles {lo:.4g}..{hi:.4g}; "
        f"the largest departure is at {ref.where(worst)}: {name} {ref.cols['close'][worst]!r}"
        f" vs last {float(last_close[worst])!r}. Expected a median within "
        f"{REF_MEDIAN_TOL:.0%} of 1 and quantiles within {REF_EXTREME_RANGE[0]:.3g}.."
        f"{REF_EXTREME_RANGE[1]:.3g}. Fix: check that the {name} file belongs to these bars "
        f"(same symbol, same price units), rescale it"
        + (", or leave mark=None to use last prices (pessimistic)." if name == "mark" else
           ", or leave index=None."))


# A hole in the funding history longer than this many funding intervals is not a schedule
# change: events are missing.
FUNDING_GAP_INTERVALS = 3


def funding_holes(t: Table, interval: int, bars_ts: np.ndarray, bar_ns: int
                  ) -> tuple[np.ndarray, str]:
    """Positions ``i`` where ``t.ts[i] -> t.ts[i + 1]`` is a hole inside the run (longer than
    :data:`FUNDING_GAP_INTERVALS` intervals within the bars' span), and a text listing them."""
    d = np.diff(t.ts)
    run_lo, run_hi = int(bars_ts[0]), int(bars_ts[-1]) + bar_ns
    # the part of each step that lies inside the run
    inside = np.minimum(t.ts[1:], run_hi) - np.maximum(t.ts[:-1], run_lo)
    holes = np.flatnonzero((d > FUNDING_GAP_INTERVALS * interval)
                           & (inside > FUNDING_GAP_INTERVALS * interval))
    if not holes.size:
        return holes, ""
    missing = int(sum(d[i] // interval - 1 for i in holes))
    shown = ", ".join(f"{fmt_ts(t.ts[i])} -> {fmt_ts(t.ts[i + 1])} ({fmt_interval(d[i])})"
                      for i in holes[:3])
    more = f" and {holes.size - 3} more" if holes.size > 3 else ""
    return holes, (f"{t.label}: {holes.size} hole(s) in the funding history inside the run, "
                   f"longer than {FUNDING_GAP_INTERVALS} funding intervals of "
                   f"{fmt_interval(interval)}: {shown}{more} (about {missing:,} events "
                   "missing)")
