"""What every output-writing command (``run``, ``sweep``, ``risk``) does around its work:
choose the ``--out`` folder, collect the library's warnings, render everything before any
write, write the files as one set (``atomic.write_set``) and print the summary.

Owns no computation; imported by ``cli.main`` and ``cli.risk``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from backtest.atomic import write_set

Payloads = dict[str, bytes | str]


def out_dir(out: str | None, config: str) -> Path:
    """``--out`` or ``out/<config stem>`` (relative to the current folder); never a file."""
    folder = Path(out) if out else Path("out") / Path(config).stem
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder}: exists and is a file, not a folder; the results "
                         "are several files. Fix: pass another --out folder or move the file.")
    return folder


def print_warnings(caught: list[warnings.WarningMessage]) -> None:
    """The library's warnings (UserWarning) once each as ``backtest: warning: ...``; any
    other category (a dependency's deprecation) the usual way."""
    for w in caught:
        if not issubclass(w.category, UserWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    for message in dict.fromkeys(str(w.message) for w in caught
                                 if issubclass(w.category, UserWarning)):
        print(f"backtest: warning: {message}", file=sys.stderr)


def produce_and_write(out: str | None, config: str,
                      produce: Callable[[], tuple[Payloads, str]]) -> int:
    """Run ``produce`` (-> file payloads and the summary text) with its warnings collected,
    write the payloads into the ``--out`` folder as one set, then print the summary and the
    files. Exit code 0."""
    folder = out_dir(out, config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        payloads, summary = produce()      # everything rendered before any write
    print_warnings(caught)
    written = write_set(folder, payloads)
    print(summary)
    print("files: " + ", ".join(str(p) for p in written))
    return 0
