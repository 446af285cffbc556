"""The single-market sweep, the Cartesian product of parameter lists and signal sets (SPEC §9).

validate (each distinct value once) → encode parameter rows chunk by chunk → the kernel
(``kernels/sweep.sweep_block``, one block of tiles per thread, stats only; or chunks as Dask
tasks) → :class:`SweepResult`. Memory is O(chunk × state) in the kernel plus one stats row
per combination; nothing is ever bars × combinations.

The grid and its validation: ``grid``; chunks, progress and Dask: ``executor``.

Owns no simulation logic; must not import matplotlib.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import pandas as pd

from backtest.data.fingerprint import fingerprint_parts
from backtest.kernels.stats import N_STATS, STAT_NAMES
from backtest.kernels.sweep import sweep_block, tile_bounds
from backtest.simulation.arrays import (
    check_market,
    expiry_settlement,
    instrument_arrays,
    market_arrays,
    signal_mask,
)
from backtest.simulation.compile_notice import SECONDS, notify_compiling
from backtest.simulation.parallel_compile import two_core_compile
from backtest.simulation.params import SIGNAL_NAMES, prepare_signal
from backtest.sweeps.executor import (
    chunk_done,
    dask_client,
    gather_chunks,
    progress_bar,
    sweep_identity,
)
from backtest.sweeps.grid import (
    MARKET_PARAMS,
    Plan,
    check_memory,
    chunk_size_for,
    expand,
    grid_size,
)
from backtest.sweeps.result import SweepResult
from backtest.sweeps.store import open_store, todo_ranges


def sweep_single(market: Any, entries: Any = None, exits: Any = None, short_entries: Any = None,
                 short_exits: Any = None, *, progress: bool = True, executor: Any = None,
                 chunk_size: int | None = None, store: Any = None, **grid: Any) -> SweepResult:
    """The sweep of one ``Market``; the arguments of ``backtest.sweep``."""
    check_market(market, "sweep()")
    max_memory = grid.pop("max_memory", None)
    client = dask_client(executor)
    set_names, bool_signals = _signal_sets(market, (entries, exits, short_entries,
                                                    short_exits))
    n_grid, n_names = grid_size(grid)
    n_sets = 1 if set_names is None else len(set_names)
    check_memory(n_grid * n_sets, n_names + (set_names is not None), N_STATS, max_memory)
    grid_names, grid_values, codes = expand(grid)
    fixed = [k for k in MARKET_PARAMS if k in grid_values]
    if fixed:
        raise ValueError(f"sweep(): {fixed} change the market/instrument arrays and cannot be "
                         "swept; pass one value and run one sweep per value.")
    scalars = {k: v for k, v in grid.items() if k not in grid_values}
    plan = Plan(market.instrument, scalars, grid_names, grid_values, codes,
                 n_sets=1 if set_names is None else len(set_names))
    base = plan.base
    arrays = (market_arrays(market, base["borrow_rate"]),
              *instrument_arrays(market.instrument,
                                 *expiry_settlement(market, base["settlement_price"])),
              signal_mask(*bool_signals))
    threads = (numba.get_num_threads() if client is None
               else max(1, sum(client.nthreads().values())))
    chunk = chunk_size_for(chunk_size, plan.n_combos, threads)
    stats = np.empty((plan.n_combos, N_STATS))
    levels = ([("signals", list(set_names))] if set_names is not None else []) + [
        (name, list(grid_values[name])) for name in grid_names]
    saved = open_store(store, lambda: fingerprint_parts(
        market, sweep_identity(scalars, levels), bool_signals), plan.n_combos, STAT_NAMES)
    try:
        return _execute(market, client, plan, arrays, stats, chunk, threads, saved, progress,
                        dict(levels=levels, scalars=scalars, signals=bool_signals,
                             codes=plan.level_codes(with_sets=set_names is not None)))
    finally:
        if saved is not None:
            saved.close()


def _execute(market: Any, client: Any, plan: Plan, arrays: tuple, stats: np.ndarray,
             chunk: int, threads: int, saved: Any, progress: bool,
             labels: dict[str, Any]) -> SweepResult:
    """Resume from the store (if any), run the missing chunks, label the result."""
    done = np.zeros(plan.n_combos, dtype=bool) if saved is None else saved.read_into(stats)
    ranges = todo_ranges(done, chunk)
    n_todo = plan.n_combos - int(done.sum())
    bar = progress_bar(progress, n_todo)
    finished = chunk_done(saved, bar, stats)

    started = time.perf_counter()
    try:
        if client is None:
            _run_local(plan, arrays, float(market.bar_ns), stats, ranges, threads, finished)
        else:
            _run_distributed(client, plan, arrays, float(market.bar_ns), stats, ranges,
                             finished)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - started
    result = SweepResult(market=market, stats=stats, elapsed=elapsed, **labels)
    if saved is not None:
        saved.finish(result.stats)
    return result


def _run_local(plan: Plan, arrays: tuple, bar_ns: float, stats: np.ndarray,
               ranges: list[tuple[int, int]], threads: int,
               finished: Callable[[int, int], None]) -> None:
    md, inst, tiers, signals = arrays
    pool = ThreadPoolExecutor(threads) if threads > 1 and ranges else None
    try:
        for lo, hi in ranges:
            run_blocks(plan.rows(lo, hi), md, inst, tiers, signals, bar_ns, stats[lo:hi],
                       threads, pool=pool)
            finished(lo, hi)
    finally:
        if pool is not None:
            pool.shutdown()


def remote_stats(params: np.ndarray, md: np.ndarray, inst: np.ndarray, tiers: np.ndarray,
                 signals: np.ndarray, bar_ns: float) -> np.ndarray:
    """A Dask task: the stats of one chunk of rows, on all of the worker's Numba threads."""
    out = np.empty((params.shape[0], N_STATS))
    run_blocks(params, md, inst, tiers, signals, bar_ns, out, numba.get_num_threads())
    return out


def _run_distributed(client: Any, plan: Plan, arrays: tuple, bar_ns: float,
                     stats: np.ndarray, ranges: list[tuple[int, int]],
                     finished: Callable[[int, int], None]) -> None:
    """Chunks of rows as tasks; the market, instrument and signal arrays are scattered once
    to every worker. At most two chunks per worker are in flight (bounded local memory)."""
    if not ranges:
        return
    shared = client.scatter(list(arrays), broadcast=True)
    gather_chunks(client, ranges, lambda lo, hi: client.submit(
        remote_stats, plan.rows(lo, hi), *shared, bar_ns, pure=False), stats, finished)
    client.cancel(shared)


def run_blocks(params: np.ndarray, md: np.ndarray, inst: np.ndarray, tiers: np.ndarray,
               signals: np.ndarray, bar_ns: float, out: np.ndarray, threads: int,
               fast: bool = True, pool: ThreadPoolExecutor | None = None) -> None:
    """Fill ``out[n, N_STATS]`` for the rows of ``params``: the tiles dealt round-robin to
    ``threads`` blocks (neighbouring rows behave alike, so dealing balances the load), one
    ``sweep_block`` per thread. The kernel releases the GIL; ``parallel=True``/``prange``
    measured no faster and added ~10 s to the cold compile (benchmarks/README.md)."""
    notify_compiling(sweep_block, tile_bounds, seconds=SECONDS["sweep"])
    bounds = tile_bounds(params)
    n_blocks = max(1, min(threads, bounds.shape[0]))
    two_core_compile(sweep_block)
    if n_blocks == 1:
        sweep_block(params, md, inst, tiers, signals, bar_ns, fast, out, bounds, 0, 1)
        return
    own = pool is None
    pool = ThreadPoolExecutor(n_blocks) if own else pool
    try:
        jobs = [pool.submit(sweep_block, params, md, inst, tiers, signals, bar_ns, fast, out,
                            bounds, b, n_blocks) for b in range(n_blocks)]
        for job in jobs:
            job.result()
    finally:
        if own:
            pool.shutdown()


def _signal_sets(market: Any, args: tuple[Any, ...]
                 ) -> tuple[list[str] | None, tuple[np.ndarray, ...]]:
    """Named sets (or None) and four bool matrices ``(n_bars, n_sets)``."""
    named: dict[str, dict[Any, Any]] = {}
    for name, arg in zip(SIGNAL_NAMES, args, strict=True):
        if isinstance(arg, pd.DataFrame):
            named[name] = {col: arg[col] for col in arg.columns}
        elif isinstance(arg, Mapping):
            named[name] = dict(arg)
    keys: list[Any] | None = None
    for name, sets in named.items():
        if not sets:
            raise ValueError(f"sweep(): {name} is an empty dict/DataFrame; give at least one "
                             "signal set or a single series.")
        if keys is None:
            keys, first = list(sets), name
        elif set(sets) != set(keys):
            raise ValueError(f"sweep(): the signal sets of {name} ({sorted(map(str, sets))}) "
                             f"differ from those of {first} ({sorted(map(str, keys))}); every "
                             "signal given as a dict/DataFrame must use the same set names.")
    if keys is not None and len(set(map(str, keys))) != len(keys):
        raise ValueError(f"sweep(): signal set names must be distinct as text, got {keys}.")
    n_sets = 1 if keys is None else len(keys)
    index = market.index
    mats = []
    for name, arg in zip(SIGNAL_NAMES, args, strict=True):
        if name in named:
            cols = [prepare_signal(f"{name}[{key!r}]", named[name][key], index) for key in keys]
            mats.append(np.ascontiguousarray(np.hstack(cols)))
        else:
            col = prepare_signal(name, arg, index)
            mats.append(np.ascontiguousarray(np.repeat(col, n_sets, axis=1)))
    return (None if keys is None else [str(k) for k in keys]), tuple(mats)
