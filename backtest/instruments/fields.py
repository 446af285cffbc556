"""Checks of instrument and tier-table fields, with the owner and field in every message.

Imports ``backtest.checks`` only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from backtest.checks import finite_number


def _suggest(value: object, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(allowed), n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _choice(owner: str, name: str, value: object, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"{owner}: {name} must be one of {', '.join(repr(a) for a in allowed)}; "
            f"got {value!r}.{_suggest(value, allowed)}"
        )
    return value


def _finite(owner: str, name: str, value: object) -> float:
    return finite_number(owner, name, value)


def _rate(owner: str, name: str, value: object, *, low: float = 0.0, what: str = "a fraction",
          example: str = "0.0005 = 5 bp") -> float:
    """A rate given as a fraction in ``[low, 1)``; >= 1 is read as percent or basis points."""
    out = _finite(owner, name, value)
    if out >= 1.0:
        raise ValueError(
            f"{owner}: {name}={value!r} is not plausible as {what} (must be < 1). "
            f"Did you pass basis points/percent? Rates are fractions: {example}."
        )
    if out < low:
        raise ValueError(f"{owner}: {name} must be >= {low}; got {value!r}.")
    return out


def _text(owner: str, name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{owner}: {name} must be a non-empty string; got {value!r}.")
    return value
