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
