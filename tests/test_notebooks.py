"""The walkthroughs in notebooks/ run and say what they show (ARCHITECTURE: "notebooks ...
executed by CI"), and each ``.ipynb`` is what ``python notebooks/sync.py`` makes of its
``.py`` (the ``.py`` is the source; a stale ``.ipynb`` fails here)."""

from __future__ import annotations

import ast
import importlib.util
import json
import warnings
from pathlib import Path
from types import ModuleType

import matplotlib

matplotlib.use("Agg")  # headless; the plotting package never touches pyplot

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
DATA = REPO / "data"
requires_sample_data = pytest.mark.skipif(
    not (DATA / "binance_btcusdt_perp_1h.parquet").exists(),
    reason="the shipped sample data is missing")


def load_sync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notebooks_sync", NOTEBOOKS / "sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SYNC = load_sync()
SOURCES = SYNC.notebook_sources(NOTEBOOKS)


def run_notebook(name: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Execute the code cells of ``notebooks/<name>.py`` in order, from the repository root,
    as Jupyter would: a cell ending in an expression displays its value, and a displayed
    Figure is rendered (PNG). Returns the namespace; ``_displayed`` lists the values shown."""
    from matplotlib.figure import Figure

    from backtest.presentation.plotting import figure_png

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(REPO)
    source = NOTEBOOKS / f"{name}.py"
    namespace: dict = {"__name__": "__main__", "__file__": str(source)}
    displayed: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notebooks' own warnings are theirs to show
        for kind, cell in SYNC.split_cells(source.read_text()):
            if kind != "code":
                continue
            tree = ast.parse(cell)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, str(source), "exec"), namespace)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), str(source), "eval"),
                             namespace)
                if value is not None:
                    displayed.append(value)
                if isinstance(value, Figure):
                    assert figure_png(value, dpi=40).startswith(b"\x89PNG")
    namespace["_displayed"] = displayed
    return namespace


def figures(namespace: dict) -> int:
    from matplotlib.figure import Figure

    return sum(isinstance(v, Figure) for v in namespace["_displayed"])


def test_there_are_walkthroughs_and_the_converter_finds_them():
    assert [p.name for p in SOURCES] == ["01_cross_vs_isolated.py",
                                         "02_perpetual_future_spot.py",
                                         "06_leverage_risk.py"]


@requires_sample_data
def test_cross_vs_isolated_runs_and_shows_the_seed_warning(monkeypatch):
    ns = run_notebook("01_cross_vs_isolated", monkeypatch)
    assert figures(ns) == 4      # isolated, cross, carry trade, carry sweep
    # §1 the crash (docs/examples.md §1): isolated loses BTC's margin, cross everything.
    assert ns["isolated_final"] == pytest.approx(7_500.0)
    assert ns["cross_final"] == pytest.approx(0.0, abs=1e-9)
    assert ns["crash"].loc["ETH pnl"].tolist() == pytest.approx([0.0, 0.0])
    assert ns["runs"]["cross"].stats["ruined"]
    isolated = ns["runs"]["isolated"].trades.set_index("market")
    assert isolated.loc["BTC", "exit_price"] == pytest.approx(90.0)   # bankruptcy price
    assert isolated.loc["ETH", "exit_reason"] == "end"
    assert (ns["runs"]["cross"].trades["exit_reason"] == "liquidation").all()
    # BTC only to 70: cross survives at 10,000 + 250 (80 - 100).
    assert ns["mild"].loc["final equity"].tolist() == pytest.approx([7_500.0, 5_000.0])
    # §2 the grid.
    final = ns["grid_final"]
    assert final[("isolated", 2)] == pytest.approx(8_000.0)
    assert final[("cross", 2)] == pytest.approx(8_000.0)
    assert final[("isolated", 10)] == pytest.approx(5_000.0)
    assert final[("cross", 10)] == pytest.approx(0.0, abs=1e-9)
    # §3 the carry trade: the text's claims.
    stats = ns["carry_stats"]
    assert (stats.loc["isolated", "n_liquidations"] >= 1).all()
    assert (stats.loc["cross", "n_liquidations"] == 0).all()
    assert stats.loc["cross", "final_equity"].round(1).eq(10_709.6).all()
    assert ns["carry"].pnl_by_market.loc["PERP", "funding"] < 0


@requires_sample_data
def test_perpetual_future_spot_runs_and_its_table_says_what_the_text_does(monkeypatch):
    ns = run_notebook("02_perpetual_future_spot", monkeypatch)
    assert figures(ns) == 1      # the equity comparison
    carry = ns["carry"]
    assert carry.loc["exit"].tolist() == ["end", "expiry", "end"]
    funding, interest = carry.loc["funding paid"], carry.loc["interest paid"]
    assert funding["perpetual"] > 0 and interest["perpetual"] == 0
    assert funding["dated future"] == 0 and interest["dated future"] == 0
    assert funding["spot margin"] == 0 and interest["spot margin"] > 0
    assert ns["funding_over_interest"] > 1     # "how much more" the perpetual paid
    # The future settles at the close of the last bar ending at its expiry (08:00 UTC).
    settled = ns["results"]["dated future"].trades.iloc[0]
    expiry_bar = pd.Timestamp("2024-03-29 07:00", tz="UTC")
    assert settled.exit_time == expiry_bar
    assert settled.exit_price == ns["future"].bars.loc[expiry_bar, "close"]
    assert set(ns["results"]) == {"perpetual", "dated future", "spot margin"}
    # The roll (docs/examples.md §4): the numbers quoted in its text.
    trades = ns["rolled"].trades
    assert trades["pnl"].round(2).tolist() == [977.05, 263.59]
    assert trades["entry_price"].tolist() == [100.0, 115.0]
    assert round(ns["roll_final"], 2) == 11_240.64
    close = ns["rl"].close      # 5 of the 18 points are the jump at the roll
    assert [close.iloc[0], close.iloc[3], close.iloc[4], close.iloc[-1]] == [100, 110, 115, 118]


@requires_sample_data
def test_leverage_risk_answers_the_seed_question(monkeypatch):
    ns = run_notebook("06_leverage_risk", monkeypatch)
    assert figures(ns) == 1      # survival, P(liquidation) and growth vs leverage
    compare = ns["compare"]
    assert compare.loc[("long", 1), "mark price"] == 0.0
    assert (compare["difference"] >= 0).all()          # last price as mark: never safer
    assert ns["answer"].startswith("A 10x long on BTCUSDT held 30 days")
    assert f"{compare.loc[('long', 10), 'mark price']:.1%}" in ns["answer"]
    assert ns["safe"].loc["long", "p_liquidation"] < 0.05
    assert ns["versus"]["bootstrap paths"].is_monotonic_increasing


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_ipynb_is_what_sync_generates_from_the_py(source: Path):
    target = source.with_suffix(".ipynb")
    hint = "regenerate it with `python notebooks/sync.py` (the .py is the source)"
    assert target.exists(), f"{target.name} is missing: {hint}."
    stored = json.loads(target.read_text())
    expected = SYNC.notebook(source)
    assert stored["cells"] == expected["cells"], f"{target.name} is stale: {hint}."
    assert stored == expected, f"{target.name}'s metadata differs: {hint}."


def test_every_ipynb_has_its_py():
    orphans = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")
                     if not p.with_suffix(".py").exists())
    assert not orphans, f"notebooks without a .py source: {orphans}"


def test_the_converter_reads_percent_cells():
    text = ("# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n\ny = 2\n\n"
            "# %% [markdown]\n# more\n")
    assert SYNC.split_cells(text) == [("markdown", "# Title\n\ntext"),
                                      ("code", "x = 1\n\n\ny = 2"), ("markdown", "more")]
    cells = [SYNC._cell(k, s, set()) for k, s in SYNC.split_cells(text)]
    assert cells[1]["source"] == ["x = 1\n", "\n", "\n", "y = 2"]
    assert cells[1]["outputs"] == [] and "outputs" not in cells[0]
