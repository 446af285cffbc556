"""Parquet / DataFrames -> one validated :class:`Market` (SPEC §2, §6, §11).

Owns ``Market`` and ``load_market`` (read, validate, trim, align mark/index bars and funding
events onto the bar index). The individual checks live in :mod:`backtest.data.validation`,
the funding alignment in :mod:`backtest.data.funding` and ``backtest data check`` in
:mod:`backtest.data.check`; all use the same checks. Must not import the kernels, the engine
or matplotlib; the instrument registry is imported lazily.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from backtest.data import validation as v
from backtest.data.funding import _funding, _read
from backtest.errors import DataError

GAP_POLICIES = ("error", "warn")
FUNDING_GAP_POLICIES = ("error", "zero")
# Events that are also emitted as a warning by load_market (repairs are merged into one).
_WARN_KINDS = ("gaps", "long_gap", "bar_spacing", "mark_from_last", "funding_ignored",
               "funding_in_gap", "funding_gaps", "funding_interval")


def utc_index(index_ns: np.ndarray) -> pd.DatetimeIndex:
    """int64 ns bar open times as a tz-aware UTC DatetimeIndex named ``timestamp``."""
    return pd.DatetimeIndex(index_ns.view("datetime64[ns]"), name="timestamp").tz_localize("UTC")


@dataclass(frozen=True, eq=False, repr=False)
class Market:
    """One instrument's aligned series on one bar index (SPEC §2).

    All arrays have length ``n_bars``, are C-contiguous and are what the kernels read.
    Bar ``i`` covers ``[index_ns[i], index_ns[i] + bar_ns)``; prices are in the quote
    currency, rates are fractions per funding interval.

    Attributes
    ----------
    index_ns : np.ndarray
        int64 ns since the epoch (UTC), bar open times, strictly increasing.
    open, high, low, close, volume : np.ndarray
        float64 last-traded bars; ``high``/``low`` include ``open`` (BitMEX repair, counted
        in ``repairs``); ``volume`` may be NaN.
    mark_open, mark_high, mark_low, mark_close : np.ndarray
        float64 mark bars, or copies of the last-price arrays when ``mark_source == "last"``.
    index_close : np.ndarray or None
        float64 index close per bar, when index bars were given.
    funding_rate : np.ndarray
        float64, the sum of the rates of the funding events settled at this bar's open.
    funding_count : np.ndarray
        int64, number of events settled at this bar's open.
    next_funding_rate : np.ndarray
        float64, rate of the first event at or after this bar's end (``t + bar_ns``); 0.0
        when there is none. Used by BitMEX's funding reserve.
    has_funding : bool
        A funding series was given and applies (False for ``funding=0`` and non-perpetuals).
    instrument : Instrument
    mark_source : str
        ``"mark"`` or ``"last"``.
    bar_ns : int
        Median bar step in ns.
    n_gaps : int
        Number of steps that differ from ``bar_ns`` (only non-zero with ``gaps="warn"``).
    repairs : dict[str, int]
        Counted conventions, e.g. ``{"open_outside_range": 3046, ...}``.
    sources : dict[str, str]
        Series name -> file path, ``"bars DataFrame"``, ...
    funding_interval_ns : int or None
        Median step between funding events (from the data), None without funding.
    event_log : tuple[dict, ...]
        What :attr:`events` returns.
    """

    index_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    mark_open: np.ndarray
    mark_high: np.ndarray
    mark_low: np.ndarray
    mark_close: np.ndarray
    index_close: np.ndarray | None
    funding_rate: np.ndarray
    funding_count: np.ndarray
    next_funding_rate: np.ndarray
    has_funding: bool
    instrument: Any
    mark_source: str
    bar_ns: int
    n_gaps: int
    repairs: dict[str, int]
    sources: dict[str, str]
    funding_interval_ns: int | None = None
    event_log: tuple[dict, ...] = ()

    @property
    def n_bars(self) -> int:
        """Number of bars."""
        return len(self.index_ns)

    @cached_property
    def index(self) -> pd.DatetimeIndex:
        """Bar open times as a tz-aware UTC DatetimeIndex named ``timestamp``."""
        return utc_index(self.index_ns)

    def take(self, first: int, last: int) -> Market:
        """The bars ``first..last`` (inclusive) as a Market; per-bar arrays are views.
        ``repairs``, ``sources`` and ``event_log`` still describe the whole load."""
        n = self.n_bars
        cut = {f.name: getattr(self, f.name)[first:last + 1] for f in dataclasses.fields(self)
               if isinstance(getattr(self, f.name), np.ndarray)
               and len(getattr(self, f.name)) == n}
        return dataclasses.replace(self, **cut)

    @property
    def bars(self) -> pd.DataFrame:
        """Last-price bars (open/high/low/close/volume) on :attr:`index`."""
        return pd.DataFrame({"open": self.open, "high": self.high, "low": self.low,
                             "close": self.close, "volume": self.volume}, index=self.index)

    @property
    def mark(self) -> pd.DataFrame | None:
        """Mark bars on :attr:`index`, or None when mark := last."""
        if self.mark_source != "mark":
            return None
        return pd.DataFrame({"open": self.mark_open, "high": self.mark_high,
                             "low": self.mark_low, "close": self.mark_close}, index=self.index)

    @property
    def funding(self) -> pd.Series:
        """Per-bar funding rate (sum of the events settled at the bar's open)."""
        return pd.Series(self.funding_rate, index=self.index, name="funding_rate")

    @property
    def events(self) -> list[dict]:
        """Data repairs, gaps, unused funding events, mark := last: ``{kind, count, message}``."""
        return [dict(e) for e in self.event_log]

    def __repr__(self) -> str:
        symbol = getattr(self.instrument, "symbol", self.instrument)
        span = f"{v.fmt_ts(self.index_ns[0])} -> {v.fmt_ts(self.index_ns[-1])} UTC"
        return (f"Market({symbol}, {self.n_bars:,} bars, {span}, every "
                f"{v.fmt_interval(self.bar_ns)}, mark={self.mark_source}, funding events="
                f"{int(self.funding_count.sum()):,})")


def load_market(bars: Any, mark: Any = None, index: Any = None, funding: Any = None,
                instrument: Any = "binance:BTCUSDT", start: Any = None, end: Any = None,
                gaps: str = "error", funding_gaps: str = "error") -> Market:
    """Read, validate and align one instrument's data into a :class:`Market`.

    Parameters
    ----------
    bars, mark, index : str, Path or DataFrame
        Parquet path or DataFrame with ``timestamp`` (UTC bar open; or a tz-aware UTC
        DatetimeIndex), ``open, high, low, close`` and, for ``bars``, optional ``volume``.
        Mark/index rows outside the (trimmed) bar span are dropped; inside it every bar
        needs one, at the same open time.
    funding : str, Path, DataFrame, Series or 0, optional
        Funding events ``timestamp, rate`` (rate per interval, a fraction), a Series of rates
        indexed by time, or ``0`` for explicitly none. Required for perpetuals; ignored (with
        a warning) for futures and spot margin. Not trimmed by ``start``/``end``: it is
        checked whole (the interval comes from it); events outside the bars are counted in
        :attr:`Market.events`.
    instrument : str or Instrument
        Preset name (``"bitmex:XBTUSD"``) or an object with ``symbol`` and ``kind``.
    start, end : str or Timestamp, optional
        Keep bars with ``start <= t < end`` (naive values are UTC).
    gaps : {"error", "warn"}
        Irregular bar spacing raises, or warns and is counted in ``n_gaps``.
    funding_gaps : {"error", "zero"}
        A hole in the funding history inside the run (longer than three funding intervals)
        raises, or with ``"zero"`` is accepted explicitly as no funding over the hole (an
        event and a warning either way).

    Raises
    ------
    DataError
        Any data problem (SPEC §11); the message names file, column, row and a fix.
    """
    if gaps not in GAP_POLICIES:
        raise ValueError(f"load_market: gaps must be one of {GAP_POLICIES}; got {gaps!r}.")
    if funding_gaps not in FUNDING_GAP_POLICIES:
        raise ValueError(f"load_market: funding_gaps must be one of {FUNDING_GAP_POLICIES}; "
                         f"got {funding_gaps!r}.")
    inst = _resolve_instrument(instrument)
    lo, hi = _bound(start, "start"), _bound(end, "end")
    if lo is not None and hi is not None and lo >= hi:
        raise ValueError(f"load_market: start={start!r} is not before end={end!r}.")
    events: list[dict] = []
    sources: dict[str, str] = {}

    last = _read(bars, "bars", v.PRICE_COLUMNS, ("volume",), sources)
    last = _trim_bars(last, lo, hi, start, end)
    bar_ns, n_gaps = v.validate_bars(last, gaps, events)
    tick = float(getattr(inst, "tick_size", 0.0) or 0.0)
    v.check_tick(last, tick, inst.symbol)
    volume = last.cols.get("volume", np.full(len(last.ts), np.nan))
    ref = {"mark": last.cols}
    for name, src in (("mark", mark), ("index", index)):
        if src is not None:
            t = _read(src, name, v.PRICE_COLUMNS, (), sources)
            ref[name] = _align_reference(t, last.ts, bar_ns, name, events,
                                         tick if name == "mark" else 0.0, inst.symbol)
            v.check_reference_plausible(v.Table(t.label, last.ts, ref[name], last.rows),
                                        last.cols["close"], last.label, name)
    mark_source = "mark" if mark is not None else "last"
    if mark is None:
        events.append({"kind": "mark_from_last", "count": len(last.ts), "message":
                       "no mark bars given: mark := last price, so liquidations fire on "
                       "last-price wicks (pessimistic). Pass mark='..._mark.parquet' to use "
                       "the exchange's mark price."})
    fund = _funding(funding, inst, last.ts, bar_ns, sources, events, funding_gaps)

    repairs = _repairs(events, with_index=index is not None)
    _warn(events, repairs, stacklevel=3)
    mk = ref["mark"]
    return Market(
        index_ns=last.ts, open=last.cols["open"], high=last.cols["high"], low=last.cols["low"],
        close=last.cols["close"], volume=np.ascontiguousarray(volume, dtype=np.float64),
        mark_open=np.array(mk["open"]), mark_high=np.array(mk["high"]),
        mark_low=np.array(mk["low"]), mark_close=np.array(mk["close"]),
        index_close=ref["index"]["close"] if "index" in ref else None,
        **fund, instrument=inst, mark_source=mark_source, bar_ns=bar_ns, n_gaps=n_gaps,
        repairs=repairs, sources=sources, event_log=tuple(events))


def _repairs(events: list[dict], with_index: bool) -> dict[str, int]:
    """Counts of the accepted open-outside-range convention per series (0 when none)."""
    keys = ["open_outside_range", "mark_open_outside_range"]
    keys += ["index_open_outside_range"] if with_index else []
    counts = {e["kind"]: e["count"] for e in events}
    return {k: counts.get(k, 0) for k in keys}


def _warn(events: list[dict], repairs: dict[str, int], stacklevel: int) -> None:
    """One warning for all repairs, one per other warn-worthy event (at the user's line)."""
    if any(repairs.values()):
        warnings.warn(" ".join(e["message"] for e in events if e["kind"] in repairs),
                      stacklevel=stacklevel)
    for e in events:
        if e["kind"] in _WARN_KINDS:
            warnings.warn(e["message"], stacklevel=stacklevel)


def _resolve_instrument(instrument: Any) -> Any:
    """A preset name through the registry; an object is used as is if it has symbol/kind."""
    if isinstance(instrument, str):
        from backtest.instruments.presets import get_instrument

        instrument = get_instrument(instrument)
    if not (hasattr(instrument, "symbol") and hasattr(instrument, "kind")):
        raise TypeError(f"load_market: instrument must be a preset name or an Instrument; got "
                        f"{type(instrument).__name__}.")
    if instrument.kind not in ("perpetual", "future", "spot_margin"):
        raise ValueError(f"load_market: instrument kind must be perpetual, future or "
                         f"spot_margin; got {instrument.kind!r}.")
    return instrument


def _bound(value: Any, name: str) -> int | None:
    """``start``/``end`` as ns since the epoch; naive values are taken as UTC."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"load_market: {name}={value!r} is not a time; expected e.g. "
                         f"'2020-01-01' or pd.Timestamp('2020-01-01', tz='UTC').") from exc
    if ts is pd.NaT:  # NaT/NaN would silently mean "no bound"
        raise ValueError(f"load_market: {name}={value!r} is not a time (NaT). Pass a time, "
                         f"e.g. {name}='2020-01-01', or {name}=None for no bound.")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)


def _trim_bars(t: v.Table, lo: int | None, hi: int | None, start: Any, end: Any) -> v.Table:
    """Apply ``start``/``end``; nothing left is an error that shows the data's span."""
    out = v.trim(t, lo, hi)
    if len(out.ts) == 0:
        raise DataError(f"{t.label}: no bars with start <= t < end (start={start!r}, "
                        f"end={end!r}); the file runs {v.fmt_ts(t.ts.min())} -> "
                        f"{v.fmt_ts(t.ts.max())}. Fix: choose start=/end= inside that span.")
    return out


def _align_reference(t: v.Table, bars_ts: np.ndarray, bar_ns: int, name: str,
                     events: list[dict], tick: float = 0.0, symbol: str = ""
                     ) -> dict[str, np.ndarray]:
    """Mark or index bars picked on the bar times, validated on the rows actually used.

    The whole file must be sorted (to find the rows); prices are checked only on the rows
    used, so a bad row outside the run does not block it.
    """
    v.check_order(t)
    used = t.take(v.align_reference(t, bars_ts, bar_ns, name))
    v.check_prices(used)
    v.check_price_magnitude(used)
    v.check_ranges(used)
    v.record_open_repair(used, events, prefix=f"{name}_")
    v.check_tick(used, tick, symbol)
    return used.cols
