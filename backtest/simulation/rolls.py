"""Rolling dated futures: consecutive contracts held as one continuous position.

Owns :func:`roll` / :class:`Roll` (the checks that the legs chain: dated futures, one
account currency, one bar interval, increasing expiries, each next leg covering the previous
expiry bar), :func:`run_roll` (leg by leg with ``single.run_single``: the wallet carries over, the
side settled at an expiry is reopened on the next contract); the joined result is
``roll_result.RollResult``.
The simulation is the single market's; this module only slices markets and signals and
joins the results (rules: docs/semantics.md, "Rolling dated futures"). Must not import the
kernels.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from backtest.checks import user_stacklevel
from backtest.data.market import utc_index
from backtest.results.roll import RUIN_FRACTION, RollResult
from backtest.results.single import Result
from backtest.simulation.params import SIGNAL_NAMES, prepare_signal, validate_params
from backtest.simulation.single import run_single


@dataclass(frozen=True)
class Leg:
    """One contract of a roll: ``market`` is its data trimmed to its span, which starts with
    the previous leg's expiry bar (the *roll bar*; leg 0: its first bar) and ends with its own
    expiry bar (or the data's end, last leg only). ``first``/``last`` are the span's positions
    in ``Roll.index``; the leg is *active* from ``active_from`` through ``last``."""

    name: str
    market: Any
    expiry: pd.Timestamp
    settles: bool
    first: int
    last: int
    active_from: int


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")


def _expiry_bar(k: int, m: Any, last_leg: bool) -> tuple[int, bool]:
    """(last bar of the leg's span, whether the expiry settles inside the data)."""
    inst = m.instrument
    ends = m.index_ns + m.bar_ns
    done = np.flatnonzero(ends <= inst.expiry_ns)
    if len(done) == 0:
        raise ValueError(f"roll(): leg {k} ({inst.symbol!r}) expires at {inst.expiry}, before "
                         f"its first bar ends ({_ts(ends[0])}). Load its bars from before the "
                         "expiry, or drop the leg.")
    bar = int(done[-1])
    settles = not (bar == m.n_bars - 1 and ends[-1] < inst.expiry_ns)
    if not settles and not last_leg:
        raise ValueError(f"roll(): leg {k} ({inst.symbol!r}) expires at {inst.expiry} but its "
                         f"data ends at {_ts(ends[-1])}; a leg that rolls into the next must "
                         "be settled inside its data. Load its bars through the expiry (only "
                         "the last leg may still be open at the end of the data).")
    return bar, settles


def _check_leg(k: int, m: Any, first: Any) -> None:
    """Leg ``k`` is a dated future of the first leg's settlement and bar interval."""
    if not all(hasattr(m, a) for a in ("index_ns", "instrument", "bar_ns")):
        raise TypeError(f"roll(): leg {k} must be a Market from bt.load_market(...), got "
                        f"{type(m).__name__}.")
    inst, ref = m.instrument, first.instrument
    if inst.kind != "future":
        raise ValueError(f"roll(): leg {k} ({inst.symbol!r}) is a {inst.kind}; a roll chains "
                         "dated futures (kind='future' with an expiry). Load each contract "
                         "with its future instrument, e.g. instrument='binance:BTCUSDT_241227'"
                         " or bt.Instrument.simple(kind='future', expiry=...).")
    if (inst.settlement, inst.account_currency) != (ref.settlement, ref.account_currency):
        raise ValueError(f"roll(): leg {k} ({inst.symbol!r}) is {inst.settlement}, settled in "
                         f"{inst.account_currency}, but leg 0 ({ref.symbol!r}) is "
                         f"{ref.settlement} in {ref.account_currency}; one roll keeps one "
                         "wallet in one currency. Roll contracts of one settlement.")
    if m.bar_ns != first.bar_ns:
        raise ValueError(f"roll(): leg {k} ({inst.symbol!r}) has bars every "
                         f"{m.bar_ns / 6e10:g} min, leg 0 every {first.bar_ns / 6e10:g} min; "
                         "a roll needs one bar interval. Resample the legs to a common one.")


def _roll_start(k: int, m: Any, prev: Any, prev_bar: int) -> int:
    """Position in leg ``k``'s bars of the previous leg's expiry bar (the roll bar)."""
    t = int(prev.index_ns[prev_bar])
    sym, psym = m.instrument.symbol, prev.instrument.symbol
    pos = int(np.searchsorted(m.index_ns, t))
    if pos == m.n_bars or m.index_ns[pos] != t:
        where = (f"its data starts at {_ts(m.index_ns[0])}, after" if pos == 0
                 else "its data has no bar at" if pos < m.n_bars else "its data ends before")
        raise ValueError(f"roll(): leg {k} ({sym!r}) must cover leg {k - 1} ({psym!r})'s "
                         f"expiry bar {_ts(t)} to take over the position, but {where} that "
                         f"bar. Load leg {k}'s bars from {_ts(t)} or earlier, without gaps.")
    return pos


def _names(markets: list[Any]) -> list[str]:
    symbols = [m.instrument.symbol for m in markets]
    if len(set(symbols)) == len(symbols):
        return symbols
    return [f"{m.instrument.symbol}@{m.instrument.expiry:%Y-%m-%d %H:%M}" for m in markets]


class Roll:
    """Consecutive dated futures on one continuous bar index (build with :func:`roll`).

    ``index`` runs from the first leg's first bar to the last leg's expiry bar (or the end
    of its data); each bar belongs to the *active* contract, whose last-price bars are
    ``bars`` / ``open`` … ``close``, so signals can be computed on them. Leg ``k`` is active
    from the bar after leg ``k-1``'s expiry bar through its own expiry bar.
    """

    def __init__(self, legs: Sequence[Leg]) -> None:
        self.legs: tuple[Leg, ...] = tuple(legs)
        m0 = self.legs[0].market
        self.bar_ns: int = int(m0.bar_ns)
        self.instrument = m0.instrument  # the first leg's (settlement, currency are shared)
        self.account_currency: str = m0.instrument.account_currency
        self.index_ns: np.ndarray = self._active("index_ns")

    @classmethod
    def from_markets(cls, legs: Sequence[Any] | Mapping[str, Any]) -> Roll:
        """Check and chain dated-future ``Market`` s, listed in order of expiry (a dict
        names the legs; otherwise they are named by symbol)."""
        named = isinstance(legs, Mapping)
        if isinstance(legs, (str, bytes)) or not isinstance(legs, (Sequence, Mapping)):
            raise TypeError(f"roll(): legs must be a list of Markets (dated futures, in order "
                            f"of expiry) or a dict name -> Market, got {type(legs).__name__}.")
        markets = list(legs.values()) if named else list(legs)
        if not markets:
            raise ValueError("roll(): no legs; pass dated-future Markets in order of expiry, "
                             "e.g. bt.roll([m_z24, m_h25]).")
        for k, m in enumerate(markets):
            _check_leg(k, m, markets[0])
            if k and m.instrument.expiry <= markets[k - 1].instrument.expiry:
                raise ValueError(f"roll(): leg {k} ({m.instrument.symbol!r}) expires at "
                                 f"{m.instrument.expiry}, not after leg {k - 1} "
                                 f"({markets[k - 1].instrument.symbol!r}) at "
                                 f"{markets[k - 1].instrument.expiry}. List the legs in order "
                                 "of expiry, each contract once.")
        names = [str(n) for n in legs] if named else _names(markets)
        out: list[Leg] = []
        first, prev_bar = 0, -1
        for k, m in enumerate(markets):
            bar, settles = _expiry_bar(k, m, k == len(markets) - 1)
            lo = 0 if k == 0 else _roll_start(k, m, markets[k - 1], prev_bar)
            if bar <= lo:
                raise ValueError(f"roll(): leg {k} ({m.instrument.symbol!r}) has no bar after "
                                 f"{_ts(m.index_ns[lo])} up to its expiry {m.instrument.expiry}"
                                 "; nothing would trade on it. Load more bars, or drop it.")
            out.append(Leg(name=names[k], market=m.take(lo, bar), expiry=m.instrument.expiry,
                           settles=settles, first=first, last=first + bar - lo,
                           active_from=first + (k > 0)))
            first, prev_bar = out[-1].last, bar
        return cls(out)

    @property
    def n_bars(self) -> int:
        """Number of bars of the continuous index."""
        return len(self.index_ns)

    @cached_property
    def index(self) -> pd.DatetimeIndex:
        """Bar open times (UTC) of the continuous position, named ``timestamp``."""
        return utc_index(self.index_ns)

    def _active(self, name: str) -> np.ndarray:
        """A market array of the active contract, per bar of the roll."""
        return np.concatenate([getattr(leg.market, name)[leg.active_from - leg.first:]
                               for leg in self.legs])

    @cached_property
    def bars(self) -> pd.DataFrame:
        """The active contract's last-price bars (open/high/low/close/volume) on ``index``."""
        return pd.DataFrame({c: self._active(c) for c in ("open", "high", "low", "close",
                                                           "volume")}, index=self.index)

    open = property(lambda self: self.bars["open"], doc="The active contract's open.")
    high = property(lambda self: self.bars["high"], doc="The active contract's high.")
    low = property(lambda self: self.bars["low"], doc="The active contract's low.")
    close = property(lambda self: self.bars["close"], doc="The active contract's close.")

    @cached_property
    def active(self) -> pd.Series:
        """Name of the active leg per bar."""
        names = [leg.name for leg in self.legs for _ in range(leg.active_from, leg.last + 1)]
        return pd.Series(names, index=self.index, name="leg")

    @cached_property
    def spans(self) -> pd.DataFrame:
        """One row per leg: first and last active bar, expiry, whether it settles in the
        data, and its number of active bars."""
        return pd.DataFrame({
            "leg": [leg.name for leg in self.legs],
            "first_bar": [self.index[leg.active_from] for leg in self.legs],
            "last_bar": [self.index[leg.last] for leg in self.legs],
            "expiry": [leg.expiry for leg in self.legs],
            "settles": [leg.settles for leg in self.legs],
            "n_bars": [leg.last + 1 - leg.active_from for leg in self.legs],
        })

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"'Roll' object has no attribute {name!r}: a Roll is not a Market;"
                             " only bt.run(roll, ...) takes it (for a sweep, loop over run), "
                             "and each leg's Market is in roll.legs[k].market.")

    def __repr__(self) -> str:
        return (f"Roll({' -> '.join(leg.name for leg in self.legs)}, {self.n_bars:,} bars, "
                f"{self.index[0]} -> {self.index[-1]}, {self.account_currency})")


def roll(legs: Sequence[Any] | Mapping[str, Any]) -> Roll:
    """Chain dated futures into one continuous position (see :class:`Roll`); run it with
    ``bt.run(roll, entries=..., ...)``.

    ``legs``: a list of dated-future Markets (or a dict name -> Market) of one settlement
    and one bar interval, in order of increasing expiry. Each leg but the last needs bars
    through its expiry bar (the last bar ending at or before the expiry), and each next leg a
    bar at that time. Raises ``TypeError``/``ValueError`` naming the leg and the fix.
    """
    return Roll.from_markets(legs)


def _per_leg(rl: Roll, value: Any) -> list[float | None]:
    """``settlement_price=`` as one value (or None) per leg."""
    n = len(rl.legs)
    if value is None:
        return [None] * n
    if isinstance(value, Mapping):
        unknown = set(value) - {leg.name for leg in rl.legs}
        if unknown:
            raise ValueError(f"run(): settlement_price names unknown leg(s) {sorted(unknown)}; "
                             f"the legs are {[leg.name for leg in rl.legs]}.")
        return [value.get(leg.name) for leg in rl.legs]
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n:
            raise ValueError(f"run(): settlement_price needs one value (or None) per leg "
                             f"({n}), got {len(value)}.")
        return list(value)
    if n == 1:
        return [value]
    raise TypeError(f"run(): with a roll of {n} legs settlement_price must be a list with one "
                    f"price (or None) per leg, or a dict leg name -> price; got {value!r}.")


def _validate(rl: Roll, params: dict[str, Any], settle: list[Any]) -> dict[str, Any]:
    """Every leg's parameters checked before anything runs; each warning raised once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prms = [validate_params(leg.market.instrument, **params, settlement_price=price)
                for leg, price in zip(rl.legs, settle, strict=True)]
    for message in dict.fromkeys(str(w.message) for w in caught):
        warnings.warn(message, UserWarning, stacklevel=user_stacklevel())
    return {**prms[0], "settlement_price": settle}


def _cancels(cols: list[np.ndarray], side: int) -> bool:
    """The user's own signal on the roll bar closes the settled side or opens the other."""
    entries, exits, short_entries, short_exits = (c[0] for c in cols)
    return bool(exits or short_entries) if side > 0 else bool(short_exits or entries)


def run_roll(rl: Roll, entries: Any = None, exits: Any = None, short_entries: Any = None,
             short_exits: Any = None, **params: Any) -> RollResult:
    """Simulate a roll leg by leg with ``single.run_single`` (``bt.run(roll, ...)`` calls this).

    Signals are on ``rl.index``. Each leg starts with the wallet the previous one ended with
    (it is flat after the expiry settlement, so this is exact). The signals of a roll bar
    (the previous leg's expiry bar) act on the next contract; when the previous leg was
    settled at expiry an entry of the settled side is added on that bar, unless the user's
    own signal there exits that side or enters the other: with ``fill="next_open"`` it fills
    at the next contract's first open, with ``fill="close"`` at its close on the roll bar.
    ``settlement_price`` is a list (or dict by leg name) with one price or None per leg.
    Stops after a ruined leg.
    """
    settle = _per_leg(rl, params.pop("settlement_price", None))
    prm = _validate(rl, params, settle)
    capital = prm["initial_capital"]
    sigs = [prepare_signal(name, s, rl.index)[:, 0] for name, s in
            zip(SIGNAL_NAMES, (entries, exits, short_entries, short_exits), strict=True)]
    results: list[Result] = []
    equity, side = capital, 0
    for k, leg in enumerate(rl.legs):
        cols = [s[leg.first:leg.last + 1].copy() for s in sigs]
        if k < len(rl.legs) - 1:
            for col in cols:
                col[-1] = False  # the expiry bar's signals belong to the next contract
        if side and not _cancels(cols, side):
            cols[0 if side > 0 else 2][0] = True
        kw = {**params, "initial_capital": equity}
        if settle[k] is not None:
            kw["settlement_price"] = settle[k]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # raised once by _validate
            r = run_single(leg.market, *cols, **kw)
        results.append(r)
        equity = float(r.stats["final_equity"])
        trades = r.trades
        side = 0
        if len(trades) and trades["exit_reason"].iloc[-1] == "expiry":
            side = 1 if trades["side"].iloc[-1] == "long" else -1
        if r.stats["ruined"] or equity <= RUIN_FRACTION * capital:
            break
    return RollResult(roll=rl, params=prm, legs=results, signals=sigs)
