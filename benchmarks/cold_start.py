"""First ``run()`` and/or ``sweep()`` in this process, on a 200-bar market: wall and CPU time;
or ``demo``: the whole ``backtest demo`` (its data, four runs, figures and report).

Usage (an empty cache gives the cold start, the same cache again the warm one)::

    NUMBA_CACHE_DIR=$(mktemp -d) python benchmarks/cold_start.py run|sweep|both|demo

or, for the figure the issue asks for (each repeat a fresh process with its own empty
cache; prints every repeat, the median, the machine and the date)::

    python benchmarks/cold_start.py demo --repeats 3 [--json PATH]

CPU time is this process's (a compile child or render worker it starts is not counted);
wall time is what the user waits for.
"""

import sys
import time
import warnings

if __name__ == "__main__" and "--repeats" in sys.argv:
    import json
    import os
    import platform
    import statistics
    import subprocess
    import tempfile

    args = sys.argv[1:]
    k = args.index("--repeats")
    repeats = int(args[k + 1])
    what = args[0] if args and not args[0].startswith("--") else "demo"
    out = args[args.index("--json") + 1] if "--json" in args else None
    walls, cpus = [], []
    for i in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            done = subprocess.run([sys.executable, __file__, what], env=env, check=True,
                                  capture_output=True, text=True)
        line = done.stdout.strip().splitlines()[-1]
        print(f"cold {i + 1}/{repeats}: {line}", flush=True)
        walls.append(float(line.split("total ")[1].split()[0]))
        cpus.append(float(line.split("total ")[2].split()[0]))
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    summary = {"what": what, "repeats": repeats, "wall_total_s": walls, "cpu_total_s": cpus,
               "median_wall_s": statistics.median(walls),
               "median_cpu_s": statistics.median(cpus),
               "machine": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "load_1min_after": load,
               "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    print(f"median of {repeats}: wall {summary['median_wall_s']:.2f} s, process CPU "
          f"{summary['median_cpu_s']:.2f} s ({summary['cpus']} CPUs, load {load:.2f}, "
          f"{summary['date_utc']} UTC)")
    if out:
        with open(out, "w") as f:
            json.dump(summary, f, indent=2)
    sys.exit(0)

t0, c0 = time.perf_counter(), time.process_time()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import backtest as bt  # noqa: E402

warnings.simplefilter("ignore")
if len(sys.argv) > 1 and sys.argv[1] == "demo":
    import tempfile

    from backtest.cli.demo import run_demo

    with tempfile.TemporaryDirectory() as out:
        t1, c1 = time.perf_counter(), time.process_time()
        run_demo(out, progress=False)
        t2, c2 = time.perf_counter(), time.process_time()
    print(f"demo: wall demo {t2 - t1:.2f} total {t2 - t0:.2f} | cpu demo {c2 - c1:.2f} "
          f"total {c2 - c0:.2f}")
    sys.exit(0)
idx = pd.date_range("2024-01-01", periods=200, freq="h", tz="UTC")
c = 100 + np.cumsum(np.random.default_rng(0).normal(0, 1, 200))
bars = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c, "volume": 1.0},
                    index=idx)
m = bt.load_market(bars, funding=0, instrument=bt.Instrument.simple())
e = np.zeros(200, bool)
e[::20] = True
what = sys.argv[1] if len(sys.argv) > 1 else "both"
t2, c2 = time.perf_counter(), time.process_time()
if what in ("run", "both"):
    bt.run(m, entries=e, leverage=5)
t3, c3 = time.perf_counter(), time.process_time()
if what in ("sweep", "both"):
    bt.sweep(m, entries=e, leverage=[2, 5], progress=False)
t4, c4 = time.perf_counter(), time.process_time()
print(f"{what}: wall run {t3 - t2:.2f} sweep {t4 - t3:.2f} total {t4 - t0:.2f} | "
      f"cpu run {c3 - c2:.2f} sweep {c4 - c3:.2f} total {c4 - c0:.2f}")
