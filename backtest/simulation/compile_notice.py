"""A one-line notice on stderr before Numba compiles a kernel that is not in its disk cache.

The first ``run()`` or ``sweep()`` after an install (or with an empty ``NUMBA_CACHE_DIR``)
spends seconds compiling while printing nothing; ``notify_compiling(kernel, ...)`` says so
once per process, and only when one of the given kernels will really be compiled: it has no
compiled signature in this process and no index file in Numba's cache. (An index that exists
but no longer matches the source also recompiles, silently: a developer's case, not a
user's.) Callers: the runners and sweeps, just before their first kernel call.

No numba import at module level: the checks read attributes of the dispatchers passed in.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# Seconds of a cold compile on the 2-core development machine (benchmarks/README.md, "Cold
# start"; run: wall with the two-core compile), by what is compiled; shown rounded.
SECONDS = {"run": 8, "sweep": 12, "portfolio": 15, "risk": 15}

_shown = False


def _cached_on_disk(kernel: Any) -> bool:
    """The kernel has an index file in Numba's cache (it will load, not compile)."""
    cache = getattr(kernel, "_cache", None)
    cache_file = getattr(cache, "_cache_file", None)
    path = getattr(cache_file, "_index_path", None)
    if path is None:     # NUMBA_DISABLE_JIT, or a Numba without these internals
        return True
    return os.path.exists(path)


def will_compile(*kernels: Any) -> bool:
    """True when calling one of ``kernels`` (Numba dispatchers) will compile it now."""
    for kernel in kernels:
        if getattr(kernel, "signatures", None):        # already compiled in this process
            continue
        if not _cached_on_disk(kernel):
            return True
    return False


def notify_compiling(*kernels: Any, seconds: float = SECONDS["run"]) -> bool:
    """Print "compiling kernels (first run only, ~N s)" to stderr once per process when
    calling one of ``kernels`` will compile it (see the module docstring); returns whether
    it printed. ``seconds``: the expected compile time, shown rounded."""
    global _shown
    if _shown or not will_compile(*kernels):
        return False
    _shown = True
    print(f"compiling kernels (first run only, ~{seconds:.0f} s)", file=sys.stderr,
          flush=True)
    return True
