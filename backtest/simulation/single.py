"""One market, one set of parameters: validate -> arrays -> ``kernels.simulate`` -> ``Result``.

Owns only the single-market run; ``backtest.simulation.run`` chooses between this, the
portfolio and the roll runner.
"""

from __future__ import annotations

from typing import Any

from backtest.kernels.simulate import simulate
from backtest.results.single import Result
from backtest.simulation.arrays import (
    check_market,
    expiry_settlement,
    instrument_arrays,
    market_arrays,
    signal_mask,
)
from backtest.simulation.compile_notice import SECONDS, notify_compiling
from backtest.simulation.parallel_compile import two_core_compile
from backtest.simulation.params import SIGNAL_NAMES, encode, prepare_signal, validate_params


def run_single(market: Any, entries: Any = None, exits: Any = None, short_entries: Any = None,
               short_exits: Any = None, **params: Any) -> Result:
    """One market with one set of parameters; the arguments of ``backtest.run`` for a
    ``Market``. Returns a ``Result``."""
    check_market(market)
    prm = validate_params(market.instrument, **params)
    signals = tuple(prepare_signal(name, sig, market.index)
                    for name, sig in zip(SIGNAL_NAMES, (entries, exits, short_entries,
                                                        short_exits), strict=True))
    inst, tiers = instrument_arrays(market.instrument,
                                    *expiry_settlement(market, prm["settlement_price"]))
    notify_compiling(simulate, seconds=SECONDS["run"])
    two_core_compile(simulate)
    series, trades, events, stats = simulate(
        encode(prm), market_arrays(market, prm["borrow_rate"]), inst, tiers,
        signal_mask(*signals), float(market.bar_ns))
    return Result(market=market, params=prm, series=series, trades=trades, events=events,
                  stats=stats, signals=dict(zip(SIGNAL_NAMES, signals, strict=True)))
