"""``sweep()``: the public entry point, choosing the sweep path for what it is given.

A ``Market`` goes to ``single`` (the combinations-inner kernel), a dict of markets to
``portfolio`` (one wallet). Nothing else lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backtest.sweeps.portfolio import sweep_portfolio
from backtest.sweeps.result import SweepResult
from backtest.sweeps.single import sweep_single


def sweep(market: Any, entries: Any = None, exits: Any = None, short_entries: Any = None,
          short_exits: Any = None, *, progress: bool = True, executor: Any = None,
          chunk_size: int | None = None, store: Any = None, **grid: Any) -> SweepResult:
    """Run every combination of the list-valued parameters and signal sets; stats only.

    Parameters
    ----------
    market : Market or dict of name -> Market
        From ``bt.load_market``. A dict sweeps a portfolio with one wallet
        (``backtest.sweeps.portfolio``): signals are then dicts keyed by market name, as
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
        (``backtest.sweeps.store``): call ``sweep()`` again with the same inputs and the
        same ``store`` after an interruption and only the missing combinations run; when
        all are done it also holds ``stats.parquet`` (the labelled table). A store that
        holds another sweep's stats is refused.
    **grid
        Any ``run()`` parameter (``backtest.simulation.params.RUN_DEFAULTS``); a list,
        tuple, range or array value is swept, in the order given (the last one varies
        fastest).

    Returns
    -------
    SweepResult
        ``.stats``: one row per combination (index levels: ``signals`` when signal sets
        are given, then the list-valued parameters), columns ``STAT_NAMES``.
    """
    options = dict(progress=progress, executor=executor, chunk_size=chunk_size, store=store)
    if isinstance(market, Mapping):
        return sweep_portfolio(market, (entries, exits, short_entries, short_exits),
                               **options, **grid)
    return sweep_single(market, entries, exits, short_entries, short_exits, **options, **grid)
