"""``PortfolioResult``: several markets on one wallet (``simulation.portfolio``) as pandas.

Combined equity and wallet, per-market series as DataFrames (a column per market), trades
and events with a ``market`` column, and the SPEC §8 stats of the combined equity from the
kernel's running sums (``summary_values``, shared with the portfolio sweep so that its rows
equal ``run()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from backtest.kernels import portfolio as P
from backtest.kernels import records as R
from backtest.kernels import stats as K
from backtest.results.base import RunResult
from backtest.results.frames import trades_frame
from backtest.results.metrics import NS_PER_YEAR, profit_factor


class PortfolioResult(RunResult):
    """Combined equity and wallet, per-market series, trades and events with a ``market``
    column, and stats of the combined equity (SPEC §8 keys)."""

    kind = "portfolio"

    def __init__(self, *, markets: Mapping[str, Any], params: dict[str, Any],
                 raw: tuple[np.ndarray, ...], signals: np.ndarray | None = None) -> None:
        self.markets = dict(markets)
        self._signals = signals  # the kernel's bitmasks, for the fingerprint
        self.names = list(markets)
        self.params = params
        self._equity, self._wallet, self._per_market, self._trades, self._trade_market, \
            self._events, self._event_market, self._min_liq_distance, self._summary = raw
        self.index = markets[self.names[0]].index
        self.account_currency = markets[self.names[0]].instrument.account_currency

    @cached_property
    def equity(self) -> pd.Series:
        """Wallet plus every position's uPnL at its mark close (account currency)."""
        return pd.Series(self._equity, index=self.index, name="equity")

    @cached_property
    def wallet(self) -> pd.Series:
        return pd.Series(self._wallet, index=self.index, name="wallet")

    def _frame(self, row: int) -> pd.DataFrame:
        return pd.DataFrame(self._per_market[:, row, :].T, index=self.index, columns=self.names)

    @cached_property
    def position(self) -> pd.DataFrame:
        """Signed size per market (columns) and bar."""
        return self._frame(0)

    @cached_property
    def margin(self) -> pd.DataFrame:
        return self._frame(1)

    @cached_property
    def liquidation_price(self) -> pd.DataFrame:
        """Isolated: each position's liquidation price. Cross: NaN — the liquidation is of
        the whole portfolio (wallet + Σ uPnL ≤ Σ MM), not at one market's price."""
        return self._frame(2)

    @cached_property
    def funding(self) -> pd.DataFrame:
        return self._frame(3)

    @cached_property
    def trades(self) -> pd.DataFrame:
        """SPEC §8 trades of every market, with a ``market`` column, by exit time."""
        frame = trades_frame(self._trades, self.index)
        frame.insert(0, "market", [self.names[j] for j in self._trade_market])
        return frame.sort_values(["exit_time", "market"], kind="stable").reset_index(drop=True)

    @cached_property
    def events(self) -> pd.DataFrame:
        rows = self._events
        return pd.DataFrame({
            "market": [self.names[j] for j in self._event_market],
            "time": self.index[rows[:, R.E_BAR].astype(np.int64)],
            "kind": [R.EVENT_KINDS[int(c)] for c in rows[:, R.E_KIND]],
            "value": rows[:, R.E_VALUE],
        })

    @cached_property
    def pnl_by_market(self) -> pd.DataFrame:
        """What each market made or lost: pnl, funding, fees, liquidations."""
        t = self.trades
        grouped = t.groupby("market")
        out = pd.DataFrame({
            "pnl": grouped["pnl"].sum(),
            "funding": grouped["funding"].sum(),
            "fees": grouped["fees"].sum(),
            "n_trades": grouped.size(),
            "n_liquidations": grouped["exit_reason"].apply(lambda r: int((r == "liquidation")
                                                                         .sum())),
        }).reindex(self.names)
        return out.fillna({"pnl": 0.0, "funding": 0.0, "fees": 0.0, "n_trades": 0,
                           "n_liquidations": 0})

    def _fingerprint_inputs(self) -> tuple[Any, Any, Any]:
        return self.markets, self.params, self._signals

    def _html_extra(self) -> str:
        from backtest.presentation.tables import html_table

        return ("<p>by market (" + self.account_currency + ")</p>"
                + html_table(self.pnl_by_market.rename_axis("market")))

    def _describe(self) -> str:
        return (f"{'+'.join(self.names)} {self.params['leverage']:g}x "
                f"{self.params['margin_mode']}")

    def _equity_values(self) -> np.ndarray:
        return self._equity

    def _raw_stats(self) -> pd.Series:
        first = self.markets[self.names[0]]
        return summary_stats(self._summary, self.params["initial_capital"],
                             float(first.bar_ns), len(self._equity))


def summary_stats(s: np.ndarray, initial_capital: float, bar_ns: float,
                  n: int) -> pd.Series:
    """``summary_values`` as a Series (object dtype, like ``metrics.compute_stats``)."""
    return pd.Series(summary_values(s, initial_capital, bar_ns, n), dtype=object)


def summary_values(s: np.ndarray, initial_capital: float, bar_ns: float,
                   n: int) -> dict[str, Any]:
    """SPEC §8 stats from a portfolio kernel's ``summary`` (``kernels.portfolio``
    ``N_SUMMARY``: the combined equity's running stats and the markets' totals) over ``n``
    bars, with ``metrics.compute_stats``' formulas; ``run()`` and the portfolio sweep both
    come here, so their rows are equal. The sums are running (sequential) sums, so they may
    differ from ``compute_stats`` on the series in the last bits."""
    final = float(s[K.EQ_PREV])
    bars_per_year = NS_PER_YEAR / bar_ns
    years = n * bar_ns / NS_PER_YEAR
    with np.errstate(over="ignore"):  # a few bars of a big move annualise to inf
        cagr = -1.0 if final <= 0 else float(np.power(final / initial_capital,
                                                      1.0 / years)) - 1.0
    mdd = float(s[K.EQ_MAXDD])
    mean = float(s[K.EQ_MEAN])
    std = float(np.sqrt(s[K.EQ_M2] / (n - 1.0))) if n > 1 else np.nan
    sharpe = mean / std * np.sqrt(bars_per_year) if std and std > 0 else np.nan
    down = float(np.sqrt(s[K.EQ_DOWN] / n))
    sortino = mean / down * np.sqrt(bars_per_year) if down > 0 else np.nan
    n_trades = int(s[P.U_N_TRADES])
    profit = profit_factor(float(s[P.U_SUM_WIN]), float(s[P.U_SUM_LOSS]), n_trades)
    return {
        "final_equity": final,
        "total_return": final / initial_capital - 1.0,
        "cagr": cagr,
        "max_drawdown": mdd,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": cagr / mdd if mdd > 0 else np.nan,
        "n_trades": n_trades,
        "win_rate": float(s[P.U_N_WINS]) / n_trades if n_trades else np.nan,
        "profit_factor": profit,
        "exposure": int(s[P.U_EXPOSED]) / n,
        "n_liquidations": int(s[P.U_N_LIQ]),
        "n_stops": int(s[P.U_N_STOPS]),
        "funding_paid": float(s[P.U_FUNDING]),
        "fees_paid": float(s[P.U_FEES]),
        "n_ambiguous": int(s[P.U_AMBIGUOUS]),
        "min_liq_distance": float(s[P.U_MIN_LIQ]),
        "ruined": final <= 0.0,
        "interest_paid": float(s[P.U_INTEREST]),
    }
