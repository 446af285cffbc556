"""``bench_sweep.py --million``: 1,000,000 combinations on a year of hourly bars.

Run through ``python benchmarks/bench_sweep.py --million [--json PATH]``; the figures are in
``benchmarks/README.md`` (``bench_sweep.py``).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

import backtest as bt
from backtest.sweeps import sweep
from benchmarks.bench_sweep import FEE, PeakRss, signal_sets_periods


def hourly_market(n: int = 8760, seed: int = 3):
    """A year of hourly bars (random walk, mark without the last-price wicks, 8 h funding)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2023-01-01", periods=n, freq="1h", tz="UTC")
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.006, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0, 0.003, n)) * close
    high, low = np.maximum(open_, close) + spread, np.minimum(open_, close) - spread
    wick = rng.random(n) < 0.01
    bars = pd.DataFrame({"open": open_, "high": high, "low": np.where(wick, low * 0.97, low),
                         "close": close}, index=ts)
    mark = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=ts)
    funding = pd.DataFrame({"timestamp": ts[::8], "rate": rng.normal(1e-4, 2e-4, n // 8)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, mark=mark, funding=funding, instrument="binance:BTCUSDT")


def million(out: dict) -> None:
    """1,000,000 combinations (125 leverages x 50 stops x 80 take-profits x 2 modes) on a year
    of hourly bars with the long/short signal sets of a 12/48-bar cross: time and memory."""
    market = hourly_market()
    sigs = signal_sets_periods(market, 12, 48)
    params = {"leverage": list(np.linspace(1, 125, 125)),
              "stop_loss": [None] + list(np.linspace(0.002, 0.1, 49)),
              "take_profit": [None] + list(np.linspace(0.005, 0.4, 79)),
              "margin_mode": ["isolated", "cross"], "fees": FEE}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep(market, **sigs, progress=False, leverage=[1, 2])
        with PeakRss() as mem:
            t0, c0 = time.perf_counter(), time.process_time()
            res = sweep(market, **{k: v["long"] for k, v in sigs.items()}, progress=True,
                        **params)
            frame = res.stats
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    bc = market.n_bars * len(frame)
    out["million"] = {"bars": market.n_bars, "combinations": len(frame), "wall_s": wall,
                      "cpu_s": cpu, "kernel_s": res.elapsed, "rss_growth_mb": mem.peak - mem.base,
                      "ns_per_bar_combo": wall / bc * 1e9, "cpu_ns_per_bar_combo": cpu / bc * 1e9}
    m = out["million"]
    print(f"{m['combinations']:,} combinations x {m['bars']:,} hourly bars: {m['wall_s']:.1f} s "
          f"(kernel {m['kernel_s']:.1f} s, {m['ns_per_bar_combo']:.2f} ns per bar-combination; "
          f"CPU {m['cpu_s']:.1f} s), RSS growth {m['rss_growth_mb']:.0f} MB")
