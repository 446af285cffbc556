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


# A value that fits each field, for the "Fix: pass e.g. name=..." of a message (tier rows
# and other indexed fields are looked up by their name before "[").
_EXAMPLES = {"contract_size": "1.0", "tick_size": "0.1", "lot_size": "0.001",
             "maker_fee": "0.0002", "taker_fee": "0.0005", "max_leverage": "125",
             "funding_interval_hours": "8", "borrow_rate": "0.0002/24",
             "liquidation_margin_level": "1.1", "mmr": "0.005", "floor": "0",
             "maint_amount": "0", "cum": "0", "base_limit": "200", "step": "100",
             "base_mm": "0.005", "base_im": "0.01"}


def _finite(owner: str, name: str, value: object) -> float:
    example = _EXAMPLES.get(name.split("[")[0], "1.0")
    return finite_number(owner, name, value, example=example)


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
