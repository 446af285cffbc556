"""Rolling dated futures (backtest/rolls.py): hand-worked legs, the reopen rules, errors, and
the continuous accounting identity on the shipped Binance sample turned into two quarterlies.

Sizing (docs/semantics.md): ``margin`` budget ``B = size * wallet``, notional
``N = B / (1/L + f)``; linear ``q = N / P``, inverse ``q = N * P / cs``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backtest as bt
from backtest import Roll, RollResult

DATA = Path(__file__).parents[1] / "data"
F = 0.001  # taker fee of the test contracts


def frame(close, start="2024-01-01 00:00", low=None, high=None, open_=None):
    close = np.asarray(close, dtype=float)
    open_ = close if open_ is None else np.asarray(open_, dtype=float)
    ts = pd.date_range(start, periods=len(close), freq="1h", tz="UTC")
    low = np.minimum(open_, close) - 0.5 if low is None else np.asarray(low, dtype=float)
    high = np.maximum(open_, close) + 0.5 if high is None else np.asarray(high, dtype=float)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": 1.0}, index=ts)


def future(symbol, expiry, settlement="linear", fee=F, mmr=0.005):
    return bt.Instrument.simple(kind="future", expiry=pd.Timestamp(expiry, tz="UTC"),
                                taker_fee=fee, settlement=settlement, mmr=mmr
                                ).replace(symbol=symbol)


def load(bars, instrument, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mark := last
        return bt.load_market(bars, instrument=instrument, **kw)


def signal(n, *bars):
    s = np.zeros(n, dtype=bool)
    s[list(bars)] = True
    return s


# Leg A: bars 00:00-03:00, expires 04:00 -> expiry bar 03:00 (the roll bar).
# Leg B: bars 01:00-07:00, expires 08:00 -> expiry bar 07:00; active 04:00-07:00.
A = future("A", "2024-01-01 04:00")
B = future("B", "2024-01-01 08:00")
A_CLOSE = [100, 100, 104, 110]
B_CLOSE = [112, 113, 114, 115, 116, 117, 118]   # 01:00 ... 07:00


def two_legs(b_close=B_CLOSE, b_low=None, a=A, b=B, **kw):
    return bt.roll([load(frame(A_CLOSE), a, **kw),
                    load(frame(b_close, start="2024-01-01 01:00", low=b_low), b)])


def linear_entry(wallet, price, lev=2.0, size=0.5, fee=F):
    """(q, margin, entry fee) of a ``margin``-sized linear entry."""
    notional = size * wallet / (1 / lev + fee)
    return notional / price, notional / lev, fee * notional


# --- the roll itself ---------------------------------------------------------------------

def test_roll_index_and_active_prices():
    rl = two_legs()
    assert isinstance(rl, Roll) and rl.n_bars == 8
    assert list(rl.index) == list(pd.date_range("2024-01-01", periods=8, freq="1h", tz="UTC"))
    # A is active through its expiry bar 03:00, then B (its 04:00 close is 115).
    assert rl.close.tolist() == [100, 100, 104, 110, 115, 116, 117, 118]
    assert rl.active.tolist() == ["A"] * 4 + ["B"] * 4
    assert rl.spans["n_bars"].tolist() == [4, 4]
    assert rl.spans["settles"].tolist() == [True, True]
    # B's simulated span starts on the roll bar 03:00 (B's close there: 114).
    assert rl.legs[1].market.index[0] == pd.Timestamp("2024-01-01 03:00", tz="UTC")
    assert rl.legs[1].market.close[0] == 114.0


def test_two_linear_legs_settle_reopen_and_resize():
    rl = two_legs()
    r = bt.run(rl, entries=signal(rl.n_bars, 0), leverage=2, size=0.5)
    assert isinstance(r, RollResult)
    t = r.trades
    assert t["leg"].tolist() == ["A", "B"]
    assert t["exit_reason"].tolist() == ["expiry", "expiry"]
    # Leg A: long at the 01:00 open 100 with B = 5,000: N = 5,000 / 0.501 = 9,980.04,
    # q = 99.8004; settled at A's 03:00 close 110 with the taker fee.
    qa, _, fee_a = linear_entry(10_000, 100)
    assert t["size"][0] == pytest.approx(qa, rel=1e-12)
    assert t["exit_price"][0] == 110.0
    assert t["exit_time"][0] == pd.Timestamp("2024-01-01 03:00", tz="UTC")
    pnl_a = qa * (110 - 100) - fee_a - F * qa * 110          # 998.00 - 9.98 - 10.98 = 977.05
    assert t["pnl"][0] == pytest.approx(pnl_a, rel=1e-12)
    wallet_b = 10_000 + pnl_a                                # 10,977.05
    # Leg B: the reopen fills at B's first active open (04:00) 115, sized on the new wallet:
    # N = 5,488.52 / 0.501 = 10,955.14, q = 95.2620 (not A's 99.80).
    qb, _, fee_b = linear_entry(wallet_b, 115)
    assert t["entry_time"][1] == pd.Timestamp("2024-01-01 04:00", tz="UTC")
    assert t["entry_price"][1] == 115.0
    assert t["size"][1] == pytest.approx(qb, rel=1e-12)
    pnl_b = qb * (118 - 115) - fee_b - F * qb * 118         # 285.79 - 10.96 - 11.24 = 263.59
    assert t["pnl"][1] == pytest.approx(pnl_b, rel=1e-12)
    assert t["fees"][1] == pytest.approx(fee_b + F * qb * 118, rel=1e-12)
    # Continuous accounting: flat on the roll bar with the wallet carried over.
    assert r.position.iloc[3] == 0.0 and r.equity.iloc[3] == pytest.approx(wallet_b)
    assert r.wallet.iloc[4] == pytest.approx(wallet_b - fee_b, rel=1e-12)
    assert r.equity.iloc[5] == pytest.approx(wallet_b - fee_b + qb * (116 - 115), rel=1e-12)
    final = 10_000 + pnl_a + pnl_b                           # 11,240.64
    assert r.stats["final_equity"] == pytest.approx(final, rel=1e-12)
    assert r.stats["final_equity"] == pytest.approx(10_000 + t["pnl"].sum(), rel=1e-12)
    assert r.stats["n_trades"] == 2 and r.stats["exposure"] == pytest.approx(5 / 8)
    assert r.stats["fees_paid"] == pytest.approx(t["fees"].sum(), rel=1e-12)
    assert r.legs[1].params["initial_capital"] == pytest.approx(wallet_b, rel=1e-15)
    assert set(r.stats.index) == set(r.legs[0].stats.index)
    assert r.pnl_by_leg["pnl"].tolist() == pytest.approx([pnl_a, pnl_b], rel=1e-12)
    assert "RollResult A -> B" in repr(r)


def test_qty_sizing_reopens_the_same_quantity():
    rl = two_legs()
    r = bt.run(rl, entries=signal(rl.n_bars, 0), leverage=2, size=10.0, size_type="qty")
    assert r.trades["size"].tolist() == [10.0, 10.0]
    # 10 * (110 - 100) + 10 * (118 - 115), minus the four taker fees.
    fees = F * 10 * (100 + 110 + 115 + 118)
    assert r.stats["final_equity"] == pytest.approx(10_000 + 100 + 30 - fees, rel=1e-12)


def test_user_exit_on_the_roll_bar_cancels_the_reopen():
    rl = two_legs()
    n = rl.n_bars
    r = bt.run(rl, entries=signal(n, 0), exits=signal(n, 3), leverage=2, size=0.5)
    assert r.trades["exit_reason"].tolist() == ["expiry"]
    qa, _, fee_a = linear_entry(10_000, 100)
    settled = 10_000 + qa * 10 - fee_a - F * qa * 110
    assert r.equity.iloc[3:].to_numpy() == pytest.approx([settled] * 5, rel=1e-12)
    assert (r.position.iloc[3:] == 0).all()
    # An exit of the other side does not cancel it.
    r2 = bt.run(rl, entries=signal(n, 0), short_exits=signal(n, 3), leverage=2, size=0.5)
    assert r2.trades["leg"].tolist() == ["A", "B"]


def test_opposite_entry_on_the_roll_bar_reopens_the_other_side():
    rl = two_legs()
    n = rl.n_bars
    r = bt.run(rl, entries=signal(n, 0), short_entries=signal(n, 3), leverage=2, size=0.5)
    t = r.trades
    assert t["side"].tolist() == ["long", "short"]
    assert t["entry_price"][1] == 115.0 and t["exit_reason"][1] == "expiry"
    wallet_b = 10_000 + t["pnl"][0]
    qb, _, fee_b = linear_entry(wallet_b, 115)
    assert t["pnl"][1] == pytest.approx(-qb * 3 - fee_b - F * qb * 118, rel=1e-12)


def test_entry_on_the_roll_bar_while_flat_opens_the_next_contract():
    rl = two_legs()
    r = bt.run(rl, entries=signal(rl.n_bars, 3), leverage=2, size=0.5)
    t = r.trades
    # In plain run() on A this signal would be dropped (last bar); here it acts on B.
    assert t["leg"].tolist() == ["B"] and t["entry_price"][0] == 115.0
    assert (r.events["kind"] != "signal_dropped_last_bar").all()


def test_fill_close_reopens_at_the_next_contracts_close_on_the_roll_bar():
    rl = two_legs()
    r = bt.run(rl, entries=signal(rl.n_bars, 0), leverage=2, size=0.5, fill="close")
    t = r.trades
    # Entry at A's 00:00 close 100; settled at 110; reopened at B's 03:00 close 114.
    assert t["entry_price"].tolist() == [100.0, 114.0]
    roll_bar = pd.Timestamp("2024-01-01 03:00", tz="UTC")
    assert t["exit_time"][0] == roll_bar and t["entry_time"][1] == roll_bar
    wallet_b = 10_000 + t["pnl"][0]
    qb, _, fee_b = linear_entry(wallet_b, 114)
    # The roll bar shows the account after the reopen (mark = B's close 114: no uPnL).
    assert r.position.iloc[3] == pytest.approx(qb, rel=1e-12)
    assert r.equity.iloc[3] == pytest.approx(wallet_b - fee_b, rel=1e-12)
    assert r.stats["final_equity"] == pytest.approx(10_000 + t["pnl"].sum(), rel=1e-12)


def test_stop_loss_in_the_second_leg_is_set_from_the_reopen_price():
    # Reopened long at 115 with a 5 % stop: level 109.25 (not 95 from A's entry at 100).
    b_low = [111.5, 112.5, 113.5, 114.5, 109.0, 116.5, 117.5]   # 05:00 dips to 109
    rl = two_legs(b_low=b_low)
    r = bt.run(rl, entries=signal(rl.n_bars, 0), leverage=2, size=0.5, stop_loss=0.05)
    t = r.trades
    assert t["exit_reason"].tolist() == ["expiry", "stop_loss"]
    assert t["exit_price"][1] == pytest.approx(115 * 0.95, rel=1e-12)
    assert r.stats["n_stops"] == 1
    assert r.position.iloc[-1] == 0.0
    assert r.stats["final_equity"] == pytest.approx(10_000 + t["pnl"].sum(), rel=1e-12)


def test_liquidation_in_a_leg_loses_its_margin_and_ruin_stops_the_roll():
    # 10x long reopened at 115: liq 115 * (1 - 0.1 + 0.005) = 104.075, bankrupt 103.5.
    b_low = [111.5, 112.5, 113.5, 114.5, 100.0, 116.5, 117.5]
    rl = two_legs(b_low=b_low)
    r = bt.run(rl, entries=signal(rl.n_bars, 0), leverage=10, size=0.5)
    t = r.trades
    assert t["exit_reason"].tolist() == ["expiry", "liquidation"]
    assert t["exit_price"][1] == pytest.approx(115 * 0.9, rel=1e-12)
    assert t["gross_pnl"][1] == pytest.approx(-t["margin"][1], rel=1e-9)
    assert r.stats["n_liquidations"] == 1 and not r.stats["ruined"]
    # With the whole wallet posted the bankruptcy leaves 0 in leg A: nothing after runs.
    a_low = [99.5, 99.5, 50.0, 109.5]
    c = future("C", "2024-01-01 12:00")
    legs = [load(frame(A_CLOSE, low=a_low), A), load(frame(B_CLOSE, start="2024-01-01 01:00"), B),
            load(frame([117, 118, 119, 120, 121], start="2024-01-01 07:00"), c)]
    rl3 = bt.roll(legs)
    n = rl3.n_bars
    for fill, shift in (("next_open", 1), ("close", 0)):
        r3 = bt.run(rl3, entries=signal(n, 0, 5, 7, 9), leverage=10, size=1.0, fill=fill)
        assert len(r3.legs) == 1 and r3.stats["ruined"]
        assert r3.trades["exit_reason"].tolist() == ["liquidation"]
        assert r3.equity.iloc[-1] == pytest.approx(0.0, abs=1e-9)
        assert (r3.position == 0).iloc[2:].all()
        after = r3.events[r3.events["kind"] == "signal_after_ruin"]
        # Signals at 05:00 (leg B), 07:00 (B's expiry bar: acts on C) and 09:00 (C), counted
        # at the bar they would have filled (next open, or the close), with that leg.
        assert after["leg"].tolist() == ["B", "C", "C"]
        assert after["time"].tolist() == [pd.Timestamp(f"2024-01-01 {h + shift:02d}:00",
                                                       tz="UTC") for h in (5, 7, 9)]


def test_three_inverse_legs_short_with_the_last_open_at_the_end():
    # Inverse, cs = 1 USD: q = N * P contracts, PnL = s * q * (1/E - 1/X) BTC,
    # fee = f * q / P BTC. A expires 03:00 (expiry bar 02:00), B 06:00 (bar 05:00),
    # C in 2025 (after the data: the last leg ends with reason "end").
    fee = 0.0005
    a = future("XA", "2024-01-01 03:00", "inverse", fee)
    b = future("XB", "2024-01-01 06:00", "inverse", fee)
    c = future("XC", "2025-01-01 00:00", "inverse", fee)
    legs = [load(frame([100, 100, 80]), a),
            load(frame([82, 81, 79, 78], start="2024-01-01 02:00"), b),
            load(frame([79, 77, 76, 75], start="2024-01-01 05:00"), c)]
    rl = bt.roll(legs)
    assert rl.close.tolist() == [100, 100, 80, 81, 79, 78, 77, 76, 75]
    assert rl.spans["settles"].tolist() == [True, True, False]
    r = bt.run(rl, short_entries=signal(rl.n_bars, 0), leverage=1, size=1.0,
               initial_capital=1.0)
    t = r.trades
    assert t["exit_reason"].tolist() == ["expiry", "expiry", "end"]
    assert t["entry_price"].tolist() == [100.0, 81.0, 77.0]
    assert t["exit_price"].tolist() == [80.0, 78.0, 75.0]
    wallet = 1.0
    for k, (entry, exit_) in enumerate(((100, 80), (81, 78), (77, 75))):
        notional = wallet / (1 + fee)                 # size 1.0 at 1x: N = W / (1 + f)
        q = notional * entry
        gross = -q * (1 / entry - 1 / exit_)          # short: gains as the price falls
        pnl = gross - fee * notional - fee * q / exit_
        assert t["size"][k] == pytest.approx(q, rel=1e-12)
        assert t["pnl"][k] == pytest.approx(pnl, rel=1e-12)
        wallet += pnl
    # First leg: q = 99.95, gross = 99.95 * (1/80 - 1/100) = 0.2499 BTC.
    assert r.stats["final_equity"] == pytest.approx(wallet, rel=1e-12)
    assert r.account_currency == "BTC"
    assert r.equity.iloc[2] == pytest.approx(r.wallet.iloc[2])


def test_settlement_at_the_index_close_or_given_prices_per_leg():
    index = frame([100, 100, 103, 108])[["open", "high", "low", "close"]]
    rl = bt.roll([load(frame(A_CLOSE), A, index=index),
                  load(frame(B_CLOSE, start="2024-01-01 01:00"), B)])
    n = rl.n_bars
    r = bt.run(rl, entries=signal(n, 0), leverage=2, size=0.5)
    assert r.trades["exit_price"].tolist() == [108.0, 118.0]      # A: index close
    r = bt.run(rl, entries=signal(n, 0), leverage=2, size=0.5, settlement_price=[None, 119.5])
    assert r.trades["exit_price"].tolist() == [108.0, 119.5]
    r = bt.run(rl, entries=signal(n, 0), leverage=2, size=0.5, settlement_price={"A": 109.0})
    assert r.trades["exit_price"].tolist() == [109.0, 118.0]
    with pytest.raises(TypeError, match="one price \\(or None\\) per leg"):
        bt.run(rl, entries=signal(n, 0), settlement_price=109.0)
    with pytest.raises(ValueError, match="one value \\(or None\\) per leg \\(2\\), got 1"):
        bt.run(rl, entries=signal(n, 0), settlement_price=[109.0])


@pytest.mark.parametrize("expiry", ["2024-01-01 04:00", "2024-06-01 00:00"])
def test_a_single_leg_roll_equals_run(expiry):
    # Data ending at the expiry bar (settled: "expiry") or before the expiry ("end").
    inst = future("S", expiry)
    m = load(frame([100, 101, 99, 104], low=[99.5, 100.5, 97.0, 103.5]), inst)
    n = m.n_bars
    kw = dict(entries=signal(n, 0), exits=signal(n, 1), short_entries=signal(n, 1),
              leverage=3, size=0.5, stop_loss=0.02)
    plain, rolled = bt.run(m, **kw), bt.run(bt.roll([m]), **kw)
    np.testing.assert_array_equal(rolled.equity.to_numpy(), plain.equity.to_numpy())
    np.testing.assert_array_equal(rolled.position.to_numpy(), plain.position.to_numpy())
    pd.testing.assert_frame_equal(rolled.trades.drop(columns="leg"), plain.trades)
    for key, value in plain.stats.drop(["version", "fingerprint"]).items():
        if isinstance(value, float) and np.isnan(value):
            assert np.isnan(rolled.stats[key]), key
        else:
            assert rolled.stats[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_same_inputs_same_fingerprint():
    rl = two_legs()
    a = bt.run(rl, entries=signal(rl.n_bars, 0), leverage=2)
    b = bt.run(two_legs(), entries=signal(rl.n_bars, 0), leverage=2)
    c = bt.run(rl, entries=signal(rl.n_bars, 1), leverage=2)
    assert a.stats["fingerprint"] == b.stats["fingerprint"] != c.stats["fingerprint"]


def test_signals_must_be_on_the_roll_index():
    rl = two_legs()
    with pytest.raises(ValueError, match="one value per bar \\(8\\)"):
        bt.run(rl, entries=signal(7, 0))


# --- bad legs ------------------------------------------------------------------------------

def test_roll_errors_name_the_leg_and_the_fix():
    ma = load(frame(A_CLOSE), A)
    mb = load(frame(B_CLOSE, start="2024-01-01 01:00"), B)
    with pytest.raises(ValueError, match="no legs"):
        bt.roll([])
    with pytest.raises(TypeError, match="leg 1 must be a Market"):
        bt.roll([ma, "B"])
    with pytest.raises(TypeError, match="list of Markets"):
        bt.roll(ma)
    perp = load(frame(B_CLOSE), bt.Instrument.simple(), funding=0)
    with pytest.raises(ValueError, match="leg 1 .* is a perpetual; a roll chains dated"):
        bt.roll([ma, perp])
    inverse = load(frame(B_CLOSE, start="2024-01-01 01:00"),
                   future("B", "2024-01-01 08:00", "inverse"))
    with pytest.raises(ValueError, match="leg 1 .* is inverse, settled in BTC, but leg 0"):
        bt.roll([ma, inverse])
    two_hourly = load(frame(B_CLOSE).asfreq("2h").dropna(), B)
    with pytest.raises(ValueError, match="one bar interval"):
        bt.roll([ma, two_hourly])
    with pytest.raises(ValueError, match="leg 1 \\('A'\\) expires at .* not after leg 0"):
        bt.roll([mb, ma])
    with pytest.raises(ValueError, match="not after leg 0"):
        bt.roll([ma, load(frame(A_CLOSE), A.replace(symbol="A2"))])
    short_a = load(frame(A_CLOSE[:3]), A)          # bars end at 03:00 < expiry 04:00
    with pytest.raises(ValueError, match="leg 0 .* data ends at .*03:00.*Load its bars through"):
        bt.roll([short_a, mb])
    late_b = load(frame(B_CLOSE[3:], start="2024-01-01 04:00"), B)
    with pytest.raises(ValueError, match="must cover leg 0 .*expiry bar .*03:00.*starts at"):
        bt.roll([ma, late_b])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gappy = bt.load_market(frame(B_CLOSE, start="2024-01-01 01:00").drop(
            pd.Timestamp("2024-01-01 03:00", tz="UTC")), instrument=B, gaps="warn")
    with pytest.raises(ValueError, match="has no bar at"):
        bt.roll([ma, gappy])
    same_bar = load(frame(B_CLOSE, start="2024-01-01 01:00"),
                    future("B", "2024-01-01 04:30"))   # its expiry bar is A's too
    with pytest.raises(ValueError, match="leg 1 .* has no bar after"):
        bt.roll([ma, same_bar])
    early = load(frame(A_CLOSE, start="2024-01-01 05:00"), A)
    with pytest.raises(ValueError, match="before its first bar ends"):
        bt.roll([early])


def test_bad_run_parameters_are_refused_before_any_leg_runs():
    rl = two_legs()
    with pytest.raises(ValueError, match="leverage must be > 0"):
        bt.run(rl, entries=signal(rl.n_bars, 0), leverage=0)
    with pytest.raises(TypeError, match="unknown parameter"):
        bt.run(rl, levrage=2)


# --- real data: two quarterlies built from the shipped perpetual ---------------------------

def test_two_quarterlies_from_the_binance_sample_keep_the_accounting_identity():
    bars = pd.read_parquet(DATA / "binance_btcusdt_perp_1h.parquet")
    h1 = future("BTCUSDT_240329", "2024-03-29 08:00", fee=0.0005, mmr=0.004)
    h2 = future("BTCUSDT_240628", "2024-06-28 08:00", fee=0.0005, mmr=0.004)
    basis = bars.copy()
    basis[["open", "high", "low", "close"]] += 250.0   # the June contract trades 250 over
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m1 = bt.load_market(bars, instrument=h1, start="2024-01-01", end="2024-04-01")
        m2 = bt.load_market(basis, instrument=h2, start="2024-03-01", end="2024-07-01")
    rl = bt.roll([m1, m2])
    roll_bar = pd.Timestamp("2024-03-29 07:00", tz="UTC")
    assert rl.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert rl.index[-1] == pd.Timestamp("2024-06-28 07:00", tz="UTC")
    assert (np.diff(rl.index_ns) == 3_600_000_000_000).all()
    # Buy and hold through the roll: two expiry settlements, reopened 250 over the perp.
    hold = bt.run(rl, entries=signal(rl.n_bars, 0), leverage=3, size=0.5)
    t = hold.trades
    assert t["exit_reason"].tolist() == ["expiry", "expiry"]
    assert t["exit_time"][0] == roll_bar
    assert t["exit_price"][0] == m1.bars.loc[roll_bar, "close"]
    nxt = roll_bar + pd.Timedelta(hours=1)
    assert t["entry_price"][1] == bars.set_index("timestamp").loc[nxt, "open"] + 250.0
    assert hold.stats["final_equity"] == pytest.approx(10_000 + t["pnl"].sum(), rel=1e-10)
    # A moving-average cross, long and short, with a stop: the identity at every flat bar.
    close = rl.close
    fast, slow = close.rolling(24).mean(), close.rolling(168).mean()
    up = (fast > slow) & (fast.shift() <= slow.shift())
    down = (fast < slow) & (fast.shift() >= slow.shift())
    r = bt.run(rl, entries=up, short_entries=down, leverage=5, size=0.3, stop_loss=0.04)
    t = r.trades
    assert (t["leg"] == "BTCUSDT_240329").any() and (t["leg"] == "BTCUSDT_240628").any()
    realised = pd.Series(t["pnl"].to_numpy(), index=t["exit_time"]).groupby(level=0).sum()
    cum = realised.reindex(rl.index, fill_value=0.0).cumsum()
    flat = r.position == 0
    np.testing.assert_allclose(r.equity[flat], 10_000 + cum[flat], rtol=1e-10)
    np.testing.assert_allclose(r.wallet[flat], r.equity[flat], rtol=1e-12)
    assert r.stats["final_equity"] == pytest.approx(10_000 + t["pnl"].sum(), rel=1e-10)
    assert r.legs[1].params["initial_capital"] == r.legs[0].stats["final_equity"]


def test_docs_example_two_contracts():
    # docs/examples.md section 4, the rounded numbers printed there.
    rl = two_legs()
    r = bt.run(rl, entries=rl.index == rl.index[0], leverage=2, size=0.5)
    t = r.trades
    assert t["size"].round(4).tolist() == [99.8004, 95.2620]
    assert t["pnl"].round(2).tolist() == [977.05, 263.59]
    assert t["fees"].to_numpy() == pytest.approx([9.98 + 10.98, 10.96 + 11.24], abs=0.01)
    assert round(r.stats["final_equity"], 2) == 11_240.64
    assert rl.close.iloc[3:5].tolist() == [110.0, 115.0]
    closed = bt.run(rl, entries=rl.index == rl.index[0], leverage=2, size=0.5, fill="close")
    assert closed.trades["entry_price"][1] == 114.0


def test_named_legs_and_repeated_symbols():
    ma = load(frame(A_CLOSE), A.replace(symbol="F"))
    mb = load(frame(B_CLOSE, start="2024-01-01 01:00"), B.replace(symbol="F"))
    assert [leg.name for leg in bt.roll([ma, mb]).legs] == ["F@2024-01-01 04:00",
                                                            "F@2024-01-01 08:00"]
    rl = bt.roll({"H": ma, "M": mb})
    r = bt.run(rl, entries=signal(rl.n_bars, 0), leverage=2)
    assert r.trades["leg"].tolist() == ["H", "M"]
    assert r.events["leg"].unique().tolist() == ["H", "M"]


def test_a_warning_is_raised_once_not_once_per_leg():
    rl = two_legs()
    with pytest.warns(UserWarning, match="beyond the liquidation distance") as caught:
        bt.run(rl, entries=signal(rl.n_bars, 0), leverage=10, stop_loss=0.2)
    assert sum("liquidation distance" in str(w.message) for w in caught) == 1


def test_no_signals_stay_flat_and_a_sweep_says_a_roll_is_not_a_market():
    rl = two_legs()
    r = bt.run(rl)
    assert (r.equity == 10_000.0).all() and r.stats["n_trades"] == 0
    assert r.stats["exposure"] == 0.0
    with pytest.raises(AttributeError, match="a Roll is not a Market"):
        bt.sweep(rl, entries=signal(rl.n_bars, 0), leverage=[1, 2])


# --- presentation through the shared result base ------------------------------------------

def test_roll_result_plots_and_reports_through_the_result_base(tmp_path):
    rl = two_legs()
    r = bt.run(rl, entries=signal(rl.n_bars, 0), leverage=2.0, size=0.5, fees=F)
    fig = r.plot()
    price_ax, equity_ax = fig.axes[:2]
    # the roll bar is marked, and the equity panel draws the account's equity in its currency
    assert any(line.get_linestyle() == "--" for line in price_ax.get_lines())
    np.testing.assert_allclose(equity_ax.get_lines()[0].get_ydata(), r.equity.to_numpy())
    assert r.account_currency in equity_ax.get_ylabel()
    path = tmp_path / "roll.html"
    assert r.report(path) is r
    text = path.read_text()
    assert "P&amp;L by leg" in text and "data:image/png;base64," in text
    for leg in ("A", "B"):
        assert f">{leg}<" in text
    assert "final_equity" in text and "expiry" in text  # the stats table and the roll's exit
