"""Same inputs, bit-identical results: repeated runs, fresh interpreters, thread counts, a
cold Numba compile against the on-disk cache; and the inputs' fingerprint in ``stats``.

"Bit-identical" is checked on a SHA-256 digest of every output byte (all per-bar series,
every trade and event, every stat), not with a tolerance. Subprocesses import this module
and call :func:`emit`, which prints the digests of a few scenarios as JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import backtest as bt
from backtest.data.fingerprint import fingerprint

TESTS = Path(__file__).parent
REPO = TESTS.parent
START = pd.Timestamp("2024-01-01", tz="UTC")
SERIES = ("equity", "wallet", "position", "margin", "liquidation_price", "funding", "drawdown")


# --------------------------------------------------------------------------- scenarios


def make_frames(n: int, base: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame,
                                                         pd.DataFrame]:
    """Hourly last bars with wicks, mark bars with a basis, 8-hourly funding of both signs."""
    rng = np.random.default_rng(seed)
    close = base * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[base, close[:-1]] * (1 + rng.normal(0, 0.001, n))
    wick = np.where(rng.random(n) < 0.02, 8.0, 1.0)
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n)) * wick)
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n)) * wick)
    idx = pd.date_range(START, periods=n, freq="1h", name="timestamp")
    bars = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.uniform(1, 100, n)}, index=idx)
    basis = 1 + rng.normal(0, 0.0005, n)
    mo, mc = open_ * basis, close * basis
    mark = pd.DataFrame({"open": mo, "high": np.maximum(mo, mc) * (1 + np.abs(rng.normal(
        0, 0.003, n))), "low": np.minimum(mo, mc) * (1 - np.abs(rng.normal(0, 0.003, n))),
        "close": mc}, index=idx)
    times = pd.date_range(START, periods=n // 8 + 2, freq="8h")
    funding = pd.DataFrame({"timestamp": times,
                            "rate": rng.normal(1e-4, 2e-4, len(times)).clip(-0.004, 0.004)})
    return bars, mark, funding


def crossover(close: np.ndarray, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    s = pd.Series(close)
    up = (s.rolling(fast).mean() > s.rolling(slow).mean()).to_numpy()
    prev = np.r_[False, up[:-1]]
    return up & ~prev, ~up & prev


SCENARIOS: dict[str, dict[str, Any]] = {
    "linear-isolated-stops": dict(
        instrument="binance:BTCUSDT", base=40_000.0, seed=1, short=True,
        params=dict(leverage=20, stop_loss=0.02, take_profit=0.06, slippage=0.0002,
                    size=0.5)),
    "inverse-cross-limit-ohlc": dict(
        instrument="bitmex:XBTUSD", base=9_000.0, seed=2, short=True,
        params=dict(leverage=5, margin_mode="cross", path="ohlc", entry_order="limit",
                    limit_offset=0.001, limit_ttl=3, size=0.3, initial_capital=1.0)),
    "quanto-trailing-mark-close": dict(
        instrument="bitmex:ETHUSD", base=2_000.0, seed=3, short=False,
        params=dict(leverage=10, trailing_stop=0.03, stop_trigger="mark", fill="close",
                    liquidation="liquidation_price", liquidation_fee=0.005,
                    initial_capital=1.0)),
}
N_BARS = 3_000
SWEEP_GRID = dict(leverage=[2, 5, 10, 25, 50, 100], stop_loss=[None, 0.01, 0.03],
                  margin_mode=["isolated", "cross"])


def scenario_inputs(name: str) -> tuple[bt.Market, dict[str, Any]]:
    spec = SCENARIOS[name]
    bars, mark, funding = make_frames(N_BARS, spec["base"], spec["seed"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = bt.load_market(bars, mark=mark, funding=funding, instrument=spec["instrument"])
    buy, sell = crossover(m.close, 12, 48)
    signals = {"entries": buy, "exits": sell}
    if spec["short"]:
        signals.update(short_entries=sell, short_exits=buy)
    return m, {**signals, **spec["params"]}


def run_scenario(name: str) -> Any:
    m, kwargs = scenario_inputs(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.run(m, **kwargs)


def run_sweep() -> Any:
    from backtest.sweeps import sweep

    m, kwargs = scenario_inputs("linear-isolated-stops")
    signals = {k: kwargs[k] for k in ("entries", "exits", "short_entries", "short_exits")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sweep(m, **signals, progress=False, **SWEEP_GRID)


# --------------------------------------------------------------------------- digests


def _feed(h: Any, a: Any) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8))


def output_digest(r: Any) -> str:
    """SHA-256 of every output of a Result, byte for byte."""
    h = hashlib.sha256()
    for name in SERIES:
        _feed(h, getattr(r, name).to_numpy(dtype=np.float64))
    for col in r.trades.columns:
        values = r.trades[col]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            _feed(h, pd.DatetimeIndex(values).as_unit("ns").asi8)
        elif pd.api.types.is_numeric_dtype(values):
            _feed(h, values.to_numpy(dtype=np.float64))
        else:
            h.update("|".join(map(str, values)).encode())
    h.update("|".join(r.events["kind"].astype(str)).encode())
    _feed(h, r.events["value"].to_numpy(dtype=np.float64))
    for key, value in r.stats.items():
        h.update(f"{key}={value!r};".encode())
    return h.hexdigest()


def sweep_digest(s: Any) -> str:
    h = hashlib.sha256()
    _feed(h, s.stats.to_numpy(dtype=np.float64))
    h.update(repr(list(s.stats.index)).encode())
    return h.hexdigest()


def digests() -> dict[str, Any]:
    """Everything a subprocess reports (and the test process computes the same way)."""
    import numba

    out: dict[str, Any] = {"threads": numba.get_num_threads()}
    for name in SCENARIOS:
        r = run_scenario(name)
        out[name] = {"output": output_digest(r), "fingerprint": r.stats["fingerprint"],
                     "final_equity": repr(r.stats["final_equity"]),
                     "n_trades": int(r.stats["n_trades"])}
    if os.environ.get("BACKTEST_REPRO_SKIP_SWEEP"):
        out["sweep"] = "unavailable: skipped"
        return out
    try:
        out["sweep"] = sweep_digest(run_sweep())
    except Exception as exc:  # noqa: BLE001 - reported, and the sweep test then skips
        out["sweep"] = f"unavailable: {type(exc).__name__}: {exc}"
    return out


def emit() -> None:
    """Entry point of the subprocesses: print :func:`digests` as JSON."""
    print(json.dumps(digests()))


def in_subprocess(env: dict[str, str], timeout: float = 300) -> dict[str, Any]:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]), **env}
    code = "import test_reproducibility as t; t.emit()"
    done = subprocess.run([sys.executable, "-c", code], env=full, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- in one process


@pytest.fixture(scope="module")
def here() -> dict[str, Any]:
    """Digests computed in this process (also compiles/caches the kernels for the others)."""
    return digests()


def test_scenarios_trade(here):
    """The scenarios exercise the engine (otherwise equal digests would prove little)."""
    for name in SCENARIOS:
        assert here[name]["n_trades"] >= 10, (name, here[name])


def test_repeated_runs_in_one_process_are_bit_identical(here):
    for name in SCENARIOS:
        first = run_scenario(name)
        run_scenario(next(n for n in SCENARIOS if n != name))  # something else in between
        again = run_scenario(name)
        assert output_digest(first) == output_digest(again) == here[name]["output"], name
        for a, b in ((first._series, again._series), (first._trades, again._trades),
                     (first._stats, again._stats)):
            assert a.tobytes() == b.tobytes(), name


def test_repeated_sweeps_in_one_process_are_bit_identical(here):
    if here["sweep"].startswith("unavailable"):
        pytest.skip(here["sweep"])
    assert sweep_digest(run_sweep()) == here["sweep"]


# --------------------------------------------------------------------------- other processes


PROCESSES = {
    "fresh-interpreter": {"PYTHONHASHSEED": "12345"},
    "threads-1": {"NUMBA_NUM_THREADS": "1", "PYTHONHASHSEED": "0"},
    "threads-2": {"NUMBA_NUM_THREADS": "2"},
}


@pytest.fixture(scope="module")
def others(here) -> dict[str, dict[str, Any]]:
    """One subprocess per environment (after ``here`` has warmed the Numba cache)."""
    return {label: in_subprocess(env) for label, env in PROCESSES.items()}


@pytest.mark.parametrize("label", list(PROCESSES))
def test_results_are_bit_identical_in_another_process(label, here, others):
    theirs = others[label]
    for name in SCENARIOS:
        assert theirs[name] == here[name], (label, name)


def test_thread_counts_were_really_different(others):
    assert others["threads-1"]["threads"] == 1 and others["threads-2"]["threads"] == 2


@pytest.mark.parametrize("label", list(PROCESSES))
def test_sweep_is_bit_identical_whatever_the_thread_count(label, here, others):
    if here["sweep"].startswith("unavailable"):
        pytest.skip(here["sweep"])
    assert others[label]["sweep"] == here["sweep"], label


def test_cold_compile_equals_cached(here, tmp_path):
    """An empty NUMBA_CACHE_DIR (everything compiled afresh, ~20 s) and then the cache it
    wrote give the same bytes as this process. The sweep kernel is left out (its cold
    compile alone takes ~45 s); its thread-count test above runs on the shared cache."""
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    env = {"NUMBA_CACHE_DIR": str(cache), "BACKTEST_REPRO_SKIP_SWEEP": "1"}
    started = time.perf_counter()
    cold = in_subprocess(env, timeout=600)
    cold_s = time.perf_counter() - started
    assert any(cache.rglob("*.nbi")), "the cold run wrote no Numba cache"
    started = time.perf_counter()
    warm = in_subprocess(env)
    warm_s = time.perf_counter() - started
    for name in SCENARIOS:
        assert cold[name] == warm[name] == here[name], name
    assert warm_s < cold_s  # the second process really used the cache


# --------------------------------------------------------------------------- fingerprint


SMALL_INSTRUMENT = bt.Instrument.simple(taker_fee=0.0005)


def load_small(bars: Any) -> bt.Market:
    _, mark, funding = make_frames(200, 40_000.0, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, mark=mark, funding=funding, instrument=SMALL_INSTRUMENT)


@pytest.fixture(scope="module")
def small() -> tuple[bt.Market, dict[str, Any]]:
    m = load_small(make_frames(200, 40_000.0, 7)[0])
    buy, sell = crossover(m.close, 5, 20)
    return m, {"entries": buy, "exits": sell}


def fp(m: bt.Market, **kwargs: Any) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.run(m, **kwargs).stats["fingerprint"]


def test_stats_end_with_version_and_fingerprint(small):
    m, sig = small
    stats = bt.run(m, **sig).stats
    assert list(stats.index[-2:]) == ["version", "fingerprint"]
    assert stats["version"] == bt.__version__
    assert re.fullmatch(r"[0-9a-f]{16}", stats["fingerprint"])
    numeric = stats.drop(["version", "fingerprint"])
    assert all(isinstance(v, (int, float, bool, np.number)) for v in numeric)


def test_fingerprint_is_the_same_for_the_same_inputs_however_given(small, tmp_path):
    m, sig = small
    base = fp(m, **sig, leverage=10)
    as_series = {k: pd.Series(v, index=m.index) for k, v in sig.items()}
    as_lists = {k: v.tolist() for k, v in sig.items()}
    assert fp(m, **as_series, leverage=10.0) == base
    assert fp(m, **as_lists, leverage=np.float64(10)) == base
    assert fp(m, **sig) == fp(m, **sig, leverage=1.0) != base  # 1x is the default
    assert fp(m, **sig, leverage=10, stop_loss=None, margin_mode="isolated", fees=None) == base
    path = tmp_path / "bars.parquet"                          # same data, via Parquet:
    make_frames(200, 40_000.0, 7)[0].reset_index().to_parquet(path)
    again = load_small(path)                                  # another object and source
    assert again is not m and again.sources != m.sources
    assert fp(again, **sig, leverage=10) == base


def test_fingerprint_changes_with_every_input(small):
    m, sig = small
    base = fp(m, **sig)
    bumped_close = m.close.copy()
    bumped_close[100] = np.nextafter(bumped_close[100], np.inf)      # one ulp, one bar
    flipped = sig["entries"].copy()
    flipped[150] = not flipped[150]
    variants = {
        "one ulp of one close": fp(dataclasses.replace(m, close=bumped_close), **sig),
        "a mark price": fp(dataclasses.replace(m, mark_low=m.mark_low * (1 - 1e-12)), **sig),
        "a funding rate": fp(dataclasses.replace(m, funding_rate=m.funding_rate * 1.5), **sig),
        "the taker fee": fp(dataclasses.replace(m, instrument=m.instrument.replace(
            taker_fee=0.0004)), **sig),
        "the maintenance tier": fp(dataclasses.replace(m, instrument=m.instrument.replace(
            tiers=bt.Instrument.simple(mmr=0.004).tiers)), **sig),
        "the leverage": fp(m, **sig, leverage=10.000000001),
        "the margin mode": fp(m, **sig, margin_mode="cross"),
        "one signal bit": fp(m, entries=flipped, exits=sig["exits"]),
        "which signal": fp(m, short_entries=sig["entries"], exits=sig["exits"]),
    }
    assert len(set(variants.values()) | {base}) == len(variants) + 1, variants


def test_fingerprint_hashes_values_not_byte_order(small):
    m, sig = small
    prm = bt.run(m, **sig).params
    swapped = dataclasses.replace(m, close=m.close.astype(">f8"))
    assert fingerprint(swapped, prm, sig) == fingerprint(m, prm, sig)


def test_fingerprint_is_fast_on_a_million_bars():
    n = 1_000_000
    close = 100.0 + np.sin(np.arange(n) / 50.0)
    bars = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close},
                        index=pd.date_range(START, periods=n, freq="1min"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = bt.load_market(bars, funding=0, instrument="linear")
    prm = {"leverage": 10.0, "size": 1.0}
    sig = {"entries": np.zeros((n, 1), dtype=bool)}
    started = time.perf_counter()
    digest = fingerprint(m, prm, sig)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, elapsed  # ~0.1 s: raw array bytes, no Python lists
    assert digest == fingerprint(m, dict(prm), {"entries": sig["entries"].copy()})


def test_fingerprint_of_several_markets_is_by_name_not_order(small):
    m, sig = small
    other = dataclasses.replace(m, close=m.close * 1.01)
    prm = {"leverage": 10.0}
    one = fingerprint({"BTC": m, "ETH": other}, prm, sig)
    assert fingerprint({"ETH": other, "BTC": m}, prm, sig) == one
    assert fingerprint({"BTC": other, "ETH": m}, prm, sig) != one
    assert fingerprint(m, prm, sig) != one
