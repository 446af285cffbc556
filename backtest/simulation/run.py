"""``run()``: the public entry point, choosing the runner for what it is given.

A ``Market`` goes to ``single``, a dict of markets to ``portfolio`` (one wallet), a ``Roll``
to ``rolls``. Nothing else lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backtest.simulation.portfolio import run_portfolio
from backtest.simulation.rolls import Roll, run_roll
from backtest.simulation.single import run_single


def run(market: Any, entries: Any = None, exits: Any = None, short_entries: Any = None,
        short_exits: Any = None, **params: Any) -> Any:
    """Simulate one market with one set of parameters (SPEC §4-§8).

    Parameters
    ----------
    market : Market or dict of name -> Market
        From ``bt.load_market``; its instrument fixes settlement, rules, fees and tiers.
        A dict runs a portfolio with one wallet (``backtest.simulation.portfolio``;
        signals are then dicts keyed by the same names) and returns a ``PortfolioResult``.
    entries, exits, short_entries, short_exits : bool array-like or Series on market.index
        A signal on bar ``t`` uses information up to ``close[t]``; ``None`` = never.
    **params
        Any of ``backtest.simulation.params.RUN_DEFAULTS`` (leverage, margin_mode, size, size_type,
        stop_loss, take_profit, trailing_stop, stop_trigger, stop_order, stop_limit_offset,
        entry_order, limit_offset, limit_ttl, fill, path, liquidation, liquidation_fee,
        negative_equity, fees, slippage, initial_capital, borrow_rate (spot margin: hourly
        rate or a Series on market.index; default the instrument's), settlement_price
        (dated futures; default the index/last close of the expiry bar)). Rates are fractions.

    Returns
    -------
    Result, PortfolioResult or RollResult
        Per-bar series, trades, events and stats in the account currency.
    """
    signals = (entries, exits, short_entries, short_exits)
    if isinstance(market, Roll):  # consecutive dated futures
        return run_roll(market, *signals, **params)
    if isinstance(market, Mapping):
        return run_portfolio(market, *signals, **params)
    return run_single(market, *signals, **params)
