"""Benchmark ``run()`` on a year of one-minute bars: bars per second, cold and cached compile.

Usage::

    python benchmarks/bench_run.py            # 525,600 synthetic 1m bars, 5 repeats
    python benchmarks/bench_run.py --quick    # 100,000 bars, 3 repeats
    python benchmarks/bench_run.py --json out.json

Synthetic data: ``bench_sweep.synthetic_market`` (a log random walk whose mark price does not
follow 0.1 % of the last-price wicks, funding every 8 h). The strategy flips long/short on a
moving-average cross with a 2 % stop, a 4 % take-profit and 10x isolated leverage, so every
branch of the bar logic is exercised. The baseline in the same process is a plain NumPy pass
over the same arrays (a mark-to-market of a constant position), to put the figure in context.

Compile time is measured in fresh subprocesses: cold with an empty NUMBA_CACHE_DIR, cached
with the cache that the cold run filled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sweep import synthetic_market  # noqa: E402  (one synthetic market for both)

N_YEAR_MINUTES = 525_600


def ma_signals(market):
    close = market.bars["close"]
    fast, slow = close.rolling(60).mean(), close.rolling(600).mean()
    up = (fast > slow) & (fast.shift() <= slow.shift())
    down = (fast < slow) & (fast.shift() >= slow.shift())
    return up.to_numpy(), down.to_numpy()


def measure(n: int, repeats: int) -> dict:
    import backtest as bt

    market = synthetic_market(n)
    up, down = ma_signals(market)
    kwargs = dict(entries=up, exits=down, short_entries=down, short_exits=up, leverage=10,
                  size=0.5, stop_loss=0.02, take_profit=0.04, fees=0.0005)
    bt.run(market, **kwargs)  # compile / load from cache
    times, base = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = bt.run(market, **kwargs)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _ = market.close - market.mark_close + np.maximum.accumulate(market.close)
        base.append(time.perf_counter() - t0)
    med, med_base = float(np.median(times)), float(np.median(base))
    return {"bars": n, "repeats": repeats, "median_s": med, "bars_per_s": n / med,
            "ns_per_bar": med / n * 1e9, "numpy_pass_s": med_base,
            "ratio_to_numpy_pass": med / med_base, "n_trades": int(r.stats["n_trades"])}


def compile_times() -> dict:
    code = ("import time; t0=time.perf_counter(); import backtest as bt; "
            "import benchmarks.bench_run as b; m=b.synthetic_market(2000); u,d=b.ma_signals(m); "
            "bt.run(m, entries=u, exits=d, stop_loss=0.02); print(time.perf_counter()-t0)")
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold_start_s", "cached_start_s"):
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, check=True, cwd=os.path.dirname(os.path.dirname(
                                     os.path.abspath(__file__))))
            out[label] = float(res.stdout.strip().splitlines()[-1])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    n = 100_000 if args.quick else N_YEAR_MINUTES
    result = measure(n, 3 if args.quick else 5)
    result.update(compile_times())
    print(f"run() on {result['bars']:,} one-minute bars (median of {result['repeats']}): "
          f"{result['median_s'] * 1e3:.1f} ms = {result['bars_per_s'] / 1e6:.1f} M bars/s "
          f"({result['ns_per_bar']:.1f} ns/bar), {result['n_trades']} trades")
    print(f"  baseline numpy pass over the same arrays: {result['numpy_pass_s'] * 1e3:.1f} ms "
          f"(run() = {result['ratio_to_numpy_pass']:.1f}x that)")
    print(f"  start-up to first result in a fresh process: cold (empty cache) "
          f"{result['cold_start_s']:.1f} s, cached {result['cached_start_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
