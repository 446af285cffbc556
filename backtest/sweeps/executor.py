"""How a sweep's chunks are executed, whichever the sweep path: the Dask client check, the
"chunk finished" callback (store, progress bar), the bounded Dask gathering loop, the
progress bar and the identity a store is fingerprinted with.

Owns no simulation and no grid logic; used by ``single`` and ``portfolio``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from backtest.version import __version__

PROGRESS_AFTER_S = 2.0  # show a progress bar when a sweep is expected to take longer


def sweep_identity(scalars: dict[str, Any], levels: list[tuple[str, list]]) -> dict[str, Any]:
    """What a stored sweep's stats depend on besides the market and the signals, with every
    number as a float (``leverage=[2, 5]`` and ``[2.0, 5.0]`` are one sweep)."""
    return {"scalars": normalise(scalars), "levels": normalise(levels),
            "version": __version__}


def normalise(value: Any) -> Any:
    """``value`` with numpy scalars as Python ones and every non-bool number as a float,
    recursively through dicts, lists and tuples (tuples become lists)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


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
    (bounded local memory); each result goes into ``stats[lo:hi]``, then ``finished``.

    A task that failed or was cancelled (e.g. its workers were lost) stops the sweep with a
    :class:`SweepTaskError` naming the combinations; the chunks finished before it have
    already been through ``finished`` (so a store keeps them)."""
    from distributed import as_completed

    where: dict = {}
    live: dict = {}

    def start(lo: int, hi: int) -> Any:
        future = submit(lo, hi)
        where[future.key] = (lo, hi)
        live[future.key] = future
        return future

    in_flight = max(2, 2 * len(client.nthreads()))
    queue = as_completed([start(*r) for r in ranges[:in_flight]])
    pending = iter(ranges[in_flight:])
    try:
        for future in queue:
            live.pop(future.key, None)
            lo, hi = where.pop(future.key)
            stats[lo:hi] = _chunk_result(future, lo, hi, stats.shape[1])
            finished(lo, hi)
            nxt = next(pending, None)
            if nxt is not None:
                queue.add(start(*nxt))
    except BaseException:
        with contextlib.suppress(Exception):  # stop the rest; the error is what matters
            queue.clear()
        with contextlib.suppress(Exception):
            client.cancel(list(live.values()))
        raise


class SweepTaskError(RuntimeError):
    """A Dask task of a sweep failed or was cancelled."""


def _chunk_result(future: Any, lo: int, hi: int, n_stats: int) -> np.ndarray:
    """The stats block of a finished future, or a clear error for a failed/cancelled one."""
    status = getattr(future, "status", "finished")
    fix = ("Fix: check the workers (memory, crashes) and run the sweep again; with store= "
           "the finished chunks are kept and only the missing ones run")
    if status != "finished":
        cause = ""
        if status == "error":
            with contextlib.suppress(Exception):
                cause = f": {type(future.exception()).__name__}: {future.exception()}"
        raise SweepTaskError(f"sweep(): the Dask task for combinations {lo}..{hi - 1} was "
                             f"{'cancelled' if status == 'cancelled' else status}{cause} "
                             f"(workers lost or the client closed?). {fix}.")
    try:
        block = np.asarray(future.result(), dtype=np.float64)
    except Exception as exc:
        raise SweepTaskError(f"sweep(): the Dask task for combinations {lo}..{hi - 1} failed "
                             f"({type(exc).__name__}: {exc}). {fix}.") from exc
    if block.shape != (hi - lo, n_stats):
        raise SweepTaskError(f"sweep(): the Dask task for combinations {lo}..{hi - 1} "
                             f"returned shape {block.shape}, expected {(hi - lo, n_stats)}. "
                             f"{fix}.")
    return block


def progress_bar(show: bool, total: int) -> Any:
    """A tqdm bar over ``total`` combinations that appears only once the sweep has run
    ``PROGRESS_AFTER_S`` seconds (whatever an estimate said beforehand); None when
    ``show`` is false or there is nothing to run."""
    if not show or total <= 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="comb", desc="sweep", delay=PROGRESS_AFTER_S)
