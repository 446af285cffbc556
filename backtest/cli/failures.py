"""One line for a file-system failure of the command line: what happened, to which path,
and the fix (SPEC §11: exit code 2, never a traceback).

Owns the wording per ``errno``; imports the standard library only.
"""

from __future__ import annotations

import argparse
import errno
import os

_FIXES = {
    errno.EACCES: ("permission denied", "make it readable/writable for you, or choose a "
                                        "path you own (e.g. --out in your home folder)"),
    errno.EPERM: ("operation not permitted", "choose a path you own"),
    errno.EROFS: ("read-only file system", "pass --out on a writable disk"),
    errno.ENOSPC: ("no space left on the device", "free some space or pass --out on another "
                                                  "disk; no half-written file was left"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or pass --out on another disk; "
                                          "no half-written file was left"),
    errno.ENOENT: ("not found", "check the path (relative paths start at {cwd})"),
    errno.EISDIR: ("is a directory, a file was expected", "pass a file path, e.g. "
                                                          "--out data/out.parquet"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another path"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path"),
    errno.ELOOP: ("symbolic link loop", "replace the link with the real path"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) or close other "
                                          "programs"),
    errno.EIO: ("input/output error of the device", "check the disk, or use another one"),
}


def describe_os_error(exc: OSError, args: argparse.Namespace | None = None) -> str:
    """``"<what>: <path>. Fix: <fix>."`` for ``exc``; the path is the one the error names,
    else the command's ``--out`` or config file."""
    path = exc.filename
    if path is None and args is not None:
        path = getattr(args, "out", None) or getattr(args, "config", None)
    what, fix = _FIXES.get(exc.errno or -1, (exc.strerror or type(exc).__name__,
                                             "check the path and the file system"))
    fix = fix.format(cwd=os.getcwd())
    if exc.errno == errno.ENOENT and path is not None and _writing_into(path, args) \
            and _parent_exists(path):
        # e.g. mkdir under /proc: the folder is there, it just takes no new entries
        what = "cannot be created: its folder exists but does not accept new entries"
        fix = "choose another path (a folder you own)"
    where = f": {os.fsdecode(path)}" if path is not None else ""
    other = f" -> {os.fsdecode(exc.filename2)}" if getattr(exc, "filename2", None) else ""
    return f"{type(exc).__name__}: {what}{where}{other}. Fix: {fix}."


def _parent_exists(path: str | bytes | os.PathLike[str]) -> bool:
    """The folder that would hold ``path`` exists (so "not found" means "not creatable")."""
    parent = os.path.dirname(os.path.abspath(os.fsdecode(path)))
    return os.path.isdir(parent) and not os.path.exists(os.fsdecode(path))


def _writing_into(path: str | bytes | os.PathLike[str], args: argparse.Namespace | None) -> bool:
    """``path`` is the command's ``--out`` (or inside it): the failure was a write."""
    out = getattr(args, "out", None) if args is not None else None
    if not out:
        return False
    target = os.path.abspath(os.fsdecode(path))
    base = os.path.abspath(os.path.expanduser(os.fsdecode(out)))
    return target == base or target.startswith(base + os.sep)
