"""A cold first run compiles its kernel on two cores: half here, half in a short-lived child.

:func:`two_core_compile` runs just before the first call of a kernel built on ``step_bar``
(``run()``'s ``simulate``, the sweep's, the risk windows'). When that call would compile (no
compiled signature, no index in Numba's disk cache), at least two CPUs are usable and the
JIT is on, it starts ``python -c`` compiling ``kernels.warmup.PARTS["entries"]`` into the
disk cache, compiles ``PARTS["exits"]`` here, and waits for the child; the kernel's compile
then loads the child's half from the cache (benchmarks/README.md, "Cold start", has the
times).

Nothing depends on the child succeeding: if it cannot start, fails, or has not finished
soon after this process's own half (:data:`WAIT_FRACTION`; a busy machine), it is stopped
and whatever it did not cache is compiled here as before. The worst case is the one-core
time plus that bounded wait (and the child's share of the CPU until then). The child
writes only Numba's cache files, which Numba writes atomically (a temporary file, then
``os.replace``). ``BACKTEST_PARALLEL_COMPILE=0`` turns it off.

The child imports the kernels layer alone: ``backtest`` is registered as a bare package
pointing at this package's folder, so the public modules (pandas, pyarrow, matplotlib) are
not imported there; the kernels import only numpy and numba (``tests/test_architecture.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from backtest.checks import usable_cpus
from backtest.simulation.compile_notice import will_compile

# How long this process waits for the child after its own half: a fraction of the time
# its own half took (the halves take ~5 s each on an idle core and end within ~0.5 s of
# each other), at least MIN_WAIT_S.
WAIT_FRACTION = 0.3
MIN_WAIT_S = 1.0

_CHILD = (
    "import sys, types\n"
    "package = types.ModuleType('backtest')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['backtest'] = package\n"
    "from backtest.kernels.warmup import compile_part\n"
    "compile_part(sys.argv[2])\n"
)


def wanted(kernel: Any) -> bool:
    """A parallel compile would help: ``kernel`` will compile, the JIT is on, 2+ CPUs."""
    if os.environ.get("BACKTEST_PARALLEL_COMPILE", "1") == "0":
        return False
    if not hasattr(kernel, "compile") or not sys.executable:   # NUMBA_DISABLE_JIT=1
        return False
    return usable_cpus() >= 2 and will_compile(kernel)


def start_child(part: str) -> subprocess.Popen[bytes] | None:
    """Start the child compiling ``part``; None when it cannot be started."""
    package_dir = str(Path(__file__).resolve().parent.parent)
    try:
        return subprocess.Popen([sys.executable, "-c", _CHILD, package_dir, part],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


def two_core_compile(kernel: Any) -> bool:
    """Just before the first call of a kernel whose tree holds ``step_bar`` (``simulate``,
    ``sweep_block``, the risk windows): when ``kernel`` is cold (module docstring), compile
    ``kernels.warmup.PARTS`` on two cores; returns whether the child's half was used. The
    kernel's call then compiles only the rest (its own loop and whatever the child did not
    cache)."""
    if not wanted(kernel):
        return False
    from backtest.kernels.warmup import compile_part

    child = start_child("entries")
    started = time.perf_counter()
    compile_part("exits")
    own = time.perf_counter() - started
    waited = False
    if child is not None:
        # The child's half takes about as long as this one on an idle core; on a busy
        # machine it may take much longer, and waiting for it would make the cold start
        # slower than compiling everything here: wait a bounded time, then compile on.
        try:
            child.wait(timeout=max(MIN_WAIT_S, WAIT_FRACTION * own))
            waited = child.returncode == 0
        except subprocess.TimeoutExpired:
            child.kill()        # this process compiles its half now: free the core
            child.wait()
    return waited
