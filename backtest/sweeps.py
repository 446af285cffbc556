"""``sweep()``: one market, the Cartesian product of parameter lists and signal sets (SPEC §9).

validate (each distinct value once) → encode parameter rows chunk by chunk → the kernel
(``kernels/sweep.sweep_block``, one block of tiles per thread, stats only; or chunks as Dask
tasks) → :class:`SweepResult`. Memory is O(chunk × state) in the kernel plus one stats row
per combination; nothing is ever bars × combinations.

Validation: ``params.validate_params`` is called once per distinct value of every
list-valued parameter (the other parameters at their scalar or first value, so any error it
raises belongs to a combination of the grid), then once per element of the product of the
distinct values of each *coupled* pair (``_COUPLED``: the only rules in ``validate_params``
that involve two parameters). "Stop beyond the liquidation distance" is evaluated for every
combination at once on the encoded rows and reported as one summary warning. Rows are
assembled column-wise from the per-value encodings (each swept parameter owns its columns);
should two swept parameters ever feed one column, every row is encoded through
``validate_params``/``encode`` instead, and a sample of combinations is always re-encoded
that way to prove the assembly.

Owns no simulation logic; must not import matplotlib.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import pandas as pd

from backtest.engine import expiry_settlement, instrument_arrays, market_arrays, signal_mask
from backtest.fingerprint import fingerprint
from backtest.kernels import records as R
from backtest.kernels.stats import N_STATS, STAT_NAMES
from backtest.kernels.sweep import TILE, sweep_block, tile_bounds
from backtest.params import (
    RUN_DEFAULTS,
    SIGNAL_NAMES,
    encode,
    expand_grid,
    prepare_signal,
    validate_params,
)
from backtest.sweep_result import SweepResult
from backtest.sweep_store import open_store, todo_ranges

# Rules of validate_params that involve two parameters: the product of the distinct values
# of each pair is validated (keep in step with params.validate_params).
_COUPLED = (("size", "size_type"), ("size_type", "stop_loss"))
# The per-value warning that sweep() summarises itself (see _warn_unreachable_stops).
_STOP_WARNING = "run(): stop_loss="
# Seconds per bar-combination on one core, to decide whether a progress bar is worth
# showing: a heavy case (hourly bars, frequent signals; benchmarks/README.md) is ~5 ns.
_EST_SECONDS_PER_BAR_COMBO = 5e-9
_PROGRESS_AFTER_S = 2.0
_N_SPOT_CHECKS = 24
# run() parameters that shape the market/instrument arrays rather than a parameter row.
_MARKET_PARAMS = ("borrow_rate", "settlement_price")


def sweep(market: Any, entries: Any = None, exits: Any = None, short_entries: Any = None,
          short_exits: Any = None, *, progress: bool = True, executor: Any = None,
          chunk_size: int | None = None, store: Any = None, **grid: Any) -> SweepResult:
    """Run every combination of the list-valued parameters and signal sets; stats only.

    Parameters
    ----------
    market : Market or dict of name -> Market
        From ``bt.load_market``. A dict sweeps a portfolio with one wallet
        (``backtest.portfolio_sweep``): signals are then dicts keyed by market name, as
        for ``run()``; no signal sets.
    entries, exits, short_entries, short_exits : signal, dict or DataFrame, optional
        One boolean series/array on ``market.index`` (used by every combination), or named
        signal sets: a dict ``name -> series`` or a DataFrame with one column per set. All
        the arguments given as sets must have the same names; a single series is shared by
        every set. Named sets form the first index level, ``signals``.
    progress : bool
        Show a tqdm bar (advancing per chunk) when the sweep is expected to take > ~2 s.
    executor : distributed.Client, optional
        Run the chunks on a Dask cluster: the market, instrument and signal arrays are
        scattered once to every worker, chunks of parameter rows are sent as tasks (each
        worker uses its Numba threads); the stats equal the local ones bit for bit.
    chunk_size : int, optional
        Combinations per kernel call, Dask task or store chunk (memory is
        O(chunk_size × state)); default picks about 20 chunks, a multiple of threads ×
        ``TILE``, at most 65,536 (a portfolio: all at once, ~4 Dask tasks per worker
        thread, or 8 per thread between two saves to a store).
    store : str or os.PathLike, optional
        A directory that keeps the stats on disk, chunk by chunk, as they finish
        (``backtest.sweep_store``): call ``sweep()`` again with the same inputs and the
        same ``store`` after an interruption and only the missing combinations run; when
        all are done it also holds ``stats.parquet`` (the labelled table). A store that
        holds another sweep's stats is refused.
    **grid
        Any ``run()`` parameter (``params.RUN_DEFAULTS``); a list, tuple, range or array
        value is swept, in the order given (the last one varies fastest).

    Returns
    -------
    SweepResult
        ``.stats``: one row per combination (index levels: ``signals`` when signal sets
        are given, then the list-valued parameters), columns ``STAT_NAMES``.
    """
    if isinstance(market, Mapping):
        from backtest.portfolio_sweep import sweep_portfolio

        return sweep_portfolio(market, (entries, exits, short_entries, short_exits),
                               progress=progress, executor=executor, chunk_size=chunk_size,
                               store=store, **grid)
    _check_market(market)
    client = _dask_client(executor)
    set_names, bool_signals = _signal_sets(market, (entries, exits, short_entries,
                                                    short_exits))
    grid_names, grid_values, codes = _expand(grid)
    fixed = [k for k in _MARKET_PARAMS if k in grid_values]
    if fixed:
        raise ValueError(f"sweep(): {fixed} change the market/instrument arrays and cannot be "
                         "swept; pass one value and run one sweep per value.")
    scalars = {k: v for k, v in grid.items() if k not in grid_values}
    plan = _Plan(market.instrument, scalars, grid_names, grid_values, codes,
                 n_sets=1 if set_names is None else len(set_names))
    base = plan.base
    arrays = (market_arrays(market, base["borrow_rate"]),
              *instrument_arrays(market.instrument,
                                 *expiry_settlement(market, base["settlement_price"])),
              signal_mask(*bool_signals))
    threads = (numba.get_num_threads() if client is None
               else max(1, sum(client.nthreads().values())))
    chunk = _chunk_size(chunk_size, plan.n_combos, threads)
    stats = np.empty((plan.n_combos, N_STATS))
    levels = ([("signals", list(set_names))] if set_names is not None else []) + [
        (name, list(grid_values[name])) for name in grid_names]
    saved = open_store(store, lambda: fingerprint(market, _identity(scalars, levels),
                                                  bool_signals), plan.n_combos, STAT_NAMES)
    done = np.zeros(plan.n_combos, dtype=bool) if saved is None else saved.read_into(stats)
    ranges = todo_ranges(done, chunk)
    n_todo = plan.n_combos - int(done.sum())
    estimate = _EST_SECONDS_PER_BAR_COMBO * market.n_bars * n_todo / threads
    bar = _progress_bar(progress and estimate > _PROGRESS_AFTER_S, n_todo)
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
    result = SweepResult(market=market, stats=stats, levels=levels,
                         codes=plan.level_codes(with_sets=set_names is not None),
                         scalars=scalars, signals=bool_signals, elapsed=elapsed)
    if saved is not None:
        saved.finish(result.stats)
    return result


def _identity(scalars: dict[str, Any], levels: list[tuple[str, list]]) -> dict[str, Any]:
    """What a stored sweep's stats depend on besides the market and the signals."""
    from backtest import __version__

    return {"scalars": scalars, "levels": levels, "version": __version__}


def _run_local(plan: _Plan, arrays: tuple, bar_ns: float, stats: np.ndarray,
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


# --- distributed (Dask) ---------------------------------------------------------------------


def _dask_client(executor: Any) -> Any:
    """``executor`` as a ``distributed.Client`` (None stays None); anything else is refused."""
    if executor is None:
        return None
    try:
        from distributed import Client
    except ImportError:
        # Without the package nothing passed can be a Client: the argument is the mistake.
        raise TypeError(f"sweep(): executor= takes a Dask distributed.Client, got "
                        f"{type(executor).__name__}; the 'distributed' package is not "
                        "installed either: pip install 'backtest[dask]', or call sweep() "
                        "without executor.") from None
    if not isinstance(executor, Client):
        raise TypeError(f"sweep(): executor must be a dask distributed.Client, got "
                        f"{type(executor).__name__}. Create one with "
                        "distributed.Client(...) or omit executor to use the local cores.")
    return executor


def remote_stats(params: np.ndarray, md: np.ndarray, inst: np.ndarray, tiers: np.ndarray,
                 signals: np.ndarray, bar_ns: float) -> np.ndarray:
    """A Dask task: the stats of one chunk of rows, on all of the worker's Numba threads."""
    out = np.empty((params.shape[0], N_STATS))
    run_blocks(params, md, inst, tiers, signals, bar_ns, out, numba.get_num_threads())
    return out


def _run_distributed(client: Any, plan: _Plan, arrays: tuple, bar_ns: float,
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


def chunk_done(saved: Any, bar: Any, stats: np.ndarray) -> Callable[[int, int], None]:
    """What happens when combinations ``lo..hi-1`` are done: saved to the store (if any),
    the progress bar (if any) advanced."""
    def finished(lo: int, hi: int) -> None:
        if saved is not None:
            saved.save(lo, hi, stats[lo:hi])
        if bar is not None:
            bar.update(hi - lo)

    return finished


def gather_chunks(client: Any, ranges: list[tuple[int, int]],
                  submit: Callable[[int, int], Any], stats: np.ndarray,
                  finished: Callable[[int, int], None]) -> None:
    """Run the Dask task ``submit(lo, hi)`` of every range, at most two per worker in flight
    (bounded local memory); each result goes into ``stats[lo:hi]``, then ``finished``."""
    from distributed import as_completed

    where: dict = {}

    def start(lo: int, hi: int) -> Any:
        future = submit(lo, hi)
        where[future.key] = (lo, hi)
        return future

    in_flight = max(2, 2 * len(client.nthreads()))
    queue = as_completed([start(*r) for r in ranges[:in_flight]], with_results=True)
    pending = iter(ranges[in_flight:])
    for future, result in queue:
        lo, hi = where.pop(future.key)
        stats[lo:hi] = result
        finished(lo, hi)
        nxt = next(pending, None)
        if nxt is not None:
            queue.add(start(*nxt))


def run_blocks(params: np.ndarray, md: np.ndarray, inst: np.ndarray, tiers: np.ndarray,
               signals: np.ndarray, bar_ns: float, out: np.ndarray, threads: int,
               fast: bool = True, pool: ThreadPoolExecutor | None = None) -> None:
    """Fill ``out[n, N_STATS]`` for the rows of ``params``: the tiles dealt round-robin to
    ``threads`` blocks (neighbouring rows behave alike, so dealing balances the load), one
    ``sweep_block`` per thread. The kernel releases the GIL; ``parallel=True``/``prange``
    measured no faster and added ~10 s to the cold compile (benchmarks/README.md)."""
    bounds = tile_bounds(params)
    n_blocks = max(1, min(threads, bounds.shape[0]))
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


# --- inputs -----------------------------------------------------------------------------


def _check_market(market: Any) -> None:
    if isinstance(market, dict):
        raise ValueError("sweep(): several markets (a portfolio) are not supported; sweep each "
                         "market on its own.")
    if not hasattr(market, "index_ns") or not hasattr(market, "instrument"):
        raise TypeError(f"sweep(): market must be a Market from bt.load_market(...), got "
                        f"{type(market).__name__}.")
    if market.n_bars < 2:
        raise ValueError(f"sweep(): the market has {market.n_bars} bar(s); at least 2 are "
                         "needed.")


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


def _expand(grid: Mapping[str, Any]) -> tuple[list[str], dict[str, list[Any]], np.ndarray]:
    """List-valued parameter names (in order), their values, and the value index of each
    parameter for every grid combination (``params.expand_grid`` decides what is a list and
    fixes the order: the last parameter varies fastest)."""
    values = {k: [v.item() if isinstance(v, np.generic) else v for v in seq]
              for k, seq in grid.items() if expand_grid({k: seq})[0]}
    names, combos = expand_grid({k: range(len(v)) for k, v in values.items()})
    codes = np.array(combos, dtype=np.int32).reshape(len(combos), len(names))
    return names, values, codes


def _chunk_size(chunk_size: int | None, n_combos: int, threads: int) -> int:
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
                or chunk_size < 1:
            raise ValueError(f"sweep(): chunk_size must be a positive int, got {chunk_size!r}.")
        return int(chunk_size)
    unit = threads * TILE
    return int(min(65_536, max(unit, math.ceil(n_combos / 20 / unit) * unit)))


def _progress_bar(show: bool, total: int) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="comb", desc="sweep")


# --- parameters -------------------------------------------------------------------------


class _Plan:
    """Validated, encoded parameters: the rows of any range of combinations on demand."""

    def __init__(self, instrument: Any, scalars: dict[str, Any], names: list[str],
                 values: dict[str, list[Any]], codes: np.ndarray, n_sets: int) -> None:
        self.instrument = instrument
        self.scalars = scalars
        self.names = names
        self.values = values
        self.codes = codes
        self.n_sets = n_sets
        self.n_grid = codes.shape[0]
        self.n_combos = self.n_grid * n_sets
        first = {k: values[k][0] for k in names}
        caught: list[warnings.WarningMessage] = []
        self.base = self._validate(first, caught)
        self.template = encode(self.base)
        self.value_rows: list[np.ndarray] = []
        self.columns: list[np.ndarray] = []
        for name in names:
            rows = np.array([encode(self._validate({**first, name: v}, caught))
                             for v in values[name]])
            differs = ~((rows == self.template) | (np.isnan(rows) & np.isnan(self.template)))
            self.value_rows.append(rows)
            self.columns.append(np.flatnonzero(differs.any(axis=0)))
        # Two swept parameters feeding one encoded column cannot be assembled column-wise:
        # then every row is encoded through validate_params (slow, but never wrong).
        owners = np.concatenate(self.columns) if self.columns else np.empty(0, np.int64)
        self.per_row = len(np.unique(owners)) != len(owners)
        self._validate_coupled(first, caught)
        for message in dict.fromkeys(str(w.message) for w in caught
                                     if not str(w.message).startswith(_STOP_WARNING)):
            warnings.warn(message, UserWarning, stacklevel=3)
        self._spot_check(caught)
        self._warn_unreachable_stops()

    def _validate(self, combo: dict[str, Any], caught: list) -> dict[str, Any]:
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            try:
                prm = validate_params(self.instrument, **{**self.scalars, **combo})
            except (TypeError, ValueError) as exc:
                where = f" (in the combination {combo})" if len(self.names) > 1 else ""
                message = str(exc).replace("run():", "sweep():", 1) + where
                raise type(exc)(message) from None
        caught.extend(got)
        return prm

    def _validate_coupled(self, first: dict[str, Any], caught: list) -> None:
        for group in _COUPLED:
            listed = [k for k in group if k in self.values and len(self.values[k]) > 1]
            if len(listed) < 2:
                continue
            sub, combos = expand_grid({k: self.values[k] for k in listed})
            for combo in combos:
                self._validate({**first, **dict(zip(sub, combo, strict=True))}, caught)

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """float64[hi - lo, N_PARAMS]: the encoded parameters of combinations lo..hi-1."""
        if self.per_row:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.array([encode(self._validate(*self.combo(i)[:1], []),
                                        signal_set=self.combo(i)[1]) for i in range(lo, hi)])
        r = np.arange(lo, hi)
        p = np.repeat(self.template[None, :], hi - lo, axis=0)
        g = self.codes[r % self.n_grid]
        for j in range(len(self.names)):
            cols = self.columns[j]
            if cols.size:
                p[:, cols] = self.value_rows[j][g[:, j]][:, cols]
        p[:, R.P_SIGNAL_SET] = r // self.n_grid
        return np.ascontiguousarray(p)

    def combo(self, i: int) -> tuple[dict[str, Any], int]:
        """Combination ``i``: its list-valued parameters and its signal set."""
        g = self.codes[i % self.n_grid]
        return {k: self.values[k][g[j]] for j, k in enumerate(self.names)}, i // self.n_grid

    def level_codes(self, with_sets: bool) -> np.ndarray:
        """int64[n_combos, n_levels]: value index of each level (signal set first)."""
        grid = np.tile(self.codes, (self.n_sets, 1))
        if not with_sets:
            return grid
        sets = np.repeat(np.arange(self.n_sets, dtype=np.int32), self.n_grid)[:, None]
        return np.hstack([sets, grid])

    def _spot_check(self, caught: list) -> None:
        """Re-encode a sample of combinations the way run() does; they must agree."""
        rng = np.random.default_rng(0)
        sample = {0, self.n_combos - 1, *rng.integers(0, self.n_combos, _N_SPOT_CHECKS)}
        for i in sorted(sample):
            combo, k = self.combo(int(i))
            want = encode(self._validate(combo, caught), signal_set=k)
            got = self.rows(int(i), int(i) + 1)[0]
            if not np.array_equal(want, got, equal_nan=True):
                raise RuntimeError(f"sweep(): internal error: the parameters of combination "
                                   f"{combo} encode differently from run(); please report.")

    def _warn_unreachable_stops(self) -> None:
        """One warning for every combination whose stop lies beyond the liquidation distance
        (the rule of ``params._warn_unreachable_stop``, evaluated on all rows at once)."""
        if self.scalars.get("stop_loss", RUN_DEFAULTS["stop_loss"]) is None \
                and "stop_loss" not in self.values:
            return
        mmr = float(self.instrument.tiers.mmr[0])
        hits = 0
        example = None
        step = 1 << 16
        for lo in range(0, self.n_combos, step):
            p = self.rows(lo, min(lo + step, self.n_combos))
            bad = ((p[:, R.P_MARGIN_MODE] == R.MARGIN_MODES.index("isolated"))
                   & (p[:, R.P_STOP_LOSS] >= 1.0 / p[:, R.P_LEVERAGE] - mmr))
            hits += int(bad.sum())
            if example is None and bad.any():
                example = self.combo(lo + int(np.flatnonzero(bad)[0]))[0]
        if hits:
            warnings.warn(
                f"sweep(): {hits:,} of {self.n_combos:,} combinations have a stop_loss at or "
                f"beyond the liquidation distance (1/leverage - mmr {mmr:g}), e.g. {example}: "
                "those positions are liquidated before the stop can fire.",
                UserWarning, stacklevel=4)
