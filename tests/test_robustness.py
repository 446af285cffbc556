"""Extreme but legal inputs: very high leverage, tiny and huge prices, two million bars, a
position held for years of 8-hourly funding.

Each run must stay finite (no overflow, no NaN/inf in equity or wallet) and keep the books:

* wallet identity, per bar (docs/semantics.md "Account"): ``wallet[t] = initial + Σ realised
  gross PnL − Σ fees − Σ funding`` up to bar ``t``, rebuilt from ``result.trades`` (entry fee
  at the entry bar, the rest of the trade's fees at its exit bar) and ``result.funding``;
* equity identity, per bar: ``equity − wallet = uPnL(mark_close)`` of the position open at
  the close, rebuilt from the trade's size, side and entry price;
* isolated loss bound, per trade: ``−pnl ≤ posted margin + fees``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

import backtest as bt

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("error::RuntimeWarning")]

START = pd.Timestamp("2020-01-01", tz="UTC")
TAKER = 0.0005


# --------------------------------------------------------------------------- material


def random_market(n: int, base: float, instrument: Any, *, seed: int = 0, freq: str = "1h",
                  vol: float = 0.01, funding_rate: float | None = None,
                  with_mark: bool = True) -> bt.Market:
    """Random-walk bars with occasional wicks, a mark with a small basis, 8-hourly funding."""
    rng = np.random.default_rng(seed)
    close = base * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.r_[base, close[:-1]]
    wick = np.where(rng.random(n) < 0.01, 6.0, 1.0)
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 3, n)) * wick)
    low = np.minimum(open_, close) / (1 + np.abs(rng.normal(0, vol / 3, n)) * wick)
    idx = pd.date_range(START, periods=n, freq=freq)
    bars = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=idx)
    mark = None
    if with_mark:
        k = 1 + rng.normal(0, vol / 20, n)
        mo, mc = open_ * k, close * k
        mark = pd.DataFrame({"open": mo, "close": mc,
                             "high": np.maximum(mo, mc) * (1 + np.abs(rng.normal(0, vol / 4, n))),
                             "low": np.minimum(mo, mc) / (1 + np.abs(rng.normal(0, vol / 4, n)))},
                            index=idx)
    times = pd.date_range(START, idx[-1] + pd.Timedelta("8h"), freq="8h")
    rates = (rng.normal(1e-4, 2e-4, len(times)) if funding_rate is None
             else np.full(len(times), funding_rate))
    funding = pd.DataFrame({"timestamp": times, "rate": rates})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, mark=mark, funding=funding, instrument=instrument)


def crossover(m: bt.Market, fast: int, slow: int) -> dict[str, np.ndarray]:
    s = pd.Series(m.close)
    up = (s.rolling(fast).mean() > s.rolling(slow).mean()).to_numpy()
    prev = np.r_[False, up[:-1]]
    buy, sell = up & ~prev, ~up & prev
    return {"entries": buy, "exits": sell, "short_entries": sell, "short_exits": buy}


def notional(inst: Any, q: np.ndarray, price: np.ndarray) -> np.ndarray:
    if inst.settlement == "inverse":
        return q * inst.contract_size / price
    return q * inst.contract_size * price  # linear (contract_size 1) and quanto


def upnl(inst: Any, side: np.ndarray, q: np.ndarray, entry: np.ndarray,
         price: np.ndarray) -> np.ndarray:
    if inst.settlement == "inverse":
        return side * q * inst.contract_size * (1.0 / entry - 1.0 / price)
    return side * q * inst.contract_size * (price - entry)


# --------------------------------------------------------------------------- the books


def check_books(r: Any, *, entry_fee_rate: float, isolated: bool = True) -> None:
    """Finite outputs, the wallet and equity identities per bar, the isolated loss bound.

    ``entry_fee_rate``: the fee of every entry (market entries pay the taker fee).
    """
    m, inst = r.market, r.market.instrument
    n, capital = m.n_bars, r.params["initial_capital"]
    equity, wallet = r.equity.to_numpy(), r.wallet.to_numpy()
    position, funding = r.position.to_numpy(), r.funding.to_numpy()
    for name, a in (("equity", equity), ("wallet", wallet), ("position", position),
                    ("margin", r.margin.to_numpy()), ("funding", funding)):
        bad = np.flatnonzero(~np.isfinite(a))
        assert not bad.size, f"{name} has NaN/inf at bars {bad[:3]}"
    t = r.trades
    for col in ("size", "entry_price", "exit_price", "margin", "gross_pnl", "fees", "funding",
                "pnl"):
        assert np.isfinite(t[col].to_numpy(dtype=float)).all(), col
    entry_bar = m.index.get_indexer(t["entry_time"])
    exit_bar = m.index.get_indexer(t["exit_time"])
    q, e = t["size"].to_numpy(), t["entry_price"].to_numpy()
    side = np.where(t["side"] == "long", 1.0, -1.0)
    entry_fee = entry_fee_rate * notional(inst, q, e)
    exit_fee = t["fees"].to_numpy() - entry_fee
    flows = np.zeros(n)
    np.add.at(flows, exit_bar, t["gross_pnl"].to_numpy() - exit_fee)
    np.add.at(flows, entry_bar, -entry_fee)
    expected_wallet = capital + np.cumsum(flows) - np.cumsum(funding)
    scale = capital + np.abs(flows).sum() + np.abs(funding).sum()
    np.testing.assert_allclose(wallet, expected_wallet, rtol=0, atol=1e-9 * scale)

    # the position open at each close: trade k covers bars [entry_bar, exit_bar)
    held_q, held_side, held_entry = np.zeros(n), np.zeros(n), np.ones(n)
    for k in range(len(t)):
        span = slice(entry_bar[k], exit_bar[k])
        held_q[span], held_side[span], held_entry[span] = q[k], side[k], e[k]
    np.testing.assert_array_equal(position, held_side * held_q)
    open_upnl = upnl(inst, held_side, held_q, held_entry, m.mark_close)
    size_scale = notional(inst, held_q, m.mark_close).max(initial=0.0) + capital
    np.testing.assert_allclose(equity - wallet, open_upnl, rtol=0, atol=1e-9 * size_scale)
    if position[-1] == 0:
        assert equity[-1] == pytest.approx(capital + t["pnl"].sum(), abs=1e-9 * scale)
    if isolated and not r.params["negative_equity"]:
        loss = -t["pnl"].to_numpy()
        bound = t["margin"].to_numpy() + t["fees"].to_numpy()
        assert (loss <= bound + 1e-9 * np.maximum(bound, capital)).all()


# --------------------------------------------------------------------------- leverage


HIGH_LEVERAGE = {  # instrument, price level, leverage, size (fraction of the wallet as margin)
    # binance:BTCUSDT: 125x only below 50,000 USDT notional, so a small size.
    "binance-125x": ("binance:BTCUSDT", 40_000.0, 125, 0.03),
    "simple-200x": (bt.Instrument.simple(mmr=0.001, max_leverage=500, taker_fee=TAKER),
                    40_000.0, 200, 0.05),
    "simple-500x": (bt.Instrument.simple(mmr=0.001, max_leverage=500, taker_fee=TAKER),
                    40_000.0, 500, 0.02),
    "inverse-200x": (bt.Instrument.simple(mmr=0.001, max_leverage=500, taker_fee=TAKER,
                                          settlement="inverse"), 40_000.0, 200, 0.05),
}


@pytest.mark.parametrize("key", list(HIGH_LEVERAGE))
@pytest.mark.parametrize("margin_mode", ["isolated", "cross"])
def test_very_high_leverage_keeps_the_books(key, margin_mode):
    instrument, base, leverage, size = HIGH_LEVERAGE[key]
    m = random_market(3_000, base, instrument, seed=len(key), vol=0.004)
    capital = 1.0 if m.instrument.settlement == "inverse" else 10_000.0
    # cross: the whole wallet backs the position, so a smaller one to survive a while
    r = bt.run(m, **crossover(m, 6, 24), leverage=leverage, fees=TAKER,
               size=size if margin_mode == "isolated" else size / 10,
               margin_mode=margin_mode, initial_capital=capital)
    assert r.stats["n_trades"] >= 20
    check_books(r, entry_fee_rate=TAKER, isolated=margin_mode == "isolated")
    liq = r.trades[r.trades["exit_reason"] == "liquidation"]
    if margin_mode == "isolated":
        assert len(liq) > 0  # at these leverages the wicks do liquidate
        # bankruptcy fill: the position margin after funding is lost exactly, no more
        np.testing.assert_allclose(liq["gross_pnl"], -(liq["margin"] - liq["funding"]),
                                   rtol=1e-9, atol=1e-12 * capital)


# --------------------------------------------------------------------------- prices


SETTLEMENTS = {
    "linear": dict(settlement="linear"),
    "inverse": dict(settlement="inverse", contract_size=1.0),
    "quanto": dict(settlement="quanto", contract_size=1e-6),
}


@pytest.mark.parametrize("settlement", list(SETTLEMENTS))
def test_tiny_and_huge_prices_give_the_same_returns(settlement):
    """1e-6 and 1e7 quote units: finite, balanced, and (no ticks or lots) the same equity
    curve as at 1.0 for linear and inverse contracts, whose PnL is scale-free."""
    inst = bt.Instrument.simple(taker_fee=TAKER, **SETTLEMENTS[settlement])
    capital = 10_000.0 if settlement == "linear" else 1.0
    curves = {}
    for base in (1e-6, 1.0, 1e7):
        m = random_market(2_000, base, inst, seed=3)
        r = bt.run(m, **crossover(m, 5, 20), leverage=5, stop_loss=0.02, fees=TAKER,
                   initial_capital=capital)
        assert r.stats["n_trades"] >= 20
        check_books(r, entry_fee_rate=TAKER)
        curves[base] = r.equity.to_numpy()
    if settlement != "quanto":  # quanto PnL is in coin per quote unit: it scales with price
        np.testing.assert_allclose(curves[1e-6], curves[1.0], rtol=1e-9)
        np.testing.assert_allclose(curves[1e7], curves[1.0], rtol=1e-9)


# --------------------------------------------------------------------------- length


def test_two_million_bars():
    n = 2_000_000
    started = time.perf_counter()
    m = random_market(n, 30_000.0, bt.Instrument.simple(taker_fee=TAKER), seed=11,
                      freq="1min", vol=0.0008, with_mark=False)
    r = bt.run(m, **crossover(m, 240, 1440), leverage=3, stop_loss=0.02, fees=TAKER)
    equity = r.equity.to_numpy()
    elapsed = time.perf_counter() - started
    assert len(equity) == n and np.isfinite(equity).all()
    assert r.stats["n_trades"] > 500 and not r.stats["ruined"]
    check_books(r, entry_fee_rate=TAKER)
    assert elapsed < 10.0, f"load + run of 2M bars took {elapsed:.1f} s"


# --------------------------------------------------------------------------- funding for years


@pytest.mark.parametrize("settlement", ["linear", "inverse"])
def test_a_position_held_for_years_of_funding(settlement):
    years, hours = 6, 6 * 365 * 24
    inst = bt.Instrument.simple(taker_fee=TAKER, **SETTLEMENTS[settlement])
    capital = 10_000.0 if settlement == "linear" else 1.0
    m = random_market(hours, 40_000.0, inst, seed=5, vol=0.002)
    assert m.funding_count.sum() == years * 365 * 3
    held = np.zeros(hours, dtype=bool)
    held[0] = True
    r = bt.run(m, entries=held, leverage=2, size=0.5, fees=TAKER, fill="close",
               initial_capital=capital)
    (trade,) = r.trades.itertuples()
    assert trade.exit_reason == "end" and trade.entry_time == m.index[0]
    check_books(r, entry_fee_rate=TAKER)
    # every event of the six years is paid on its bar: q · notional(mark open) · rate
    paid = r.funding.to_numpy()
    due = notional(inst, trade.size, m.mark_open) * m.funding_rate
    due[0] = 0.0  # the position opened at bar 0's close did not hold at that open
    np.testing.assert_allclose(paid, due, rtol=1e-12, atol=1e-15 * capital)
    assert trade.funding == pytest.approx(paid.sum(), rel=1e-9)
    assert r.stats["funding_paid"] == pytest.approx(paid.sum(), rel=1e-9)
    # isolated: the margin carries the funding, and the liquidation price follows it
    margin = r.margin.to_numpy()[:-1]
    np.testing.assert_allclose(margin, trade.margin - np.cumsum(paid)[:-1], rtol=1e-9)
    liq = r.liquidation_price.to_numpy()[:-1]
    assert np.isfinite(liq).all() and np.all(np.diff(liq)[np.diff(margin) < 0] > 0)


@pytest.mark.parametrize("settlement", ["linear", "inverse"])
def test_cross_liquidation_at_200x_ruins_cleanly(settlement):
    """The whole wallet at 200x cross: liquidated, equity exactly 0 (never below without
    negative_equity), trading stops and later signals are counted, the books still hold."""
    inst = bt.Instrument.simple(mmr=0.001, max_leverage=500, taker_fee=TAKER,
                                **SETTLEMENTS[settlement])
    capital = 10_000.0 if settlement == "linear" else 1.0
    m = random_market(2_000, 40_000.0, inst, seed=9, vol=0.004)
    r = bt.run(m, **crossover(m, 6, 24), leverage=200, size=1.0, fees=TAKER,
               margin_mode="cross", initial_capital=capital)
    check_books(r, entry_fee_rate=TAKER, isolated=False)
    assert r.stats["ruined"] and r.stats["n_liquidations"] == 1
    assert r.trades["exit_reason"].iloc[-1] == "liquidation"
    equity = r.equity.to_numpy()
    assert equity.min() >= 0.0 and equity[-1] == pytest.approx(0.0, abs=1e-9 * capital)
    assert "signal_after_ruin" in set(r.events["kind"])
