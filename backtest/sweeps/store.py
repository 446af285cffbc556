"""``sweep(..., store=DIR)``: a sweep's stats kept on disk chunk by chunk, so that an
interrupted sweep resumes where it stopped and a finished one is read back, not re-run.

Layout of ``DIR``::

    sweep.json              what the stats belong to: the fingerprint of the sweep's inputs
                            and of each input on its own (market, instrument, parameters,
                            signals, package version), the number of combinations, the stat
                            names, and every chunk written with its SHA-256 checksum
    .lock                   held (``flock``, exclusive) by the sweep writing the store
    chunks/LO-HI.parquet    stats of combinations LO..HI-1 (float64 columns STAT_NAMES);
                            its Parquet metadata names the sweep and the range
    stats.parquet           once every combination is done: the labelled stats table (the
                            index levels as columns), for ``pandas.read_parquet`` elsewhere

Every file is written under a temporary name in its directory and renamed (``os.replace``),
so an interrupted sweep never leaves a half-written file. The manifest is created with an
exclusive link (it exists whole or not at all, and of two sweeps creating it at once one
loses) and one sweep at a time holds the store's lock: a second sweep is refused, never
mixed in. A chunk's manifest entry is written before the chunk itself, so a crash between
the two leaves an entry without a file (recomputed), never an unlisted file. On resume every
chunk is verified (listed, checksum, sweep identity, rows, columns, not all NaN) and a bad
one is named with the fix. Chunk boundaries do not matter: a resumed sweep computes the
combinations no chunk covers, and the stats of a combination do not depend on its chunk.

Owns no simulation logic; imports numpy, pandas and pyarrow only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from backtest.atomic import write_atomic, write_temporary
from backtest.errors import DataError

try:  # POSIX advisory locks; elsewhere the exclusive manifest creation is the guard
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

MANIFEST = "sweep.json"
LOCK = ".lock"
CHUNKS = "chunks"
STATS_FILE = "stats.parquet"
_CHUNK_NAME = re.compile(r"^(\d{12})-(\d{12})\.parquet$")
_FORMAT = 2
_META_SWEEP, _META_RANGE = b"backtest.sweep", b"backtest.range"
_DELETE = "Fix: delete the file (its combinations are recomputed on the next run)"


class StoreBusyError(ValueError):
    """Another sweep holds the store (exit code 2 on the command line)."""


def store_path(path: Any) -> Path:
    """``store=`` as a directory path: ``~`` expanded, empty and non-path values refused."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"sweep(): store= takes a directory path (str or pathlib.Path), "
                        f"got {type(path).__name__}. Pass e.g. store='sweeps/btc-lev'.")
    text = os.fspath(path)
    if not str(text).strip():
        raise ValueError(f"sweep(): store={path!r} is empty; it would write into the current "
                         "folder. Fix: pass a directory name, e.g. store='sweeps/btc-lev', or "
                         "store=None to keep nothing on disk.")
    return Path(os.path.expanduser(text))


class SweepStore:
    """The on-disk stats of one sweep (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The store directory (``~`` expanded); created if missing.
    inputs : str or mapping of str -> str
        Digest of everything the stats depend on (``backtest.data.fingerprint``), or one
        digest per input, so that a refusal can say which input differs.
    n_combos : int
        Combinations in the sweep.
    stat_names : sequence of str
        The stats columns, in kernel order.
    """

    def __init__(self, path: str | os.PathLike, inputs: str | Mapping[str, str],
                 n_combos: int, stat_names: tuple[str, ...]) -> None:
        self.path = store_path(path)
        parts = {"all inputs": inputs} if isinstance(inputs, str) else dict(inputs)
        self.fingerprint = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()
                                          ).hexdigest()[:16]
        self.stat_names = tuple(stat_names)
        self.n_combos = int(n_combos)
        self.identity = {"format": _FORMAT, "fingerprint": self.fingerprint, "inputs": parts,
                         "n_combos": self.n_combos, "stats": list(self.stat_names)}
        self.chunks: dict[str, dict[str, Any]] = {}
        self._lock_fh: Any = None
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"sweep(): store={str(path)!r} is a file; store= takes a "
                             "directory. Choose a new directory name.")
        try:
            (self.path / CHUNKS).mkdir(parents=True, exist_ok=True)
        except (NotADirectoryError, FileExistsError):
            raise ValueError(f"sweep(): store={str(path)!r} cannot be created: a part of the "
                             "path is a file, not a folder. Fix: choose a directory path whose "
                             "parents are folders.") from None
        self._lock()
        try:
            self._check_manifest()
        except BaseException:
            self.close()
            raise

    # --- exclusive use ----------------------------------------------------------------

    def _lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        fh = open(self.path / LOCK, "a+")  # noqa: SIM115 (held until close())
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.close()
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                # a file system without locks (some network mounts): the exclusive
                # creation of the manifest still refuses the loser of a first race
                return
            raise StoreBusyError(
                f"sweep(): store {str(self.path)!r} is in use by another sweep right now "
                "(its lock file .lock is held). Two sweeps never write one store. Fix: wait "
                "for the other sweep to finish, or pass another store= directory.") from None
        self._lock_fh = fh

    def close(self) -> None:
        """Release the store's lock (also released when the process ends)."""
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    # --- identity -------------------------------------------------------------------------

    def _check_manifest(self) -> None:
        file = self.path / MANIFEST
        if not file.exists():
            if any(_CHUNK_NAME.match(p.name) for p in (self.path / CHUNKS).iterdir()):
                raise ValueError(f"sweep(): store {str(self.path)!r} holds chunk files but "
                                 f"no {MANIFEST}, so what they belong to is unknown. Delete "
                                 "the directory or choose another one.")
            if self._create_manifest(file):
                return
        found = self._read_manifest(file)
        mine = {k: v for k, v in found.items() if k != "chunks"}
        if mine != self.identity:
            raise ValueError(self._refusal(found))
        chunks = found.get("chunks")
        self.chunks = dict(chunks) if isinstance(chunks, dict) else {}

    def _create_manifest(self, file: Path) -> bool:
        """Create ``sweep.json`` whole or not at all; False when another sweep created it
        first (then it is read and compared like any existing manifest)."""
        payload = json.dumps({**self.identity, "chunks": {}}, indent=2) + "\n"
        tmp = write_temporary(file, payload)
        try:
            os.link(tmp, file)  # fails if the manifest exists: the loser of a race sees it
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return True

    def _read_manifest(self, file: Path) -> dict[str, Any]:
        try:
            found = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DataError(f"sweep(): {file} cannot be read as JSON ({err}); delete the "
                            "store directory or choose another one.") from None
        if not isinstance(found, dict):
            raise DataError(f"sweep(): {file} is not a sweep manifest (a JSON object); delete "
                            "the store directory or choose another one.")
        return found

    def _refusal(self, found: dict[str, Any]) -> str:
        """Which input differs between this sweep and the one the store holds."""
        if found.get("format") != _FORMAT:
            why = (f"it was written in store format {found.get('format')!r}, this version "
                   f"writes format {_FORMAT}")
        else:
            theirs = found.get("inputs") if isinstance(found.get("inputs"), dict) else {}
            diff = [k for k in self.identity["inputs"] if theirs.get(k) != self.identity[
                "inputs"][k]]
            diff += [k for k in ("n_combos", "stats") if found.get(k) != self.identity[k]]
            why = (f"these inputs differ: {', '.join(diff)}" if diff else
                   "its inputs differ")
        return (f"sweep(): store {str(self.path)!r} holds the stats of another sweep ({why}). "
                "Use another directory for this sweep, or delete that one to start over "
                "(numbers are compared as numbers: leverage=[2, 5] equals [2.0, 5.0]).")

    # --- chunks ---------------------------------------------------------------------------

    def done_ranges(self) -> list[tuple[int, int]]:
        """``(lo, hi)`` of every chunk file present, sorted; unlisted or out-of-range chunk
        files are refused with their name."""
        out = []
        for entry in (self.path / CHUNKS).iterdir():
            match = _CHUNK_NAME.match(entry.name)
            if not match:
                continue
            lo, hi = int(match.group(1)), int(match.group(2))
            if not 0 <= lo < hi <= self.n_combos:
                raise DataError(f"sweep(): {entry} names combinations {lo}..{hi - 1}, "
                                f"outside this sweep's 0..{self.n_combos - 1}. {_DELETE}.")
            if entry.name not in self.chunks:
                raise DataError(f"sweep(): {entry} is not listed in {MANIFEST}: it was not "
                                f"written by this sweep (copied in?). {_DELETE}.")
            out.append((lo, hi))
        return sorted(out)

    def read_into(self, stats: np.ndarray) -> np.ndarray:
        """Fill ``stats`` rows from the verified chunk files; returns the bool mask of rows
        read. Listed chunks whose file is gone are recomputed."""
        done = np.zeros(self.n_combos, dtype=bool)
        for lo, hi in self.done_ranges():
            stats[lo:hi] = self._verified(lo, hi)
            done[lo:hi] = True
        return done

    def _verified(self, lo: int, hi: int) -> np.ndarray:
        file = self._chunk_file(lo, hi)
        entry = self.chunks[file.name]
        if not isinstance(entry, dict):
            raise DataError(f"sweep(): the entry of {file.name} in {self.path / MANIFEST} is "
                            f"not a checksum record ({entry!r}); the manifest was edited. "
                            f"{_DELETE}.")
        try:
            data = file.read_bytes()
            table = pq.read_table(pa.BufferReader(data))
        except (OSError, pa.ArrowException) as err:
            raise DataError(f"sweep(): {file} cannot be read ({err}). {_DELETE}.") from None
        meta = table.schema.metadata or {}
        owner = meta.get(_META_SWEEP, b"?").decode(errors="replace")
        if owner != self.fingerprint or meta.get(_META_RANGE) != f"{lo}-{hi}".encode():
            raise DataError(f"sweep(): {file} belongs to another sweep or range (sweep "
                            f"{owner}, range {meta.get(_META_RANGE, b'?').decode()}; this is "
                            f"sweep {self.fingerprint}, range {lo}-{hi}). {_DELETE}.")
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise DataError(f"sweep(): {file} does not match the checksum recorded in "
                            f"{MANIFEST}: it was damaged or replaced after it was written. "
                            f"{_DELETE}.")
        if tuple(table.column_names) != self.stat_names or table.num_rows != hi - lo:
            raise DataError(f"sweep(): {file} has {table.num_rows} rows and columns "
                            f"{table.column_names}; expected {hi - lo} rows of "
                            f"{list(self.stat_names)}. {_DELETE}.")
        block = np.column_stack([table.column(name).to_numpy(zero_copy_only=False)
                                 for name in self.stat_names]).astype(np.float64)
        empty = np.flatnonzero(np.isnan(block).all(axis=1))
        if empty.size:
            raise DataError(f"sweep(): {file} has {empty.size} row(s) with no stats at all "
                            f"(all NaN), first combination {lo + int(empty[0])}; a sweep "
                            f"always writes final_equity. {_DELETE}.")
        return block

    def save(self, lo: int, hi: int, block: np.ndarray) -> None:
        """Write the stats of combinations ``lo..hi-1`` (``block``: float64[hi-lo, n]):
        the manifest entry with its checksum first, then the chunk."""
        table = pa.table({name: np.ascontiguousarray(block[:, j])
                          for j, name in enumerate(self.stat_names)})
        table = table.replace_schema_metadata({_META_SWEEP: self.fingerprint.encode(),
                                               _META_RANGE: f"{lo}-{hi}".encode()})
        data = _parquet_bytes(table)
        file = self._chunk_file(lo, hi)
        self.chunks[file.name] = {"rows": hi - lo, "sha256": hashlib.sha256(data).hexdigest()}
        self._write_manifest()
        write_atomic(file, data)

    def _write_manifest(self) -> None:
        payload = {**self.identity, "chunks": dict(sorted(self.chunks.items()))}
        write_atomic(self.path / MANIFEST, json.dumps(payload, indent=1) + "\n")

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


def open_store(store: Any, fingerprint: Callable[[], str | Mapping[str, str]], n_combos: int,
               stat_names: tuple[str, ...]) -> SweepStore | None:
    """``store=`` as a :class:`SweepStore` (None stays None). ``fingerprint`` is called only
    for a store: hashing a million-bar market costs ~0.1 s, which a sweep without a store
    must not pay. It returns one digest, or one per input (named in a refusal)."""
    if store is None:
        return None
    store_path(store)  # refuse a bad path before hashing anything
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
