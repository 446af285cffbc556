"""Checks of a last-price (or mark/index) bar table: prices, ranges, volume, spacing.

Every problem is a :class:`DataError` naming the table, the column, the first offending row
and the count, what was expected and a fix. The BitMEX ``open`` convention is the one repair
(SPEC §2), applied in place and counted. Imports numpy, ``backtest.errors`` and the sibling
``tables``/``timestamps`` modules only.
"""

from __future__ import annotations

import numpy as np

from backtest.data.validation.tables import PRICE_COLUMNS, Table, check_order
from backtest.data.validation.timestamps import fmt_interval, fmt_ts
from backtest.errors import DataError

# Plausible prices (quote currency): beyond them money overflows float64 (e.g. an inverse
# contract's notional q*cs/P at P = 1e-300) and the data is surely in the wrong units.
MIN_PRICE, MAX_PRICE = 1e-12, 1e12


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
        _note_long_gap(t, irregular, events)
    _note_spacing(t, step, events)
    return step, int(irregular.size)


# Bar intervals outside [1 s, 31 d] are not market bars (times in the wrong unit?).
_MIN_BAR_NS, _MAX_BAR_NS = 10**9, 31 * 86_400 * 10**9
# An accepted gap longer than this share of the span (or than a week) distorts every
# time-based stat: it counts as time in the market.
_LONG_GAP_SHARE, _LONG_GAP_NS = 0.1, 7 * 86_400 * 10**9


def _note_spacing(t: Table, step: int, events: list[dict]) -> None:
    if _MIN_BAR_NS <= step <= _MAX_BAR_NS:
        return
    events.append({"kind": "bar_spacing", "count": 1, "message":
                   f"{t.label}: the bars are {fmt_interval(step)} apart (the median step), "
                   "not plausible for market bars (expected 1 s to 31 d). Are the times in "
                   "the wrong unit (e.g. seconds or ms read as ns)? Fix: convert the "
                   "timestamp column with pd.to_datetime(..., unit=...)."})


def _note_long_gap(t: Table, irregular: np.ndarray, events: list[dict]) -> None:
    d = np.diff(t.ts)[irregular]
    i = int(irregular[int(np.argmax(d))])
    longest, span = int(d.max()), int(t.ts[-1] - t.ts[0])
    if longest < _LONG_GAP_NS and longest < _LONG_GAP_SHARE * span:
        return
    events.append({"kind": "long_gap", "count": 1, "message":
                   f"{t.label}: accepted gap of {fmt_interval(longest)} "
                   f"({fmt_ts(t.ts[i])} -> {fmt_ts(t.ts[i + 1])}), {longest / span:.0%} of "
                   "the span: time-based stats (CAGR, annualised volatility and Sharpe) count "
                   "it as time in the market and a position is held across it. Fix: trim to "
                   "one side of the gap with start=/end=, or supply the missing bars."})


def record_open_repair(t: Table, events: list[dict], prefix: str = "") -> int:
    """Apply :func:`repair_open` and record the count as an event."""
    n = repair_open(t)
    if n:
        events.append({"kind": prefix + "open_outside_range", "count": n, "message":
                       f"{t.label}: {n:,} bar(s) with open outside [low, high] (BitMEX convention:"
                       " open = previous close); used high=max(high, open), "
                       "low=min(low, open) for the price path."})
    return n
