"""Benchmark ``leverage_risk()``: every hourly start since 2020 x 16 leverages x 30 days.

Usage::

    python benchmarks/bench_risk.py                 # full: 2020-01-01 .. 2026-05-17, every bar
    python benchmarks/bench_risk.py --quick         # 2024, every 6th bar (a few seconds; CI)
    python benchmarks/bench_risk.py --repeats 3 --json out.json
    python benchmarks/bench_risk.py --quick --cold  # + compile time in a fresh process

The case (issue 11): the shipped Binance BTCUSDT 1h bars with mark prices and funding, one
position held from every start (long, isolated, the whole 1,000 USDT wallet as margin),
16 leverages, horizon 30 days. Printed: wall time of ``leverage_risk`` (median of
``--repeats``), window-bars per second (the sum over columns of the bars each column
covers, liquidated columns included: their early exit is the point), the RSS growth during
the call, and the baseline in the same process: ``bt.sweep`` over the same bars x the same
16 leverages (one buy-and-hold from the first bar), its bar-combinations per second and the
ratio. The machine (CPU, cores, load average) and the UTC date are printed beside the
figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import backtest as bt  # noqa: E402
from backtest.kernels.windows import O_N_BARS  # noqa: E402
from backtest.simulation.signals import buy_and_hold  # noqa: E402

LEVERAGES = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 50, 75, 100]
DATA = REPO / "data"


def load(start: str, end: str) -> bt.Market:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(DATA / "binance_btcusdt_perp_1h.parquet",
                              mark=DATA / "binance_btcusdt_perp_1h_mark.parquet",
                              funding=DATA / "binance_btcusdt_perp_funding.parquet",
                              instrument="binance:BTCUSDT", start=start, end=end)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """The highest RSS seen (sampled every 5 ms) while the block runs."""

    def __enter__(self) -> PeakRss:
        self.peak = self.start = rss_mb()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()
    return (f"{cpu}, {os.cpu_count()} cores, load average {load[0]:.2f} (shared machine), "
            f"Python {platform.python_version()}, "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")


def cold_start() -> float:
    """Seconds to the first small ``leverage_risk`` (rolling and bootstrap) in a fresh
    process whose Numba cache is empty: the kernels' compile time."""
    code = ("import time, warnings; warnings.simplefilter('ignore'); t = time.perf_counter();"
            "import sys; sys.path.insert(0, sys.argv[1]); import benchmarks.bench_risk as b;"
            "import backtest as bt; m = b.load('2024-01-01', '2024-03-01');"
            "bt.leverage_risk(m, leverage=[2, 10], horizon='7D', starts=24);"
            "bt.leverage_risk(m, leverage=[2, 10], horizon='7D', method='bootstrap',"
            " n_paths=8, seed=1); print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-c", code, str(REPO)], env=env,
                              capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2024 only, every 6th start")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed calls (median); default 3 quick, 1 full")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument("--cold", action="store_true",
                    help="also time the first call in a fresh process with an empty Numba "
                         "cache (the kernels' compile time)")
    args = ap.parse_args(argv)
    cold = cold_start() if args.cold else None
    if cold is not None:
        print(f"cold start (empty NUMBA_CACHE_DIR, fresh process): first leverage_risk "
              f"{cold:.1f} s")
    span = ("2024-01-01", "2025-01-01") if args.quick else ("2020-01-01", "2026-05-17 07:00")
    starts = 6 if args.quick else None
    repeats = args.repeats or (3 if args.quick else 1)
    m = load(*span)
    kw = dict(leverage=LEVERAGES, horizon="30D", starts=starts, initial_capital=1000.0)
    t0 = time.perf_counter()
    bt.leverage_risk(m.take(0, 800), **{**kw, "starts": 97})       # compile / load cache
    first = time.perf_counter() - t0
    times: list[float] = []
    for _ in range(repeats):
        with PeakRss() as rss:
            t0 = time.perf_counter()
            result = bt.leverage_risk(m, **kw)
            times.append(time.perf_counter() - t0)
    wall = float(np.median(times))
    window_bars = float(result.out[:, O_N_BARS].sum())
    columns = result.out.shape[0]
    entries = buy_and_hold(m.index)
    bt.sweep(m.take(0, 800), entries=entries.iloc[:801], leverage=LEVERAGES,
             initial_capital=1000.0, progress=False)
    sweep_times = []
    for _ in range(max(3, repeats)):
        t0 = time.perf_counter()
        bt.sweep(m, entries=entries, leverage=LEVERAGES, initial_capital=1000.0,
                 progress=False)
        sweep_times.append(time.perf_counter() - t0)
    sweep_wall = float(np.median(sweep_times))
    sweep_rate = m.n_bars * len(LEVERAGES) / sweep_wall
    rate = window_bars / wall
    out = {
        "machine": machine(), "quick": args.quick, "bars": m.n_bars,
        "span": f"{m.index[0]} .. {m.index[-1]}", "windows": result.n_groups,
        "columns": columns, "threads": int(__import__("numba").get_num_threads()),
        "window_bars": window_bars, "wall_s": wall, "wall_s_all": times,
        "first_call_s": first, "window_bars_per_s": rate,
        "ns_per_window_bar": 1e9 / rate,
        "rss_growth_mb": rss.peak - rss.start, "rss_bytes_per_column":
            (rss.peak - rss.start) * 2**20 / columns,
        "sweep_wall_s": sweep_wall, "sweep_bar_combos_per_s": sweep_rate,
        "ratio_sweep_rate_over_risk_rate": sweep_rate / rate,
        "p_liquidation_10x": float(result.table.loc[10, "p_liquidation"]),
        "cold_start_s": cold,
    }
    print(f"machine: {out['machine']}")
    print(f"data: {m.n_bars:,} hourly bars {out['span']}; {result.n_groups:,} windows x "
          f"{len(LEVERAGES)} leverages = {columns:,} columns, horizon 30 days, "
          f"{out['threads']} threads")
    print(f"leverage_risk: {wall:.2f} s (median of {repeats}: "
          f"{', '.join(f'{t:.2f}' for t in times)}), first call {first:.2f} s")
    print(f"  {window_bars / 1e6:,.0f} M window-bars, {rate / 1e6:,.1f} M window-bars/s, "
          f"{1e9 / rate:.1f} ns per window-bar")
    print(f"  RSS growth {out['rss_growth_mb']:.0f} MB "
          f"({out['rss_bytes_per_column']:.0f} B per column; the output is "
          f"{result.out.shape[1] * 8} B per column)")
    print(f"baseline bt.sweep, same bars x {len(LEVERAGES)} leverages: {sweep_wall:.3f} s "
          f"(median of {len(sweep_times)}), {sweep_rate / 1e6:,.1f} M bar-combinations/s")
    print(f"ratio: the sweep covers a bar-combination {out['ratio_sweep_rate_over_risk_rate']:.2f}"
          f"x faster than leverage_risk a window-bar")
    print(f"(check: P(liquidation) at 10x long, 30 days = {out['p_liquidation_10x']:.4f})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
