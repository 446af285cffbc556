"""The grid of a sweep: list-valued parameters expanded into combinations, validated once per
distinct value (and per element of each coupled pair), encoded into the kernels' parameter
rows chunk by chunk (``Plan``), and the chunk size.

Validation: ``params.validate_params`` is called once per distinct value of every
list-valued parameter (the other parameters at their scalar or first value, so any error it
raises belongs to a combination of the grid), then once per element of the product of the
distinct values of each *coupled* pair (``_COUPLED``: the only rules in ``validate_params``
that involve two parameters). "Stop beyond the liquidation distance" is evaluated for every
combination at once on the encoded rows and reported as one summary warning. Rows are
assembled column-wise from the per-value encodings (each swept parameter owns its columns);
should two swept parameters ever feed one column, every row is encoded through
``validate_params``/``encode`` instead, and a sample of combinations is always re-encoded
that way to prove the assembly.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from backtest.checks import user_stacklevel
from backtest.kernels import records as R
from backtest.kernels.sweep import TILE
from backtest.simulation.params import RUN_DEFAULTS, encode, expand_grid, validate_params

# Rules of validate_params that involve two parameters: the product of the distinct values
# of each pair is validated (keep in step with params.validate_params).
_COUPLED = (("size", "size_type"), ("size_type", "stop_loss"))
# The per-value warning that sweep() summarises itself (see _warn_unreachable_stops).
_STOP_WARNING = "run(): stop_loss="
_N_SPOT_CHECKS = 24

# run() parameters that shape the market/instrument arrays rather than a parameter row.
MARKET_PARAMS = ("borrow_rate", "settlement_price")


def expand(grid: Mapping[str, Any]) -> tuple[list[str], dict[str, list[Any]], np.ndarray]:
    """List-valued parameter names (in order), their values, and the value index of each
    parameter for every grid combination (``params.expand_grid`` decides what is a list and
    fixes the order: the last parameter varies fastest). The codes are built with numpy:
    no Python object per combination."""
    for key, value in grid.items():
        _refuse_ambiguous_list(key, value)
    values = {k: [v.item() if isinstance(v, np.generic) else v for v in seq]
              for k, seq in grid.items() if expand_grid({k: seq})[0]}
    names = list(values)
    for name in names:
        if not values[name]:
            raise ValueError(f"sweep(): {name} is an empty list; give at least one value.")
    shape = tuple(len(values[k]) for k in names)
    codes = np.indices(shape, dtype=np.int32).reshape(len(names), -1).T if names else \
        np.zeros((1, 0), dtype=np.int32)
    return names, values, np.ascontiguousarray(codes)


def _refuse_ambiguous_list(key: str, value: Any) -> None:
    """pandas objects, sets, dicts and iterators are not sweep lists: say what to pass."""
    import pandas as pd

    if isinstance(value, (pd.Series, pd.Index, pd.DataFrame)):
        raise TypeError(f"sweep(): {key} is a pandas {type(value).__name__}; a swept "
                        f"parameter takes a list, tuple, range or 1-d numpy array. Fix: "
                        f"{key}={key}_values.tolist() (or .to_numpy()).")
    if isinstance(value, (set, frozenset, dict)) or (
            hasattr(value, "__next__") and not isinstance(value, (str, bytes))):
        raise TypeError(f"sweep(): {key} is a {type(value).__name__}; a swept parameter "
                        f"takes a list, tuple, range or 1-d numpy array (sets and dicts have "
                        f"no order to label the results by). Fix: {key}=sorted(...) or "
                        f"{key}=list(...).")
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise TypeError(f"sweep(): {key} is a {value.ndim}-d array of shape {value.shape}; a "
                        f"swept parameter takes a 1-d list of values. Fix: "
                        f"{key}={key}_values.ravel().tolist().")


# Bytes held per combination (estimate): the stats array and the result's copy of it
# (float64 each), the grid codes (int32 per swept parameter) and the result's level codes
# (int64 per level, built twice while the index is assembled).
_BYTES_PER_STAT = 2 * 8
_DEFAULT_BUDGET_CAP = 8 * 2**30
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def grid_size(grid: Mapping[str, Any]) -> tuple[int, int]:
    """``(combinations, swept parameters)`` of ``grid`` without expanding it."""
    n, names = 1, 0
    for key, value in grid.items():
        _refuse_ambiguous_list(key, value)
        if expand_grid({key: value})[0]:
            n *= len(value)
            names += 1
    return n, names


def memory_estimate(n_combos: int, n_names: int, n_stats: int) -> int:
    """Bytes a sweep of ``n_combos`` combinations holds at its peak (an estimate)."""
    per_combo = n_stats * _BYTES_PER_STAT + 4 * n_names + 2 * 8 * (n_names + 1)
    return int(n_combos) * per_combo


def default_budget() -> int:
    """Half the machine's physical memory, at most 8 GiB (4 GiB when it is unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 4 * 2**30
    return int(min(total // 2, _DEFAULT_BUDGET_CAP))


def parse_memory(value: Any) -> int:
    """``max_memory=`` as bytes: a positive number of bytes or a text like ``"8GB"``."""
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        num = text.rstrip("kmgtib")
        unit = text[len(num):] or "b"
        try:
            if unit not in _UNITS:
                raise ValueError
            out = float(num) * _UNITS[unit]
        except ValueError:
            raise ValueError(f"sweep(): max_memory={value!r} is not a size; expected bytes "
                             "or a text like '8GB', '500MB' or '2GiB'.") from None
    elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                            np.floating)):
        raise TypeError(f"sweep(): max_memory must be bytes (a number) or a text like "
                        f"'8GB'; got {type(value).__name__}.")
    else:
        out = float(value)
    if not out > 0:
        raise ValueError(f"sweep(): max_memory must be > 0; got {value!r}. Fix: e.g. "
                         "max_memory='8GB'.")
    return int(min(out, 2**62))


def check_memory(n_combos: int, n_names: int, n_stats: int, max_memory: Any) -> None:
    """Refuse, before anything is allocated, a sweep whose estimate exceeds the budget."""
    need = memory_estimate(n_combos, n_names, n_stats)
    given = max_memory is not None
    budget = parse_memory(max_memory) if given else default_budget()
    if need <= budget:
        return
    raise MemoryBudgetError(
        f"sweep(): {n_combos:,} combinations need about {_size(need)} of memory (stats "
        f"and labels), above the {'max_memory' if given else 'default'} budget of "
        f"{_size(budget)}{'' if given else ' (half the RAM, at most 8 GiB)'}. Fix: sweep a "
        "smaller grid (fewer values per list, or several sweeps over parts of it), or raise "
        f"the budget with max_memory='{_size(need * 1.1)}' if the machine has the memory.")


class MemoryBudgetError(ValueError):
    """A sweep would need more memory than its budget (exit code 2 on the command line)."""


def _size(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{int(n)}B"


def chunk_size_for(chunk_size: int | None, n_combos: int, threads: int) -> int:
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
                or chunk_size < 1:
            raise ValueError(f"sweep(): chunk_size must be a positive int, got {chunk_size!r}.")
        return int(chunk_size)
    unit = threads * TILE
    return int(min(65_536, max(unit, math.ceil(n_combos / 20 / unit) * unit)))


class Plan:
    """Validated, encoded parameters: the rows of any range of combinations on demand."""

    def __init__(self, instrument: Any, scalars: dict[str, Any], names: list[str],
                 values: dict[str, list[Any]], codes: np.ndarray, n_sets: int) -> None:
        self.instrument = instrument
        self.scalars = scalars
        self.names = names
        self.values = values
        self.codes = codes
        self.n_sets = n_sets
        self.n_grid = codes.shape[0]
        self.n_combos = self.n_grid * n_sets
        first = {k: values[k][0] for k in names}
        caught: list[warnings.WarningMessage] = []
        self.base = self._validate(first, caught)
        self.template = encode(self.base)
        self.value_rows: list[np.ndarray] = []
        self.columns: list[np.ndarray] = []
        for name in names:
            rows = np.array([encode(self._validate({**first, name: v}, caught))
                             for v in values[name]])
            differs = ~((rows == self.template) | (np.isnan(rows) & np.isnan(self.template)))
            self.value_rows.append(rows)
            self.columns.append(np.flatnonzero(differs.any(axis=0)))
        # Two swept parameters feeding one encoded column cannot be assembled column-wise:
        # then every row is encoded through validate_params (slow, but never wrong).
        owners = np.concatenate(self.columns) if self.columns else np.empty(0, np.int64)
        self.per_row = len(np.unique(owners)) != len(owners)
        self._validate_coupled(first, caught)
        for message in dict.fromkeys(str(w.message) for w in caught
                                     if not str(w.message).startswith(_STOP_WARNING)):
            warnings.warn(message, UserWarning, stacklevel=user_stacklevel())
        self._spot_check(caught)
        self._warn_unreachable_stops()

    def _validate(self, combo: dict[str, Any], caught: list) -> dict[str, Any]:
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            try:
                prm = validate_params(self.instrument, **{**self.scalars, **combo})
            except (TypeError, ValueError) as exc:
                where = f" (in the combination {combo})" if len(self.names) > 1 else ""
                message = str(exc).replace("run():", "sweep():", 1) + where
                raise type(exc)(message) from None
        caught.extend(got)
        return prm

    def _validate_coupled(self, first: dict[str, Any], caught: list) -> None:
        for group in _COUPLED:
            listed = [k for k in group if k in self.values and len(self.values[k]) > 1]
            if len(listed) < 2:
                continue
            sub, combos = expand_grid({k: self.values[k] for k in listed})
            for combo in combos:
                self._validate({**first, **dict(zip(sub, combo, strict=True))}, caught)

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """float64[hi - lo, N_PARAMS]: the encoded parameters of combinations lo..hi-1."""
        if self.per_row:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.array([encode(self._validate(*self.combo(i)[:1], []),
                                        signal_set=self.combo(i)[1]) for i in range(lo, hi)])
        r = np.arange(lo, hi)
        p = np.repeat(self.template[None, :], hi - lo, axis=0)
        g = self.codes[r % self.n_grid]
        for j in range(len(self.names)):
            cols = self.columns[j]
            if cols.size:
                p[:, cols] = self.value_rows[j][g[:, j]][:, cols]
        p[:, R.P_SIGNAL_SET] = r // self.n_grid
        return np.ascontiguousarray(p)

    def combo(self, i: int) -> tuple[dict[str, Any], int]:
        """Combination ``i``: its list-valued parameters and its signal set."""
        g = self.codes[i % self.n_grid]
        return {k: self.values[k][g[j]] for j, k in enumerate(self.names)}, i // self.n_grid

    def level_codes(self, with_sets: bool) -> np.ndarray:
        """int64[n_combos, n_levels]: value index of each level (signal set first)."""
        grid = np.tile(self.codes, (self.n_sets, 1))
        if not with_sets:
            return grid
        sets = np.repeat(np.arange(self.n_sets, dtype=np.int32), self.n_grid)[:, None]
        return np.hstack([sets, grid])

    def _spot_check(self, caught: list) -> None:
        """Re-encode a sample of combinations the way run() does; they must agree."""
        rng = np.random.default_rng(0)
        sample = {0, self.n_combos - 1, *rng.integers(0, self.n_combos, _N_SPOT_CHECKS)}
        for i in sorted(sample):
            combo, k = self.combo(int(i))
            want = encode(self._validate(combo, caught), signal_set=k)
            got = self.rows(int(i), int(i) + 1)[0]
            if not np.array_equal(want, got, equal_nan=True):
                raise RuntimeError(f"sweep(): internal error: the parameters of combination "
                                   f"{combo} encode differently from run(); please report.")

    def _warn_unreachable_stops(self) -> None:
        """One warning for every combination whose stop lies beyond the liquidation distance
        (the rule of ``params._warn_unreachable_stop``, evaluated on all rows at once)."""
        if self.scalars.get("stop_loss", RUN_DEFAULTS["stop_loss"]) is None \
                and "stop_loss" not in self.values:
            return
        mmr = float(self.instrument.tiers.mmr[0])
        hits = 0
        example = None
        step = 1 << 16
        for lo in range(0, self.n_combos, step):
            p = self.rows(lo, min(lo + step, self.n_combos))
            bad = ((p[:, R.P_MARGIN_MODE] == R.MARGIN_MODES.index("isolated"))
                   & (p[:, R.P_STOP_LOSS] >= 1.0 / p[:, R.P_LEVERAGE] - mmr))
            hits += int(bad.sum())
            if example is None and bad.any():
                example = self.combo(lo + int(np.flatnonzero(bad)[0]))[0]
        if hits:
            warnings.warn(
                f"sweep(): {hits:,} of {self.n_combos:,} combinations have a stop_loss at or "
                f"beyond the liquidation distance (1/leverage - mmr {mmr:g}), e.g. {example}: "
                "those positions are liquidated before the stop can fire.",
                UserWarning, stacklevel=user_stacklevel())
