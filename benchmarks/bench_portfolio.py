"""Benchmark portfolios: ``run({...})`` per bar and ``sweep({...})`` in bar-combinations/s.

Usage::

    python benchmarks/bench_portfolio.py                  # 3 markets x 200,000 1m bars
    python benchmarks/bench_portfolio.py --quick          # 3 markets x 20,000 bars
    python benchmarks/bench_portfolio.py --json out.json

Markets: three synthetic one-minute random walks (``bench_sweep.synthetic_market`` with
different seeds; ``binance:BTCUSDT`` tiers, 8-hour funding, mark ≠ last on wicks), each
with a 60/600-bar moving-average cross, long and short. Grid: margin mode × 8 leverages ×
2 stop losses = 32 combinations. A bar-combination here is one bar of the whole portfolio
(all markets). Baselines in the same process: ``bt.run(portfolio, ...)`` in a Python loop
over the same grid, and the per-combination sweep this kernel replaced (one
``simulate_portfolio`` call per combination on a thread pool, ``combination_stats``: the
Dask path still). Medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import backtest as bt  # noqa: E402
from backtest.simulation.portfolio import PortfolioInputs  # noqa: E402
from backtest.sweeps.portfolio import combination_stats  # noqa: E402
from benchmarks.bench_sweep import signal_sets, synthetic_market  # noqa: E402

LEVERAGES = [1, 2, 3, 5, 10, 20, 50, 100]
GRID = {"margin_mode": ["isolated", "cross"], "leverage": LEVERAGES,
        "stop_loss": [None, 0.01], "size": 0.3, "fees": 0.0005}


def portfolio(n: int) -> tuple[dict, dict]:
    markets = {name: synthetic_market(n, seed) for name, seed in
               (("BTC", 7), ("ETH", 8), ("SOL", 9))}
    sigs: dict[str, dict] = {key: {} for key in ("entries", "exits", "short_entries",
                                                 "short_exits")}
    for name, m in markets.items():
        sets = signal_sets(m)
        for key in sigs:
            sigs[key][name] = sets[key]["long"] | sets[key]["short"]
    return markets, sigs


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 bars per market")
    parser.add_argument("--bars", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    n = args.bars or (20_000 if args.quick else 200_000)
    markets, sigs = portfolio(n)
    n_combos = int(np.prod([len(v) for v in GRID.values() if isinstance(v, list)]))
    scalars = {k: v for k, v in GRID.items() if not isinstance(v, list)}

    def one_run():
        bt.run(markets, **sigs, margin_mode="cross", leverage=10, stop_loss=0.01, **scalars)

    def loop():
        for mode in GRID["margin_mode"]:
            for lev in LEVERAGES:
                for stop in GRID["stop_loss"]:
                    bt.run(markets, **sigs, margin_mode=mode, leverage=lev, stop_loss=stop,
                           **scalars)

    def the_sweep():
        return bt.sweep(markets, **sigs, progress=False, **GRID)

    combos = [{**scalars, "margin_mode": mode, "leverage": lev, "stop_loss": stop}
              for mode in GRID["margin_mode"] for lev in LEVERAGES for stop in GRID["stop_loss"]]
    signals = tuple(sigs[k] for k in ("entries", "exits", "short_entries", "short_exits"))

    def per_combination_sweep():
        inputs = PortfolioInputs(markets, signals, combos[0])
        validated = [inputs.validate(c) for c in combos]
        with ThreadPoolExecutor(numba.get_num_threads()) as pool:
            list(pool.map(lambda i: combination_stats(inputs, combos[i:i + 1],
                                                      validated[i:i + 1]), range(len(combos))))

    one_run()                      # compile / load the cache outside the timings
    the_sweep()
    run_s = median_seconds(one_run, args.repeats)
    loop_s = median_seconds(loop, max(1, args.repeats // 2))
    per_combination_sweep()
    old_s = median_seconds(per_combination_sweep, args.repeats)
    sweep_s = median_seconds(the_sweep, args.repeats)
    bar_combos = n * n_combos
    out = {
        "bars": n, "markets": len(markets), "combinations": n_combos,
        "threads": numba.get_num_threads(),
        "run_seconds": run_s, "run_ns_per_bar_market": run_s / (n * len(markets)) * 1e9,
        "loop_seconds": loop_s, "sweep_seconds": sweep_s,
        "sweep_bar_combos_per_s": bar_combos / sweep_s,
        "loop_bar_combos_per_s": bar_combos / loop_s,
        "sweep_vs_loop": loop_s / sweep_s,
        "per_combination_sweep_seconds": old_s,
        "sweep_vs_per_combination_sweep": old_s / sweep_s,
    }
    print(f"portfolio of {len(markets)} markets x {n:,} 1m bars, {n_combos} combinations, "
          f"{out['threads']} threads (medians of {args.repeats})")
    print(f"  run():   {run_s * 1e3:8.1f} ms  = {out['run_ns_per_bar_market']:.0f} ns per "
          "bar and market")
    print(f"  loop of run() over the grid: {loop_s:7.2f} s  = "
          f"{out['loop_bar_combos_per_s'] / 1e6:.2f} M bar-combinations/s")
    print(f"  sweep():                     {sweep_s:7.2f} s  = "
          f"{out['sweep_bar_combos_per_s'] / 1e6:.2f} M bar-combinations/s "
          f"({out['sweep_vs_loop']:.2f}x the loop, "
          f"{out['sweep_vs_per_combination_sweep']:.2f}x the per-combination sweep)")
    print(f"  per-combination sweep (before the kernel): {old_s:7.2f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
