"""Benchmark ``sweep()``: bar-combinations per second, memory and start-up time.

Usage::

    python benchmarks/bench_sweep.py                  # 1,000,000 1m bars x 512 combinations
    python benchmarks/bench_sweep.py --quick --json .ci/artifacts/bench_sweep_quick.json
    python benchmarks/bench_sweep.py --real           # BitMEX XBTUSD 1m 2017-2019 (shared/data)
    python benchmarks/bench_sweep.py --bars 200000 --repeats 5 --cold
    python benchmarks/bench_sweep.py --million       # 1,000,000 combinations, hourly year

The grid (SPEC §9 / ARCHITECTURE "Kernels and speed"): 16 leverages x 8 stop losses x
2 sides (a long-only and a short-only signal set) x 2 margin modes = 512 combinations, taker
fee 5 bp, funding every 8 h, on ``binance:BTCUSDT`` tiers. Synthetic data: a log random walk
of one-minute bars whose mark price does not follow occasional last-price wicks. Signals:
a 60/600-bar moving-average cross (long set: enter on the up-cross, exit on the down-cross;
short set: the mirror).

Printed: wall and CPU time per sweep (median of ``--repeats`` >= 3), bar-combinations per
second, ns per bar-combination (wall; and CPU per core), the RSS growth during a sweep and
the process peak, the in-process first call, and in fresh subprocesses the cold start (empty
``NUMBA_CACHE_DIR``; full mode or ``--cold``) and the warm start (cache filled) to the first
small sweep result. Baselines in the same run: the two minimal reference kernels
(``reference_kernel.py``: liquidation on the mark, stop, 8-hourly funding, fees, drawdown;
bars outer, combinations inner), the fast one (``ratio_to_reference``, which
``check_regression.py`` guards in CI) and the plain loop (``ratio_to_plain_reference``), timed
in rounds interleaved with sweeps, their outputs checked equal; ``run()`` in a Python loop
over a few combinations, extrapolated to the grid; vectorbt ``Portfolio.from_signals(...,
sl_stop=)`` when ``import vectorbt`` works (else a skip line).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import backtest as bt  # noqa: E402
from backtest.sweeps import sweep  # noqa: E402

LEVERAGES = [1, 2, 3, 5, 7, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125]
STOPS = [None, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08]
FEE = 0.0005
SHARED = REPO.parent / "shared" / "data" / "bitmex_xbtusd"


def synthetic_market(n: int, seed: int = 7):
    """One-minute log random walk; the mark skips 0.1 % of last-price wicks; 8-hour funding."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2021-01-01", periods=n, freq="1min", tz="UTC")
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0, 0.0006, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    wick = rng.random(n) < 0.001
    bars = pd.DataFrame({"open": open_, "high": np.where(wick[::-1], high * 1.02, high),
                         "low": np.where(wick, low * 0.98, low), "close": close,
                         "volume": 1.0}, index=ts)
    mark = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=ts)
    fts = pd.date_range(ts[0], ts[-1], freq="8h")
    funding = pd.DataFrame({"timestamp": fts, "rate": rng.normal(1e-4, 2e-4, len(fts))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, mark=mark, funding=funding, instrument="binance:BTCUSDT")


def real_market(n: int):
    """The last ``n`` BitMEX XBTUSD one-minute bars of 2017-2019 (the funding file ends in
    2020) with their funding; no mark bars (mark := last)."""
    bars = pd.read_parquet(SHARED / "bitmex_xbtusd_1m_2017-2019.parquet").iloc[-n:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, funding=SHARED / "bitmex_xbtusd_funding.parquet",
                              instrument="bitmex:XBTUSD", gaps="warn")


def signal_sets(market) -> dict[str, dict[str, np.ndarray]]:
    return signal_sets_periods(market, 60, 600)


def signal_sets_periods(market, fast_n: int, slow_n: int) -> dict[str, dict[str, np.ndarray]]:
    """Long set: enter on the up-cross, exit on the down-cross; short set: the mirror."""
    close = pd.Series(market.close)
    fast, slow = close.rolling(fast_n).mean(), close.rolling(slow_n).mean()
    up = ((fast > slow) & (fast.shift() <= slow.shift())).to_numpy()
    down = ((fast < slow) & (fast.shift() >= slow.shift())).to_numpy()
    none = np.zeros(len(up), dtype=bool)
    return {"entries": {"long": up, "short": none}, "exits": {"long": down, "short": none},
            "short_entries": {"long": none, "short": down},
            "short_exits": {"long": none, "short": up}}


def grid(max_leverage: float) -> dict:
    return {"leverage": [x for x in LEVERAGES if x <= max_leverage] or [1],
            "stop_loss": STOPS, "margin_mode": ["isolated", "cross"], "fees": FEE}


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """Samples the resident set size every 5 ms in a thread (Linux)."""

    def __enter__(self):
        self.base = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def time_sweeps(market, sigs, params, repeats):
    walls, cpus, kernels = [], [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sweep(market, **sigs, progress=False, **params)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        kernels.append(res.elapsed)
    return res, float(np.median(walls)), float(np.median(cpus)), float(np.median(kernels))


def reference_baseline(kernel, inputs, threads):
    """One call of a reference kernel (``reference_kernel.py``) over the grid, one block of
    rows per thread like the sweep (a block is the rows of one signal set when there are as
    many threads as sets): (wall s, CPU s, output float64[n_combos, 3])."""
    from concurrent.futures import ThreadPoolExecutor

    md, signals, rows = inputs
    out = np.empty((rows.shape[0], 3))
    bounds = np.linspace(0, rows.shape[0], threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as pool:
        c0, t0 = time.process_time(), time.perf_counter()
        jobs = [pool.submit(kernel, md, signals, rows, out, a, b)
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        for job in jobs:
            job.result()
        return time.perf_counter() - t0, time.process_time() - c0, out


def reference_rounds(market, sigs, params, repeats) -> dict:
    """Sweep, fast reference, plain reference, ``repeats`` rounds in turn (the same load on a
    shared machine for all three): medians of the per-round ratios, CPU and wall."""
    import numba

    from benchmarks.reference_kernel import (
        plain_reference_sweep,
        reference_inputs,
        reference_sweep,
    )

    inputs = reference_inputs(market, sigs, params)
    threads = numba.get_num_threads()
    small = tuple(x[:1000] for x in inputs[:2]) + (inputs[2],)
    for kernel in (reference_sweep, plain_reference_sweep):      # compile outside timing
        reference_baseline(kernel, small, 1)
    rounds = []
    for _ in range(repeats):
        _, wall, cpu, _ = time_sweeps(market, sigs, params, 1)
        fast = reference_baseline(reference_sweep, inputs, threads)
        plain = reference_baseline(plain_reference_sweep, inputs, threads)
        rounds.append((wall, cpu, fast[0], fast[1], plain[0], plain[1]))
    sw, sc, fw, fc, pw, pc = np.array(rounds).T
    med = lambda x: float(np.median(x))  # noqa: E731
    # the two kernels implement the same rules in the same arithmetic order
    diff = np.abs(fast[2] - plain[2]) / np.maximum(np.abs(plain[2]), 1e-300)
    return dict(reference_wall_s=med(fw), reference_cpu_s=med(fc), plain_reference_wall_s=med(pw),
                plain_reference_cpu_s=med(pc), ratio_to_reference=med(sc / fc),
                wall_ratio_to_reference=med(sw / fw), ratio_to_plain_reference=med(sc / pc),
                wall_ratio_to_plain_reference=med(sw / pw),
                reference_ratio_rounds=[float(x) for x in sc / fc],
                references_max_rel_diff=float(np.nanmax(diff)),
                references_equal=bool(np.array_equal(fast[2], plain[2], equal_nan=True)))


def run_loop_baseline(market, sigs, params, n_runs=4):
    """run() for a few combinations in a Python loop: seconds per combination (median)."""
    times = []
    lev, stops = params["leverage"], params["stop_loss"]
    picks = [(lev[i * (len(lev) - 1) // (n_runs - 1)], stops[i % len(stops)])
             for i in range(n_runs)]
    for leverage, stop in picks:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt.run(market, entries=sigs["entries"]["long"], exits=sigs["exits"]["long"],
                   leverage=leverage, stop_loss=stop, fees=FEE)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:] if len(times) > 2 else times))


def vectorbt_baseline(market, sigs, params, n_cols=32):
    """vectorbt from_signals with sl_stop on ``n_cols`` columns (it stores bars x columns)."""
    try:
        import vectorbt as vbt
    except Exception as exc:  # not installed, or an incompatible numba
        return {"skipped": f"import vectorbt failed ({type(exc).__name__}: {exc})"}
    close = pd.Series(market.close, index=market.index)
    stops = [s for s in params["stop_loss"] if s is not None] or [0.02]
    sl = np.resize(np.array(stops), n_cols)
    entries = pd.DataFrame({i: sigs["entries"]["long"] for i in range(n_cols)},
                           index=close.index)
    exits = pd.DataFrame({i: sigs["exits"]["long"] for i in range(n_cols)}, index=close.index)
    vbt.Portfolio.from_signals(close.iloc[:1000], entries.iloc[:1000], exits.iloc[:1000],
                               sl_stop=sl, fees=FEE)       # compile
    with PeakRss() as mem:
        t0 = time.perf_counter()
        pf = vbt.Portfolio.from_signals(close, entries, exits, sl_stop=sl, fees=FEE)
        pf.total_return()
        dt = time.perf_counter() - t0
    return {"columns": n_cols, "seconds": dt, "ns_per_bar_column": dt / (len(close) * n_cols)
            * 1e9, "rss_growth_mb": mem.peak - mem.base}


_START_CODE = """
import time, warnings
t0 = time.perf_counter()
import numpy as np, pandas as pd
import backtest as bt
from backtest.sweeps import sweep
n = 2000
idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
c = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.001, n)))
bars = pd.DataFrame({"open": c, "high": c * 1.001, "low": c * 0.999, "close": c}, index=idx)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    m = bt.load_market(bars, funding=0, instrument=bt.Instrument.simple())
    sweep(m, entries=c > 100, exits=c < 100, leverage=[1, 10], stop_loss=[None, 0.01],
          progress=False)
print(time.perf_counter() - t0)
"""


def start_times(cold: bool) -> dict:
    """Fresh processes to the first small sweep result: warm (this checkout's cache, filled
    by this run) and, when ``cold``, with an empty NUMBA_CACHE_DIR (compiles everything)."""
    out = {}
    res = subprocess.run([sys.executable, "-c", _START_CODE], cwd=REPO, capture_output=True,
                         text=True, check=True)
    out["warm_start_s"] = float(res.stdout.strip().splitlines()[-1])
    if cold:
        with tempfile.TemporaryDirectory() as cache:
            res = subprocess.run([sys.executable, "-c", _START_CODE], cwd=REPO,
                                 env={**os.environ, "NUMBA_CACHE_DIR": cache},
                                 capture_output=True, text=True, check=True)
            out["cold_start_s"] = float(res.stdout.strip().splitlines()[-1])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="250,000 bars, same 512 combinations; cold start only with --cold")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    parser.add_argument("--bars", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="measure the cold start too")
    parser.add_argument("--real", action="store_true",
                        help="BitMEX XBTUSD 1m bars from ../shared/data instead of synthetic")
    parser.add_argument("--million", action="store_true",
                        help="only: 1,000,000 combinations on a year of hourly bars")
    args = parser.parse_args(argv)
    out: dict = {}
    if args.million:
        from benchmarks.bench_million import million

        million(out)
    else:
        grid_benchmark(args, out)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


def grid_benchmark(args, out: dict) -> None:
    """The 512-combination grid on one-minute bars, with its baselines (module doc)."""
    import numba

    n = args.bars or (250_000 if args.quick else 1_000_000)
    repeats = max(3, args.repeats)

    market = real_market(n) if args.real else synthetic_market(n)
    sigs = signal_sets(market)
    params = grid(market.instrument.max_leverage)
    n_combos = 2 * len(params["leverage"]) * len(params["stop_loss"]) * 2
    out.update(bars=market.n_bars, combinations=n_combos, threads=numba.get_num_threads(),
               repeats=repeats, data="bitmex:XBTUSD 1m" if args.real else "synthetic 1m",
               market_arrays_mb=14 * 8 * market.n_bars / 2**20)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep(market, **sigs, progress=False, **{**params, "leverage": params["leverage"][:1]})
    out["first_call_s"] = time.perf_counter() - t0        # compile or cache load + 1/16 run

    with PeakRss() as mem:
        res, wall, cpu, kernel = time_sweeps(market, sigs, params, repeats)
    bc = market.n_bars * n_combos
    out.update(median_wall_s=wall, median_cpu_s=cpu, median_kernel_s=kernel,
               bar_combos_per_s=bc / wall, ns_per_bar_combo=wall / bc * 1e9,
               cpu_ns_per_bar_combo_per_core=cpu / bc * 1e9,
               rss_growth_mb=mem.peak - mem.base,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               n_trades=int(res.stats["n_trades"].sum()),
               n_liquidations=int(res.stats["n_liquidations"].sum()))
    out.update(reference_rounds(market, sigs, params, repeats))
    per_run = run_loop_baseline(market, sigs, params)
    out.update(run_loop_s_per_combo=per_run,
               run_loop_ns_per_bar=per_run / market.n_bars * 1e9,
               run_loop_extrapolated_s=per_run * n_combos,
               speedup_vs_run_loop=per_run * n_combos / wall)
    out["vectorbt"] = vectorbt_baseline(market, sigs, params)
    out.update(start_times(cold=args.cold or not args.quick))
    report(out)


def report(o: dict) -> None:
    print(f"sweep() on {o['bars']:,} bars ({o['data']}) x {o['combinations']} combinations, "
          f"{o['threads']} threads, median of {o['repeats']}:")
    print(f"  wall {o['median_wall_s']:.3f} s (kernel {o['median_kernel_s']:.3f} s), "
          f"CPU {o['median_cpu_s']:.3f} s")
    print(f"  {o['bar_combos_per_s'] / 1e6:,.0f} M bar-combinations/s = "
          f"{o['ns_per_bar_combo']:.2f} ns per bar-combination "
          f"(CPU {o['cpu_ns_per_bar_combo_per_core']:.2f} ns per bar-combination per core)")
    print(f"  memory: RSS growth during the sweeps {o['rss_growth_mb']:.0f} MB "
          f"(market matrix {o['market_arrays_mb']:.0f} MB); process peak "
          f"{o['peak_rss_mb']:.0f} MB")
    print(f"  {o['n_trades']:,} trades, {o['n_liquidations']:,} liquidations in the grid")
    print(f"  reference kernels (benchmarks/reference_kernel.py), same grid, CPU (wall): fast "
          f"{o['reference_cpu_s']:.3f} s ({o['reference_wall_s']:.3f} s), plain "
          f"{o['plain_reference_cpu_s']:.3f} s ({o['plain_reference_wall_s']:.3f} s); outputs "
          + ("equal" if o["references_equal"] else
             f"DIFFER (max rel. {o['references_max_rel_diff']:.1e})"))
    print(f"  sweep() / fast reference = {o['ratio_to_reference']:.2f} CPU "
          f"({o['wall_ratio_to_reference']:.2f} wall); sweep() / plain reference = "
          f"{o['ratio_to_plain_reference']:.2f} CPU ({o['wall_ratio_to_plain_reference']:.2f} "
          "wall); medians of interleaved rounds")
    print(f"  baseline run() in a Python loop: {o['run_loop_s_per_combo']:.3f} s per combination "
          f"({o['run_loop_ns_per_bar']:.0f} ns/bar) -> {o['run_loop_extrapolated_s']:.1f} s for "
          f"the grid, {o['speedup_vs_run_loop']:.0f}x slower than sweep()")
    vb = o["vectorbt"]
    if "skipped" in vb:
        print(f"  vectorbt baseline skipped: {vb['skipped']}")
    else:
        ratio = vb["ns_per_bar_column"] / o["ns_per_bar_combo"]
        vb["sweep_throughput_ratio"] = ratio
        print(f"  vectorbt from_signals(sl_stop) on {vb['columns']} columns: "
              f"{vb['seconds']:.2f} s = {vb['ns_per_bar_column']:.1f} ns per bar-column, "
              f"RSS +{vb['rss_growth_mb']:.0f} MB -> sweep() has {ratio:.0f}x its throughput")
    print(f"  in-process first call {o['first_call_s']:.1f} s; fresh process to first small "
          f"sweep: " + (f"cold (empty cache) {o['cold_start_s']:.1f} s, " if "cold_start_s" in o
                        else "") + f"warm {o['warm_start_s']:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
