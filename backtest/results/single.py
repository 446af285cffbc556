"""``Result``: the pandas face of one simulated market (SPEC §8).

Wraps the kernel's arrays with the bar index and the names of codes; computes nothing that
the kernel did not. Stats access, drawdown, repr and plot/report dispatch come from
``base.RunResult``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from backtest.kernels import records as R
from backtest.results.base import RunResult
from backtest.results.frames import stats_series, trades_frame


class Result(RunResult):
    """One run: per-bar series on the market index, ``trades``, ``events`` and ``stats``.

    Money is in the instrument's account currency (USDT linear, coin for inverse/quanto);
    ``quote_equity`` gives inverse/quanto equity valued in quote at the mark close.
    """

    def __init__(self, *, market: Any, params: dict[str, Any], series: np.ndarray,
                 trades: np.ndarray, events: np.ndarray, stats: np.ndarray,
                 signals: Any = None) -> None:
        self.market = market
        self.params = params
        self._signals = signals  # what the kernel read, for the fingerprint
        self.mark_source: str = market.mark_source
        self.account_currency: str = market.instrument.account_currency
        self._series = series
        self._trades = trades
        self._events = events
        self._stats = stats
        self.index = market.index

    kind = "single"

    def _raw_stats(self) -> pd.Series:
        return stats_series(self._stats)

    def _fingerprint_inputs(self) -> tuple[Any, Any, Any]:
        return self.market, self.params, self._signals

    def _describe(self) -> str:
        return (f"{self.market.instrument.symbol} {self.params['leverage']:g}x "
                f"{self.params['margin_mode']}, {len(self.market.index)} bars, "
                f"mark={self.mark_source}")

    def _equity_values(self) -> np.ndarray:
        return self._series[0]

    def _line(self, row: int, name: str) -> pd.Series:
        return pd.Series(self._series[row], index=self.market.index, name=name)

    @cached_property
    def equity(self) -> pd.Series:
        """Wallet plus unrealised PnL at the mark close, per bar (account currency)."""
        return self._line(0, "equity")

    @cached_property
    def wallet(self) -> pd.Series:
        """Cash balance after fees, funding and realised PnL, per bar."""
        return self._line(1, "wallet")

    @cached_property
    def position(self) -> pd.Series:
        """Signed size at the bar's close (base units or contracts; short < 0)."""
        return self._line(2, "position")

    @cached_property
    def margin(self) -> pd.Series:
        """Isolated: the position's margin after funding; cross: initial margin in use."""
        return self._line(3, "margin")

    @cached_property
    def liquidation_price(self) -> pd.Series:
        """Mark price that liquidates the open position (NaN when flat)."""
        return self._line(4, "liquidation_price")

    @cached_property
    def funding(self) -> pd.Series:
        """Funding paid in each bar (> 0 paid, < 0 received)."""
        return self._line(5, "funding")

    @cached_property
    def quote_equity(self) -> pd.Series:
        """Equity valued in the quote currency (inverse/quanto: × mark close)."""
        if self.market.instrument.settlement == "linear":
            return self.equity.rename("quote_equity")
        return (self.equity * self.market.mark_close).rename("quote_equity")

    @cached_property
    def trades(self) -> pd.DataFrame:
        """One row per closed position (SPEC §8 columns)."""
        return trades_frame(self._trades, self.market.index)

    @cached_property
    def events(self) -> pd.DataFrame:
        """Rejections, ignored/dropped signals, ambiguous bars, and the data repairs."""
        rows = self._events
        index = self.market.index
        sim = pd.DataFrame({
            "time": index[rows[:, R.E_BAR].astype(np.int64)],
            "kind": [R.EVENT_KINDS[int(c)] for c in rows[:, R.E_KIND]],
            "value": rows[:, R.E_VALUE],
            "detail": "",
        })
        load = [{"time": pd.NaT, "kind": e["kind"], "value": float(e.get("count", 1)),
                 "detail": e.get("message", "")} for e in self.market.events]
        if not load:
            return sim
        return pd.concat([pd.DataFrame(load), sim], ignore_index=True)
