"""``backtest demo`` end to end on the shipped sample data (about 5-20 s; runs in CI)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from backtest.cli.demo import FILES, LEVERAGES, data_dir, run_demo  # noqa: E402
from backtest.errors import DataError  # noqa: E402

requires_sample_data = pytest.mark.skipif(
    not all((data_dir() / f).is_file() for f in FILES.values()),
    reason=f"sample data absent from {data_dir()}")


@requires_sample_data
def test_demo_prints_the_table_and_writes_the_files(tmp_path: Path) -> None:
    text = run_demo(tmp_path)
    for lev in LEVERAGES:
        assert re.search(rf"^\s*{lev}x\s+[+-]\d", text, flags=re.M), f"no {lev}x row"
    for column in ("total return", "CAGR", "max drawdown", "Sharpe", "liquidations", "stops",
                   "funding paid (USDT)", "fees paid (USDT)", "final equity (USDT)"):
        assert column in text
    assert re.search(r"wicks: in [\d,]+ of [\d,]+ bars", text)
    # Ruin never looks good (issue 12): Sharpe on log returns falls with the leverage here,
    # so the 25x run (-99.97 %, 76 liquidations) ranks below the 1x run (+5.96 %).
    sharpe = {}
    for lev in LEVERAGES:
        row = re.search(rf"^\s*{lev}x\s+(.*)$", text, flags=re.M).group(1).split()
        sharpe[lev] = float(row[6])     # total return, CAGR, max DD take two cells each
    assert sharpe[1] > 0 > sharpe[25]
    assert sorted(sharpe, key=sharpe.get, reverse=True) == list(LEVERAGES)
    expected = {f"result_{lev}x.png" for lev in LEVERAGES} | {"comparison.png", "report.html"}
    assert set(os.listdir(tmp_path)) == expected  # and no temporary files left behind
    for name in expected:
        assert (tmp_path / name).stat().st_size > 1000
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert all(f"Run {lev}x" in report for lev in LEVERAGES)


def test_demo_without_sample_data_says_where_it_is_expected(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="expected in .*nowhere"):
        run_demo(tmp_path / "out", data=missing)
    assert not (tmp_path / "out").exists()
