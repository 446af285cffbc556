"""How a sweep's chunks are executed, whichever the sweep path: the Dask client check, the
"chunk finished" callback (store, progress bar), the bounded Dask gathering loop, the
progress bar and the identity a store is fingerprinted with.

Owns no simulation and no grid logic; used by ``single`` and ``portfolio``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backtest.version import __version__

PROGRESS_AFTER_S = 2.0  # show a progress bar when a sweep is expected to take longer


def sweep_identity(scalars: dict[str, Any], levels: list[tuple[str, list]]) -> dict[str, Any]:
    """What a stored sweep's stats depend on besides the market and the signals."""
    return {"scalars": scalars, "levels": levels, "version": __version__}


def dask_client(executor: Any) -> Any:
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


def progress_bar(show: bool, total: int) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="comb", desc="sweep")
