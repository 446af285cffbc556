"""Checks shared by the public boundaries (run parameters, instruments, the calculator).

Owns the wording of the commonest parameter errors so that every boundary says them alike;
imports nothing from the package.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np


def finite_number(where: str, name: str, value: object, example: str = "0.02") -> float:
    """``value`` as a finite float.

    Raises ``TypeError`` for a non-number (bools included) and ``ValueError`` for NaN, inf
    or an integer beyond float64; messages start with ``where`` (e.g. ``"run()"``), name the
    parameter and show ``name=example`` as the fix.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: {name} must be a number; got {value!r} "
                        f"({type(value).__name__}). Fix: pass a float, e.g. {name}={example}.")
    try:
        out = float(value)
    except OverflowError:  # a Python int beyond float64
        out = math.inf
    if not math.isfinite(out):
        raise ValueError(f"{where}: {name} must be finite; got {value!r}. Fix: pass a finite "
                         f"number, e.g. {name}={example}.")
    return out


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside ``backtest``.

    Counted from the function calling ``warnings.warn`` (level 1), so a warning names the
    user's line however many layers (run -> runner -> params) it passed through.
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR + os.sep):
        frame = frame.f_back
        level += 1
    return level



def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS reports one): whether a
    second process (a compile child, a figure worker) can run beside it."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
