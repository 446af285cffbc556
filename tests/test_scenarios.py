"""Hand-worked scenarios (SPEC §3–§6, docs/semantics.md) and invariant properties.

Every expected number below is worked out on paper in the comment above it — none comes
from the engine or from ``tests/reference.py``. The common set-up, unless a test says
otherwise: ``Instrument.simple(mmr=0.005)`` (linear, no fees), capital 10,000 USDT,
10x isolated long, ``size=0.5`` of the wallet as margin, entry at the close of bar 0 at
40,000 (``fill="close"``):

    budget B = 0.5 * 10,000 = 5,000 = margin W0;  notional N = W0 * L = 50,000
    q = N / 40,000 = 1.25 BTC;  maintenance MM = mmr * N = 250
    liq  = E (1 - 1/L + mmr) = 40,000 * 0.905 = 36,200      (SPEC §3 seed numbers)
    bankruptcy = E (1 - 1/L) = 40,000 * 0.9 = 36,000;  1.25 * (36,000 - 40,000) = -5,000 = -W0

Bars are one hour; timestamps start 2024-01-01 00:00 UTC.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import compute_stats, notional
from test_reference_agreement import PROFILE, build_market, cases

import backtest as bt

START = pd.Timestamp("2024-01-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)
E = 40_000.0
FLAT = (E, E, E, E)


def market(rows, mark=None, funding=0, instrument=None):
    """A Market from ``(open, high, low, close)`` rows; ``mark`` rows default to the last."""
    idx = pd.date_range(START, periods=len(rows), freq="h", tz="UTC", name="timestamp")
    bars = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx)
    bars["volume"] = 1.0
    mark_df = pd.DataFrame(mark if mark is not None else rows,
                           columns=["open", "high", "low", "close"], index=idx)
    if isinstance(funding, list):                  # [(bar number, rate), ...] at bar opens
        funding = pd.DataFrame({"timestamp": [START + b * HOUR for b, _ in funding],
                                "rate": [r for _, r in funding]})
    inst = instrument if instrument is not None else bt.Instrument.simple(mmr=0.005)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, mark=mark_df, funding=funding, instrument=inst,
                              gaps="warn")


def signal(n, *bars_on):
    out = np.zeros(n, dtype=bool)
    out[list(bars_on)] = True
    return out


def run(m, **kw):
    n = len(m.index)
    kw.setdefault("entries", signal(n, 0))
    params = {"leverage": 10, "size": 0.5, "fill": "close", **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.run(m, **params)


def event_count(r, kind):
    return int((r.events["kind"] == kind).sum())


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-9)


# ============================================================================================
# Liquidation is on the mark; stops on the last price (SPEC §5)
# ============================================================================================

def test_10x_long_liquidated_by_mark_low():
    # Bar 1: the last price only dips to 36,500 (> liq 36,200) but the mark low is 36,100
    # <= 36,200 -> liquidated; "bankruptcy" closes at 36,000: gross = 1.25*(36,000-40,000)
    # = -5,000 = -W0, no fee. Wallet 10,000 - 5,000 = 5,000, flat afterwards.
    m = market([FLAT, (E, 40_100, 36_500, 37_000), (37_000,) * 4],
               mark=[FLAT, (E, 40_050, 36_100, 37_000), (37_000,) * 4])
    r = run(m)
    assert r.liquidation_price.iloc[0] == approx(36_200)
    t = r.trades
    assert list(t.exit_reason) == ["liquidation"]
    assert t.exit_price.iloc[0] == approx(36_000)
    assert t.gross_pnl.iloc[0] == approx(-5_000)
    assert t.pnl.iloc[0] == approx(-5_000)
    assert t.margin.iloc[0] == approx(5_000)
    assert list(r.equity) == [approx(10_000), approx(5_000), approx(5_000)]
    assert list(r.position) == [approx(1.25), 0.0, 0.0]
    assert math.isnan(r.liquidation_price.iloc[1])
    assert r.stats["n_liquidations"] == 1


def test_last_price_wick_alone_stops_but_does_not_liquidate():
    # Same bar 1 but the roles swapped: the last price wicks to 36,100 (below liq 36,200),
    # the mark only to 38,500. Stop 5 % -> S = 38,000, reached by the last low -> stopped
    # at 38,000: 1.25*(38,000-40,000) = -2,500; equity 7,500. Not liquidated.
    rows = [FLAT, (E, 40_100, 36_100, 39_000), (39_000,) * 4]
    mark = [FLAT, (E, 40_050, 38_500, 39_000), (39_000,) * 4]
    r = run(market(rows, mark=mark), stop_loss=0.05)
    assert list(r.trades.exit_reason) == ["stop_loss"]
    assert r.trades.exit_price.iloc[0] == approx(38_000)
    assert r.trades.pnl.iloc[0] == approx(-2_500)
    assert r.equity.iloc[-1] == approx(7_500)
    # Without a stop the position survives the wick and is closed at the end at 39,000:
    # 1.25 * (39,000 - 40,000) = -1,250.
    r = run(market(rows, mark=mark))
    assert list(r.trades.exit_reason) == ["end"]
    assert r.equity.iloc[-1] == approx(8_750)
    assert r.stats["n_liquidations"] == 0


def test_stop_inside_liquidation_distance_wins():
    # Bar 1: mark and last both fall to 36,100. Stop 8 % -> S = 36,800 lies between the
    # entry and liq 36,200, so the stop wins: 1.25*(36,800-40,000) = -4,000 -> 6,000.
    rows = [FLAT, (E, E, 36_100, 36_500), (36_500,) * 4]
    r = run(market(rows), stop_loss=0.08)
    assert list(r.trades.exit_reason) == ["stop_loss"]
    assert r.trades.exit_price.iloc[0] == approx(36_800)
    assert r.equity.iloc[-1] == approx(6_000)
    # A 12 % stop (S = 35,200) lies beyond liq: liquidation wins, -W0 = -5,000.
    r = run(market(rows), stop_loss=0.12)
    assert list(r.trades.exit_reason) == ["liquidation"]
    assert r.equity.iloc[-1] == approx(5_000)


def test_gap_through_stop_fills_at_open():
    # Stop 5 % -> S = 38,000. Bar 1 opens at 37,000 (gap below S, above liq 36,200):
    # the stop fills at the open, the worse of S and the open: 1.25*(37,000-40,000)
    # = -3,750 -> equity 6,250.
    rows = [FLAT, (37_000, 37_500, 36_900, 37_200), (37_200,) * 4]
    r = run(market(rows), stop_loss=0.05)
    assert list(r.trades.exit_reason) == ["stop_loss"]
    assert r.trades.exit_price.iloc[0] == approx(37_000)
    assert r.trades.pnl.iloc[0] == approx(-3_750)
    assert r.equity.iloc[-1] == approx(6_250)


def test_gap_through_bankruptcy_costs_exactly_isolated_margin():
    # Bar 1 opens at 35,000, below the bankruptcy price 36,000 (mark and last).
    rows = [FLAT, (35_000, 35_500, 34_000, 35_000), (35_000,) * 4]
    # bankruptcy: closed at 36,000, gross exactly -W0 = -5,000; the other 5,000 is safe.
    r = run(market(rows))
    assert r.trades.exit_price.iloc[0] == approx(36_000)
    assert r.trades.gross_pnl.iloc[0] == approx(-5_000)
    assert r.equity.iloc[-1] == approx(5_000)
    # liquidation_price with a 1 % fee: the gap exit (mark open 35,000) would cost
    # 1.25*(35,000-40,000) = -6,250 < -W0 -> floored at -5,000, reported at P_b 36,000,
    # and the fee is cut to what is left (0).
    r = run(market(rows), liquidation="liquidation_price", liquidation_fee=0.01)
    assert r.trades.gross_pnl.iloc[0] == approx(-5_000)
    assert r.trades.exit_price.iloc[0] == approx(36_000)
    assert r.trades.fees.iloc[0] == approx(0.0)
    assert r.equity.iloc[-1] == approx(5_000)
    # negative_equity=True: the exit is the mark open, -6,250 -> equity 3,750.
    r = run(market(rows), negative_equity=True)
    assert r.trades.exit_price.iloc[0] == approx(35_000)
    assert r.trades.gross_pnl.iloc[0] == approx(-6_250)
    assert r.equity.iloc[-1] == approx(3_750)


# ============================================================================================
# Funding (SPEC §6)
# ============================================================================================

@pytest.mark.parametrize("side", ["long", "short"])
def test_funding_paid_by_long_received_by_short(side):
    # Flat 40,000 market, 4 bars; events at the opens of bars 1 (rate 0.0001) and 3
    # (0.0002), both positive: longs pay shorts. Position 1.25 BTC opened at bar 0's close.
    # Bar 1: 1.25 * 40,000 * 0.0001 = 5; bar 3: 1.25 * 40,000 * 0.0002 = 10 (settled at
    # its open, before the end-of-data close). Total 15: long -15, short +15.
    m = market([FLAT] * 4, funding=[(1, 0.0001), (3, 0.0002)])
    n = 4
    kw = ({"entries": signal(n, 0)} if side == "long"
          else {"entries": None, "short_entries": signal(n, 0)})
    r = run(m, **kw)
    sign = 1.0 if side == "long" else -1.0
    assert list(r.funding) == [0.0, approx(5 * sign), 0.0, approx(10 * sign)]
    assert r.trades.funding.iloc[0] == approx(15 * sign)
    assert r.equity.iloc[-1] == approx(10_000 - 15 * sign)
    assert r.stats["funding_paid"] == approx(15 * sign)
    # Isolated: the payment comes out of the margin, 5,000 -> 4,995 (long), and moves the
    # liquidation price: long 40,000 - (4,995 - 250)/1.25 = 36,204 (from 36,200);
    # short 40,000 + (5,005 - 250)/1.25 = 43,804 (from 43,800).
    assert r.margin.iloc[1] == approx(5_000 - 5 * sign)
    expected_liq = 36_204.0 if side == "long" else 43_804.0
    assert r.liquidation_price.iloc[1] == approx(expected_liq)


def test_funding_alone_liquidates():
    # 100x, size 0.1: B = 1,000 = W0, N = 100,000, q = 2.5; MM = 0.005 * 100,000 = 500;
    # liq = 40,000 - (1,000 - 500)/2.5 = 39,800. Flat prices. Funding 0.004 at the opens
    # of bars 1 and 2: each 2.5 * 40,000 * 0.004 = 400.
    #   bar 1: W = 600 -> liq = 40,000 - 100/2.5 = 39,960 < 40,000: survives.
    #   bar 2: W = 200 -> liq = 40,000 - (200 - 500)/2.5 = 40,120 >= mark open 40,000:
    #          liquidated at the open. Bankruptcy price 40,000 - 200/2.5 = 39,920,
    #          gross = -W = -200. Trade pnl = -200 - 800 funding = -1,000 = -W0.
    m = market([FLAT] * 4, funding=[(1, 0.004), (2, 0.004)])
    r = run(m, leverage=100, size=0.1)
    assert r.liquidation_price.iloc[0] == approx(39_800)
    assert r.liquidation_price.iloc[1] == approx(39_960)
    t = r.trades
    assert list(t.exit_reason) == ["liquidation"]
    assert t.exit_time.iloc[0] == START + 2 * HOUR
    assert t.exit_price.iloc[0] == approx(39_920)
    assert t.gross_pnl.iloc[0] == approx(-200)
    assert t.funding.iloc[0] == approx(800)
    assert t.pnl.iloc[0] == approx(-1_000)
    assert r.equity.iloc[-1] == approx(9_000)


# ============================================================================================
# Contracts and venue rules (SPEC §3)
# ============================================================================================

def test_inverse_xbtusd_long_pnl_in_btc():
    # BitMEX guide: 15,000 XBTUSD contracts (1 USD each) long at 750, closed at 800:
    # PnL = q (1/E - 1/X) = 15,000 (1/750 - 1/800) = 15,000 * 50/600,000 = 1.25 XBT.
    # fees=0.0 sets the taker fee to 0 (market orders only here). 2x: margin
    # = 15,000/750/2 = 10 XBT out of 25.
    m = market([(750,) * 4, (750, 800, 750, 800), (800,) * 4],
               instrument=bt.get_instrument("bitmex:XBTUSD"))
    r = run(m, leverage=2, size=15_000, size_type="qty", fees=0.0, initial_capital=25.0,
            exits=signal(3, 1))
    t = r.trades
    assert list(t.exit_reason) == ["signal"]
    assert t["size"].iloc[0] == approx(15_000)
    assert t.margin.iloc[0] == approx(10.0)
    assert t.gross_pnl.iloc[0] == approx(1.25)
    assert r.equity.iloc[-1] == approx(26.25)


def test_bitmex_liquidation_price_rounded_toward_entry():
    # Case bitmex-ui-xbtusd-long-25x-fr-0.000139: 1,000 contracts long at 5,000, 25x,
    # MMR 0.5 %, next funding -0.000139 (the long receives: no reserve).
    # liq = E / (1 + 1/25 - 0.005 - 0) = 5,000 / 1.035 = 4,830.92 -> up to the 0.5 tick
    # = 4,831.0 (BitMEX shows 4,831).
    m = market([(5_000,) * 4] * 3, funding=[(0, 0.0001), (2, -0.000139)],
               instrument=bt.get_instrument("bitmex:XBTUSD"))
    # the funding event at bar 2 is "next" for bars 0 and 1; the entry is at bar 0's close
    r = run(m, leverage=25, size=1_000, size_type="qty", initial_capital=1.0)
    assert r.liquidation_price.iloc[0] == 4_831.0


def test_bitmex_funding_reserve_for_the_paying_side():
    # Same position, but the next funding rate is +0.0005: the long pays it, so MM reserves
    # it: liq = 5,000 / (1 + 0.04 - 0.005 - 0.0005) = 5,000 / 1.0345 = 4,833.25 -> up to the
    # tick: 4,833.5. A short receives it (no reserve): 5,000 / (1 - 0.04 + 0.005) = 5,181.35
    # -> down to the tick: 5,181.0.
    m = market([(5_000,) * 4] * 3, funding=[(0, 0.0001), (2, 0.0005)],
               instrument=bt.get_instrument("bitmex:XBTUSD"))
    r = run(m, leverage=25, size=1_000, size_type="qty", initial_capital=1.0)
    assert r.liquidation_price.iloc[0] == 4_833.5
    r = run(m, leverage=25, size=1_000, size_type="qty", initial_capital=1.0, entries=None,
            short_entries=signal(3, 0))
    assert r.liquidation_price.iloc[0] == 5_181.0


def test_binance_tier_reselected_at_liquidation_price():
    # binance:BTCUSDT brackets: [0, 50k) mmr 0.4 % cum 0; [50k, 600k) mmr 0.5 % cum 50.
    # Short 1.225 BTC at 40,000 (N = 49,000, bracket 0), 10x: W = 4,900.
    # USDⓈ-M short: LP = (W + cum + q E) / (q (1 + mmr)).
    #   bracket 0: 53,900 / (1.225 * 1.004) = 43,824.70; notional there 1.225 * 43,824.70
    #              = 53,685 >= 50,000 -> recompute with bracket 1:
    #   bracket 1: 53,950 / (1.225 * 1.005) = 43,821.70; notional 53,682: in bracket 1.
    btc = bt.get_instrument("binance:BTCUSDT")
    m = market([FLAT] * 3, instrument=btc)
    r = run(m, entries=None, short_entries=signal(3, 0), size=1.225, size_type="qty",
            fees=0.0)
    assert r.liquidation_price.iloc[0] == approx(53_950 / (1.225 * 1.005))
    # Long 1.275 BTC (N = 51,000, bracket 1), W = 5,100. Long: LP = (q E - W - cum) /
    # (q (1 - mmr)). Bracket 1: 45,850 / (1.275 * 0.995) = 36,141.9, notional 46,081
    # < 50,000 -> bracket 0: 45,900 / (1.275 * 0.996) = 36,144.58, notional 46,084: in it.
    r = run(m, size=1.275, size_type="qty", fees=0.0)
    assert r.liquidation_price.iloc[0] == approx(45_900 / (1.275 * 0.996))


def test_cross_margin_survives_what_liquidates_isolated():
    # Mark low 36,100 in bar 1. Isolated (W = 5,000): liq 36,200 -> liquidated, -5,000.
    # Cross (W = wallet = 10,000): liq = 40,000 - (10,000 - 250)/1.25 = 32,200 -> survives;
    # at bar 1's close (37,000) equity = 10,000 + 1.25*(37,000-40,000) = 6,250, and the
    # end-of-data close at 37,000 keeps it. Cross `margin` = N/L = 5,000.
    rows = [FLAT, (E, E, 36_100, 37_000), (37_000,) * 4]
    iso = run(market(rows), margin_mode="isolated")
    cross = run(market(rows), margin_mode="cross")
    assert list(iso.trades.exit_reason) == ["liquidation"]
    assert iso.equity.iloc[-1] == approx(5_000)
    assert cross.liquidation_price.iloc[0] == approx(32_200)
    assert cross.margin.iloc[1] == approx(5_000)
    assert cross.equity.iloc[1] == approx(6_250)
    assert list(cross.trades.exit_reason) == ["end"]
    assert cross.equity.iloc[-1] == approx(6_250)


# ============================================================================================
# Orders (SPEC §4)
# ============================================================================================

def test_stop_limit_gapped_through_leaves_position_open():
    # Stop 5 % -> S = 38,000; stop-limit offset 1 % -> limit 37,620 (sell).
    # Bar 1 opens at 37,000, beyond the limit: the order rests, the position stays open
    # (37,500 high never reaches 37,620; mark low 36,900 > liq 36,200).
    # Bar 2 opens at 37,800 >= 37,620: the resting limit fills at that open:
    # 1.25*(37,800-40,000) = -2,750 -> equity 7,250.
    rows = [FLAT, (37_000, 37_500, 36_900, 37_200), (37_800, 38_000, 37_700, 37_900),
            (37_900,) * 4]
    r = run(market(rows), stop_loss=0.05, stop_order="limit", stop_limit_offset=0.01)
    assert r.position.iloc[1] == approx(1.25)
    # equity at bar 1's close: 10,000 + 1.25*(37,200-40,000) = 6,500
    assert r.equity.iloc[1] == approx(6_500)
    t = r.trades
    assert list(t.exit_reason) == ["stop_loss"]
    assert t.exit_time.iloc[0] == START + 2 * HOUR
    assert t.exit_price.iloc[0] == approx(37_800)
    assert r.equity.iloc[-1] == approx(7_250)
    assert event_count(r, "stop_limit_resting") == 1


def test_take_profit_at_open_when_gapped():
    # qty 1.25 BTC (N = 50,000, W0 = 5,000); taker 5 bp, maker 2 bp.
    # entry fee (market, taker) = 0.0005 * 50,000 = 25.
    # TP 5 % -> T = 42,000; bar 1 opens at 43,000 -> TP fills at the open, maker fee
    # 0.0002 * 1.25 * 43,000 = 10.75. gross = 1.25 * 3,000 = 3,750;
    # pnl = 3,750 - 35.75 = 3,714.25.
    inst = bt.Instrument.simple(mmr=0.005, taker_fee=0.0005, maker_fee=0.0002)
    rows = [FLAT, (43_000, 43_500, 42_800, 43_200), (43_200,) * 4]
    r = run(market(rows, instrument=inst), size=1.25, size_type="qty", take_profit=0.05)
    t = r.trades
    assert list(t.exit_reason) == ["take_profit"]
    assert t.exit_price.iloc[0] == approx(43_000)
    assert t.fees.iloc[0] == approx(35.75)
    assert t.pnl.iloc[0] == approx(3_714.25)
    assert r.equity.iloc[-1] == approx(13_714.25)


def test_sizing_rejections_recorded():
    # qty 3 BTC at 40,000 and 10x needs 12,000 of margin > 10,000: insufficient_margin.
    r = run(market([FLAT] * 3), size=3.0, size_type="qty")
    assert len(r.trades) == 0
    assert event_count(r, "insufficient_margin") == 1
    assert r.equity.iloc[-1] == approx(10_000)
    # binance:BTCUSDT lot 0.001: 0.0004 BTC rounds down to 0 -> size_zero.
    btc = bt.get_instrument("binance:BTCUSDT")
    r = run(market([FLAT] * 3, instrument=btc), size=0.0004, size_type="qty")
    assert len(r.trades) == 0 and event_count(r, "size_zero") == 1
    # 125x with the whole wallet: N = 10,000/(1/125 + 0.0005) = 1,176,470 USDT, in the
    # 600,000-3,000,000 bracket whose maximum is 75x -> leverage_above_tier.
    r = run(market([FLAT] * 3, instrument=btc), leverage=125, size=1.0)
    assert len(r.trades) == 0 and event_count(r, "leverage_above_tier") == 1


def test_signal_on_last_bar_dropped_and_counted():
    # next_open: the entry on the last bar (2) has no next open.
    m = market([FLAT] * 3)
    r = run(m, entries=signal(3, 2), fill="next_open")
    assert len(r.trades) == 0
    assert event_count(r, "signal_dropped_last_bar") == 1
    assert r.equity.iloc[-1] == approx(10_000)


@pytest.mark.parametrize("path", ["pessimistic", "ohlc"])
@pytest.mark.parametrize("colour", ["green", "red"])
def test_ambiguous_bar_counted_under_both_paths(path, colour):
    # Stop 5 % (38,000) and TP 5 % (42,000) both inside bar 1's range 37,500-42,500:
    # ambiguous whatever the path. Pessimistic: adverse leg first -> stop, -2,500.
    # ohlc: a green bar goes open -> low first (stop); a red bar open -> high first (TP,
    # +2,500).
    close = 41_000 if colour == "green" else 39_000
    rows = [FLAT, (E, 42_500, 37_500, close), (close,) * 4]
    r = run(market(rows), stop_loss=0.05, take_profit=0.05, path=path)
    assert r.stats["n_ambiguous"] == 1
    assert event_count(r, "ambiguous_bar") == 1
    tp_first = path == "ohlc" and colour == "red"
    assert list(r.trades.exit_reason) == ["take_profit" if tp_first else "stop_loss"]
    assert r.trades.pnl.iloc[0] == approx(2_500 if tp_first else -2_500)


def test_ruined_with_an_open_position_is_still_liquidated_and_closed():
    # 100x, the whole wallet: B = 10,000 = W0, N = 1,000,000, q = 25 BTC, filled at the last
    # close 40,000 while the mark closes at 39,000: equity = 10,000 + 25*(39,000-40,000)
    # = -15,000 <= 0 -> ruined at bar 0, with the position open. Ruin stops trading, not the
    # exchange: bar 1's mark opens at 39,000 <= liq 40,000*(1 - 0.01 + 0.005) = 39,800 ->
    # liquidated at the open, at the bankruptcy price 40,000*0.99 = 39,600, gross = -W0
    # = -10,000 -> equity 0, flat; and SPEC §8: initial + Σ pnl = final equity = 0.
    rows = [FLAT, (E, 41_000, 39_500, 41_000), (41_000,) * 4]
    mark = [(E, E, 39_000, 39_000), (39_000, 41_000, 39_000, 41_000), (41_000,) * 4]
    r = run(market(rows, mark=mark), leverage=100, size=1.0)
    assert r.equity.iloc[0] == approx(-15_000)
    assert r.stats["ruined"]
    assert list(r.trades.exit_reason) == ["liquidation"]
    assert r.trades.exit_price.iloc[0] == approx(39_600)
    assert r.trades.gross_pnl.iloc[0] == approx(-10_000)
    assert list(r.position) == [approx(25.0), 0.0, 0.0]
    assert r.equity.iloc[-1] == approx(0.0)
    assert r.equity.iloc[-1] == approx(10_000 + r.trades.pnl.sum())


# ============================================================================================
# Invariant properties (small Hypothesis runs)
# ============================================================================================

SMALL = settings(PROFILE, max_examples=max(20, PROFILE.max_examples // 4))


def _run_case(case, mark_is_last=False, **override):
    params = {**case["params"], **override}
    m = build_market(case) if not mark_is_last else _market_mark_is_last(case)
    sig = {k: np.asarray(v, dtype=bool) for k, v in case["signals"].items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.run(m, **sig, **params), m


def _market_mark_is_last(case):
    """The case's last-price bars with mark := last (no mark bars given)."""
    c = dict(case)
    b = dict(case["bars"])
    for k in ("open", "high", "low", "close"):
        b["mark_" + k] = b[k]
    c["bars"] = b
    return build_market(c)


def _inst_dict(m):
    inst = m.instrument
    return {"settlement": inst.settlement, "contract_size": inst.contract_size}


@SMALL
@given(cases())
def test_accounting_identity_per_bar(case):
    """semantics "Account": equity = initial + Σ realised gross − Σ fees − Σ funding + uPnL.

    Built from the result only: trades closed by bar t give gross and fees; the position
    open at t gives its entry fee (market entries: taker · notional at the entry price) and
    uPnL at the mark close; funding is the per-bar series summed to t.
    """
    r, m = _run_case(case, entry_order="market")
    inst = _inst_dict(m)
    taker = r.params["taker_fee"]
    trades = r.trades.to_dict("records")
    capital = case["params"]["initial_capital"]
    funding = np.cumsum(r.funding.to_numpy())
    for t, when in enumerate(m.index):
        closed = [x for x in trades if x["exit_time"] <= when]
        expected = capital + sum(x["gross_pnl"] - x["fees"] for x in closed) - funding[t]
        open_now = [x for x in trades if x["entry_time"] <= when < x["exit_time"]]
        q = r.position.iloc[t]
        if q != 0.0:
            # the open trade: the one entered at/before t and closed after t
            assert len(open_now) == 1, (t, open_now)
            x = open_now[0]
            side = 1.0 if x["side"] == "long" else -1.0
            assert side * x["size"] == pytest.approx(q, rel=1e-12)
            e, px = x["entry_price"], m.mark_close[t]
            expected -= taker * notional(inst, x["size"], e)
            if inst["settlement"] == "inverse":
                u = side * x["size"] * inst["contract_size"] * (1 / e - 1 / px)
            else:
                mult = 1.0 if inst["settlement"] == "linear" else inst["contract_size"]
                u = side * x["size"] * mult * (px - e)
            expected += u
        assert r.equity.iloc[t] == pytest.approx(expected, rel=1e-9, abs=1e-9 * capital), t
    # once flat at the end: initial + Σ pnl = final equity (SPEC §8)
    assert r.equity.iloc[-1] == pytest.approx(capital + r.trades.pnl.sum(), rel=1e-9,
                                              abs=1e-9 * capital)


@SMALL
@given(cases())
def test_isolated_loss_at_most_posted_margin_plus_fees(case):
    """Isolated, mark := last, no slippage: any price that would cost more than the margin
    first crosses the liquidation price (between entry and bankruptcy), so every trade's
    loss is at most its margin W0 plus its fees (funding only moves W: −gross ≤ W0 − funding
    paid). With negative_equity=False even a gap beyond bankruptcy costs W only."""
    r, _ = _run_case(case, mark_is_last=True, margin_mode="isolated", slippage=0.0,
                     negative_equity=False)
    for x in r.trades.to_dict("records"):
        assert -x["pnl"] <= x["margin"] + x["fees"] + 1e-9 * (x["margin"] + 1.0), x


@SMALL
@given(cases())
def test_no_signals_equity_constant(case):
    case = {**case, "signals": {k: [False] * case["n"] for k in case["signals"]}}
    r, _ = _run_case(case)
    capital = case["params"]["initial_capital"]
    assert len(r.trades) == 0
    assert (r.equity == capital).all() and (r.wallet == capital).all()
    assert (r.position == 0).all() and r.liquidation_price.isna().all()
    assert r.stats["final_equity"] == capital and r.stats["n_trades"] == 0


@SMALL
@given(cases(), st.floats(0.0, 0.002), st.floats(0.0, 0.002))
def test_higher_fees_never_raise_final_equity(case, fee_a, fee_b):
    """Why this holds here: isolated margin, `qty` sizing of at most ~1 % of the capital as
    margin, mark := last, no slippage. Sizes, fill prices, stop/TP levels and liquidation
    prices (W0 = N/L) then do not depend on the fee; every loss is bounded by W0 + fees
    (previous test), so the wallet never falls low enough for a fee to turn an accepted
    entry into an `insufficient_margin` rejection or to ruin the run. Every trade is the
    same in both runs and only Σ fees differs; a higher taker fee cannot raise equity."""
    lo, hi = sorted((fee_a, fee_b))
    m0 = _market_mark_is_last(case)
    inst = m0.instrument
    capital = case["params"]["initial_capital"]
    lev = case["params"]["leverage"]
    price = max(case["bars"]["high"])
    unit = notional(_inst_dict(m0), 1.0, price) if inst.settlement != "inverse" else \
        notional(_inst_dict(m0), 1.0, min(case["bars"]["low"]))
    qty = 0.01 * capital * lev / unit / 2
    lot = inst.lot_size
    if lot > 0:
        qty = max(lot, math.floor(qty / lot) * lot)
        if qty * unit / lev > 0.01 * capital:
            return                                   # one lot is too large for this case
    kw = {"mark_is_last": True, "margin_mode": "isolated", "slippage": 0.0,
          "size_type": "qty", "size": qty, "negative_equity": False}
    a, _ = _run_case(case, fees=lo, **kw)
    b, _ = _run_case(case, fees=hi, **kw)
    assert len(a.trades) == len(b.trades)
    assert b.equity.iloc[-1] <= a.equity.iloc[-1] + 1e-12 * capital


@SMALL
@given(cases())
def test_stats_recomputed_from_series(case):
    """`result.stats` equal the semantics definitions applied to the returned series."""
    r, m = _run_case(case)
    capital = case["params"]["initial_capital"]
    want = compute_stats(
        r.equity.tolist(), r.trades.to_dict("records"), r.position.tolist(),
        r.liquidation_price.tolist(), list(m.mark_low), list(m.mark_high),
        event_count(r, "ambiguous_bar"), capital, int(m.bar_ns))
    for key, w in want.items():
        g = r.stats[key]
        if isinstance(w, float) and (math.isnan(w) or math.isinf(w)):
            assert (math.isnan(g) and math.isnan(w)) or g == w, (key, g, w)
        else:
            assert g == pytest.approx(w, rel=1e-9, abs=1e-9 * capital), (key, g, w)
    # the project's own statement of the definitions (backtest.metrics), too
    from backtest.results import metrics as metrics

    again = metrics.stats_from_result(r)
    for key in want:
        g, w = r.stats[key], again[key]
        if isinstance(w, float) and math.isnan(w):
            assert isinstance(g, float) and math.isnan(g), key
        else:
            assert g == pytest.approx(w, rel=1e-9, abs=1e-9 * capital), key
