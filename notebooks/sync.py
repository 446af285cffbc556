"""Regenerate every ``notebooks/*.ipynb`` from its jupytext "percent" twin ``*.py``.

The ``.py`` file is the source of truth (reviewed, linted, executed by
``tests/test_notebooks.py``); the ``.ipynb`` is derived from it with outputs empty, so
the pair never drifts. No dependency beyond the standard library: nbformat 4 JSON is
written with :mod:`json`.

Format read: ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose lines
lose their ``# `` prefix; blank lines around a cell are dropped.

Usage: ``python notebooks/sync.py`` (write), ``python notebooks/sync.py --check`` (exit 1
and name the stale notebooks instead of writing).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_MARKER = re.compile(r"^# %%(?P<markdown> \[markdown\])?(?P<title>.*)$")
METADATA: dict[str, Any] = {
    "jupytext": {"formats": "ipynb,py:percent"},
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def notebook_sources(folder: Path = HERE) -> list[Path]:
    """The walkthroughs of ``folder``: ``NN_*.py`` files (this script excluded)."""
    return sorted(p for p in folder.glob("*.py") if p.name != Path(__file__).name)


def split_cells(text: str) -> list[tuple[str, str]]:
    """``(cell_type, source)`` pairs of a percent-format script, in order."""
    cells: list[tuple[str, list[str]]] = []
    kind, lines = "code", []
    for line in text.splitlines():
        match = _MARKER.match(line)
        if match:
            cells.append((kind, lines))
            kind, lines = ("markdown" if match["markdown"] else "code"), []
        elif kind == "markdown":
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        else:
            lines.append(line)
    cells.append((kind, lines))
    out = []
    for kind, body in cells:
        source = "\n".join(body).strip("\n")
        if source.strip():
            out.append((kind, source))
    return out


def _cell(kind: str, source: str, ids: set[str]) -> dict[str, Any]:
    # Ids from the content, so an unchanged cell keeps its id when others move.
    base = hashlib.sha1(f"{kind}\n{source}".encode()).hexdigest()[:12]
    cell_id, n = base, 1
    while cell_id in ids:
        cell_id, n = f"{base}-{n}", n + 1
    ids.add(cell_id)
    lines = source.splitlines(keepends=True)
    cell: dict[str, Any] = {"cell_type": kind, "id": cell_id, "metadata": {},
                            "source": lines}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def notebook(py_path: Path) -> dict[str, Any]:
    """The nbformat 4 notebook (as a dict) generated from ``py_path``."""
    ids: set[str] = set()
    cells = [_cell(kind, source, ids) for kind, source in split_cells(py_path.read_text())]
    return {"cells": cells, "metadata": METADATA, "nbformat": 4, "nbformat_minor": 5}


def render(py_path: Path) -> str:
    """The ``.ipynb`` text for ``py_path``, as written to disk."""
    return json.dumps(notebook(py_path), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` only compare) every ``.ipynb``; return the exit code."""
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    stale = []
    for py_path in notebook_sources():
        target = py_path.with_suffix(".ipynb")
        text = render(py_path)
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target.name)
        if not check:
            target.write_text(text)
    verb = "stale" if check else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "all notebooks up to date")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
