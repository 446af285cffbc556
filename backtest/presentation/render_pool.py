"""Draw some figures in a second process while this one draws the others.

matplotlib draws in Python under the GIL, ~0.5 s for a result figure, so a report of five
figures spends ~2.5 s on one core. :class:`RenderPool` starts one worker process when two
or more CPUs are usable; :meth:`RenderPool.render` hands it picklable ``(function,
arguments)`` tasks, and the caller draws its own share meanwhile. Start the pool early: the
worker spends ~1 s importing the package and matplotlib, which then overlaps the caller's
work instead of delaying the figures.

The worker is ``python -c`` reading one line on stdin: the path of a pickle of the tasks.
It writes task ``i``'s PNG to ``<path>.<i>.png`` (a temporary name, then ``os.replace``),
so a file that exists is complete. Not ``multiprocessing``: its spawned children import
the caller's ``__main__`` script again, which re-runs a script without a main guard.

Nothing depends on the worker: if it cannot start, dies, or has not delivered a figure
within :data:`TIMEOUT_S`, :meth:`Pending.result` draws it in this process, so the output
is the same either way. ``BACKTEST_RENDER_WORKER=0`` turns the worker off.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backtest.checks import usable_cpus

TIMEOUT_S = 60.0
_POLL_S = 0.005
_WORKER = "from backtest.presentation.render_pool import serve\nserve()\n"

Task = tuple[Callable[..., bytes], tuple[Any, ...]]


def serve() -> None:
    """The worker's main: import pyplot (Agg), wait for the task file's path on stdin, draw
    each task and write its PNG next to the task file."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: F401

    task_file = sys.stdin.readline().strip()
    if not task_file:
        return
    with open(task_file, "rb") as f:
        tasks: list[Task] = pickle.load(f)
    for i, (fn, args) in enumerate(tasks):
        png = fn(*args)
        done = f"{task_file}.{i}.png"
        with open(done + ".tmp", "wb") as f:
            f.write(png)
        os.replace(done + ".tmp", done)


class Pending:
    """A figure being drawn by the worker or, if that fails, here."""

    def __init__(self, pool: RenderPool | None, index: int, task: Task) -> None:
        self._pool, self._index, self._task = pool, index, task

    def result(self) -> bytes:
        """The PNG bytes; drawn in this process when the worker does not deliver them."""
        if self._pool is not None:
            png = self._pool.wait_for(self._index)
            if png is not None:
                return png
        fn, args = self._task
        return fn(*args)


class RenderPool:
    """One worker process drawing figures (module docstring); a context manager that stops
    it and removes its files on exit."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None
        self._task_file: str | None = None
        if os.environ.get("BACKTEST_RENDER_WORKER", "1") == "0" or usable_cpus() < 2:
            return
        if not sys.executable:
            return
        try:
            self._proc = subprocess.Popen([sys.executable, "-c", _WORKER],
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
        except OSError:
            self._proc = None

    @property
    def parallel(self) -> bool:
        """A worker process is running and has not been given its tasks yet."""
        return self._proc is not None and self._task_file is None and self._proc.poll() is None

    def render(self, tasks: Sequence[Task]) -> list[Pending]:
        """Hand ``tasks`` (module-level functions returning PNG bytes, and their arguments)
        to the worker, once per pool; each :class:`Pending` gives its PNG."""
        tasks = list(tasks)
        if not self.parallel:
            return [Pending(None, i, t) for i, t in enumerate(tasks)]
        proc = self._proc
        if proc is None or proc.stdin is None:      # not parallel: checked just above
            return [Pending(None, i, t) for i, t in enumerate(tasks)]
        try:
            self._dir = tempfile.mkdtemp(prefix="backtest-render-")
            self._task_file = os.path.join(self._dir, "tasks.pkl")
            with open(self._task_file, "wb") as f:
                pickle.dump(tasks, f, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.write((self._task_file + "\n").encode())
            proc.stdin.close()
        except (OSError, pickle.PicklingError, AttributeError, TypeError):
            self.close()
            return [Pending(None, i, t) for i, t in enumerate(tasks)]
        return [Pending(self, i, t) for i, t in enumerate(tasks)]

    def wait_for(self, index: int) -> bytes | None:
        """Task ``index``'s PNG from the worker, or None when it will not come."""
        if self._task_file is None or self._proc is None:
            return None
        done = Path(f"{self._task_file}.{index}.png")
        deadline = time.monotonic() + TIMEOUT_S
        while not done.exists():
            if self._proc.poll() is not None and not done.exists():
                return None                     # the worker ended without it
            if time.monotonic() > deadline:
                self.close()
                return None
            time.sleep(_POLL_S)
        return done.read_bytes()

    def close(self) -> None:
        """Stop the worker and remove its files."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            if self._proc.stdin is not None and not self._proc.stdin.closed:
                self._proc.stdin.close()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
