"""sweep(..., store=DIR): stats kept on disk chunk by chunk; an interrupted sweep resumes
with only the missing combinations and ends bit-identical to an uninterrupted one; another
sweep's store is refused; damaged files are named; nothing is ever half-written."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from test_portfolio_sweep import portfolio  # noqa: F401  (fixture)
from test_sweep import make_market, random_signals

import backtest as bt
import backtest.sweeps.single as sweeps_module
from backtest.kernels.stats import STAT_NAMES
from backtest.sweeps.store import CHUNKS, MANIFEST, STATS_FILE, todo_ranges

GRID = dict(leverage=[1, 3, 10, 30], stop_loss=[None, 0.01, 0.03],
            margin_mode=["isolated", "cross"])          # 24 combinations


@pytest.fixture(scope="module")
def market_and_signals():
    market = make_market(n=240, seed=5)
    return market, random_signals(market.n_bars, 9, rate=0.05)


def sweep_quietly(market, signals, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.sweep(market, **signals, progress=False, **{**GRID, **kwargs})


def chunk_files(store):
    return sorted(p.name for p in (store / CHUNKS).iterdir())


class Interrupt(Exception):
    pass


REAL_RUN_BLOCKS = sweeps_module.run_blocks


def counting_run_blocks(monkeypatch, fail_after: int | None = None) -> list[int]:
    """Patch sweeps.run_blocks to record the rows of each call (and raise on call
    ``fail_after + 1``, as a Ctrl-C or a killed worker would)."""
    rows: list[int] = []
    original = REAL_RUN_BLOCKS

    def wrapper(params, *args, **kwargs):
        if fail_after is not None and len(rows) == fail_after:
            raise Interrupt
        rows.append(params.shape[0])
        return original(params, *args, **kwargs)

    monkeypatch.setattr(sweeps_module, "run_blocks", wrapper)
    return rows


def test_stored_sweep_equals_the_plain_one_and_is_read_back(market_and_signals, tmp_path,
                                                            monkeypatch):
    market, signals = market_and_signals
    plain = sweep_quietly(market, signals)
    store = tmp_path / "lev"
    stored = sweep_quietly(market, signals, store=store, chunk_size=5)
    np.testing.assert_array_equal(stored._values, plain._values)
    pd.testing.assert_frame_equal(stored.stats, plain.stats)
    assert chunk_files(store) == [f"{lo:012d}-{min(lo + 5, 24):012d}.parquet"
                                  for lo in range(0, 24, 5)]
    manifest = json.loads((store / MANIFEST).read_text())
    assert manifest["n_combos"] == 24 and manifest["stats"] == list(STAT_NAMES)
    # the labelled table, for pandas elsewhere
    table = pd.read_parquet(store / STATS_FILE)
    assert list(table.columns) == ["leverage", "stop_loss", "margin_mode", *STAT_NAMES]
    np.testing.assert_array_equal(table["final_equity"], plain.stats["final_equity"])
    assert table["leverage"].tolist() == plain.stats.index.get_level_values(0).tolist()
    # a finished store is read back: no kernel call at all
    calls = counting_run_blocks(monkeypatch)
    again = sweep_quietly(market, signals, store=store)
    assert calls == []
    np.testing.assert_array_equal(again._values, plain._values)


def test_interrupted_sweep_resumes_with_the_missing_combinations_only(market_and_signals,
                                                                      tmp_path, monkeypatch):
    market, signals = market_and_signals
    plain = sweep_quietly(market, signals)
    store = tmp_path / "resume"
    counting_run_blocks(monkeypatch, fail_after=2)
    with pytest.raises(Interrupt):
        sweep_quietly(market, signals, store=store, chunk_size=4)
    assert chunk_files(store) == ["000000000000-000000000004.parquet",
                                  "000000000004-000000000008.parquet"]
    assert not (store / STATS_FILE).exists()
    assert not [p for p in store.rglob("*") if p.name.endswith(".tmp")]
    # resume with another chunk size: the 16 missing combinations, nothing else
    calls = counting_run_blocks(monkeypatch)
    resumed = sweep_quietly(market, signals, store=store, chunk_size=6)
    assert calls == [6, 6, 4]
    np.testing.assert_array_equal(resumed._values, plain._values)
    # a chunk deleted by hand is recomputed, alone
    (store / CHUNKS / "000000000004-000000000008.parquet").unlink()
    calls = counting_run_blocks(monkeypatch)
    again = sweep_quietly(market, signals, store=store)
    assert calls == [4]
    np.testing.assert_array_equal(again._values, plain._values)


@pytest.mark.parametrize("change", ["grid", "scalar", "signals", "market"])
def test_a_store_of_another_sweep_is_refused(market_and_signals, tmp_path, change):
    market, signals = market_and_signals
    store = tmp_path / "s"
    sweep_quietly(market, signals, store=store)
    before = {p.name: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    kwargs = {"store": store}
    if change == "grid":
        kwargs["leverage"] = [1, 3, 10, 50]
    elif change == "scalar":
        kwargs["size"] = 0.5
    elif change == "signals":
        signals = {**signals, "entries": np.roll(signals["entries"], 1)}
    else:
        market = make_market(n=240, seed=6)
    with pytest.raises(ValueError, match="holds the stats of another sweep") as err:
        sweep_quietly(market, signals, **kwargs)
    assert str(store) in str(err.value) and "another directory" in str(err.value)
    after = {p.name: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert after == before


def test_damaged_or_foreign_files_are_named(market_and_signals, tmp_path):
    market, signals = market_and_signals
    store = tmp_path / "d"
    sweep_quietly(market, signals, store=store, chunk_size=12)
    victim = store / CHUNKS / "000000000012-000000000024.parquet"
    victim.write_bytes(victim.read_bytes()[:50])
    with pytest.raises(bt.DataError, match="cannot be read") as err:
        sweep_quietly(market, signals, store=store)
    assert str(victim) in str(err.value) and "delete the file" in str(err.value)
    victim.unlink()
    (store / CHUNKS / "000000000020-000000000030.parquet").write_bytes(b"")
    with pytest.raises(bt.DataError, match="outside this sweep's 0..23"):
        sweep_quietly(market, signals, store=store)


def test_store_argument_refusals(market_and_signals, tmp_path):
    market, signals = market_and_signals
    with pytest.raises(TypeError, match="store= takes a directory path"):
        sweep_quietly(market, signals, store=3)
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        sweep_quietly(market, signals, store=afile)
    orphan = tmp_path / "orphan"
    (orphan / CHUNKS).mkdir(parents=True)
    (orphan / CHUNKS / "000000000000-000000000004.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match=f"no {MANIFEST}"):
        sweep_quietly(market, signals, store=orphan)


def test_portfolio_sweep_store(portfolio, tmp_path):  # noqa: F811
    markets, entries, exits = portfolio
    grid = dict(margin_mode=["isolated", "cross"], leverage=[2, 10, 40], size=0.4,
                progress=False)
    plain = bt.sweep(markets, entries=entries, exits=exits, **grid)
    store = tmp_path / "book"
    stored = bt.sweep(markets, entries=entries, exits=exits, store=store, **grid)
    np.testing.assert_array_equal(stored._values, plain._values)
    assert (store / STATS_FILE).exists() and chunk_files(store)
    for name in chunk_files(store)[:1]:
        (store / CHUNKS / name).unlink()
    again = bt.sweep(markets, entries=entries, exits=exits, store=store, **grid)
    np.testing.assert_array_equal(again._values, plain._values)
    with pytest.raises(ValueError, match="another sweep"):
        bt.sweep(markets, entries=entries, exits=exits, store=store,
                 **{**grid, "leverage": [2, 10]})


def test_dask_sweep_store_resumes_to_the_local_stats(market_and_signals, tmp_path):
    distributed = pytest.importorskip("distributed")
    market, signals = market_and_signals
    local = sweep_quietly(market, signals)
    store = tmp_path / "remote"
    sweep_quietly(market, signals, store=store, chunk_size=8)
    (store / CHUNKS / "000000000008-000000000016.parquet").unlink()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = sweep_quietly(market, signals, store=store, executor=client, chunk_size=3)
    np.testing.assert_array_equal(remote._values, local._values)
    assert "000000000008-000000000011.parquet" in chunk_files(store)


def test_todo_ranges():
    done = np.zeros(10, dtype=bool)
    assert todo_ranges(done, 4) == [(0, 4), (4, 8), (8, 10)]
    done[[0, 1, 5]] = True
    assert todo_ranges(done, 3) == [(2, 5), (6, 9), (9, 10)]
    assert todo_ranges(np.ones(3, dtype=bool), 2) == []
