"""Sweeps over a portfolio (SPEC §9 with several markets): margin mode × leverage and any
other list-valued run() parameter, every row equal to run()'s stats."""

from __future__ import annotations

import warnings

import numba
import numpy as np
import pandas as pd
import pytest

import backtest as bt

INST = bt.Instrument.simple(mmr=0.005, taker_fee=0.0004)



def _market(close, low, high):
    ts = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC")
    bars = pd.DataFrame({"open": close, "high": high, "low": low, "close": close,
                         "volume": 1.0}, index=ts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mark := last
        return bt.load_market(bars, funding=0, instrument=INST)


@pytest.fixture(scope="module")
def portfolio():
    rng = np.random.default_rng(7)
    n = 400
    markets, entries, exits = {}, {}, {}
    for name, base, vol in (("BTC", 100.0, 0.02), ("ETH", 10.0, 0.03)):
        close = base * np.exp(np.cumsum(rng.normal(0, vol, n)))
        markets[name] = _market(close, close * (1 - vol), close * (1 + vol))
        entries[name] = rng.random(n) < 0.04
        exits[name] = rng.random(n) < 0.02
    return markets, entries, exits


def test_every_row_equals_run(portfolio):
    markets, entries, exits = portfolio
    s = bt.sweep(markets, entries=entries, exits=exits, margin_mode=["isolated", "cross"],
                 leverage=[2, 10, 40], stop_loss=[None, 0.05], size=0.4, progress=False)
    assert s.names == ["margin_mode", "leverage", "stop_loss"]
    assert len(s) == 12
    assert isinstance(s.market, dict)
    for i in range(len(s)):
        p = s.params_at(i)
        r = bt.run(markets, entries=entries, exits=exits, **p)
        expected = r.stats.drop(["version", "fingerprint"])
        got = s.stats.iloc[i]
        for key in got.index:
            a, b = got[key], expected[key]
            assert a == b or (pd.isna(a) and pd.isna(b)), (i, key, a, b)
    # The grid is not degenerate: leverage and mode change the outcome.
    final = s.stats["final_equity"]
    assert (final.loc["isolated"].to_numpy() != final.loc["cross"].to_numpy()).any()
    assert s.stats["n_liquidations"].max() > 0


def test_run_of_a_combination_is_the_portfolio_result(portfolio):
    markets, entries, exits = portfolio
    s = bt.sweep(markets, entries=entries, exits=exits, margin_mode=["isolated", "cross"],
                 leverage=[3, 20], progress=False)
    r = s.run({"margin_mode": "cross", "leverage": 20})
    assert list(r.position.columns) == ["BTC", "ETH"]
    assert r.params["margin_mode"] == "cross" and r.params["leverage"] == 20
    row = s.stats.loc[("cross", 20)]
    assert r.stats["final_equity"] == row["final_equity"]
    assert "BTC+ETH" in repr(s) and "4 combinations" in repr(s)


def test_results_do_not_depend_on_the_thread_count(portfolio):
    markets, entries, exits = portfolio
    grid = dict(margin_mode=["isolated", "cross"], leverage=[1, 5, 25, 50])
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = bt.sweep(markets, entries=entries, exits=exits, progress=False, **grid).stats
    finally:
        numba.set_num_threads(before)
    many = bt.sweep(markets, entries=entries, exits=exits, progress=False, **grid).stats
    pd.testing.assert_frame_equal(one, many, check_exact=True)


def test_the_seed_warning_across_the_grid():
    # BTC 100 -> low 60 in bar 2 -> closes 80; ETH flat at 10. size=0.5 of the free wallet:
    # BTC gets a 5,000 budget, ETH 0.5 x (10,000 - 5,000) = 2,500 (no fees), both filled at
    # the bar-1 open.
    # 10x: BTC 50,000 notional = 500 BTC. Isolated: liquidated at 100 (1 - 0.1 + 0.005) =
    #      90.5, losing its 5,000 margin; ETH untouched -> 5,000. Cross: at the low, 10,000 +
    #      500 (60 - 100) = -10,000 <= MM -> everything is lost -> 0.
    # 2x: BTC 10,000 notional = 100 BTC, isolated liq 100 (1 - 0.5 + 0.005) = 50.5 < 60: no
    #      liquidation in either mode -> 10,000 + 100 (80 - 100) = 8,000.
    btc = _market([100.0, 100.0, 80.0, 80.0], [99.5, 99.5, 60.0, 79.5],
                  [100.5, 100.5, 100.0, 80.5])
    eth = _market([10.0] * 4, [10.0] * 4, [10.5] * 4)
    entry = np.array([True, False, False, False])
    s = bt.sweep({"BTC": btc, "ETH": eth}, entries={"BTC": entry, "ETH": entry},
                 margin_mode=["isolated", "cross"], leverage=[2, 10], size=0.5, fees=0.0,
                 progress=False)
    final = s.stats["final_equity"]
    assert final[("isolated", 10)] == pytest.approx(5_000.0)
    assert final[("cross", 10)] == pytest.approx(0.0, abs=1e-9)
    assert final[("isolated", 2)] == pytest.approx(8_000.0)
    assert final[("cross", 2)] == pytest.approx(8_000.0)
    assert s.stats["ruined"].tolist() == [False, False, False, True]


def test_portfolio_sweep_refusals(portfolio):
    markets, entries, exits = portfolio
    with pytest.raises(ValueError, match="several signal sets"):
        bt.sweep(markets, entries={"BTC": {"fast": entries["BTC"]}}, leverage=[1, 2])
    with pytest.raises(TypeError, match="executor"):
        bt.sweep(markets, entries=entries, leverage=[1, 2], executor=object())
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        bt.sweep(markets, entries=entries, leverage=[1, 2], chunk_size=0)
    with pytest.raises(ValueError, match="cannot be swept"):
        bt.sweep(markets, entries=entries, settlement_price=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"leverage.*combination \{'leverage': 500"):
        bt.sweep(markets, entries=entries, leverage=[1, 500], progress=False)


@pytest.mark.filterwarnings("ignore::UserWarning")  # stops beyond 40x liquidation
def test_chunked_and_dask_portfolio_sweeps_give_the_local_stats(portfolio):
    markets, entries, exits = portfolio
    grid = dict(margin_mode=["isolated", "cross"], leverage=[2, 10, 40], stop_loss=[None, 0.05],
                size=0.4, progress=False)
    local = bt.sweep(markets, entries=entries, exits=exits, **grid)
    chunked = bt.sweep(markets, entries=entries, exits=exits, chunk_size=5, **grid)
    np.testing.assert_array_equal(chunked._values, local._values)
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = bt.sweep(markets, entries=entries, exits=exits, executor=client,
                          chunk_size=5, **grid)
    np.testing.assert_array_equal(remote._values, local._values)
    assert remote.stats.index.equals(local.stats.index)



# --- the combinations-inner kernel (kernels/portfolio_sweep.py) ---------------------------------

def _funded_portfolio(n=3000):
    """Three 1m markets with 8-hour funding, binance tiers, mark != last on wicks, a 30/300
    moving-average cross each (long and short): quiet bars, funding bars and signal bars."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.bench_sweep import signal_sets_periods, synthetic_market

    markets, sigs = {}, {k: {} for k in ("entries", "exits", "short_entries", "short_exits")}
    for name, seed in (("BTC", 7), ("ETH", 8), ("SOL", 9)):
        markets[name] = synthetic_market(n, seed)
        sets = signal_sets_periods(markets[name], 30, 300)
        for key in sigs:
            sigs[key][name] = sets[key]["long"] | sets[key]["short"]
    return markets, sigs


def _assert_rows_equal_run(markets, sigs, s):
    for i in range(len(s)):
        p = s.params_at(i)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = bt.run(markets, **sigs, **p)
        expected = r.stats.drop(["version", "fingerprint"])
        got = s.stats.iloc[i]
        for key in got.index:
            a, b = got[key], expected[key]
            assert a == b or (pd.isna(a) and pd.isna(b)), (p, key, a, b)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_kernel_rows_equal_run_with_funding_stops_and_trailing():
    markets, sigs = _funded_portfolio()
    s = bt.sweep(markets, **sigs, progress=False, margin_mode=["isolated", "cross"],
                 leverage=[3, 25, 100], stop_loss=[None, 0.004], trailing_stop=[None, 0.006],
                 take_profit=[None, 0.01], size=0.3, fees=0.0005)
    assert s.stats["funding_paid"].abs().max() > 0
    assert s.stats["n_liquidations"].max() > 0 and s.stats["n_stops"].max() > 0
    _assert_rows_equal_run(markets, sigs, s)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_kernel_rows_equal_run_fill_close_path_ohlc_and_ruin():
    markets, sigs = _funded_portfolio(1500)
    s = bt.sweep(markets, **sigs, progress=False, margin_mode=["isolated", "cross"],
                 leverage=[50, 125], fill=["next_open", "close"], path=["pessimistic", "ohlc"],
                 size=1.0, fees=0.002, stop_trigger=["last", "mark"], stop_loss=[None, 0.003])
    _assert_rows_equal_run(markets, sigs, s)


# --- random grids and the cross certificates (kernels/cross_quiet.py) ---------------------------

def _random_market(rng, n, inst, start, vol):
    """One-minute random walk with wicks beyond the mark, 8-hour funding."""
    ts = pd.date_range("2022-01-01", periods=n, freq="1min", tz="UTC")
    close = start * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0, vol * 0.8, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    wick = rng.random(n) < 0.01
    bars = pd.DataFrame({"open": open_, "high": np.where(wick, high * 1.01, high),
                         "low": np.where(wick[::-1], low * 0.99, low), "close": close,
                         "volume": 1.0}, index=ts)
    mark = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=ts)
    fts = pd.date_range(ts[0], ts[-1], freq="8h")
    funding = pd.DataFrame({"timestamp": fts, "rate": rng.normal(1e-4, 5e-4, len(fts))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, mark=mark, funding=funding, instrument=inst)


def _jumpy_instrument():
    """Binance rules with a tier table whose ``cum`` does not keep the maintenance
    continuous (it jumps up at each floor): the certificates must allow for it."""
    from backtest.instruments.tiers import TierTable

    tiers = TierTable.from_rows([(0.0, 0.004, 0.0, 125.0), (2_000.0, 0.01, 0.0, 50.0),
                                    (6_000.0, 0.02, 5.0, 25.0)],
                                   effective_date="2024-01-01", source="test")
    return bt.get_instrument("binance:BTCUSDT").replace(tiers=tiers, max_leverage=125.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_random_grids_equal_run(seed):
    """Random markets (Binance tiers, a discontinuous table, one-tier simple rules),
    random signals and a random grid over both margin modes, leverage, stops, trailing
    stops and take-profits: every row equals run() bit for bit."""
    rng = np.random.default_rng(seed)
    n = 3000
    insts = [bt.get_instrument("binance:BTCUSDT"), _jumpy_instrument(),
             bt.Instrument.simple(mmr=0.01, taker_fee=0.0004)]
    markets, sigs = {}, {k: {} for k in ("entries", "exits", "short_entries", "short_exits")}
    for name, inst, start in zip(("A", "B", "C"), insts, (30_000.0, 100.0, 7.0), strict=True):
        markets[name] = _random_market(rng, n, inst, start, float(rng.uniform(5e-4, 2e-3)))
        for key, prob in (("entries", 0.004), ("exits", 0.002), ("short_entries", 0.004),
                          ("short_exits", 0.002)):
            sigs[key][name] = rng.random(n) < prob
    grid = dict(margin_mode=["isolated", "cross"],
                leverage=sorted({int(x) for x in rng.choice([1, 3, 10, 25, 50, 100], 3)}),
                stop_loss=[None, float(rng.uniform(0.002, 0.02))],
                trailing_stop=[None, float(rng.uniform(0.003, 0.02))],
                take_profit=[None, float(rng.uniform(0.005, 0.03))],
                size=float(rng.uniform(0.2, 1.0)), fees=0.0005)
    s = bt.sweep(markets, **sigs, progress=False, **grid)
    assert s.stats["n_trades"].min() > 0
    _assert_rows_equal_run(markets, sigs, s)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_inverse_and_quanto_markets_and_ruin_equal_run():
    """BitMEX inverse and quanto contracts settled in XBT (no shortcut for the cross test:
    it is evaluated exactly), at leverages and sizes that ruin some combinations (a ruined
    portfolio with nothing open takes the early exit): rows equal run()."""
    rng = np.random.default_rng(5)
    n = 3000
    markets, sigs = {}, {k: {} for k in ("entries", "exits", "short_entries", "short_exits")}
    for name, inst, start in (("XBT", "bitmex:XBTUSD", 20_000.0),
                              ("ETH", "bitmex:ETHUSD", 1_500.0)):
        markets[name] = _random_market(rng, n, bt.get_instrument(inst), start, 2e-3)
        for key, prob in (("entries", 0.004), ("exits", 0.001), ("short_entries", 0.004),
                          ("short_exits", 0.001)):
            sigs[key][name] = rng.random(n) < prob
    s = bt.sweep(markets, **sigs, progress=False, margin_mode=["isolated", "cross"],
                 leverage=[5, 25, 50], stop_loss=[None, 0.01], size=1.0, fees=0.002)
    assert s.stats["ruined"].any() and s.stats["n_liquidations"].max() > 0
    _assert_rows_equal_run(markets, sigs, s)


def test_cross_certificates_imply_a_positive_surplus():
    """Whenever a certificate covers a bar, the exact cross test (``cross_shortfall`` on a
    bar without funding) and the moved-marks test find the surplus > 0, also with the
    wallet set so that the surplus at the certified marks is just above the margin."""
    from numba import njit

    from backtest.kernels import records as R
    from backtest.kernels.cross import _surplus_moved, cross_shortfall
    from backtest.kernels.cross_quiet import cert_pads, certify, covered
    from backtest.simulation.portfolio import PortfolioInputs

    @njit
    def check(states, bars, insts, tiers, wallet, d, surplus, marks, out):
        pads = np.empty(insts.shape[0])
        if not cert_pads(insts, tiers, pads):
            return -1
        rows = np.zeros(insts.shape[0], dtype=np.int64)
        cert = np.zeros(2 + insts.shape[0])
        certify(states, bars, insts, tiers, wallet, rows, pads, d, cert, surplus)
        hits = 0
        for i in range(marks.shape[0]):
            for j in range(insts.shape[0]):
                bars[j, R.M_MARK_LOW] = marks[i, j]
                bars[j, R.M_MARK_HIGH] = marks[i, j]
            if covered(states, bars, cert, d):
                hits += 1
                out[i, 0] = cross_shortfall(states, bars, insts, tiers, wallet)[0]
                out[i, 1] = _surplus_moved(states, bars, insts, tiers, wallet, d)
            else:
                out[i, 0] = np.nan
                out[i, 1] = np.nan
        return hits

    @njit
    def surplus_moved(states, bars, insts, tiers, wallet, d):
        return _surplus_moved(states, bars, insts, tiers, wallet, d)   # no Python wrapper

    rng = np.random.default_rng(11)
    markets = {"A": _random_market(rng, 1000, bt.get_instrument("binance:BTCUSDT"), 30_000.0,
                                   1e-3),
               "B": _random_market(rng, 1000, _jumpy_instrument(), 100.0, 1e-3)}
    inputs = PortfolioInputs(markets, (None, None, None, None), {})
    insts, tiers = inputs.insts, inputs.tiers
    total = 0
    for trial in range(200):
        states = np.zeros((2, R.N_STATE))
        base = np.array([30_000.0, 100.0]) * rng.uniform(0.8, 1.2, 2)
        for j in range(2):
            states[j, R.S_SIDE] = rng.choice([-1.0, 1.0])
            states[j, R.S_SIZE] = rng.uniform(0.01, 80.0) / base[j] * 1_000
            states[j, R.S_ENTRY] = base[j] * rng.uniform(0.97, 1.03)
        bars = np.zeros((2, R.N_BAR))
        bars[:, R.M_MARK_LOW] = base
        bars[:, R.M_MARK_HIGH] = base
        d = 0.0 if trial % 2 else float(rng.uniform(0.0, 0.05))
        # the wallet that puts the surplus at the bar's marks (moved by d) at about zero,
        # plus a little: certified there at most, and only when above the margin
        zero = -surplus_moved(states, bars, insts, tiers, 0.0, d)
        wallet = float(zero + abs(zero) * rng.choice([1e-15, 1e-12, 1e-9, 1e-6, 1e-3, 0.1]))
        marks = base * rng.uniform(0.9, 1.1, (400, 2))
        marks[:100] = base * (1 + rng.normal(0, 1e-12, (100, 2)))   # right at the boundary
        out = np.zeros((400, 2))
        surplus = surplus_moved(states, bars, insts, tiers, wallet, d)
        # (the surplus only sets how far beyond the marks it certifies: also a wrong one)
        hits = check(states, bars.copy(), insts, tiers, wallet, d,
                     abs(surplus) * rng.choice([1.0, 1e6]), marks, out)
        assert hits >= 0
        total += hits
        ok = ~np.isnan(out[:, 0])
        assert (out[ok, 0] > 0.0).all() and (out[ok, 1] > 0.0).all(), trial
    assert total > 200   # the certificates do cover bars
