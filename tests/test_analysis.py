"""The analysis a quant reads (issue 12, go beyond): monthly returns, drawdown periods,
exits by reason, costs by month, buy and hold, checked on hand-made curves."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backtest.results.analysis import (
    buy_and_hold,
    costs_by_month,
    drawdown_periods,
    exit_breakdown,
    monthly_returns,
)


def _daily(values: list[float], start: str = "2024-01-01") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="1D",
                                                 tz="UTC"))


def test_monthly_returns_chain_month_ends_from_the_initial_capital():
    # Jan ends at 110, Feb at 99, Mar at 99: +10 %, -10 %, 0 %; the year -1 %.
    days = pd.date_range("2024-01-01", "2024-03-31", freq="1D", tz="UTC")
    eq = pd.Series(np.where(days.month == 1, 110.0, 99.0), index=days)
    table = monthly_returns(eq, 100.0)
    assert table.loc[2024, "Jan"] == pytest.approx(0.10)
    assert table.loc[2024, "Feb"] == pytest.approx(-0.10)
    assert table.loc[2024, "Mar"] == pytest.approx(0.0)
    assert math.isnan(table.loc[2024, "Apr"])
    assert table.loc[2024, "Year"] == pytest.approx(-0.01)


def test_drawdown_periods_depth_length_and_recovery():
    eq = _daily([100, 120, 90, 60, 90, 120, 130, 117, 125])
    periods = drawdown_periods(eq, 100.0)
    first = periods.iloc[0]                    # 120 -> 60 -> back to 120
    assert first["depth"] == pytest.approx(0.5)
    assert first["peak"] == eq.index[1] and first["trough"] == eq.index[3]
    assert first["recovery"] == eq.index[5]
    assert (first["days_to_trough"], first["days_to_recovery"], first["length_days"]) == (
        2.0, 2.0, 4.0)
    second = periods.iloc[1]                   # 130 -> 117, not recovered by the end
    assert second["depth"] == pytest.approx(0.1) and pd.isna(second["recovery"])
    assert math.isnan(second["days_to_recovery"]) and second["length_days"] == 2.0
    assert drawdown_periods(_daily([100, 101, 102]), 100.0).empty


def test_exit_breakdown_counts_liquidations_like_any_reason():
    trades = pd.DataFrame({"exit_reason": ["stop_loss", "liquidation", "stop_loss", "signal"],
                           "pnl": [-10.0, -50.0, -5.0, 30.0], "fees": [1.0, 0.0, 1.0, 1.0],
                           "funding": [0.5, 0.2, 0.0, -0.1]})
    out = exit_breakdown(trades)
    assert out.index[0] == "stop_loss" and out.loc["stop_loss", "n_trades"] == 2
    assert out.loc["liquidation", "pnl"] == -50.0 and out.loc["liquidation", "share"] == 0.25
    assert out.loc["signal", "win_rate"] == 1.0 and out["n_trades"].sum() == 4


def test_costs_by_month_and_buy_and_hold():
    idx = pd.date_range("2024-01-30", periods=4, freq="1D", tz="UTC")   # Jan 30 .. Feb 2
    funding = pd.Series([1.0, 2.0, 3.0, -1.0], index=idx)
    trades = pd.DataFrame({"exit_time": [idx[1], idx[3]], "fees": [0.5, 0.25]})
    equity = pd.Series([100.0, 100.0, 200.0, 200.0], index=idx)
    costs = costs_by_month(funding, trades, equity)
    assert costs["funding"].tolist() == [3.0, 2.0] and costs["fees"].tolist() == [0.5, 0.25]
    assert costs["drag"].tolist() == pytest.approx([3.5 / 100, 2.25 / 200])
    hold = buy_and_hold([50.0, 75.0, 25.0], idx[:3], 1_000.0)
    assert hold.tolist() == [1_000.0, 1_500.0, 500.0]
