"""Running the windows/paths kernel (``kernels/windows.py``) on the local cores.

Columns are cut into chunks of consecutive windows (or paths); the chunks are dealt
round-robin to one ``nogil`` kernel call per thread (as ``sweeps.single.run_blocks`` deals
tiles), so the result depends neither on the chunking nor on the number of threads.

Owns no statistic; used by ``api``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from backtest.kernels.paths import paths_block
from backtest.kernels.windows import N_OUT, rolling_block
from backtest.simulation.compile_notice import SECONDS, notify_compiling
from backtest.simulation.parallel_compile import two_core_compile

# Columns (groups x parameter rows) per chunk: the chunk's state rows stay in cache.
CHUNK_COLUMNS = 4096


def _threads(threads: int | None) -> int:
    if threads is None:
        return numba.get_num_threads()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"leverage_risk(): threads must be a positive int, got {threads!r}.")
    return int(threads)


def _bounds(n_groups: int, n_combos: int, chunk_columns: int) -> np.ndarray:
    per = max(1, chunk_columns // max(1, n_combos))
    lo = np.arange(0, n_groups, per, dtype=np.int64)
    return np.ascontiguousarray(np.stack([lo, np.minimum(lo + per, n_groups)], axis=1))


def _dealt(kernel, n_blocks: int, args_of) -> None:
    notify_compiling(kernel, seconds=SECONDS["risk"])
    two_core_compile(kernel)
    if n_blocks == 1:
        kernel(*args_of(0, 1))
        return
    with ThreadPoolExecutor(n_blocks) as pool:
        jobs = [pool.submit(kernel, *args_of(b, n_blocks)) for b in range(n_blocks)]
        for job in jobs:
            job.result()


def run_rolling(params: np.ndarray, hold: np.ndarray, md: np.ndarray, inst: np.ndarray,
                tiers: np.ndarray, signals: np.ndarray, bar_ns: float, starts: np.ndarray,
                ends: np.ndarray, threads: int | None = None,
                chunk_columns: int = CHUNK_COLUMNS) -> np.ndarray:
    """float64[n_windows * n_combos, N_OUT] (row ``window * n_combos + combo``)."""
    n_w, n_c = len(starts), params.shape[0]
    out = np.full((n_w * n_c, N_OUT), np.nan)
    bounds = _bounds(n_w, n_c, chunk_columns)
    # the most windows of one chunk alive at one bar (ends are non-decreasing)
    born = np.searchsorted(starts, ends, side="right")
    chunk_hi = np.repeat(bounds[:, 1], bounds[:, 1] - bounds[:, 0])
    cap = int((np.minimum(born, chunk_hi) - np.arange(n_w)).max())
    n_blocks = max(1, min(_threads(threads), len(bounds)))
    _dealt(rolling_block, n_blocks, lambda b, k: (
        params, hold, md, inst, tiers, signals, bar_ns, starts, ends, bounds, cap, b, k, out))
    return out


def run_paths(params: np.ndarray, hold: np.ndarray, md: np.ndarray, inst: np.ndarray,
              tiers: np.ndarray, signals: np.ndarray, bar_ns: float, src: np.ndarray,
              scale: np.ndarray, hours: np.ndarray, threads: int | None = None,
              chunk_columns: int = CHUNK_COLUMNS) -> np.ndarray:
    """float64[n_paths * n_combos, N_OUT] (row ``path * n_combos + combo``)."""
    n_p, n_c = src.shape[0], params.shape[0]
    out = np.full((n_p * n_c, N_OUT), np.nan)
    bounds = _bounds(n_p, n_c, chunk_columns)
    n_blocks = max(1, min(_threads(threads), len(bounds)))
    _dealt(paths_block, n_blocks, lambda b, k: (
        params, hold, md, inst, tiers, signals, bar_ns, src, scale, hours, bounds, b, k, out))
    return out
