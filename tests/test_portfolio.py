"""Portfolios: several markets, one wallet (SPEC §5). The seed article's warning — under
cross margin a loss on one position eats the collateral of another — worked by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import backtest as bt

INST = bt.Instrument.simple(mmr=0.005)


def market(close, low, high, start="2024-01-01"):
    ts = pd.date_range(start, periods=len(close), freq="1h", tz="UTC")
    bars = pd.DataFrame({"open": close, "high": high, "low": low, "close": close,
                         "volume": 1.0}, index=ts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mark := last
        return bt.load_market(bars, funding=0, instrument=INST)


def crash_markets(btc_low):
    """BTC 100 -> crash to ``btc_low`` inside bar 2 -> closes 80; ETH flat at 10."""
    btc = market([100.0, 100.0, 80.0, 80.0], [99.5, 99.5, btc_low, 79.5],
                 [100.5, 100.5, 100.0, 80.5])
    eth = market([10.0, 10.0, 10.0, 10.0], [10.0, 10.0, 10.0, 10.0], [10.5] * 4)
    return {"BTC": btc, "ETH": eth}


def both_long(markets, mode):
    entry = np.array([True, False, False, False])
    # 25,000 notional each at 10x: 2,500 margin each, filled at the bar-1 open (100 and 10):
    # 250 BTC and 2,500 ETH. No fees.
    return bt.run(markets, entries={"BTC": entry, "ETH": entry}, leverage=10,
                  size=25_000, size_type="notional", margin_mode=mode)


def test_isolated_loses_only_the_crashed_markets_margin():
    r = both_long(crash_markets(btc_low=60.0), "isolated")
    # BTC: liq 100 (1 - 0.1 + 0.005) = 90.5, closed at the bankruptcy price 90: -2,500.
    btc = r.trades[r.trades.market == "BTC"].iloc[0]
    assert btc.exit_reason == "liquidation" and btc.exit_price == pytest.approx(90.0)
    assert btc.pnl == pytest.approx(-2_500.0)
    # ETH is untouched and closed at the end at 10.
    eth = r.trades[r.trades.market == "ETH"].iloc[0]
    assert eth.exit_reason == "end" and eth.pnl == pytest.approx(0.0)
    assert r.stats["final_equity"] == pytest.approx(7_500.0)
    assert r.pnl_by_market.loc["BTC", "pnl"] == pytest.approx(-2_500.0)
    assert r.pnl_by_market.loc["ETH", "pnl"] == pytest.approx(0.0)


def test_cross_loses_both_positions_and_all_collateral():
    r = both_long(crash_markets(btc_low=60.0), "cross")
    # At the BTC low: wallet 10,000 + 250 x (60 - 100) + 2,500 x (10 - 10) = 0
    # <= MM 0.005 x (25,000 + 25,000) = 250 (simple rules: entry notional): the whole
    # portfolio is liquidated.
    trades = r.trades.set_index("market")
    assert (trades.exit_reason == "liquidation").all() and len(trades) == 2
    assert trades.loc["BTC", "pnl"] == pytest.approx(-10_000.0)
    assert trades.loc["ETH", "pnl"] == pytest.approx(0.0)
    assert r.stats["final_equity"] == pytest.approx(0.0, abs=1e-9)
    assert r.stats["ruined"]
    # The ETH position, safe on its own, was closed by BTC's loss.
    assert r.position["ETH"].iloc[2] == 0.0


def test_cross_survives_a_move_that_liquidates_the_isolated_twin():
    markets = crash_markets(btc_low=70.0)
    iso = both_long(markets, "isolated")
    cross = both_long(markets, "cross")
    # Isolated: BTC liquidated (70 < 90.5), -2,500. Cross: 10,000 - 7,500 = 2,500 of equity
    # > MM 0.005 x (25,000 + 25,000) = 250 at the low; at the end BTC closes at 80.
    assert iso.stats["n_liquidations"] == 1
    assert iso.stats["final_equity"] == pytest.approx(7_500.0)
    assert cross.stats["n_liquidations"] == 0
    assert cross.stats["final_equity"] == pytest.approx(10_000 + 250 * (80 - 100))


def test_cross_bankruptcy_shares_the_residual_loss_by_maintenance():
    # `simple` rules: MM = mmr x entry notional = 0.005 x 25,000 = 125 per market, 250 in all.
    # BTC low 60.8: equity 10,000 + 250 x (60.8 - 100) = 200 <= 250 -> liquidated; the 200
    # above zero is lost to the insurance fund in shares of MM: 100 on BTC, 100 on ETH.
    r = both_long(crash_markets(btc_low=60.8), "cross")
    t = r.trades.set_index("market")
    assert t.loc["BTC", "gross_pnl"] == pytest.approx(250 * (60.8 - 100) - 100)
    assert t.loc["ETH", "gross_pnl"] == pytest.approx(-100.0)
    # The exit prices carry those losses: gross = q (exit - entry).
    assert t.loc["ETH", "exit_price"] == pytest.approx(10 - 100 / 2_500)
    assert t.loc["BTC", "exit_price"] == pytest.approx(100 + t.loc["BTC", "gross_pnl"] / 250)
    assert r.stats["final_equity"] == pytest.approx(0.0, abs=1e-9)


def test_isolated_portfolio_equals_the_sum_of_single_runs():
    rng = np.random.default_rng(5)
    n = 200
    markets, signals = {}, {}
    for name, base in (("A", 100.0), ("B", 30.0)):
        close = base * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        markets[name] = market(close, close * 0.99, close * 1.01)
        signals[name] = rng.random(n) < 0.05
    kw = dict(leverage=3, size=2_000, size_type="notional", fees=0.0005, stop_loss=0.03)
    port = bt.run(markets, entries=signals, exits={k: ~v for k, v in signals.items()}, **kw)
    singles = [bt.run(markets[k], entries=signals[k], exits=~signals[k], **kw) for k in markets]
    expected = 10_000 + sum(s.equity - 10_000 for s in singles)
    np.testing.assert_allclose(port.equity.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert len(port.trades) == sum(len(s.trades) for s in singles)


def test_markets_on_different_indexes_are_refused_with_the_span():
    a = market([100.0] * 4, [99.0] * 4, [101.0] * 4)
    b = market([10.0] * 4, [9.0] * 4, [11.0] * 4, start="2024-01-01 01:00")
    with pytest.raises(ValueError, match="not on one bar index.*start=/end="):
        bt.run({"A": a, "B": b}, entries={"A": np.ones(4, bool)})


def test_portfolio_signals_must_be_dicts_of_known_markets():
    markets = crash_markets(70.0)
    with pytest.raises(TypeError, match="dict keyed by market name"):
        bt.run(markets, entries=np.ones(4, bool))
    with pytest.raises(ValueError, match="unknown market"):
        bt.run(markets, entries={"SOL": np.ones(4, bool)})
