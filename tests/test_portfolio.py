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


def _market_with(instrument, close, low, high, funding=0):
    ts = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC")
    bars = pd.DataFrame({"open": close, "high": high, "low": low, "close": close,
                         "volume": 1.0}, index=ts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mark := last
        return bt.load_market(bars, funding=funding, instrument=instrument)


def _random_markets(instruments, n=200, seed=5):
    rng = np.random.default_rng(seed)
    markets, signals = {}, {}
    for (name, inst), base in zip(instruments.items(), (100.0, 30.0, 7.0), strict=False):
        close = base * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        funding = 0 if inst.kind != "perpetual" else None
        if funding is None:
            markets[name] = _market_with(inst, close, close * 0.99, close * 1.01, funding=0)
        else:
            markets[name] = _market_with(inst, close, close * 0.99, close * 1.01)
        signals[name] = rng.random(n) < 0.05
    return markets, signals


def _assert_sum_of_singles(markets, signals, exits=None, **kw):
    exits = exits or {k: ~v for k, v in signals.items()}
    port = bt.run(markets, entries=signals, exits=exits, **kw)
    singles = {}
    for k in markets:
        single_kw = {key: (v.get(k) if isinstance(v, dict) else v) for key, v in kw.items()}
        single_kw = {key: v for key, v in single_kw.items() if v is not None}
        singles[k] = bt.run(markets[k], entries=signals[k], exits=exits[k], **single_kw)
    capital = kw.get("initial_capital", 10_000.0)
    expected = capital + sum(s.equity - capital for s in singles.values())
    np.testing.assert_allclose(port.equity.to_numpy(), expected.to_numpy(), rtol=1e-12)
    for k, single in singles.items():
        mine = port.trades[port.trades.market == k].drop(columns="market")
        pd.testing.assert_frame_equal(mine.reset_index(drop=True),
                                      single.trades.reset_index(drop=True), rtol=1e-12)
    return port, singles


def test_each_market_pays_its_own_instruments_fees():
    # fees=None takes every instrument's own taker fee: 2 bp on A, 10 bp on B.
    cheap = bt.Instrument.simple(mmr=0.005, taker_fee=0.0002)
    dear = bt.Instrument.simple(mmr=0.005, taker_fee=0.001)
    markets, signals = _random_markets({"A": cheap, "B": dear})
    port, singles = _assert_sum_of_singles(markets, signals, leverage=3, size=2_000,
                                           size_type="notional")
    t = port.trades
    for name, rate in (("A", 0.0002), ("B", 0.001)):
        rows = t[t.market == name]
        entry_fees = rate * rows["size"] * rows["entry_price"]
        exit_fees = rate * rows["size"] * rows["exit_price"]
        np.testing.assert_allclose(rows["fees"], entry_fees + exit_fees, rtol=1e-12)


def test_a_future_and_a_perpetual_share_one_wallet():
    # A expires at the end of bar 99 (expiry 2024-01-05 04:00 = open of bar 100): settled at
    # the given price 120 with its taker fee, then trades nothing; B is a perpetual.
    expiry = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=100)
    future = bt.Instrument.simple(mmr=0.005, taker_fee=0.0005, kind="future", expiry=expiry)
    perp = bt.Instrument.simple(mmr=0.005, taker_fee=0.0005)
    markets, signals = _random_markets({"A": future, "B": perp})
    signals["A"][:] = False
    signals["A"][10] = True        # long from the bar-11 open, held to expiry
    exits = {"A": np.zeros(200, bool), "B": ~signals["B"]}
    port, singles = _assert_sum_of_singles(markets, signals, exits, leverage=2, size=3_000,
                                           size_type="notional",
                                           settlement_price={"A": 120.0})
    a = port.trades[port.trades.market == "A"]
    assert list(a.exit_reason) == ["expiry"]
    assert a.exit_price.iloc[0] == 120.0
    assert a.exit_time.iloc[0] == markets["A"].index[99]
    assert (port.position["A"].iloc[100:] == 0).all()


def test_one_wallet_holds_one_currency():
    usdt = _market_with(bt.Instrument.simple(), [100.0] * 4, [99.0] * 4, [101.0] * 4)
    btc = _market_with(bt.Instrument.simple(settlement="inverse"), [100.0] * 4, [99.0] * 4,
                       [101.0] * 4)
    with pytest.raises(ValueError, match=r"one wallet in one currency.*'A': 'USDT'.*'B': 'BTC'"):
        bt.run({"A": usdt, "B": btc}, entries={"A": np.ones(4, bool)})


def test_spot_margin_portfolios_are_apart_from_derivatives():
    spot = bt.Instrument.simple(kind="spot_margin", borrow_rate=0.0001, max_leverage=3.0)
    perp = bt.Instrument.simple()
    s1 = _market_with(spot, [100.0] * 4, [99.0] * 4, [101.0] * 4)
    p1 = _market_with(perp, [100.0] * 4, [99.0] * 4, [101.0] * 4)
    with pytest.raises(ValueError, match="separate account"):
        bt.run({"S": s1, "P": p1}, entries={"S": np.ones(4, bool)})


def _spot_crash(a_low: float):
    """A at 100 dips to `a_low` inside bar 3 and closes there; B stays at 10. Mark = last."""
    spot = bt.Instrument.simple(kind="spot_margin", borrow_rate=0.0, max_leverage=3.0,
                                liquidation_margin_level=1.1)
    closes = {"A": [100.0, 100.0, 100.0, a_low, a_low, a_low], "B": [10.0] * 6}
    ts = pd.date_range("2024-01-01", periods=6, freq="1h", tz="UTC")
    markets = {}
    for name, close in closes.items():
        opens = [close[0]] + close[:-1]
        bars = pd.DataFrame({"open": opens, "high": np.maximum(opens, close),
                             "low": np.minimum(opens, close), "close": close,
                             "volume": 1.0}, index=ts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            markets[name] = bt.load_market(bars, instrument=spot)
    start = {name: np.arange(6) == 0 for name in markets}
    return markets, start


@pytest.mark.parametrize("a_low, want_cross, want_isolated", [
    # cross: the account's margin level 1 + equity / liabilities falls to 1.1 only when
    # 10,000 + 150 (P - 100) <= 0.1 x 20,000, i.e. P <= 46.67; isolated A alone at
    # P = 100 + (0.1 x 10,000 - 5,000) / 150 = 73.33, losing 4,000 of its 5,000
    (60.0, 10_000 - 150 * 40, 10_000 - 4_000),    # cross survives the dip; isolated not
    (40.0, 10_000 - 150 * 60, 10_000 - 4_000),    # cross: both sold, 1,000 left
])
def test_cross_spot_margin_account_liquidates_on_its_margin_level(a_low, want_cross,
                                                                  want_isolated):
    markets, start = _spot_crash(a_low)
    kw = dict(entries=start, leverage=3, size=15_000, size_type="notional", fees=0.0)
    cross = bt.run(markets, margin_mode="cross", **kw)
    isolated = bt.run(markets, margin_mode="isolated", **kw)
    assert cross.stats["final_equity"] == pytest.approx(want_cross, rel=1e-12)
    assert isolated.stats["final_equity"] == pytest.approx(want_isolated, rel=1e-12)
    iso_a = isolated.trades[isolated.trades.market == "A"].iloc[0]
    assert iso_a["exit_reason"] == "liquidation"
    assert iso_a["exit_price"] == pytest.approx(100 + (1_000 - 5_000) / 150, rel=1e-12)
    reasons = dict(zip(cross.trades.market, cross.trades.exit_reason, strict=True))
    if a_low == 40.0:
        # the account's margin level at A's low: (1,000 + 20,000) / 20,000 = 1.05 <= 1.1
        assert reasons == {"A": "liquidation", "B": "liquidation"}
        assert cross.trades.exit_time.iloc[0] == markets["A"].index[3]
    else:
        assert reasons == {"A": "end", "B": "end"}


def test_isolated_spot_margin_portfolio_equals_the_sum_of_single_runs():
    spot = bt.Instrument.simple(kind="spot_margin", borrow_rate=0.0001, max_leverage=3.0,
                                taker_fee=0.001)
    markets, signals = _random_markets({"A": spot, "B": spot})
    port, singles = _assert_sum_of_singles(markets, signals, leverage=3, size=1_500,
                                           size_type="notional",
                                           borrow_rate={"A": 0.0001, "B": 0.0003})
    interest = {k: s.trades["interest"].sum() for k, s in singles.items()}
    assert interest["B"] > interest["A"] > 0
    assert port.stats["interest_paid"] == pytest.approx(sum(interest.values()), rel=1e-12)


def test_min_liq_distance_of_an_isolated_portfolio_is_its_closest_position():
    r = both_long(crash_markets(btc_low=70.0), "isolated")
    # Open at the close of bars 1 (both) and 2 (ETH only; BTC liquidated at 70 < 90.5).
    # BTC bar 1: liq 90.5, mark low 99.5 -> 9/99.5. ETH: liq 9.05, low 10 -> 0.095.
    assert r.stats["min_liq_distance"] == pytest.approx(9.0 / 99.5, rel=1e-12)


def test_min_liq_distance_of_a_cross_portfolio_moves_every_mark_at_once():
    r = both_long(crash_markets(btc_low=70.0), "cross")
    # Every mark d beyond its bar low; MM 0.005 x 50,000 = 250 (entry notional).
    # Bar 1: 10,000 + 250 (99.5 (1-d) - 100) + 2,500 (10 (1-d) - 10) - 250
    #      = 9,625 - 49,875 d          -> d = 0.19298...
    # Bar 2: 10,000 + 250 (70 (1-d) - 100) + 2,500 (10 (1-d) - 10) - 250
    #      = 2,250 - 42,500 d          -> d = 0.05294...
    assert r.stats["min_liq_distance"] == pytest.approx(2_250 / 42_500, rel=1e-12)


@pytest.mark.parametrize("side", ["long", "short"])
def test_cross_distance_of_one_market_is_the_single_market_distance(side):
    rng = np.random.default_rng(11)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 120)))
    m = _market_with(bt.Instrument.simple(mmr=0.01), close, close * 0.98, close * 1.02)
    sig = np.zeros(120, bool)
    sig[3] = True
    kw = dict(leverage=8, margin_mode="cross", size=0.5)
    key = "entries" if side == "long" else "short_entries"
    single = bt.run(m, **{key: sig}, **kw)
    port = bt.run({"M": m}, **{key: {"M": sig}}, **kw)
    assert single.stats["min_liq_distance"] > 0
    assert port.stats["min_liq_distance"] == pytest.approx(single.stats["min_liq_distance"],
                                                           rel=1e-9)
