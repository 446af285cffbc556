"""The wheel carries the sample data (issue 12, item 3): ``pip install .`` (non-editable)
can run ``backtest demo`` from any folder. The full install-and-run is a step of
``.ci/run``; here the wheel's file list is checked (a few seconds, no network)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from backtest.data.samples import SAMPLES

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_sample_file(tmp_path: Path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel", reason="building a wheel offline needs the wheel package")
    # Built from a copy: setuptools' build/ folder would otherwise land in the checkout.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".ci", "build", "*.egg-info", "__pycache__", "out", "tests", "benchmarks"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("backtest-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for file, _ in SAMPLES.values():
        assert f"backtest/data/sample_files/{file}" in names
    assert "backtest/data/samples.py" in names
    assert not any(n.startswith(("tests/", "notebooks/")) for n in names)
