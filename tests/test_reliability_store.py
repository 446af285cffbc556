"""Issue 13, the sweep store and the sweep's bounds: exclusive use (a race between two
sweeps has one loser), verified chunks (checksum, identity, rows, NaN), paths (``~``,
empty), parameter values compared as numbers, failed Dask tasks, the memory budget and
ambiguous sweep lists. Every refusal is checked for its type, the culprit and the fix."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import types
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_sweep import make_market, random_signals

import backtest as bt
import backtest.sweeps.single as sweeps_module
from backtest.kernels.stats import STAT_NAMES
from backtest.sweeps.executor import SweepTaskError, gather_chunks, sweep_identity
from backtest.sweeps.grid import MemoryBudgetError, memory_estimate, parse_memory
from backtest.sweeps.store import CHUNKS, MANIFEST, StoreBusyError, SweepStore

GRID = dict(leverage=[1, 3, 10], stop_loss=[None, 0.02])      # 6 combinations


@pytest.fixture(scope="module")
def ms():
    market = make_market(n=200, seed=11)
    return market, random_signals(market.n_bars, 3, rate=0.05)


def quiet(market, signals, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.sweep(market, **signals, progress=False, **{**GRID, **kwargs})


def chunk(store, lo, hi):
    return store / CHUNKS / f"{lo:012d}-{hi:012d}.parquet"


# --- exclusive use -----------------------------------------------------------------------

def test_two_different_sweeps_racing_into_one_new_store_have_exactly_one_loser(tmp_path):
    """Repeated: both constructors released at once by a barrier. Before the lock and the
    exclusive manifest creation both could write (check-then-write race)."""
    for trial in range(40):
        path = tmp_path / f"race{trial}"
        barrier = threading.Barrier(2)
        outcome: dict[str, object] = {}

        def open_one(name: str, fp: str, path=path, barrier=barrier, outcome=outcome) -> None:
            barrier.wait()
            try:
                outcome[name] = SweepStore(path, fp, 6, STAT_NAMES)
            except ValueError as exc:
                outcome[name] = exc

        threads = [threading.Thread(target=open_one, args=(n, fp))
                   for n, fp in (("a", "f" * 16), ("b", "0" * 16))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [n for n, v in outcome.items() if isinstance(v, SweepStore)]
        lost = [v for v in outcome.values() if isinstance(v, ValueError)]
        assert len(won) == 1 and len(lost) == 1, (trial, outcome)
        message = str(lost[0])
        assert str(path) in message
        assert ("in use by another sweep" in message or "another sweep" in message)
        manifest = json.loads((path / MANIFEST).read_text())
        assert manifest["inputs"] == {"all inputs": {"a": "f" * 16, "b": "0" * 16}[won[0]]}
        outcome[won[0]].close()


def test_a_store_in_use_is_refused_even_for_the_same_sweep(tmp_path):
    first = SweepStore(tmp_path / "busy", "a" * 16, 6, STAT_NAMES)
    with pytest.raises(StoreBusyError, match="in use by another sweep") as err:
        SweepStore(tmp_path / "busy", "a" * 16, 6, STAT_NAMES)
    assert "another store= directory" in str(err.value)
    first.close()
    SweepStore(tmp_path / "busy", "a" * 16, 6, STAT_NAMES).close()  # released: usable


def test_two_real_sweeps_at_once_one_wins_and_the_winner_resumes_correctly(ms, tmp_path):
    market, signals = ms
    store = tmp_path / "two"
    plain_a = quiet(market, signals)
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def go(name, **kw):
        barrier.wait()
        try:
            results[name] = quiet(market, signals, store=store, chunk_size=2, **kw)
        except ValueError as exc:
            results[name] = exc

    ts = [threading.Thread(target=go, args=("a",)),
          threading.Thread(target=go, args=("b",), kwargs={"leverage": [2, 4, 8]})]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    errors = [v for v in results.values() if isinstance(v, ValueError)]
    done = [k for k, v in results.items() if not isinstance(v, ValueError)]
    # both may succeed only one after the other is impossible: the loser's grid differs
    assert len(errors) == 1 and len(done) == 1
    again = quiet(market, signals, store=store, **({} if done == ["a"] else
                                                   {"leverage": [2, 4, 8]}))
    if done == ["a"]:
        np.testing.assert_array_equal(again._values, plain_a._values)


# --- verified chunks -----------------------------------------------------------------------

def test_flipped_bytes_in_a_chunk_are_named_not_read(ms, tmp_path):
    market, signals = ms
    store = tmp_path / "flip"
    quiet(market, signals, store=store, chunk_size=3)
    victim = chunk(store, 3, 6)
    # values changed but still a valid Parquet file with this sweep's metadata: only the
    # checksum can tell (before: 3 wrong rows returned without a word)
    table = pq.read_table(victim)
    cols = {n: pa.array(np.asarray(table.column(n)) * 1.5) for n in table.column_names}
    pq.write_table(pa.table(cols).replace_schema_metadata(table.schema.metadata), victim)
    with pytest.raises(bt.DataError, match="does not match the checksum") as err:
        quiet(market, signals, store=store)
    assert str(victim) in str(err.value) and "delete the file" in str(err.value)
    # raw flipped bytes in the middle of the file: refused too, naming the file
    data = bytearray(chunk(store, 0, 3).read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 8):
        data[i] ^= 0xFF
    victim.unlink()
    chunk(store, 0, 3).write_bytes(bytes(data))
    with pytest.raises(bt.DataError) as err:
        quiet(market, signals, store=store)
    assert str(chunk(store, 0, 3)) in str(err.value) and "delete the file" in str(err.value)
    chunk(store, 0, 3).unlink()
    fixed = quiet(market, signals, store=store)  # the fix in the message works
    np.testing.assert_array_equal(fixed._values, quiet(market, signals)._values)


def test_a_chunk_of_zeros_is_refused(ms, tmp_path):
    market, signals = ms
    store = tmp_path / "zeros"
    quiet(market, signals, store=store, chunk_size=3)
    victim = chunk(store, 0, 3)
    victim.write_bytes(bytes(len(victim.read_bytes())))
    with pytest.raises(bt.DataError, match="cannot be read") as err:
        quiet(market, signals, store=store)
    assert str(victim) in str(err.value)


def test_a_chunk_from_another_sweep_is_refused(ms, tmp_path):
    market, signals = ms
    quiet(market, signals, store=tmp_path / "mine", chunk_size=3)
    quiet(market, signals, store=tmp_path / "theirs", chunk_size=3, size=0.5)
    chunk(tmp_path / "mine", 3, 6).write_bytes(chunk(tmp_path / "theirs", 3, 6).read_bytes())
    with pytest.raises(bt.DataError, match="belongs to another sweep") as err:
        quiet(market, signals, store=tmp_path / "mine")
    assert "000000000003-000000000006.parquet" in str(err.value)
    assert "delete the file" in str(err.value)


def test_an_all_nan_chunk_is_named_not_crashed_on(ms, tmp_path):
    market, signals = ms
    store = tmp_path / "nan"
    quiet(market, signals, store=store, chunk_size=3)
    victim = chunk(store, 0, 3)
    meta = pq.read_table(victim).schema.metadata
    nan = pa.table({n: pa.array(np.full(3, np.nan)) for n in STAT_NAMES})
    pq.write_table(nan.replace_schema_metadata(meta), victim)
    # even with a matching checksum (a buggy writer), an empty row is refused
    manifest = json.loads((store / MANIFEST).read_text())
    manifest["chunks"][victim.name]["sha256"] = hashlib.sha256(victim.read_bytes()).hexdigest()
    (store / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(bt.DataError, match="all NaN") as err:
        quiet(market, signals, store=store)
    assert str(victim) in str(err.value) and "delete the file" in str(err.value)


def test_an_unlisted_chunk_is_refused(ms, tmp_path):
    market, signals = ms
    store = tmp_path / "unlisted"
    quiet(market, signals, store=store, chunk_size=3)
    extra = chunk(store, 1, 2)
    extra.write_bytes(chunk(store, 0, 3).read_bytes())
    with pytest.raises(bt.DataError, match="not listed in sweep.json") as err:
        quiet(market, signals, store=store)
    assert str(extra) in str(err.value)


def test_a_listed_chunk_whose_file_is_gone_is_recomputed(ms, tmp_path, monkeypatch):
    market, signals = ms
    store = tmp_path / "gone"
    plain = quiet(market, signals)
    quiet(market, signals, store=store, chunk_size=3)
    chunk(store, 3, 6).unlink()  # e.g. a crash after the manifest entry, before the file
    calls = []
    real = sweeps_module.run_blocks
    monkeypatch.setattr(sweeps_module, "run_blocks",
                        lambda p, *a, **k: (calls.append(p.shape[0]), real(p, *a, **k))[1])
    again = quiet(market, signals, store=store)
    assert calls == [3]
    np.testing.assert_array_equal(again._values, plain._values)


# --- paths and identity ----------------------------------------------------------------------

def test_tilde_is_expanded_and_empty_paths_are_refused(ms, tmp_path, monkeypatch):
    market, signals = ms
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    quiet(market, signals, store="~/sweeps/x")
    assert (home / "sweeps" / "x" / MANIFEST).exists()
    assert not (cwd / "~").exists()
    for empty in ("", "   "):
        with pytest.raises(ValueError, match="is empty") as err:
            quiet(market, signals, store=empty)
        assert "store='sweeps/btc-lev'" in str(err.value)
    assert list(cwd.iterdir()) == []


def test_integer_and_float_values_are_one_sweep(ms, tmp_path, monkeypatch):
    market, signals = ms
    store = tmp_path / "numbers"
    quiet(market, signals, store=store, leverage=[2, 5], size=1)
    calls = []
    real = sweeps_module.run_blocks
    monkeypatch.setattr(sweeps_module, "run_blocks",
                        lambda p, *a, **k: (calls.append(p.shape[0]), real(p, *a, **k))[1])
    quiet(market, signals, store=store, leverage=[2.0, 5.0], size=1.0)
    quiet(market, signals, store=store, leverage=np.array([2.0, 5.0]), size=np.float64(1))
    assert calls == []  # read back, nothing recomputed
    assert sweep_identity({"size": 1}, [("leverage", [2, 5])]) == \
        sweep_identity({"size": 1.0}, [("leverage", [np.float64(2), 5.0])])
    assert sweep_identity({"x": True}, [])["scalars"]["x"] is True  # a bool stays a bool


@pytest.mark.parametrize("change, culprit", [
    ("grid", "levels"), ("scalar", "scalars"), ("signals", "signals"), ("market", "market")])
def test_a_refused_store_says_which_input_differs(ms, tmp_path, change, culprit):
    market, signals = ms
    store = tmp_path / "which"
    quiet(market, signals, store=store)
    kwargs: dict = {}
    if change == "grid":
        kwargs["leverage"] = [1, 3, 11]
    elif change == "scalar":
        kwargs["size"] = 0.5
    elif change == "signals":
        signals = {**signals, "exits": np.roll(signals["exits"], 1)}
    else:
        market = make_market(n=200, seed=12)
    with pytest.raises(ValueError, match="holds the stats of another sweep") as err:
        quiet(market, signals, store=store, **kwargs)
    assert f"these inputs differ: {culprit}" in str(err.value)
    assert "another directory" in str(err.value)


# --- Dask tasks that fail or are cancelled -------------------------------------------------

class FakeFuture:
    def __init__(self, key, status, value=None):
        self.key, self.status, self._value = key, status, value

    def result(self):
        if self.status != "finished":
            raise RuntimeError("not finished")
        return self._value

    def exception(self):
        return MemoryError("worker killed")


class FakeQueue(list):
    def add(self, f):
        self.append(f)

    def clear(self):
        del self[:]


@pytest.mark.parametrize("status, words", [("cancelled", "was cancelled"),
                                           ("error", "MemoryError: worker killed"),
                                           ("finished-garbage", "failed")])
def test_a_failed_or_cancelled_dask_task_raises_clearly_and_keeps_what_finished(
        monkeypatch, status, words):
    fake = types.ModuleType("distributed")
    fake.as_completed = lambda futures: FakeQueue(futures)
    monkeypatch.setitem(sys.modules, "distributed", fake)
    client = types.SimpleNamespace(nthreads=lambda: {"w1": 1})
    n = len(STAT_NAMES)

    def submit(lo, hi):
        if lo == 0:
            return FakeFuture((lo, hi), "finished", np.ones((hi - lo, n)))
        if status == "finished-garbage":  # what a lost worker's future used to hand back
            return FakeFuture((lo, hi), "finished", [TypeError("FutureCancelledError")])
        return FakeFuture((lo, hi), status)

    stats = np.zeros((6, n))
    saved = []
    with pytest.raises(SweepTaskError, match=words) as err:
        gather_chunks(client, [(0, 3), (3, 6)], submit, stats,
                      lambda lo, hi: saved.append((lo, hi)))
    assert "combinations 3..5" in str(err.value) and "store=" in str(err.value)
    assert saved == [(0, 3)]  # the finished chunk went to the store first


# --- bounded work ------------------------------------------------------------------------------

def test_a_huge_grid_is_refused_before_allocating(ms):
    market, signals = ms
    grid = dict(leverage=list(np.linspace(1, 50, 1000)), stop_loss=list(np.linspace(
        0.001, 0.01, 1000)), take_profit=list(np.linspace(0.01, 0.1, 1000)))   # 10^9
    with pytest.raises(MemoryBudgetError, match="1,000,000,000 combinations") as err:
        bt.sweep(market, **signals, progress=False, **grid)
    text = str(err.value)
    assert "budget" in text and "smaller grid" in text and "max_memory=" in text
    assert isinstance(err.value, ValueError)


def test_max_memory_bounds_and_parsing(ms):
    market, signals = ms
    with pytest.raises(MemoryBudgetError, match="max_memory budget of 1.0kB"):
        quiet(market, signals, max_memory="1kB")
    assert len(quiet(market, signals, max_memory="1GB")) == 6
    assert len(quiet(market, signals, max_memory=10**9)) == 6
    assert parse_memory("2GiB") == 2 * 2**30 and parse_memory("500 MB") == 500 * 10**6
    for bad, kind in (("lots", ValueError), (-1, ValueError), (True, TypeError),
                      ("8 parsecs", ValueError)):
        with pytest.raises(kind, match="max_memory"):
            parse_memory(bad)
    assert memory_estimate(10**6, 2, len(STAT_NAMES)) > 10**6 * len(STAT_NAMES) * 8


@pytest.mark.parametrize("value, kind", [
    (pd.Series([1.0, 2.0]), "Series"), (pd.Index([1.0, 2.0]), "Index"), ({1, 2}, "set"),
    ({"a": 1}, "dict"), (iter([1, 2]), "list_iterator"), (np.ones((2, 2)), "2-d array")])
def test_ambiguous_sweep_lists_are_refused_with_the_fix(ms, value, kind):
    market, signals = ms
    with pytest.raises(TypeError, match="leverage") as err:
        bt.sweep(market, **signals, progress=False, leverage=value)
    assert kind in str(err.value) and "Fix:" in str(err.value)
