"""Dated futures (expiry settlement) and spot margin (hourly interest, margin-level
liquidation): hand-worked cases (SPEC §7) and the perpetual / future / spot comparison."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backtest as bt

DATA = Path(__file__).parents[1] / "data"


def frame(close, start="2024-01-01", freq="1h", low=None, high=None):
    close = np.asarray(close, dtype=float)
    ts = pd.date_range(start, periods=len(close), freq=freq, tz="UTC")
    low = close - 0.5 if low is None else np.asarray(low, dtype=float)
    high = close + 0.5 if high is None else np.asarray(high, dtype=float)
    return pd.DataFrame({"open": close, "high": high, "low": low, "close": close,
                         "volume": 1.0}, index=ts)


def signal(n, *bars):
    s = np.zeros(n, dtype=bool)
    s[list(bars)] = True
    return s


def load(bars, instrument, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mark := last
        return bt.load_market(bars, instrument=instrument, **kw)


# --- dated futures ---------------------------------------------------------------------

FUTURE = bt.Instrument.simple(mmr=0.005, taker_fee=0.001, kind="future",
                              expiry=pd.Timestamp("2024-01-01 04:00", tz="UTC"))


def test_future_settles_at_expiry_bar_close_with_taker_fee():
    # Bars 00:00..05:00; the 03:00 bar is the last one ending at or before the 04:00 expiry.
    bars = frame([100, 100, 104, 110, 90, 80])
    m = load(bars, FUTURE)
    n = m.n_bars
    r = bt.run(m, entries=signal(n, 0), short_entries=signal(n, 4), leverage=2, size=0.5,
               fees=0.0)
    t = r.trades.iloc[0]
    assert t.exit_reason == "expiry"
    assert t.exit_time == pd.Timestamp("2024-01-01 03:00", tz="UTC")
    # Long 2x with 5,000 margin at 100 -> q = 100; settled at the 03:00 close 110.
    assert t["size"] == pytest.approx(100.0)
    assert t.exit_price == 110.0
    assert t.gross_pnl == pytest.approx(1_000.0)
    assert t.fees == 0.0 and t.funding == 0.0
    # After expiry nothing trades: the short signal on bar 4 is counted, equity stays put.
    assert (r.events["kind"] == "signal_after_expiry").sum() == 1
    assert len(r.trades) == 1
    assert (r.equity.iloc[3:] == 11_000.0).all()


def test_future_settles_at_the_index_close_or_a_given_price():
    bars = frame([100, 100, 104, 110, 90, 80])
    index = frame([100, 100, 103, 108, 91, 81])[["open", "high", "low", "close"]]
    m = load(bars, FUTURE, index=index)
    n = m.n_bars
    by_index = bt.run(m, entries=signal(n, 0), leverage=2, size=0.5, fees=0.0)
    assert by_index.trades.iloc[0].exit_price == 108.0
    given = bt.run(m, entries=signal(n, 0), leverage=2, size=0.5, fees=0.0,
                   settlement_price=109.5)
    assert given.trades.iloc[0].exit_price == 109.5
    # The taker fee applies at settlement: 0.1 % of 100 x 109.5.
    with_fee = bt.run(m, entries=signal(n, 0), leverage=2, size=0.5, settlement_price=109.5)
    t = with_fee.trades.iloc[0]
    assert t.fees == pytest.approx(0.001 * t["size"] * 100 + 0.001 * t["size"] * 109.5)


def test_future_that_expires_after_the_data_closes_at_the_end():
    late = FUTURE.replace(expiry=pd.Timestamp("2025-01-01", tz="UTC"))
    m = load(frame([100, 101, 102, 103]), late)
    r = bt.run(m, entries=signal(4, 0), leverage=2)
    assert r.trades.iloc[0].exit_reason == "end"


def test_settlement_price_is_refused_for_a_perpetual():
    m = load(frame([100, 101, 102, 103]), bt.Instrument.simple(), funding=0)
    with pytest.raises(ValueError, match="settlement_price applies to dated futures"):
        bt.run(m, entries=signal(4, 0), settlement_price=100.0)


# --- spot margin -----------------------------------------------------------------------

SPOT = bt.Instrument.simple(mmr=0.0, kind="spot_margin", borrow_rate=0.0002 / 24,
                            liquidation_margin_level=1.1, max_leverage=3)


def test_interest_per_started_clock_hour_55_minute_borrow_pays_two_hours():
    # One-minute bars 13:00..14:29. Entry signal at 13:19 fills at the 13:20 open; exit signal
    # at 14:14 fills at the 14:15 open: hours 13 and 14 are started -> 2 hours of interest.
    n = 90
    bars = frame(np.full(n, 100.0), start="2024-01-01 13:00", freq="1min")
    m = load(bars, SPOT)
    r = bt.run(m, entries=signal(n, 19), exits=signal(n, 74), leverage=3, size=0.5)
    t = r.trades.iloc[0]
    # Budget 5,000 at 3x -> notional 15,000, own margin 5,000, borrowed 10,000 USDT.
    borrowed = 10_000.0
    assert t.entry_time == pd.Timestamp("2024-01-01 13:20", tz="UTC")
    assert t.exit_time == pd.Timestamp("2024-01-01 14:15", tz="UTC")
    assert t.interest == pytest.approx(borrowed * 0.0002 / 24 * 2, rel=1e-12)
    assert t.pnl == pytest.approx(-t.interest, rel=1e-12)
    assert r.stats["interest_paid"] == pytest.approx(t.interest, rel=1e-12)
    assert r.stats["funding_paid"] == 0.0
    # Same as the calculator and as the exchange case (1,000 borrowed -> 0.01666667 USDT).
    assert t.interest == pytest.approx(
        bt.calc.borrow_interest(borrowed, 0.0002 / 24, "2024-01-01 13:20", "2024-01-01 14:15"))


def test_spot_margin_long_liquidated_at_the_margin_level_price():
    # 3x long, 10,000 own funds at 100: holds 300 BTC, owes 20,000 USDT. Margin level
    # 300 * P / 20,000 reaches 1.1 at P = 73.333...; the position is sold there and the
    # rest (22,000 - 20,000 = 2,000) returned: loss 8,000.
    bars = frame([100, 100, 90, 80, 75, 76], low=[99.5, 99.5, 89.5, 79.5, 72.0, 75.5])
    m = load(bars, SPOT.replace(borrow_rate=0.0))
    r = bt.run(m, entries=signal(6, 0), leverage=3, size=1.0)
    t = r.trades.iloc[0]
    assert t.exit_reason == "liquidation"
    assert t.exit_price == pytest.approx(1.1 * 20_000 / 300, rel=1e-12)
    assert t.gross_pnl == pytest.approx(-8_000.0, rel=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(2_000.0, rel=1e-9)
    assert r.liquidation_price.iloc[1] == pytest.approx(73.3333333333, rel=1e-9)


def test_spot_margin_short_liquidation_price():
    # 3x short at 100: borrows 300 BTC, sells for 30,000, holds 40,000 USDT with its own
    # 10,000. Margin level 40,000 / (300 P) reaches 1.1 at P = 121.21...
    m = load(frame([100, 100, 101, 102]), SPOT.replace(borrow_rate=0.0))
    r = bt.run(m, short_entries=signal(4, 0), leverage=3, size=1.0)
    assert r.liquidation_price.iloc[1] == pytest.approx(40_000 / 330, rel=1e-9)


def test_spot_margin_leverage_above_the_maximum_is_refused():
    m = load(frame([100, 101, 102, 103]), SPOT)
    with pytest.raises(ValueError, match="maximum of 3x"):
        bt.run(m, entries=signal(4, 0), leverage=5)


def test_interest_drags_equity_and_moves_the_liquidation_price():
    n = 48
    m = load(frame(np.full(n, 100.0)), SPOT.replace(borrow_rate=0.001))
    r = bt.run(m, entries=signal(n, 0), leverage=3, size=1.0)
    # Equity falls by borrowed * rate every hour held; the long's liquidation price rises.
    assert r.equity.iloc[5] < r.equity.iloc[2] < 10_000
    assert r.liquidation_price.iloc[5] > r.liquidation_price.iloc[2]
    total = r.trades.iloc[0].interest
    assert r.stats["final_equity"] == pytest.approx(10_000 - total, rel=1e-12)


# --- the seed's comparison table: funding vs no funding vs interest ---------------------

def test_same_strategy_as_perpetual_future_and_spot_margin():
    kw = dict(start="2024-01-01", end="2024-04-01")
    perp = bt.load_market(DATA / "binance_btcusdt_perp_1h.parquet",
                          mark=DATA / "binance_btcusdt_perp_1h_mark.parquet",
                          funding=DATA / "binance_btcusdt_perp_funding.parquet",
                          instrument="binance:BTCUSDT", **kw)
    future_inst = bt.Instrument.simple(mmr=0.004, taker_fee=0.0005, kind="future",
                                       expiry=pd.Timestamp("2024-03-29 08:00", tz="UTC"))
    spot_inst = bt.get_instrument("binance-margin:BTCUSDT")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        future = bt.load_market(DATA / "binance_btcusdt_perp_1h.parquet",
                                mark=DATA / "binance_btcusdt_perp_1h_mark.parquet",
                                instrument=future_inst, **kw)
        spot = bt.load_market(DATA / "binance_btcusdt_perp_1h.parquet",
                              instrument=spot_inst, **kw)
    n = perp.n_bars
    entries = signal(n, 0)
    rows = {}
    for name, m in (("perpetual", perp), ("future", future), ("spot_margin", spot)):
        r = bt.run(m, entries=entries, leverage=3, size=0.5)
        rows[name] = r.stats[["total_return", "funding_paid", "interest_paid", "fees_paid"]]
    table = pd.DataFrame(rows).T
    assert table.loc["perpetual", "funding_paid"] > 0      # longs paid in the Q1 2024 rally
    assert table.loc["perpetual", "interest_paid"] == 0
    assert table.loc["future", "funding_paid"] == 0
    assert table.loc["future", "interest_paid"] == 0
    assert table.loc["spot_margin", "funding_paid"] == 0
    assert table.loc["spot_margin", "interest_paid"] > 0


def test_quarterly_presets_settle_at_their_expiry_on_real_bars():
    # binance:BTCUSDT_241227 delivers 2024-12-27 08:00 UTC: the 07:00 bar is the last that
    # ends at or before it; with no index bars its last close is the settlement price.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = bt.load_market(DATA / "binance_btcusdt_perp_1h.parquet",
                           instrument="binance:BTCUSDT_241227",
                           start="2024-12-20", end="2024-12-31")
    n = m.n_bars
    r = bt.run(m, entries=signal(n, 0), leverage=2, size=0.5)
    t = r.trades.iloc[0]
    expiry_bar = pd.Timestamp("2024-12-27 07:00", tz="UTC")
    assert t.exit_reason == "expiry" and t.exit_time == expiry_bar
    assert t.exit_price == m.bars.loc[expiry_bar, "close"]
    assert bt.get_instrument("bitmex:XBTZ24").expiry == pd.Timestamp("2024-12-27 12:00",
                                                                      tz="UTC")
