"""``sweep(..., store=DIR)``: a sweep's stats kept on disk chunk by chunk, so that an
interrupted sweep resumes where it stopped and a finished one is read back, not re-run.

Layout of ``DIR``::

    sweep.json              what the stats belong to: the fingerprint of the sweep's inputs
                            (market, instrument, every parameter value in grid order, the
                            signals, the package version), the number of combinations and
                            the stat names
    chunks/LO-HI.parquet    stats of combinations LO..HI-1 (float64 columns STAT_NAMES)
    stats.parquet           once every combination is done: the labelled stats table (the
                            index levels as columns), for ``pandas.read_parquet`` elsewhere

Every file is written under a temporary name in its directory and renamed (``os.replace``),
so an interrupted sweep never leaves a half-written file: a chunk is there whole or not at
all. A store that holds another sweep's stats is refused, never mixed or overwritten.
Chunk boundaries do not matter: a resumed sweep computes the combinations no chunk file
covers, in chunks of its own size, and the stats of a combination do not depend on its
chunk, so a resumed sweep equals an uninterrupted one bit for bit.

Owns no simulation logic; imports numpy, pandas and pyarrow only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from backtest.atomic import write_atomic
from backtest.errors import DataError

MANIFEST = "sweep.json"
CHUNKS = "chunks"
STATS_FILE = "stats.parquet"
_CHUNK_NAME = re.compile(r"^(\d{12})-(\d{12})\.parquet$")
_FORMAT = 1


class SweepStore:
    """The on-disk stats of one sweep (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The store directory; created if missing.
    fingerprint : str
        Digest of everything the stats depend on (``backtest.fingerprint``).
    n_combos : int
        Combinations in the sweep.
    stat_names : sequence of str
        The stats columns, in kernel order.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: str, n_combos: int,
                 stat_names: tuple[str, ...]) -> None:
        if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"sweep(): store= takes a directory path (str or pathlib.Path), "
                            f"got {type(path).__name__}. Pass e.g. store='sweeps/btc-lev'.")
        self.path = Path(path)
        self.stat_names = tuple(stat_names)
        self.n_combos = int(n_combos)
        self.manifest = {"format": _FORMAT, "fingerprint": fingerprint,
                         "n_combos": self.n_combos, "stats": list(self.stat_names)}
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"sweep(): store={str(path)!r} is a file; store= takes a "
                             "directory. Choose a new directory name.")
        (self.path / CHUNKS).mkdir(parents=True, exist_ok=True)
        self._check_manifest()

    # --- identity -------------------------------------------------------------------------

    def _check_manifest(self) -> None:
        file = self.path / MANIFEST
        if not file.exists():
            if any((self.path / CHUNKS).iterdir()):
                raise ValueError(f"sweep(): store {str(self.path)!r} holds chunk files but "
                                 f"no {MANIFEST}, so what they belong to is unknown. Delete "
                                 "the directory or choose another one.")
            write_atomic(file, (json.dumps(self.manifest, indent=2) + "\n").encode())
            return
        try:
            found = json.loads(file.read_text())
        except (OSError, ValueError) as err:
            raise DataError(f"sweep(): {file} cannot be read as JSON ({err}); delete the "
                            "store directory or choose another one.") from None
        if found != self.manifest:
            diff = sorted(k for k in self.manifest if found.get(k) != self.manifest[k])
            raise ValueError(
                f"sweep(): store {str(self.path)!r} holds the stats of another sweep "
                f"({', '.join(diff)} differ{'s' if len(diff) == 1 else ''}: the market, "
                "instrument, parameters, signals or package version are not the same). "
                "Use another directory for this sweep, or delete that one to start over.")

    # --- chunks ---------------------------------------------------------------------------

    def done_ranges(self) -> list[tuple[int, int]]:
        """``(lo, hi)`` of every chunk file, sorted."""
        out = []
        for entry in (self.path / CHUNKS).iterdir():
            match = _CHUNK_NAME.match(entry.name)
            if match:
                lo, hi = int(match.group(1)), int(match.group(2))
                if not 0 <= lo < hi <= self.n_combos:
                    raise DataError(f"sweep(): {entry} names combinations {lo}..{hi - 1}, "
                                    f"outside this sweep's 0..{self.n_combos - 1}; delete "
                                    "the file (it will be recomputed).")
                out.append((lo, hi))
        return sorted(out)

    def read_into(self, stats: np.ndarray) -> np.ndarray:
        """Fill ``stats`` rows from the chunk files; returns the bool mask of rows read."""
        done = np.zeros(self.n_combos, dtype=bool)
        for lo, hi in self.done_ranges():
            file = self._chunk_file(lo, hi)
            try:
                table = pq.read_table(file)
            except (OSError, pa.ArrowException) as err:
                raise DataError(f"sweep(): {file} cannot be read ({err}); delete the file "
                                "(it will be recomputed).") from None
            if tuple(table.column_names) != self.stat_names or table.num_rows != hi - lo:
                raise DataError(f"sweep(): {file} has {table.num_rows} rows and columns "
                                f"{table.column_names}; expected {hi - lo} rows of "
                                f"{list(self.stat_names)}. Delete the file (it will be "
                                "recomputed).")
            stats[lo:hi] = np.column_stack([table.column(name).to_numpy()
                                            for name in self.stat_names])
            done[lo:hi] = True
        return done

    def save(self, lo: int, hi: int, block: np.ndarray) -> None:
        """Write the stats of combinations ``lo..hi-1`` (``block``: float64[hi-lo, n])."""
        table = pa.table({name: np.ascontiguousarray(block[:, j])
                          for j, name in enumerate(self.stat_names)})
        write_atomic(self._chunk_file(lo, hi), _parquet_bytes(table))

    def finish(self, stats: pd.DataFrame) -> None:
        """Write the labelled stats table (``SweepResult.stats``) as ``stats.parquet``."""
        frame = stats.reset_index()
        for col in frame.columns:
            if frame[col].dtype == object:
                # a level mixing None and numbers or strings: written as text
                frame[col] = frame[col].map(lambda v: "None" if v is None else str(v))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        write_atomic(self.path / STATS_FILE, _parquet_bytes(table))

    def _chunk_file(self, lo: int, hi: int) -> Path:
        return self.path / CHUNKS / f"{lo:012d}-{hi:012d}.parquet"


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def open_store(store: Any, fingerprint: Callable[[], str], n_combos: int,
               stat_names: tuple[str, ...]) -> SweepStore | None:
    """``store=`` as a :class:`SweepStore` (None stays None). ``fingerprint`` is called only
    for a store: hashing a million-bar market costs ~0.1 s, which a sweep without a store
    must not pay."""
    if store is None:
        return None
    return SweepStore(store, fingerprint(), n_combos, stat_names)


def todo_ranges(done: np.ndarray, chunk: int) -> list[tuple[int, int]]:
    """The combinations not marked in ``done`` (bool[n_combos]), as ``(lo, hi)`` ranges of
    at most ``chunk``, in order."""
    missing = np.flatnonzero(~done)
    if missing.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(missing) != 1)
    starts = np.concatenate([[missing[0]], missing[breaks + 1]])
    ends = np.concatenate([missing[breaks], [missing[-1]]]) + 1
    out = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        out += [(lo, min(lo + chunk, end)) for lo in range(start, end, chunk)]
    return out
