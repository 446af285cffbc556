"""Files written whole or not at all (SPEC §11: an interrupted run never leaves a
half-written file): write to a temporary name in the target's folder, then rename.

Owns :func:`write_atomic` (one file) and :func:`write_set` (several files, all new or all
old); imports the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def write_temporary(target: Path, data: bytes | str) -> str:
    """``data`` written and synced to a new temporary file beside ``target`` (readable by
    all, as results are meant to be shared); returns its path. The caller renames or links
    it into place and removes it on failure."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    The folder is created if needed. On any error the temporary file is removed and
    ``path`` is left as it was (absent or the previous complete version).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_temporary(target, data)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


_NEW, _OLD = ".backtest-new-", ".backtest-old-"


def write_set(folder: str | os.PathLike[str], payloads: dict[str, bytes | str]) -> list[Path]:
    """Write several files as one set: all new or all old, never mixed.

    The files are written into a temporary folder beside ``folder``; then ``folder`` (if it
    exists) is renamed aside, the temporary folder renamed into its place, and the old one
    removed. When ``folder`` holds files that are not part of the set (e.g. ``--out .``), it
    cannot be swapped whole: the files are then renamed in one by one from a temporary
    subfolder, after removing the completion marker ``.backtest-complete``, which is written
    last (so a set without the marker is known to be incomplete). Leftovers of an earlier
    interrupted write (temporary folders and ``*.tmp`` files of these names) are removed.
    """
    target = Path(folder)
    if target.is_symlink():  # write where the link points; the link itself stays
        target = target.resolve()
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(target, payloads)
    foreign = target.is_dir() and any(
        p.name not in payloads and p.name != COMPLETE for p in target.iterdir())
    try:
        staging = Path(tempfile.mkdtemp(dir=target if foreign else parent,
                                        prefix=_NEW if foreign else f".{target.name}{_NEW}"))
    except OSError as exc:  # name the folder asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, str(target)) from exc
    try:
        for name, data in payloads.items():
            write_atomic(staging / name, data)
        if foreign:
            _move_in(staging, target, payloads)
        else:
            _swap_in(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _named(exc, staging, target) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [Path(folder) / name for name in payloads]


def _named(exc: OSError, staging: Path, target: Path) -> OSError:
    """``exc`` naming the file the user asked for, not the temporary one."""
    name = exc.filename
    if name is not None and os.fspath(name).startswith(os.fspath(staging)):
        name = os.fspath(target) + os.fspath(name)[len(os.fspath(staging)):]
    out = type(exc)(exc.errno, exc.strerror, name) if exc.errno else exc
    return out


COMPLETE = ".backtest-complete"


def _swap_in(staging: Path, target: Path) -> None:
    os.chmod(staging, 0o755)  # mkdtemp makes 0700; results are meant to be shared
    if not target.exists():
        os.replace(staging, target)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{_OLD}"))
    os.replace(target, old / "previous")
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old / "previous", target)  # the old set back in place, whole
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def _move_in(staging: Path, target: Path, payloads: dict[str, bytes | str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target / COMPLETE)
    for name in payloads:
        os.replace(staging / name, target / name)
    staging.rmdir()
    write_atomic(target / COMPLETE, "\n".join(payloads) + "\n")


def _clean_stale(target: Path, payloads: dict[str, bytes | str]) -> None:
    """Remove what an interrupted earlier write of this set left behind (an old set moved
    aside and not replaced is first put back)."""
    for old in target.parent.glob(f".{target.name}{_OLD}*"):
        if not target.exists() and (old / "previous").is_dir():
            os.replace(old / "previous", target)
    stale = list(target.parent.glob(f".{target.name}{_NEW}*"))
    stale += list(target.parent.glob(f".{target.name}{_OLD}*"))
    if target.is_dir():
        stale += list(target.glob(f"{_NEW}*"))
        if all(p.name in payloads or p.name == COMPLETE for p in target.iterdir()):
            stale += [target / COMPLETE]  # a whole-folder set needs no marker
        stale += [p for name in [*payloads, COMPLETE] for p in target.glob(f".{name}.*.tmp")]
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
