"""sweep(): every row equals run() exactly, the cheap path equals the full step, results do
not depend on the thread count, grid order and labels, signal sets, validation, memory.

Markets are small synthetic random walks whose mark price does not follow every last-price
wick, with funding every 8 bars, built through the public ``bt.load_market``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

import backtest as bt
from backtest.kernels.stats import N_STATS, STAT_NAMES
from backtest.kernels.sweep import TILE
from backtest.simulation.arrays import (
    expiry_settlement,
    instrument_arrays,
    market_arrays,
    signal_mask,
)
from backtest.simulation.params import expand_grid
from backtest.sweeps import sweep
from backtest.sweeps.grid import Plan as _Plan
from backtest.sweeps.grid import expand as _expand
from backtest.sweeps.single import run_blocks

matplotlib.use("Agg")

REPO = Path(__file__).parents[1]
START = pd.Timestamp("2024-01-01", tz="UTC")


# --- helpers ------------------------------------------------------------------------------


def make_market(n: int = 300, seed: int = 0, instrument=None, price: float = 100.0,
                vol: float = 0.01, freq: str = "1h", funding: bool = True):
    """A random walk with mark wicks that differ from the last price's; funding every 8 bars."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(START, periods=n, freq=freq, tz="UTC", name="timestamp")
    close = price * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.concatenate(([price], close[:-1]))
    body_hi, body_lo = np.maximum(open_, close), np.minimum(open_, close)
    mark_hi = body_hi * (1 + np.abs(rng.normal(0, vol / 2, n)))
    mark_lo = body_lo * (1 - np.abs(rng.normal(0, vol / 2, n)))
    wick = rng.random(n) < 0.05                   # last-price wicks the mark ignores
    last_hi = np.where(wick, mark_hi * (1 + 3 * vol), mark_hi)
    last_lo = np.where(wick[::-1], mark_lo * (1 - 3 * vol), mark_lo)
    bars = pd.DataFrame({"open": open_, "high": last_hi, "low": last_lo, "close": close,
                         "volume": 1.0}, index=idx)
    mark = pd.DataFrame({"open": open_, "high": mark_hi, "low": mark_lo, "close": close},
                        index=idx)
    inst = instrument if instrument is not None else bt.Instrument.simple(
        mmr=0.005, taker_fee=0.0005, maker_fee=0.0002)
    if isinstance(inst, str):
        inst = bt.get_instrument(inst)
    fund = 0
    if funding and inst.kind == "perpetual":
        times = idx[::8]
        fund = pd.DataFrame({"timestamp": times, "rate": rng.normal(1e-4, 3e-4, len(times))})
    elif inst.kind != "perpetual":
        fund = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, mark=mark, funding=fund, instrument=inst)


def random_signals(n: int, seed: int, rate: float = 0.03) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.random(n) < rate
            for name in ("entries", "exits", "short_entries", "short_exits")}


def assert_rows_equal_run(result, market, signals_by_set=None, signals=None) -> None:
    """Every row of ``result.stats`` equals ``run()`` with the same parameters, bit for bit."""
    for i in range(len(result)):
        params = result.params_at(i)
        name = params.pop("signals", None)
        sig = signals_by_set[name] if name is not None else (signals or {})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = bt.run(market, **sig, **params)._stats
        got = result._values[i]
        assert np.array_equal(got, want, equal_nan=True), (
            f"row {i} {params} differs from run(): "
            + ", ".join(f"{k}: {a!r} vs {b!r}" for k, a, b in zip(STAT_NAMES, got, want,
                                                                   strict=True)
                        if not (a == b or (a != a and b != b))))


POOL = {
    "leverage": [1, 3, 10, 25, 60, 150],
    "stop_loss": [None, 0.003, 0.01, 0.03],
    "take_profit": [None, 0.005, 0.02],
    "trailing_stop": [None, 0.004, 0.015],
    "margin_mode": ["isolated", "cross"],
    "stop_trigger": ["last", "mark"],
    "stop_order": ["market", "limit"],
    "entry_order": ["market", "limit"],
    "fill": ["next_open", "close"],
    "path": ["pessimistic", "ohlc"],
    "liquidation": ["bankruptcy", "liquidation_price"],
    "fees": [None, 0.0, 0.0008],
    "slippage": [0.0, 0.0005],
    "size": [0.25, 1.0],
    "negative_equity": [False, True],
}


def random_grid(rng: np.random.Generator, pool=POOL, n_lists: int = 3) -> dict:
    names = list(pool)
    listed = list(rng.choice(names, size=n_lists, replace=False))
    grid: dict = {"stop_limit_offset": 0.002, "limit_offset": 0.001, "limit_ttl": 3,
                  "liquidation_fee": 0.001}
    for name in names:
        values = pool[name]
        if name in listed:
            k = int(rng.integers(2, min(3, len(values)) + 1))
            picks = rng.choice(len(values), size=k, replace=False)
            grid[name] = [values[j] for j in sorted(picks)]
        else:
            grid[name] = values[int(rng.integers(len(values)))]
    return grid


def kernel_inputs(market, grid, signals, n_sets=1):
    """The arrays sweep() hands to the kernel (through the same helpers)."""
    names, values, codes = _expand(grid)
    scalars = {k: v for k, v in grid.items() if k not in values}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = _Plan(market.instrument, scalars, names, values, codes, n_sets)
    md = market_arrays(market, plan.base["borrow_rate"])
    inst, tiers = instrument_arrays(market.instrument,
                                    *expiry_settlement(market, plan.base["settlement_price"]))
    return plan.rows(0, plan.n_combos), md, inst, tiers, signal_mask(*signals), market.bar_ns


def run_kernel(inputs, n_blocks=2, fast=True):
    params, md, inst, tiers, signals, bar_ns = inputs
    out = np.full((params.shape[0], N_STATS), -12345.0)
    run_blocks(params, md, inst, tiers, signals, float(bar_ns), out, n_blocks, fast=fast)
    return out


# --- sweep rows == run() --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_random_grids_equal_run_exactly(seed):
    rng = np.random.default_rng(seed)
    market = make_market(n=240, seed=seed)
    grid = random_grid(rng)
    sig = random_signals(market.n_bars, seed + 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sweep(market, **sig, progress=False, **grid)
    assert len(result) == np.prod([len(v) for v in grid.values() if isinstance(v, list)])
    assert_rows_equal_run(result, market, signals=sig)


INSTRUMENTS = {
    "inverse": (bt.Instrument.simple(mmr=0.004, taker_fee=0.0005, settlement="inverse",
                                     contract_size=1.0), 100.0),
    "quanto": (bt.Instrument.simple(mmr=0.01, taker_fee=0.0007, settlement="quanto",
                                    contract_size=0.001), 100.0),
    "binance": ("binance:BTCUSDT", 30_000.0),
    "bitmex": ("bitmex:XBTUSD", 30_000.0),
}


@pytest.mark.parametrize("kind", list(INSTRUMENTS))
def test_instruments_equal_run_exactly(kind):
    inst, price = INSTRUMENTS[kind]
    market = make_market(n=200, seed=7, instrument=inst, price=price)
    sig = random_signals(market.n_bars, 8)
    grid = {"leverage": [2, 20, 80], "stop_loss": [None, 0.008], "trailing_stop": [None, 0.01],
            "margin_mode": ["isolated", "cross"], "size": 0.5}
    if kind == "bitmex":
        grid["leverage"] = [2, 20, 80]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sweep(market, **sig, progress=False, **grid)
    assert_rows_equal_run(result, market, signals=sig)


def test_future_and_spot_margin_equal_run_exactly():
    future = bt.Instrument.simple(mmr=0.005, taker_fee=0.0005, kind="future",
                                  expiry=START + pd.Timedelta(hours=150))
    spot = bt.Instrument.simple(mmr=0.0, kind="spot_margin", borrow_rate=0.0002 / 24,
                                taker_fee=0.001)
    for inst, lev in ((future, [2, 10, 50]), (spot, [1, 2, 3])):
        market = make_market(n=200, seed=11, instrument=inst, freq="30min")
        sig = random_signals(market.n_bars, 12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sweep(market, **sig, progress=False, leverage=lev,
                           stop_loss=[None, 0.01], margin_mode=["isolated", "cross"])
        assert_rows_equal_run(result, market, signals=sig)


def test_signal_sets_equal_run_and_form_the_first_level():
    market = make_market(n=200, seed=3)
    n = market.n_bars
    sets = {name: random_signals(n, 50 + j) for j, name in enumerate(("fast", "slow", "noise"))}
    entries = {k: v["entries"] for k, v in sets.items()}
    exits = pd.DataFrame({k: v["exits"] for k, v in sets.items()}, index=market.index)
    shorts = {k: v["short_entries"] for k, v in sets.items()}
    cover = sets["fast"]["short_exits"]                  # one series shared by every set
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sweep(market, entries=entries, exits=exits, short_entries=shorts,
                       short_exits=cover, progress=False, leverage=[5, 50],
                       stop_loss=[None, 0.01])
    assert result.stats.index.names == ["signals", "leverage", "stop_loss"]
    assert list(result.stats.index.get_level_values("signals")[::4]) == ["fast", "slow",
                                                                         "noise"]
    by_set = {k: {"entries": v["entries"], "exits": v["exits"],
                  "short_entries": v["short_entries"], "short_exits": cover}
              for k, v in sets.items()}
    assert_rows_equal_run(result, market, signals_by_set=by_set)


# --- the cheap path equals the full step ------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_fast_path_equals_full_step(seed):
    rng = np.random.default_rng(1000 + seed)
    market = make_market(n=400, seed=seed, vol=0.006)
    sig = random_signals(market.n_bars, seed, rate=0.01)
    grid = random_grid(rng, n_lists=4)
    inputs = kernel_inputs(market, grid, [s[:, None] for s in sig.values()])
    fast, full = run_kernel(inputs, fast=True), run_kernel(inputs, fast=False)
    np.testing.assert_array_equal(fast, full)


def test_fast_path_equals_full_step_many_lanes_and_sets():
    """Several tiles per set (partial last tiles), two sets, long quiet stretches."""
    market = make_market(n=600, seed=21, vol=0.004)
    n = market.n_bars
    rng = np.random.default_rng(5)
    sig = [np.stack([rng.random(n) < 0.004 for _ in range(2)], axis=1) for _ in range(4)]
    grid = {"leverage": list(np.linspace(1, 120, 30)), "stop_loss": [None, 0.002, 0.01, 0.05],
            "take_profit": [None, 0.01], "trailing_stop": [None, 0.006],
            "stop_trigger": ["last", "mark"], "fees": 0.0004}
    inputs = kernel_inputs(market, grid, sig, n_sets=2)
    assert inputs[0].shape[0] > 2 * TILE
    for blocks in (1, 3):
        np.testing.assert_array_equal(run_kernel(inputs, blocks, True),
                                      run_kernel(inputs, 1, False))


@pytest.mark.parametrize("kind", ["inverse", "future", "spot"])
def test_fast_path_equals_full_step_other_kinds(kind):
    inst = {"inverse": bt.Instrument.simple(mmr=0.004, settlement="inverse", taker_fee=0.0005),
            "future": bt.Instrument.simple(mmr=0.005, kind="future",
                                           expiry=START + pd.Timedelta(hours=300)),
            "spot": bt.Instrument.simple(mmr=0.0, kind="spot_margin",
                                         borrow_rate=0.0001)}[kind]
    market = make_market(n=400, seed=4, instrument=inst, freq="15min")
    sig = random_signals(market.n_bars, 9, rate=0.01)
    lev = [1, 2, 3] if kind == "spot" else [1, 5, 20, 100]
    grid = {"leverage": lev, "stop_loss": [None, 0.004], "trailing_stop": [None, 0.01],
            "margin_mode": ["isolated", "cross"]}
    inputs = kernel_inputs(market, grid, [s[:, None] for s in sig.values()])
    np.testing.assert_array_equal(run_kernel(inputs, 2, True), run_kernel(inputs, 1, False))


def test_hot_copies_follow_the_slot_table():
    """``to_hot``/``to_row`` (unrolled for speed) move exactly the slots of ``HOT_SLOTS``."""
    from backtest.kernels import lanes as K
    from backtest.kernels.records import N_STATE

    rng = np.random.default_rng(0)
    row = rng.random(N_STATE) + 1.0
    h = np.zeros(K.N_HOT * K.TILE)
    q = np.zeros(K.N_Q * K.TILE)
    K.to_hot(h, q, 5, row)
    for j, slot in enumerate(K.HOT_SLOTS):
        if slot >= 0:
            assert h[j * K.TILE + 5] == row[slot]
    assert h[K.H_INV_ENTRY * K.TILE + 5] == 1.0 / row[K.S_ENTRY]
    h[5::K.TILE] = -np.arange(K.N_HOT)
    back = row.copy()
    K.to_row(h, 5, back)
    written = list(K.HOT_SLOTS[K.FIRST_WRITTEN:])
    for slot in range(N_STATE):
        want = -K.FIRST_WRITTEN - written.index(slot) if slot in written else row[slot]
        assert back[slot] == want


# --- threads ------------------------------------------------------------------------------------

_THREAD_SCRIPT = textwrap.dedent("""
    import sys, warnings, numpy as np
    sys.path.insert(0, {tests!r})
    from test_sweep import make_market, random_signals
    from backtest.sweeps import sweep
    import numba
    market = make_market(n=300, seed=2)
    sets = {{k: random_signals(market.n_bars, 40 + k) for k in range(3)}}
    sig = {{name: {{k: v[name] for k, v in sets.items()}} for name in sets[0]}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = sweep(market, **sig, progress=False, leverage=list(range(1, 101)),
                  stop_loss=[None, 0.01, 0.03], chunk_size={chunk})
    np.save(sys.argv[1], r._values)
    print(numba.get_num_threads())
""")


def test_results_do_not_depend_on_threads_or_chunks(tmp_path):
    outs = {}
    for threads, chunk in ((1, None), (2, None), (3, 137)):
        path = tmp_path / f"t{threads}.npy"
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
        script = _THREAD_SCRIPT.format(tests=str(REPO / "tests"), chunk=chunk)
        done = subprocess.run([sys.executable, "-c", script, str(path)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip() == str(threads)
        outs[threads] = np.load(path)
    assert outs[1].shape == (900, N_STATS)
    np.testing.assert_array_equal(outs[1], outs[2])
    np.testing.assert_array_equal(outs[1], outs[3])


def test_dask_executor_gives_the_local_stats():
    distributed = pytest.importorskip("distributed")
    market = make_market(n=300, seed=17)
    sets = {k: random_signals(market.n_bars, 70 + k) for k in range(2)}
    sig = {name: {k: v[name] for k, v in sets.items()} for name in sets[0]}
    kwargs = dict(leverage=[1, 5, 25, 100], stop_loss=[None, 0.005, 0.02],
                  take_profit=[None, 0.03], progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = sweep(market, **sig, **kwargs)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            remote = sweep(market, **sig, executor=client, chunk_size=7, **kwargs)
    np.testing.assert_array_equal(remote._values, local._values)
    assert remote.stats.index.equals(local.stats.index)


# --- grid, labels, signal sets, validation --------------------------------------------------------


def test_grid_order_and_multiindex_follow_expand_grid():
    market = make_market(n=60, seed=1)
    grid = {"stop_loss": [None, 0.02], "margin_mode": ["isolated", "cross"], "size": 0.5,
            "leverage": [1, 5, 20]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sweep(market, progress=False, **grid)
    names, combos = expand_grid(grid)
    assert names == ["stop_loss", "margin_mode", "leverage"]
    assert result.stats.index.names == names
    assert list(result.stats.columns) == list(STAT_NAMES)
    for i, combo in enumerate(combos):
        params = result.params_at(i)
        assert tuple(params[k] for k in names) == combo
        assert params["size"] == 0.5
    labels = list(result.stats.index)
    assert labels[0][1:] == ("isolated", 1) and np.isnan(labels[0][0])
    assert labels[-1] == (0.02, "cross", 20)
    assert result.stats["n_trades"].dtype == np.int64
    assert result.stats["ruined"].dtype == bool
    assert list(result.params.columns[:3]) == ["leverage", "margin_mode", "size"]
    assert result.params["leverage"].tolist() == [c[2] for c in combos]


def test_nothing_swept_gives_one_row():
    market = make_market(n=50, seed=1)
    result = sweep(market, progress=False, leverage=3)
    assert len(result) == 1 and result.stats.index.name == "combination"


def test_mismatched_signal_sets_are_refused():
    market = make_market(n=50, seed=1)
    s = np.zeros(market.n_bars, dtype=bool)
    with pytest.raises(ValueError, match="same set names"):
        sweep(market, entries={"a": s, "b": s}, exits={"a": s, "c": s}, progress=False)
    with pytest.raises(ValueError, match="empty"):
        sweep(market, entries={}, progress=False)


def test_invalid_values_are_found_per_parameter_and_across_pairs():
    market = make_market(n=50, seed=1)
    with pytest.raises(ValueError, match="leverage"):
        sweep(market, leverage=[5, -1], progress=False)
    with pytest.raises(ValueError, match="stop_loss"):
        sweep(market, leverage=[5, 10], stop_loss=[0.01, 2.0], progress=False)
    # size=3 is fine as notional but not as a fraction of equity: only the pair is invalid
    with pytest.raises(ValueError, match="size"):
        sweep(market, size_type=["notional", "margin"], size=[0.5, 3.0], progress=False)
    with pytest.raises(TypeError, match="unknown"):
        sweep(market, levrage=[1, 2], progress=False)
    with pytest.raises(ValueError, match="empty list"):
        sweep(market, leverage=[], progress=False)
    with pytest.raises(TypeError, match="distributed.Client"):
        sweep(market, leverage=[1, 2], executor=object(), progress=False)


def test_parameters_coupled_in_the_encoding_fall_back_to_per_row(monkeypatch):
    """If one encoded column ever depends on two swept parameters, rows are encoded one by
    one through validate_params (never assembled wrongly)."""
    import backtest.simulation.single as engine
    import backtest.sweeps.grid as sweeps
    from backtest.kernels import records as R

    def coupled(prm, signal_set=0, _encode=sweeps.encode):
        p = _encode(prm, signal_set)
        p[R.P_SLIPPAGE] = prm["slippage"] + (1e-4 if prm["taker_fee"] > 0 else 0.0)
        return p

    monkeypatch.setattr(sweeps, "encode", coupled)
    monkeypatch.setattr(engine, "encode", coupled)
    market = make_market(n=120, seed=8)
    sig = random_signals(market.n_bars, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sweep(market, **sig, progress=False, fees=[0.0, 0.001],
                       slippage=[0.0, 0.0005], leverage=[3, 30])
    rows = result._values
    assert_rows_equal_run(result, market, signals=sig)
    assert not np.array_equal(rows[0], rows[2], equal_nan=True)


def test_unreachable_stops_give_one_summary_warning():
    market = make_market(n=50, seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sweep(market, leverage=[10, 50, 100], stop_loss=[0.005, 0.05], progress=False)
    messages = [str(w.message) for w in caught if "liquidation distance" in str(w.message)]
    assert len(messages) == 1 and "3 of 6 combinations" in messages[0]


def test_chunks_and_quiet_progress(capsys):
    market = make_market(n=120, seed=6)
    sig = random_signals(market.n_bars, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = sweep(market, **sig, leverage=[1, 10, 100], stop_loss=[None, 0.01],
                  take_profit=[None, 0.02], progress=True)
        b = sweep(market, **sig, leverage=[1, 10, 100], stop_loss=[None, 0.01],
                  take_profit=[None, 0.02], progress=False, chunk_size=5)
    np.testing.assert_array_equal(a._values, b._values)
    assert capsys.readouterr().err == ""      # a sub-second sweep shows no progress bar


# --- SweepResult -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_sweep():
    market = make_market(n=300, seed=13)
    sig = random_signals(market.n_bars, 13)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sweep(market, **sig, progress=False, leverage=[1, 3, 10, 30, 100],
                       stop_loss=[None, 0.01], margin_mode=["isolated", "cross"])
    return market, sig, result


def test_best_sorts_by_metric(small_sweep):
    _, _, result = small_sweep
    top = result.best("sharpe", n=3)
    sharpe = result.stats["sharpe"].dropna().sort_values(ascending=False)
    assert top["sharpe"].tolist() == sharpe.iloc[:3].tolist()
    low = result.best("max_drawdown")
    assert len(low) == 1 and low["max_drawdown"].iloc[0] == result.stats["max_drawdown"].min()
    with pytest.raises(ValueError, match="not a stat"):
        result.best("sharp")


def test_run_by_position_and_by_levels(small_sweep):
    market, sig, result = small_sweep
    i = 7
    label = dict(zip(result.names, result.stats.index[i], strict=True))
    for which in (i, label, result.stats.index[i]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = result.run(which)
        assert np.array_equal(r._stats, result._values[i], equal_nan=True)
        assert r.params["leverage"] == label["leverage"]
    with pytest.raises(ValueError, match="matches 4 combinations"):
        result.run({"leverage": 3})
    with pytest.raises(KeyError, match="not in the sweep"):
        result.run({"leverage": 7, "stop_loss": None, "margin_mode": "cross"})
    with pytest.raises(IndexError):
        result.run(99)


def test_figures_and_repr(small_sweep):
    import matplotlib.figure

    _, _, result = small_sweep
    fig = result.heatmap("total_return", x="leverage", y="stop_loss")
    assert isinstance(fig, matplotlib.figure.Figure)
    fig2 = result.leverage_curve("max_drawdown")
    assert isinstance(fig2, matplotlib.figure.Figure)
    fig3 = result.leverage_curve("sharpe", where={"margin_mode": "cross"})
    assert isinstance(fig3, matplotlib.figure.Figure)
    text = repr(result)
    assert "20 combinations" in text and "leverage[5]" in text
    with pytest.raises(ValueError, match="not a level"):
        result.heatmap("sharpe", x="leverage", y="fees")


# --- memory ------------------------------------------------------------------------------------

_MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys, time, warnings
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_sweep import make_market, random_signals
    from backtest.sweeps import sweep
    market = make_market(n=200, seed=5)
    sig = random_signals(market.n_bars, 5)
    warnings.simplefilter("ignore")
    sweep(market, **sig, progress=False, leverage=[1, 2], stop_loss=[None, 0.01])  # compile
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    r = sweep(market, **sig, progress=False, leverage=list(np.linspace(1, 100, 50)),
              stop_loss=list(np.linspace(0.001, 0.05, 40)),
              take_profit=list(np.linspace(0.002, 0.1, 50)),
              margin_mode=["isolated", "cross"])
    stats = r.stats
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"n": len(stats), "growth_mb": (after - before) / 1024,
                      "elapsed": elapsed}}))
""")


def test_large_grid_memory_is_bounded():
    """200,000 combinations: state is O(chunk), stats O(combinations); never bars × combos."""
    script = _MEMORY_SCRIPT.format(tests=str(REPO / "tests"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["n"] == 200_000
    # stats 200k x 19 float64 = 30 MB (+ the DataFrame copy, index and codes)
    assert report["growth_mb"] < 250, report
    assert report["elapsed"] < 20, report


# --- plain Python (NUMBA_DISABLE_JIT) ----------------------------------------------------

_NOJIT_SCRIPT = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_sweep import make_market, random_signals, assert_rows_equal_run
    from backtest.sweeps import sweep
    warnings.simplefilter("ignore")
    market = make_market(n=40, seed=3)
    sig = random_signals(market.n_bars, 3, rate=0.1)
    r = sweep(market, **sig, progress=False, leverage=[2, 50], stop_loss=[None, 0.01],
              trailing_stop=[None, 0.01])
    assert_rows_equal_run(r, market, signals=sig)
    print("ok", len(r))
""")


def test_sweep_runs_without_jit():
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    done = subprocess.run([sys.executable, "-c", _NOJIT_SCRIPT.format(tests=str(REPO / "tests"))],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok 8"
