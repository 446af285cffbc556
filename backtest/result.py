"""``Result``: the pandas face of one simulated run (SPEC §8).

Wraps the kernel's arrays with the bar index and the names of codes; computes nothing that
the kernel did not (the drawdown series is a view of the equity). Plotting and reports are
delegated to ``plotting`` / ``report.py``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from backtest.kernels import records as R
from backtest.kernels.stats import STAT_NAMES

_INT_STATS = ("n_trades", "n_liquidations", "n_stops", "n_ambiguous")
TRADE_COLUMNS = ("entry_time", "exit_time", "side", "size", "leverage", "entry_price",
                 "exit_price", "margin", "gross_pnl", "fees", "funding", "interest", "pnl",
                 "exit_reason")


def trades_frame(rows: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The kernel's trade rows (``records.T_*`` columns) as the SPEC §8 trades table."""
    return pd.DataFrame({
        "entry_time": index[rows[:, R.T_ENTRY_BAR].astype(np.int64)],
        "exit_time": index[rows[:, R.T_EXIT_BAR].astype(np.int64)],
        "side": np.where(rows[:, R.T_SIDE] > 0, "long", "short"),
        "size": rows[:, R.T_SIZE],
        "leverage": rows[:, R.T_LEVERAGE],
        "entry_price": rows[:, R.T_ENTRY_PRICE],
        "exit_price": rows[:, R.T_EXIT_PRICE],
        "margin": rows[:, R.T_MARGIN],
        "gross_pnl": rows[:, R.T_GROSS_PNL],
        "fees": rows[:, R.T_FEES],
        "funding": rows[:, R.T_FUNDING],
        "interest": rows[:, R.T_INTEREST],
        "pnl": rows[:, R.T_PNL],
        "exit_reason": [R.REASONS[int(c)] for c in rows[:, R.T_REASON]],
    }, columns=list(TRADE_COLUMNS))


def stats_series(values: np.ndarray) -> pd.Series:
    """Name the kernel's stats vector (``STAT_NAMES``), with counts as ints."""
    out: dict[str, Any] = dict(zip(STAT_NAMES, (float(v) for v in values), strict=True))
    for key in _INT_STATS:
        out[key] = int(out[key])
    out["ruined"] = bool(out["ruined"])
    return pd.Series(out, dtype=object, name="stats")


class Result:
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
    def drawdown(self) -> pd.Series:
        """Fractional distance below the running peak (initial capital included)."""
        capital = self.params["initial_capital"]
        peak = np.maximum.accumulate(np.maximum(self._series[0], capital))
        return pd.Series(1.0 - self._series[0] / peak, index=self.market.index,
                         name="drawdown")

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

    @cached_property
    def stats(self) -> pd.Series:
        """SPEC §8 statistics (fractions, not percent), then ``version`` (of the package)
        and ``fingerprint`` (of the inputs, see :attr:`fingerprint`)."""
        from backtest import __version__

        out = stats_series(self._stats)
        out["version"] = __version__
        out["fingerprint"] = self.fingerprint
        return out

    @cached_property
    def fingerprint(self) -> str:
        """Short SHA-256 of the market arrays, instrument, parameters and signals
        (``backtest.fingerprint``): equal inputs give an equal fingerprint in any process."""
        from backtest.fingerprint import fingerprint

        return fingerprint(self.market, self.params, self._signals)

    def plot(self, **kwargs: Any) -> Any:
        """Equity with drawdown, price with trades and the liquidation line (a Figure)."""
        from backtest.plotting import plot_result

        return plot_result(self, **kwargs)

    def report(self, path: str) -> Result:
        """Write a self-contained HTML report to ``path`` and return self."""
        from backtest.report import write_result_report

        write_result_report(self, path)
        return self

    def __repr__(self) -> str:
        s = self.stats
        inst = self.market.instrument
        return (f"<Result {inst.symbol} {self.params['leverage']:g}x "
                f"{self.params['margin_mode']}: {len(self.market.index)} bars, "
                f"final equity {s['final_equity']:.6g} {self.account_currency} "
                f"({s['total_return']:+.2%}), max DD {s['max_drawdown']:.2%}, "
                f"{s['n_trades']} trades, {s['n_liquidations']} liquidations, "
                f"funding {s['funding_paid']:.6g}, mark={self.mark_source}>")

    def _repr_html_(self) -> str:
        table = self.stats.to_frame().to_html(float_format=lambda x: f"{x:.6g}")
        return f"<p>{self.__repr__()[1:-1]}</p>{table}"
