"""The kernels' inputs: a market, an instrument and signals as the arrays the kernels take.

Owns the bar-major market matrix (cached per ``Market``), the instrument vector and tier
table, the expiry bar of a dated future, the packed signal bitmask and the structural checks
of a market. Used by every runner and by the sweeps. No simulation logic lives here.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pandas as pd

from backtest.instruments.instrument import Instrument
from backtest.kernels import records as R

HOUR_NS = 3_600_000_000_000


def clock_hours(index_ns: np.ndarray, bar_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Clock hours starting in ``[open, next open)`` and in ``(open, next open)`` per bar.

    Spot-margin interest is charged per started clock hour (SPEC §7); the last bar is taken
    to last ``bar_ns``.
    """
    ends = np.append(index_ns[1:], index_ns[-1] + bar_ns)
    starts_in = -(-ends // HOUR_NS) - (-(-index_ns // HOUR_NS))
    on_boundary = (index_ns % HOUR_NS == 0).astype(np.int64)
    return starts_in.astype(np.float64), (starts_in - on_boundary).astype(np.float64)


def _borrow_rate(market: Any, rate: Any) -> np.ndarray:
    n = market.n_bars
    if market.instrument.kind != "spot_margin":
        return np.zeros(n)
    if rate is None:
        return np.full(n, float(market.instrument.borrow_rate or 0.0))
    if isinstance(rate, pd.Series):
        if not rate.index.equals(market.index):
            raise ValueError("run(): borrow_rate Series must be on market.index (one hourly rate "
                             "per bar). Use rate.reindex(market.index, method='ffill').")
        values = pd.to_numeric(rate, errors="coerce").to_numpy(np.float64)
        if not np.isfinite(values).all() or (values < 0).any() or (values >= 0.01).any():
            raise ValueError("run(): borrow_rate Series must hold finite hourly rates in "
                             "[0, 0.01) (fractions). Daily rates? divide by 24.")
        return values
    return np.full(n, float(rate))


_MATRIX_CACHE: dict[int, tuple[weakref.ref, np.ndarray]] = {}


def market_arrays(market: Any, borrow_rate: Any = None) -> np.ndarray:
    """The kernels' bar-major market matrix, float64 ``(n_bars, N_MARKET)`` (``M_*``).

    Built once per ``Market`` (markets are immutable) and reused: rebuilding it costs about
    as much as simulating the bars. A ``borrow_rate`` other than the instrument's is
    written into a copy.
    """
    key = id(market)
    entry = _MATRIX_CACHE.get(key)
    if entry is None or entry[0]() is not market:
        matrix = _build_market_matrix(market)
        _MATRIX_CACHE[key] = (weakref.ref(market, lambda _: _MATRIX_CACHE.pop(key, None)),
                              matrix)
    else:
        matrix = entry[1]
    if borrow_rate is None:
        return matrix
    custom = matrix.copy()
    custom[:, R.M_BORROW_RATE] = _borrow_rate(market, borrow_rate)
    return custom


def _build_market_matrix(market: Any) -> np.ndarray:
    n = market.n_bars
    if market.has_funding:
        rate = market.funding_rate
        count = market.funding_count.astype(np.float64)
        next_rate = market.next_funding_rate
    else:
        rate = count = next_rate = np.zeros(n)
    hours_in, hours_after = clock_hours(market.index_ns, market.bar_ns)
    arrays = (market.open, market.high, market.low, market.close, market.mark_open,
              market.mark_high, market.mark_low, market.mark_close, rate, count, next_rate,
              _borrow_rate(market, None), hours_in, hours_after)
    return np.ascontiguousarray(np.stack(arrays, axis=1), dtype=np.float64)


def expiry_settlement(market: Any, settlement_price: float | None) -> tuple[int, float]:
    """(last bar ending at or before expiry, settlement price) of a dated future; (-1, nan)
    when the instrument has no expiry inside the data (SPEC §7)."""
    expiry = market.instrument.expiry_ns
    if expiry is None:
        return -1, np.nan
    ends = market.index_ns + market.bar_ns
    done = np.flatnonzero(ends <= expiry)
    if len(done) == 0:
        raise ValueError(f"run(): {market.instrument.symbol} expires at "
                         f"{pd.Timestamp(expiry, tz='UTC')}, before the first bar ends "
                         f"({market.index[0]}). Load bars before the expiry.")
    bar = int(done[-1])
    if bar == market.n_bars - 1 and ends[-1] < expiry:
        return -1, np.nan          # the data stops before the expiry: no settlement in range
    if settlement_price is not None:
        return bar, float(settlement_price)
    source = market.index_close if market.index_close is not None else market.close
    return bar, float(source[bar])


def instrument_arrays(instrument: Any, expiry_bar: int = -1, settle_price: float = np.nan
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's instrument vector (``records.I_*``) and flat tier table (floor, mmr,
    cum and max-leverage columns one after another)."""
    inst = np.empty(R.N_INSTRUMENT)
    inst[R.I_SETTLEMENT] = instrument.settlement_code
    inst[R.I_RULES] = instrument.rules_code
    inst[R.I_CONTRACT_SIZE] = instrument.contract_size
    inst[R.I_TICK] = instrument.tick_size
    inst[R.I_LOT] = instrument.lot_size
    inst[R.I_KIND] = instrument.kind_code
    inst[R.I_EXPIRY_BAR] = expiry_bar
    inst[R.I_SETTLE_PRICE] = settle_price
    inst[R.I_MARGIN_LEVEL] = instrument.liquidation_margin_level or np.nan
    tiers = np.ascontiguousarray(np.concatenate(instrument.tiers.arrays()), dtype=np.float64)
    return inst, tiers


def signal_mask(entries: np.ndarray, exits: np.ndarray, short_entries: np.ndarray,
                short_exits: np.ndarray) -> np.ndarray:
    """Pack four bool matrices ``(n_bars, n_sets)`` into the kernels' uint8 bitmask."""
    mask = (entries.astype(np.uint8) * R.SIG_ENTRY | exits.astype(np.uint8) * R.SIG_EXIT
            | short_entries.astype(np.uint8) * R.SIG_SHORT_ENTRY
            | short_exits.astype(np.uint8) * R.SIG_SHORT_EXIT)
    return np.ascontiguousarray(mask, dtype=np.uint8)


_MARKET_ARRAYS = ("open", "high", "low", "close", "mark_open", "mark_high", "mark_low",
                  "mark_close", "index_close", "funding_rate", "funding_count",
                  "next_funding_rate")


def check_market(market: Any, where: str = "run()", min_bars: int = 2) -> None:
    """Refuse what is not a usable single ``Market`` before any kernel sees it: the public
    entry point ``where`` (``run()``, ``sweep()``, ...) names itself in the message."""
    if not hasattr(market, "index_ns") or not hasattr(market, "instrument"):
        raise TypeError(f"{where}: market must be a Market from bt.load_market(...), got "
                        f"{type(market).__name__}.")
    if market.n_bars < min_bars:
        raise ValueError(f"{where}: the market has {market.n_bars} bar(s); at least "
                         f"{min_bars} are needed.")
    if not isinstance(market.instrument, Instrument):
        raise TypeError(f"{where}: market.instrument must be a backtest Instrument, got "
                        f"{type(market.instrument).__name__}. Load the market with "
                        "instrument='binance:BTCUSDT' (a preset) or bt.Instrument.simple(...).")
    short = [name for name in _MARKET_ARRAYS
             if getattr(market, name) is not None and len(getattr(market, name)) != market.n_bars]
    if short:  # only a hand-built Market can get here; the kernels do not bounds-check
        raise ValueError(f"{where}: market arrays {short} do not have one value per bar "
                         f"({market.n_bars}). Build markets with bt.load_market(...).")
