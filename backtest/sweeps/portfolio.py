"""``sweep({"BTC": m1, "ETH": m2}, ...)``: the grid of SPEC §9 over a portfolio.

The market, instrument and signal arrays are built once (``portfolio.PortfolioInputs``).
Locally, ``kernels/portfolio_sweep.py`` runs the combinations bars outer, combinations
inner (one block per thread, the kernel releases the GIL) on the one portfolio bar of
``run()``, and each row's stats come from ``run()``'s own ``compute_stats`` on the kernel's
equity curve, trades and funding, so they are equal exactly. Memory: the equity curves of
at most ``_EQUITY_BYTES`` worth of combinations at a time. With a Dask executor
(``executor=``; the inputs are scattered once per worker) each combination is one
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
from backtest.data.fingerprint import fingerprint
from backtest.kernels import records as R
from backtest.kernels.portfolio_sweep import (
    N_MISC,
    X_AMBIGUOUS,
    X_EXPOSED,
    X_MIN_LIQ,
    X_N_ROWS,
    X_N_TRADES,
    portfolio_sweep_block,
)
from backtest.kernels.stats import N_STATS, STAT_NAMES
from backtest.results.metrics import compute_stats
from backtest.simulation.compile_notice import SECONDS, notify_compiling
from backtest.simulation.params import SIGNAL_NAMES, encode
from backtest.simulation.portfolio import PortfolioInputs
from backtest.sweeps.executor import (
    PROGRESS_AFTER_S,
    chunk_done,
    dask_client,
    gather_chunks,
    progress_bar,
    sweep_identity,
)
from backtest.sweeps.grid import MARKET_PARAMS, chunk_size_for, expand
from backtest.sweeps.result import SweepResult
from backtest.sweeps.store import open_store, todo_ranges

# Seconds per bar × market × combination on one core (benchmarks/bench_sweep.py
# --portfolio), to decide whether a progress bar is worth showing (bench_portfolio.py:
# ~3.5e-8 wall on 2 loaded vCPUs with the combinations-inner kernel).
_EST_SECONDS_PER_BAR = 5e-8
_MAX_WARNINGS_SHOWN = 3
# Combinations per thread between two saves to a store= directory.
_STORE_CHUNK = 8
# Equity curves (bars x combinations) held at once by the kernel path.
_EQUITY_BYTES = 64e6
_ENTRY_BITS = R.SIG_ENTRY | R.SIG_SHORT_ENTRY


def sweep_portfolio(markets: Mapping[str, Any], signals: tuple[Any, Any, Any, Any], *,
                    progress: bool = True, executor: Any = None, chunk_size: Any = None,
                    store: Any = None, **grid: Any) -> SweepResult:
    """Every combination of the list-valued ``run()`` parameters on one portfolio.

    ``signals``: (entries, exits, short_entries, short_exits), each ``None`` or a dict
    keyed by market name, as for ``run()``. Returns a ``SweepResult`` whose ``market`` is
    the dict of markets and whose ``run(i)`` re-runs the portfolio.
    """
    client = dask_client(executor)
    _refuse_signal_sets(signals)
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
    saved = open_store(store, lambda: fingerprint(dict(markets), sweep_identity(scalars, levels),
                                                  signal_dict), len(combos), STAT_NAMES)
    done = np.zeros(len(combos), dtype=bool) if saved is None else saved.read_into(stats)
    threads = (numba.get_num_threads() if client is None
               else max(1, sum(client.nthreads().values())))
    if chunk_size is not None:
        chunk = chunk_size_for(chunk_size, len(combos), threads)
    elif client is not None:
        chunk = max(1, -(-len(combos) // (4 * threads)))     # ~4 tasks per worker thread
    else:   # one pass; with a store, a chunk of combinations is saved at a time
        chunk = len(combos) if saved is None else _STORE_CHUNK * threads
    ranges = todo_ranges(done, chunk)
    first = next(iter(markets.values()))
    n_todo = len(combos) - int(done.sum())
    estimate = _EST_SECONDS_PER_BAR * first.n_bars * len(markets) * n_todo / threads
    bar = progress_bar(progress and estimate > PROGRESS_AFTER_S, n_todo)
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
    """The combinations-inner kernel (``kernels/portfolio_sweep.py``), at most
    ``_EQUITY_BYTES`` of equity curves at a time, one block of combinations per thread."""
    notify_compiling(portfolio_sweep_block, seconds=SECONDS["portfolio"])
    per_call = max(threads, int(_EQUITY_BYTES // (8 * inputs.md.shape[1])))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for lo, hi in ranges:
            for a in range(lo, hi, per_call):
                b = min(hi, a + per_call)
                stats[a:b] = kernel_stats(inputs, validated[a:b], threads, pool)
            finished(lo, hi)


def kernel_stats(inputs: PortfolioInputs, validated: list[list[dict[str, Any]]],
                 threads: int = 1, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """float64[len(validated), N_STATS]: the stats rows of these combinations from one
    ``portfolio_sweep_block`` per thread, each row equal to ``run()``'s (same stats code
    on the same kernel outputs)."""
    n = len(validated)
    # Deal combinations round-robin to the blocks: neighbours in the grid cost alike.
    order = np.concatenate([np.arange(b, n, threads) for b in range(threads)])
    params = np.ascontiguousarray(np.stack([np.stack([encode(prm) for prm in validated[i]])
                                            for i in order]))
    md, insts, tiers, masks = inputs.md, inputs.insts, inputs.tiers, inputs.masks
    n_markets, n_bars = masks.shape
    cap = max(1, int(((masks & _ENTRY_BITS) != 0).sum()))   # one position per entry
    funding_bars = [np.flatnonzero(md[j, :, R.M_FUNDING_COUNT] != 0.0)
                    for j in range(n_markets)]
    k = max(1, max(len(f) for f in funding_bars))
    equity = np.empty((n, n_bars))
    funding = np.zeros((n, n_markets, k))
    trades = np.empty((n, cap * R.N_TRADE_COLS))
    trade_market = np.empty((n, cap), dtype=np.int64)
    misc = np.empty((n, N_MISC))
    bounds = np.linspace(0, n, min(threads, n) + 1).astype(int)
    args = (params, md, insts, tiers, masks)
    outs = (equity, funding, trades, trade_market, misc)
    if pool is None or len(bounds) == 2:
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            portfolio_sweep_block(*args, a, b, *outs)
    else:
        jobs = [pool.submit(portfolio_sweep_block, *args, a, b, *outs)
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        for job in jobs:
            job.result()
    out = np.empty((n, N_STATS))

    def row(r: int) -> None:
        i = order[r]
        out[i] = _stats_row(inputs, validated[i], equity[r], funding[r], trades[r],
                            trade_market[r], misc[r], funding_bars)

    for r in range(n):
        row(r)
    return out


def _stats_row(inputs: PortfolioInputs, prms: list[dict[str, Any]], equity: np.ndarray,
               funding: np.ndarray, trades: np.ndarray, trade_market: np.ndarray,
               misc: np.ndarray, funding_bars: list[np.ndarray]) -> list[float]:
    """``PortfolioResult._raw_stats`` from the kernel's outputs: the same ``compute_stats``
    call on the same values in the same order and layout (its sums are numpy's pairwise
    sums, whose rounding depends on both). Of the trades table only the columns the stats
    read are built."""
    n_rows = int(misc[X_N_ROWS])
    if n_rows != int(misc[X_N_TRADES]):
        raise RuntimeError("portfolio sweep: trade buffer too small (a bug; please report)")
    index = inputs.markets[inputs.names[0]].index
    rows = trades[:n_rows * R.N_TRADE_COLS].reshape(n_rows, R.N_TRADE_COLS)
    # PortfolioResult.trades' order: by exit time, then market name, stable (lexsort is).
    rank = np.argsort(np.argsort(np.array(inputs.names), kind="stable"), kind="stable")
    order = np.lexsort((rank[trade_market[:n_rows]], rows[:, R.T_EXIT_BAR]))
    rows = rows[order]
    frame = pd.DataFrame({"pnl": rows[:, R.T_PNL], "fees": rows[:, R.T_FEES],
                          "interest": rows[:, R.T_INTEREST],
                          "exit_reason": [R.REASONS[int(c)] for c in rows[:, R.T_REASON]]})
    # As simulate_portfolio's per_market[:, 3, :]: rows of a larger array (not coalescible).
    n_markets, n_bars = len(inputs.names), len(index)
    per_market = np.zeros((n_markets, n_bars + 1))[:, :n_bars]
    for j, bars in enumerate(funding_bars):
        per_market[j, bars] = funding[j, :len(bars)]
    paid = pd.DataFrame(per_market.T, index=index, columns=inputs.names).to_numpy().sum()
    row = compute_stats(equity, frame, prms[0]["initial_capital"], inputs.bar_ns,
                        exposed_bars=int(misc[X_EXPOSED]), n_ambiguous=int(misc[X_AMBIGUOUS]),
                        funding_paid=float(paid), min_liq_distance=float(misc[X_MIN_LIQ]),
                        ruined=bool(equity[-1] <= 0.0))
    return [float(row[k]) for k in STAT_NAMES]


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
