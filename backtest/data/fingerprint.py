"""A stable fingerprint of a run's inputs: market arrays, instrument, parameters, signals.

``fingerprint(market, params, signals)`` is a short hex SHA-256 digest that is identical for
bit-identical inputs in any process, on any machine of the same byte order (arrays are
hashed little-endian), with any thread count; it changes when any input value changes. It
goes into ``Result.stats["fingerprint"]`` next to ``stats["version"]`` so that a stored
result says exactly what produced it.

Arrays are hashed from their raw bytes (never converted to Python lists), so hashing a
million-bar market costs a few milliseconds. Scalars are written with ``repr`` (exact and
round-trip for floats), each value tagged with its type and name so that, e.g., ``1`` and
``"1"`` or two swapped parameters hash differently.

Imports numpy and pandas only; must not import the kernels, the engine or the market module.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

DIGEST_CHARS = 16  # 64 bits: ample to tell runs apart, short enough to read and compare
# Market attributes that feed the simulation (the rest, e.g. sources, are labels).
MARKET_FIELDS = ("index_ns", "open", "high", "low", "close", "volume", "mark_open",
                 "mark_high", "mark_low", "mark_close", "index_close", "funding_rate",
                 "funding_count", "next_funding_rate", "has_funding", "mark_source", "bar_ns")


def fingerprint(market: Any, params: Mapping[str, Any], signals: Any = None) -> str:
    """Short hex SHA-256 of everything a run reads.

    Parameters
    ----------
    market : Market or mapping of name -> Market
        Its arrays (:data:`MARKET_FIELDS`) and its instrument's fields (tier table included);
        a portfolio's markets are hashed by name, in sorted order.
    params : mapping
        The run parameters (best the validated, complete set, so that a default given
        explicitly and one left out hash alike). Keys are hashed in sorted order.
    signals : mapping of name -> array, sequence of arrays, array or None
        The signals as the kernel sees them (e.g. the four prepared bool arrays).

    Returns
    -------
    str
        :data:`DIGEST_CHARS` lower-case hex characters.
    """
    h = hashlib.sha256(b"backtest-fingerprint-v1")
    markets = market if isinstance(market, Mapping) else {"": market}
    for key in sorted(markets, key=str):
        m = markets[key]
        _update(h, f"market{key}", {name: getattr(m, name, None) for name in MARKET_FIELDS})
        _update(h, f"instrument{key}", _fields(getattr(m, "instrument", None)))
    _update(h, "params", dict(params))
    _update(h, "signals", signals)
    return h.hexdigest()[:DIGEST_CHARS]


def _fields(obj: Any) -> Any:
    """A dataclass (or plain object) as a dict of its fields, recursively for tier tables."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _fields(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.name.startswith("_")}
    if hasattr(obj, "__dict__") and not isinstance(obj, (type, np.ndarray, pd.Series)):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return obj


def _update(h: Any, name: str, value: Any) -> None:
    """Feed ``name`` and ``value`` (tagged by type) into the hash ``h``."""
    h.update(f"<{name}:".encode())
    if value is None or isinstance(value, (bool, np.bool_, str)):
        h.update(f"{type(value).__name__}={value!r}".encode())
    elif isinstance(value, (int, np.integer)):
        h.update(f"int={int(value)!r}".encode())
    elif isinstance(value, (float, np.floating)):
        h.update(f"float={float(value)!r}".encode())
    elif isinstance(value, pd.Timestamp):
        h.update(f"timestamp={value.value}@{value.tz}".encode())
    elif isinstance(value, (pd.Series, pd.DataFrame)):
        idx = value.index
        _update(h, "index", idx.asi8 if isinstance(idx, pd.DatetimeIndex) else idx.to_numpy())
        _update(h, "tz", str(getattr(idx, "tz", None)))
        _update(h, "values", value.to_numpy())
    elif isinstance(value, np.ndarray):
        _array(h, value)
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            _update(h, str(key), value[key])
    elif isinstance(value, Sequence):
        for i, item in enumerate(value):
            _update(h, str(i), item)
    else:  # anything else by its repr (deterministic for the plain types parameters use)
        h.update(f"{type(value).__name__}={value!r}".encode())
    h.update(b">")


def _array(h: Any, a: np.ndarray) -> None:
    """dtype, shape and raw little-endian bytes of ``a`` (object arrays by element repr)."""
    if a.dtype.hasobject:
        h.update(f"object{a.shape}".encode())
        for item in a.ravel():
            _update(h, "", item)
        return
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    a = np.ascontiguousarray(a, dtype=dt)
    h.update(f"{dt.str}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8))


def fingerprint_parts(market: Any, params: Mapping[str, Any], signals: Any = None
                      ) -> dict[str, str]:
    """One digest per input of :func:`fingerprint`, so that two runs can be told apart by
    *which* input differs: ``market`` (arrays), ``instrument``, each top-level key of
    ``params`` (e.g. ``scalars``, ``levels``, ``version``) and ``signals``."""
    markets = market if isinstance(market, Mapping) else {"": market}

    def digest(name: str, value: Any) -> str:
        h = hashlib.sha256(b"backtest-fingerprint-v1")
        _update(h, name, value)
        return h.hexdigest()[:DIGEST_CHARS]

    parts = {"market": digest("market", {str(k): {n: getattr(m, n, None) for n in
                                                     MARKET_FIELDS}
                                           for k, m in markets.items()}),
             "instrument": digest("instrument", {str(k): _fields(getattr(m, "instrument",
                                                                          None))
                                                 for k, m in markets.items()})}
    parts.update({str(k): digest(str(k), v) for k, v in params.items()})
    parts["signals"] = digest("signals", signals)
    return parts
