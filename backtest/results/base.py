"""``RunResult``: what every kind of run's result shares.

One implementation of the stats access (the subclass's raw stats, then ``version`` and
``fingerprint``), the drawdown view of the equity, ``plot()``/``report()`` dispatch to
``backtest.presentation.dispatch``, and ``repr``/``_repr_html_``. A new kind of run adds one
small subclass that supplies :meth:`_raw_stats`, :meth:`_fingerprint_inputs`,
:meth:`_describe` and its series.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from backtest.data.fingerprint import fingerprint
from backtest.version import __version__


class RunResult(ABC):
    """Base of ``Result``, ``PortfolioResult`` and ``RollResult``.

    Subclasses set ``kind`` (the key ``plot``/``report`` dispatch on), ``params``,
    ``index`` (the bar index, a DatetimeIndex) and ``account_currency``.
    """

    kind = "run"
    params: dict[str, Any]
    index: pd.DatetimeIndex
    account_currency: str

    # -- what a subclass supplies -------------------------------------------------------
    @abstractmethod
    def _raw_stats(self) -> pd.Series:
        """The stats of docs/semantics.md (``STAT_NAMES`` keys, counts as ints)."""

    @abstractmethod
    def _fingerprint_inputs(self) -> tuple[Any, Any, Any]:
        """(market or markets, params, signals) hashed by :attr:`fingerprint`."""

    @abstractmethod
    def _describe(self) -> str:
        """The one-line name of the run shown first in the repr (symbol, leverage, mode)."""

    @abstractmethod
    def _equity_values(self) -> np.ndarray:
        """The equity per bar (account currency), float64, for :attr:`drawdown`."""

    # -- shared -------------------------------------------------------------------------
    @cached_property
    def stats(self) -> pd.Series:
        """SPEC §8 statistics (fractions, not percent), then ``version`` (of the package)
        and ``fingerprint`` (of the inputs, see :attr:`fingerprint`)."""
        out = self._raw_stats()
        out["version"] = __version__
        out["fingerprint"] = self.fingerprint
        return out

    @cached_property
    def fingerprint(self) -> str:
        """Short SHA-256 of the market arrays, instrument(s), parameters and signals
        (``backtest.data.fingerprint``): equal inputs give an equal fingerprint in any
        process."""
        return fingerprint(*self._fingerprint_inputs())

    @cached_property
    def drawdown(self) -> pd.Series:
        """Fractional distance below the running peak (initial capital included)."""
        eq = self._equity_values()
        peak = np.maximum.accumulate(np.maximum(eq, self.params["initial_capital"]))
        return pd.Series(1.0 - eq / peak, index=self.index, name="drawdown")

    # -- analysis (backtest.results.analysis; the reports display these) ----------------
    def monthly_returns(self) -> pd.DataFrame:
        """Calendar-month returns (fractions), a row per year, ``Jan``..``Dec``, ``Year``."""
        from backtest.results.analysis import monthly_returns

        return monthly_returns(self.equity, self.params["initial_capital"])

    def drawdown_periods(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` deepest drawdowns: peak, trough, recovery, depth, lengths in days."""
        from backtest.results.analysis import drawdown_periods

        return drawdown_periods(self.equity, self.params["initial_capital"], n)

    def exit_breakdown(self) -> pd.DataFrame:
        """Trades by exit reason (liquidations included): count, share, PnL, win rate."""
        from backtest.results.analysis import exit_breakdown

        return exit_breakdown(self.trades)

    def costs_by_month(self) -> pd.DataFrame:
        """Funding and fees paid per month (account currency) and their drag on equity."""
        from backtest.results.analysis import costs_by_month

        return costs_by_month(self.funding, self.trades, self.equity)

    def buy_and_hold(self) -> pd.Series | None:
        """Benchmark equity: the initial capital held 1× in the underlying, no costs (quote
        currency); ``None`` for several markets or a coin-settled (inverse/quanto) account,
        whose equity is not in the quote currency."""
        from backtest.results.analysis import buy_and_hold

        market = getattr(self, "market", None)
        if market is None or market.instrument.settlement != "linear":
            return None
        return buy_and_hold(market.close, self.index, self.params["initial_capital"])

    def plot_analysis(self) -> Any:
        """Monthly returns, trade PnL by exit reason, funding and fees per month (a
        pyplot-managed Figure; ``backtest.presentation.plotting.plot_analysis``)."""
        from backtest.presentation.plotting import plot_analysis

        return plot_analysis(self)

    def plot(self, **kwargs: Any) -> Any:
        """The figure of this kind of run (a matplotlib Figure; see
        ``backtest.presentation.dispatch``)."""
        from backtest.presentation.dispatch import plot_run

        return plot_run(self, **kwargs)

    def report(self, path: str) -> RunResult:
        """Write a self-contained HTML report to ``path`` and return self."""
        from backtest.presentation.dispatch import write_run_report

        write_run_report(self, path)
        return self

    def __repr__(self) -> str:
        s = self.stats
        return (f"<{type(self).__name__} {self._describe()}: final equity "
                f"{s['final_equity']:.6g} {self.account_currency} ({s['total_return']:+.2%}), "
                f"max DD {s['max_drawdown']:.2%}, {s['n_trades']} trades, "
                f"{s['n_liquidations']} liquidations, funding {s['funding_paid']:.6g}"
                f"{', RUINED' if s['ruined'] else ''}>")

    def _html_extra(self) -> str:
        """More HTML after the stats table in Jupyter (a subclass's per-market table)."""
        return ""

    def _repr_html_(self) -> str:
        """Jupyter: the repr line, the stats (one formatter for every table) and the
        subclass's extra table, side by side."""
        import html

        from backtest.presentation.tables import stats_html

        stats = stats_html(self.stats, self.account_currency)
        extra = self._html_extra()
        cell = "<div style='display:inline-block;vertical-align:top;margin-right:24px'>"
        return (f"<p><b>{html.escape(type(self).__name__)}</b> "
                f"{html.escape(self.__repr__()[1:-1].split(' ', 1)[1])}</p>"
                f"{cell}{stats}</div>" + (f"{cell}{extra}</div>" if extra else ""))
