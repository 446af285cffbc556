"""The README's quickstart runs as written (ARCHITECTURE: "README quickstart ... executed in
CI"): every ```python block, in order, in one namespace, from the repository root."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_a_quickstart():
    blocks = python_blocks()
    assert len(blocks) >= 3
    assert any("bt.run(" in b for b in blocks) and any("bt.sweep(" in b for b in blocks)


@pytest.mark.skipif(not (REPO / "data" / "binance_btcusdt_perp_1h.parquet").exists(),
                    reason="the shipped sample data is missing")
def test_the_quickstart_runs_and_its_claims_hold(capsys, tmp_path):
    namespace: dict = {"__name__": "__readme__"}
    here = os.getcwd()
    os.chdir(tmp_path)   # from any folder: the README reads the shipped samples; its
    # report("risk.html") lands here, not in the repository
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the README's data warnings are its own
            for block in python_blocks():
                exec(compile(block, str(README), "exec"), namespace)
                if "leverage_risk(" in block:
                    risk = namespace["r"]
                if "s.best(" in block:          # the first sweep, before `s` is reused
                    ranked = namespace["s"].best("sharpe", n=len(namespace["s"]))
                    first_sweep = namespace["s"]
    finally:
        os.chdir(here)
    assert "36200.0" in capsys.readouterr().out          # the calc line's comment
    # The sweep (issue 12): the run's sizing carried over, a survivor ranked first, ruined
    # rows (if any) after every survivor, ruin and liquidations shown beside the metric.
    assert (first_sweep.params["size"] == namespace["careful"]["size"]).all()
    assert list(ranked.columns[:3]) == ["sharpe", "ruined", "n_liquidations"]
    assert not ranked["ruined"].iloc[0]
    flags = ranked["ruined"].to_numpy()
    assert not (flags[:-1] & ~flags[1:]).any()
    # The carry-trade paragraph: isolated liquidates the short perpetual at every leverage
    # tried, cross survives at every leverage with the final equity quoted.
    stats = namespace["s"].stats
    assert (stats.loc["isolated", "n_liquidations"] >= 1).all()
    assert (stats.loc["cross", "n_liquidations"] == 0).all()
    assert stats.loc["cross", "final_equity"].round(1).eq(10_709.6).all()
    assert namespace["r"].pnl_by_market.loc["PERP", "funding"] < 0
    # The leverage-risk paragraph: its numbers are the table's.
    table = risk.table
    p = table["p_liquidation"]
    assert int(table.loc[("long", 10), "n_windows"]) == 55_160
    quoted = {("long", 10): 0.461, ("long", 2): 0.015, ("long", 3): 0.054,
              ("long", 5): 0.185, ("long", 100): 0.951, ("short", 10): 0.550}
    for row, value in quoted.items():
        assert round(float(p.loc[row]), 3) == value, row
