"""``sweep({"BTC": m1, "ETH": m2}, ...)``: the grid of SPEC §9 over a portfolio.

The market, instrument and signal arrays are built once (``portfolio.PortfolioInputs``).
Locally, ``kernels/portfolio_sweep.py`` runs the combinations bars outer, combinations
inner (one block per thread, the kernel releases the GIL) on the one portfolio bar of
``run()`` with ``run()``'s running stats, and each row is finalised by ``run()``'s own
``summary_values``, so they are equal exactly. Nothing per bar is stored. With a Dask
executor (``executor=``; the inputs are scattered once per worker) each combination is one
``simulate_portfolio`` call in a chunk task (``combination_stats``).

Owns no simulation logic; must not import matplotlib.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import pandas as pd

from backtest.checks import user_stacklevel
from backtest.data.fingerprint import fingerprint_parts
from backtest.kernels.portfolio import N_SUMMARY
from backtest.kernels.portfolio_sweep import portfolio_sweep_block
from backtest.kernels.stats import N_STATS, STAT_NAMES
from backtest.results.portfolio import summary_values
from backtest.simulation.compile_notice import SECONDS, notify_compiling
from backtest.simulation.parallel_compile import two_core_compile
from backtest.simulation.params import SIGNAL_NAMES, encode
from backtest.simulation.portfolio import PortfolioInputs
from backtest.sweeps.executor import (
    chunk_done,
    dask_client,
    gather_chunks,
    progress_bar,
    sweep_identity,
)
from backtest.sweeps.grid import (
    MARKET_PARAMS,
    check_memory,
    chunk_size_for,
    expand,
    grid_size,
)
from backtest.sweeps.result import SweepResult
from backtest.sweeps.store import open_store, todo_ranges

# Combinations per thread below which a local sweep runs in one pass.
_PASS_COMBOS = 64
_MAX_WARNINGS_SHOWN = 3
# Combinations per thread between two saves to a store= directory.
_STORE_CHUNK = 8


def sweep_portfolio(markets: Mapping[str, Any], signals: tuple[Any, Any, Any, Any], *,
                    progress: bool = True, executor: Any = None, chunk_size: Any = None,
                    store: Any = None, **grid: Any) -> SweepResult:
    """Every combination of the list-valued ``run()`` parameters on one portfolio.

    ``signals``: (entries, exits, short_entries, short_exits), each ``None`` or a dict
    keyed by market name, as for ``run()``. Returns a ``SweepResult`` whose ``market`` is
    the dict of markets and whose ``run(i)`` re-runs the portfolio.
    """
    max_memory = grid.pop("max_memory", None)
    client = dask_client(executor)
    _refuse_signal_sets(signals)
    n_grid, n_names = grid_size(grid)
    check_memory(n_grid, n_names, N_STATS, max_memory)
    names, values, codes = expand(grid)
    fixed = [k for k in MARKET_PARAMS if k in values]
    if fixed:
        raise ValueError(f"sweep(): {fixed} change the market/instrument arrays and cannot be "
                         "swept; pass one value (or one dict by market) per sweep.")
    scalars = {k: v for k, v in grid.items() if k not in values}
    combos = [{**scalars, **{n: values[n][c] for n, c in zip(names, row, strict=True)}}
              for row in codes]
    inputs = PortfolioInputs(markets, signals, combos[0])
    validated = _validate_all(inputs, combos)
    stats = np.empty((len(combos), N_STATS))
    levels = [(n, list(values[n])) for n in names]
    signal_dict = dict(zip(SIGNAL_NAMES, signals, strict=True))
    saved = open_store(store, lambda: fingerprint_parts(
        dict(markets), sweep_identity(scalars, levels), signal_dict), len(combos), STAT_NAMES)
    try:
        return _execute(markets, inputs, combos, validated, stats, levels, codes, scalars,
                        signal_dict, client, saved, chunk_size, progress)
    finally:
        if saved is not None:
            saved.close()   # an interrupted sweep must not keep the store locked


def _execute(markets: Mapping[str, Any], inputs: PortfolioInputs, combos: list,
             validated: list, stats: np.ndarray, levels: list, codes: np.ndarray,
             scalars: dict[str, Any], signal_dict: dict[str, Any], client: Any, saved: Any,
             chunk_size: Any, progress: bool) -> SweepResult:
    """Run the combinations not yet in the store (locally or on Dask); the labelled result."""
    done = np.zeros(len(combos), dtype=bool) if saved is None else saved.read_into(stats)
    threads = (numba.get_num_threads() if client is None
               else max(1, sum(client.nthreads().values())))
    if chunk_size is not None:
        chunk = chunk_size_for(chunk_size, len(combos), threads)
    elif client is not None:
        chunk = max(1, -(-len(combos) // (4 * threads)))     # ~4 tasks per worker thread
    elif saved is None:   # ~10 passes, so that a long sweep's progress bar advances; a
        # small one in one pass (each pass walks every bar once)
        chunk = min(len(combos), max(_PASS_COMBOS * threads, -(-len(combos) // 10)))
    else:   # with a store, a chunk of combinations is saved at a time
        chunk = _STORE_CHUNK * threads
    ranges = todo_ranges(done, chunk)
    n_todo = len(combos) - int(done.sum())
    bar = progress_bar(progress, n_todo)
    finished = chunk_done(saved, bar, stats)

    started = time.perf_counter()
    try:
        if client is None:
            _run_local(inputs, combos, validated, stats, ranges, threads, finished)
        else:
            _run_distributed(client, inputs, combos, validated, stats, ranges, finished)
    finally:
        if bar is not None:
            bar.close()
    result = SweepResult(market=dict(markets), stats=stats, levels=levels, codes=codes,
                         scalars=scalars, signals=signal_dict,
                         elapsed=time.perf_counter() - started)
    if saved is not None:
        saved.finish(result.stats)
    return result


def combination_stats(inputs: PortfolioInputs, combos: list[dict[str, Any]],
                      validated: list[list[dict[str, Any]]]) -> np.ndarray:
    """float64[len(combos), N_STATS]: the stats rows of these combinations, run one after
    the other (a Dask task; ``run()``'s own result code, so rows equal ``run()``)."""
    out = np.empty((len(combos), N_STATS))
    for r, (combo, prms) in enumerate(zip(combos, validated, strict=True)):
        row = inputs.run(combo, prms)._raw_stats()
        out[r] = [float(row[k]) for k in STAT_NAMES]
    return out


def _run_local(inputs: PortfolioInputs, combos: list, validated: list, stats: np.ndarray,
               ranges: list[tuple[int, int]], threads: int,
               finished: Callable[[int, int], None]) -> None:
    """The combinations-inner kernel (``kernels/portfolio_sweep.py``), one block of
    combinations per thread."""
    notify_compiling(portfolio_sweep_block, seconds=SECONDS["portfolio"])
    two_core_compile(portfolio_sweep_block)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for lo, hi in ranges:
            stats[lo:hi] = kernel_stats(inputs, validated[lo:hi], threads, pool)
            finished(lo, hi)


def kernel_stats(inputs: PortfolioInputs, validated: list[list[dict[str, Any]]],
                 threads: int = 1, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """float64[len(validated), N_STATS]: the stats rows of these combinations from one
    ``portfolio_sweep_block`` per thread, each row equal to ``run()``'s (the same kernel
    summary, finalised by the same ``summary_values``)."""
    n = len(validated)
    # Deal combinations round-robin to the blocks: neighbours in the grid cost alike.
    order = np.concatenate([np.arange(b, n, threads) for b in range(threads)])
    params = np.ascontiguousarray(np.stack([np.stack([encode(prm) for prm in validated[i]])
                                            for i in order]))
    summary = np.empty((n, N_SUMMARY))
    quiet = np.empty(n)
    bounds = np.linspace(0, n, min(threads, n) + 1).astype(int)
    args = (params, inputs.md, inputs.insts, inputs.tiers, inputs.masks)
    if pool is None or len(bounds) == 2:
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            portfolio_sweep_block(*args, a, b, summary, quiet)
    else:
        jobs = [pool.submit(portfolio_sweep_block, *args, a, b, summary, quiet)
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        for job in jobs:
            job.result()
    out = np.empty((n, N_STATS))
    n_bars = inputs.md.shape[1]
    for r in range(n):
        i = order[r]
        row = summary_values(summary[r], validated[i][0]["initial_capital"],
                             float(inputs.bar_ns), n_bars)
        out[i] = [float(row[k]) for k in STAT_NAMES]
    return out


def _run_distributed(client: Any, inputs: PortfolioInputs, combos: list, validated: list,
                     stats: np.ndarray, ranges: list[tuple[int, int]],
                     finished: Callable[[int, int], None]) -> None:
    """Chunks of combinations as Dask tasks; the inputs (markets, arrays) are scattered once
    to every worker. At most two chunks per worker are in flight."""
    if not ranges:
        return
    shared = client.scatter(inputs, broadcast=True)
    gather_chunks(client, ranges, lambda lo, hi: client.submit(
        combination_stats, shared, combos[lo:hi], validated[lo:hi], pure=False), stats,
        finished)
    client.cancel(shared)


def _refuse_signal_sets(signals: tuple[Any, ...]) -> None:
    for name, signal in zip(SIGNAL_NAMES, signals, strict=True):
        if not isinstance(signal, Mapping):
            continue  # None, or run()'s own error for a non-dict
        nested = [k for k, v in signal.items() if isinstance(v, (Mapping, pd.DataFrame))]
        if nested:
            raise ValueError(f"sweep(): {name}[{nested[0]!r}] holds several signal sets; a "
                             "portfolio sweep takes one signal per market (a dict name -> "
                             "series). Run one sweep per signal set.")


def _validate_all(inputs: PortfolioInputs, combos: list[dict[str, Any]]
                  ) -> list[list[dict[str, Any]]]:
    """Every combination's per-market parameters, in this thread (errors name the first
    bad combination); repeated warnings are summarised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validated = []
        for combo in combos:
            try:
                validated.append(inputs.validate(combo))
            except (TypeError, ValueError) as err:
                raise type(err)(f"{err} (combination {combo})") from None
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    for text in messages[:_MAX_WARNINGS_SHOWN]:
        warnings.warn(text, UserWarning, stacklevel=user_stacklevel())
    if len(messages) > _MAX_WARNINGS_SHOWN:
        warnings.warn(f"sweep(): {len(messages) - _MAX_WARNINGS_SHOWN} more warnings like "
                      "these for other combinations.", UserWarning, stacklevel=user_stacklevel())
    return validated
