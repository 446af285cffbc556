"""run(): parameter and signal validation, real-data mark-vs-last behaviour, and the Result."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backtest as bt
from backtest.results.metrics import stats_from_result

REPO_DATA = Path(__file__).parents[1] / "data"

BINANCE = {
    "bars": REPO_DATA / "binance_btcusdt_perp_1h.parquet",
    "mark": REPO_DATA / "binance_btcusdt_perp_1h_mark.parquet",
    "funding": REPO_DATA / "binance_btcusdt_perp_funding.parquet",
}


def tiny_market(n: int = 8, mmr: float = 0.005, **inst) -> bt.Market:
    ts = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    close = 100.0 + np.arange(n)
    bars = pd.DataFrame({"open": close - 0.5, "high": close + 1, "low": close - 1.5,
                         "close": close, "volume": 1.0}, index=ts)
    return bt.load_market(bars, funding=0, instrument=bt.Instrument.simple(mmr=mmr, **inst))


@pytest.fixture(scope="module")
def market() -> bt.Market:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mark := last warning
        return tiny_market()


def entry_on(n: int, *bars: int) -> np.ndarray:
    sig = np.zeros(n, dtype=bool)
    sig[list(bars)] = True
    return sig


# --- parameters ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, words", [
    ({"leverage": 0}, ValueError, ["leverage", "> 0"]),
    ({"leverage": -3}, ValueError, ["leverage", "> 0"]),
    ({"leverage": 500}, ValueError, ["leverage", "maximum", "Choose leverage"]),
    ({"fees": 5}, ValueError, ["fees", "basis points"]),
    ({"slippage": 2.0}, ValueError, ["slippage", "basis points"]),
    ({"stop_loss": 5}, ValueError, ["stop_loss", "fraction", "divide by 100"]),
    ({"size_type": "risk", "size": 0.01}, ValueError, ["stop_loss", "risk"]),
    ({"size": 2.0}, ValueError, ["size", "fraction", "notional"]),
    ({"margin_mode": "isolate"}, ValueError, ["margin_mode", "'isolated'"]),
    ({"path": "optimistic"}, ValueError, ["path", "pessimistic"]),
    ({"levarage": 3}, TypeError, ["unknown", "leverage"]),
    ({"leverage": "10"}, TypeError, ["leverage", "number"]),
    ({"limit_ttl": 0}, ValueError, ["limit_ttl", ">= 1"]),
    ({"initial_capital": 0}, ValueError, ["initial_capital", "> 0"]),
])
def test_bad_parameters_are_refused_with_the_culprit_and_a_fix(market, kwargs, exc, words):
    with pytest.raises(exc) as info:
        bt.run(market, entries=entry_on(market.n_bars, 1), **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_stop_beyond_liquidation_warns(market):
    with pytest.warns(UserWarning, match="beyond the liquidation distance"):
        bt.run(market, entries=entry_on(market.n_bars, 1), leverage=20, stop_loss=0.2)


@pytest.mark.parametrize("signal, words", [
    (np.zeros(3, dtype=bool), ["entries", "one value per bar"]),
    (np.array([1.0, np.nan] + [0.0] * 6), ["entries", "fillna(False)"]),
    (np.array([0, 2, 0, 0, 0, 0, 0, 0]), ["entries", "boolean"]),
])
def test_bad_signals_are_refused(market, signal, words):
    with pytest.raises(ValueError) as info:
        bt.run(market, entries=signal)
    for word in words:
        assert word in str(info.value)


def test_signal_series_on_another_index_is_refused(market):
    other = pd.Series(False, index=market.index + pd.Timedelta("1h"))
    with pytest.raises(ValueError, match="reindex"):
        bt.run(market, entries=other)


def test_integer_and_series_signals_are_accepted(market):
    as_int = bt.run(market, entries=entry_on(market.n_bars, 1).astype(int))
    as_series = bt.run(market, entries=pd.Series(entry_on(market.n_bars, 1), index=market.index))
    pd.testing.assert_series_equal(as_int.equity, as_series.equity)
    assert as_int.stats["n_trades"] == 1


# --- results ------------------------------------------------------------------------------

def test_no_signals_keep_equity_flat(market):
    r = bt.run(market)
    assert (r.equity == 10_000.0).all()
    assert r.trades.empty
    assert r.stats["n_trades"] == 0 and r.stats["exposure"] == 0


def test_hand_computed_long_with_fees(market):
    # Entry signal on bar 1 fills at open[2] = 101.5 with 1 % taker fee, 2x, size 0.5:
    # budget 5,000 = margin + fee → notional = 5000 / (1/2 + 0.01) = 9,803.92...
    r = bt.run(market, entries=entry_on(market.n_bars, 1), leverage=2, size=0.5, fees=0.01)
    notional = 5_000 / (0.5 + 0.01)
    q = notional / 101.5
    trade = r.trades.iloc[0]
    assert trade.entry_price == 101.5 and trade.exit_reason == "end"
    assert trade["size"] == pytest.approx(q, rel=1e-12)
    assert trade.margin == pytest.approx(notional / 2, rel=1e-12)
    # Closed at the last close 107 (reason end) with the taker fee.
    gross = q * (107 - 101.5)
    fees = 0.01 * notional + 0.01 * q * 107
    assert trade.gross_pnl == pytest.approx(gross, rel=1e-12)
    assert trade.fees == pytest.approx(fees, rel=1e-12)
    assert r.stats["final_equity"] == pytest.approx(10_000 + gross - fees, rel=1e-12)
    assert r.stats["fees_paid"] == pytest.approx(fees, rel=1e-12)


def test_stats_recomputed_from_series_match(market):
    r = bt.run(market, entries=entry_on(market.n_bars, 1, 4), exits=entry_on(market.n_bars, 3),
               leverage=3, fees=0.001)
    again = stats_from_result(r)
    for key, value in r.stats.drop(["version", "fingerprint"]).items():
        if isinstance(value, float) and np.isnan(value):
            assert np.isnan(again[key]), key
        else:
            assert again[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_result_views(market):
    r = bt.run(market, entries=entry_on(market.n_bars, 1), leverage=2)
    assert list(r.trades.columns) == ["entry_time", "exit_time", "side", "size", "leverage",
                                      "entry_price", "exit_price", "margin", "gross_pnl",
                                      "fees", "funding", "interest", "pnl", "exit_reason"]
    assert r.equity.index.equals(market.index)
    assert r.liquidation_price.isna().iloc[0] and r.liquidation_price.notna().iloc[3]
    assert "BTC" not in repr(r) and "2x" in repr(r)
    assert "<table" in r._repr_html_()
    assert r.mark_source == "last"


# --- real data: a last-price wick the mark did not follow --------------------------------

@pytest.fixture(scope="module")
def wick_window():
    """Binance BTCUSDT 2021-07-26 01:00: last high 48,168.6, mark high 39,744.8."""
    kw = dict(funding=BINANCE["funding"], instrument="binance:BTCUSDT",
              start="2021-07-25 20:00", end="2021-07-26 06:00")
    with_mark = bt.load_market(BINANCE["bars"], mark=BINANCE["mark"], **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        last_only = bt.load_market(BINANCE["bars"], **kw)
    return with_mark, last_only


def test_last_price_wick_liquidates_only_without_mark(wick_window):
    with_mark, last_only = wick_window
    shorts = entry_on(with_mark.n_bars, 2)          # fills at the 23:00 open, ~34,617
    runs = {name: bt.run(m, short_entries=shorts, leverage=5, size=0.5)
            for name, m in (("mark", with_mark), ("last", last_only))}
    liq = runs["mark"].liquidation_price.loc["2021-07-26 00:00"]
    wick_bar = "2021-07-26 01:00"
    assert with_mark.bars.loc[wick_bar, "high"] > liq > with_mark.mark.loc[wick_bar, "high"]
    assert runs["mark"].stats["n_liquidations"] == 0
    assert runs["last"].stats["n_liquidations"] == 1
    assert runs["last"].trades.iloc[0].exit_time == pd.Timestamp(wick_bar, tz="UTC")
    assert runs["last"].mark_source == "last" and runs["mark"].mark_source == "mark"


def test_stop_trigger_last_vs_mark_on_the_wick(wick_window):
    with_mark, _ = wick_window
    shorts = entry_on(with_mark.n_bars, 2)
    by_last = bt.run(with_mark, short_entries=shorts, leverage=2, size=0.5, stop_loss=0.2,
                     stop_trigger="last")
    by_mark = bt.run(with_mark, short_entries=shorts, leverage=2, size=0.5, stop_loss=0.2,
                     stop_trigger="mark")
    assert by_last.trades.iloc[0].exit_reason == "stop_loss"
    assert by_last.trades.iloc[0].exit_time == pd.Timestamp("2021-07-26 01:00", tz="UTC")
    assert by_mark.trades.iloc[0].exit_reason == "end"
