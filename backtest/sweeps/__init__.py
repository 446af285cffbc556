"""Sweeps: many parameter combinations, stats only.

Owns the grid (expanding lists into combinations and checking coupled parameters), the
executor (chunks, progress, threads or Dask, and the resumable on-disk ``store``), the two
sweep paths (one market: ``single``; several markets: ``portfolio``) and ``SweepResult``.
A row of a sweep equals ``run()`` with the same parameters, bit for bit.

May import: simulation, results, presentation, kernels, data and the foundation modules.
Must not import risk or the command line.
"""

from backtest.sweeps.api import sweep
from backtest.sweeps.result import SweepResult

__all__ = ["SweepResult", "sweep"]
