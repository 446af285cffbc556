"""``run()`` (and the shared plumbing of ``sweep()``): validate → arrays → kernel → Result.

Owns the translation between the public objects (``Market``, ``Instrument``, signals,
keyword parameters) and the kernels' arrays. No simulation logic lives here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backtest.kernels import records as R
from backtest.kernels.simulate import simulate
from backtest.params import SIGNAL_NAMES, encode, prepare_signal, validate_params
from backtest.result import Result


def market_arrays(market: Any) -> tuple[np.ndarray, ...]:
    """The kernel's market tuple (``records.M_*`` order), float64 contiguous."""
    n = market.n_bars
    if market.has_funding:
        rate = market.funding_rate
        count = market.funding_count.astype(np.float64)
        next_rate = market.next_funding_rate
    else:
        rate = count = next_rate = np.zeros(n)
    arrays = (market.open, market.high, market.low, market.close, market.mark_open,
              market.mark_high, market.mark_low, market.mark_close, rate, count, next_rate)
    return tuple(np.ascontiguousarray(a, dtype=np.float64) for a in arrays)


def instrument_arrays(instrument: Any) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The kernel's instrument vector (``records.I_*``) and tier arrays."""
    inst = np.empty(R.N_INSTRUMENT)
    inst[R.I_SETTLEMENT] = instrument.settlement_code
    inst[R.I_RULES] = instrument.rules_code
    inst[R.I_CONTRACT_SIZE] = instrument.contract_size
    inst[R.I_TICK] = instrument.tick_size
    inst[R.I_LOT] = instrument.lot_size
    tiers = tuple(np.ascontiguousarray(a, dtype=np.float64) for a in instrument.tiers.arrays())
    return inst, tiers


def signal_mask(entries: np.ndarray, exits: np.ndarray, short_entries: np.ndarray,
                short_exits: np.ndarray) -> np.ndarray:
    """Pack four bool matrices ``(n_bars, n_sets)`` into the kernels' uint8 bitmask."""
    mask = (entries.astype(np.uint8) * R.SIG_ENTRY | exits.astype(np.uint8) * R.SIG_EXIT
            | short_entries.astype(np.uint8) * R.SIG_SHORT_ENTRY
            | short_exits.astype(np.uint8) * R.SIG_SHORT_EXIT)
    return np.ascontiguousarray(mask, dtype=np.uint8)


def _check_market(market: Any) -> None:
    if isinstance(market, dict):
        raise ValueError("run(): several markets (a portfolio with one wallet) are not built "
                         "yet; run each market on its own for now.")
    if not hasattr(market, "index_ns") or not hasattr(market, "instrument"):
        raise TypeError(f"run(): market must be a Market from bt.load_market(...), got "
                        f"{type(market).__name__}.")
    if market.n_bars < 2:
        raise ValueError(f"run(): the market has {market.n_bars} bar(s); at least 2 are needed.")


def run(market: Any, entries: Any = None, exits: Any = None, short_entries: Any = None,
        short_exits: Any = None, **params: Any) -> Result:
    """Simulate one market with one set of parameters (SPEC §4-§8).

    Parameters
    ----------
    market : Market
        From ``bt.load_market``; its instrument fixes settlement, rules, fees and tiers.
    entries, exits, short_entries, short_exits : bool array-like or Series on market.index
        A signal on bar ``t`` uses information up to ``close[t]``; ``None`` = never.
    **params
        Any of ``backtest.params.RUN_DEFAULTS`` (leverage, margin_mode, size, size_type,
        stop_loss, take_profit, trailing_stop, stop_trigger, stop_order, stop_limit_offset,
        entry_order, limit_offset, limit_ttl, fill, path, liquidation, liquidation_fee,
        negative_equity, fees, slippage, initial_capital). Rates are fractions.

    Returns
    -------
    Result
        Per-bar series, trades, events and stats in the account currency.
    """
    _check_market(market)
    prm = validate_params(market.instrument, **params)
    signals = tuple(prepare_signal(name, sig, market.index)
                    for name, sig in zip(SIGNAL_NAMES, (entries, exits, short_entries,
                                                        short_exits), strict=True))
    inst, tiers = instrument_arrays(market.instrument)
    series, trades, events, stats = simulate(encode(prm), market_arrays(market), inst, tiers,
                                             signal_mask(*signals), float(market.bar_ns))
    return Result(market=market, params=prm, series=series, trades=trades, events=events,
                  stats=stats)
