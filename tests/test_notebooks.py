"""The walkthroughs in notebooks/ run as Jupyter runs them and say what they show.

- Each ``.ipynb`` is what jupytext makes of its ``.py`` (percent format; the ``.py`` is the
  source: ``jupytext --to ipynb notebooks/NN_name.py``); a stale ``.ipynb`` fails here.
- Every notebook is executed with nbclient **from its own folder** (as Jupyter and
  ``jupyter nbconvert --execute`` do) and must contain image outputs: its figures display
  inline without ``%matplotlib inline``. Skipped when nbclient/ipykernel are absent
  (``pip install -e '.[dev]'`` has them; CI installs them).
- The numbers a notebook's text quotes are asserted from an in-process run of its code
  cells, also from ``notebooks/``.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
# Figures each notebook shows (display_data / execute_result with image/png).
MIN_IMAGES = {"01_quickstart": 2, "02_leverage_sweep": 3, "03_mark_vs_last": 1,
              "04_cross_vs_isolated": 4, "05_perpetual_future_spot": 1,
              "06_leverage_risk": 1}


def code_cells(source: Path) -> list[str]:
    """The code cells of a jupytext percent-format ``.py`` (``# %%`` markers)."""
    cells, kind, lines = [], None, []
    for line in source.read_text().splitlines() + ["# %%"]:
        if line.startswith("# %%"):
            if kind == "code" and "\n".join(lines).strip():
                cells.append("\n".join(lines).strip("\n"))
            kind = "markdown" if "[markdown]" in line else "code"
            lines = []
        else:
            lines.append(line)
    return cells


def run_in_process(name: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Execute the code cells of ``notebooks/<name>.py`` in order from ``notebooks/``;
    a cell ending in an expression "displays" it (kept in ``_displayed``)."""
    from matplotlib import pyplot as plt

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(NOTEBOOKS)
    source = NOTEBOOKS / f"{name}.py"
    namespace: dict = {"__name__": "__main__"}
    displayed: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notebooks' own warnings are theirs to show
        for cell in code_cells(source):
            tree = ast.parse(cell)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, str(source), "exec"), namespace)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), str(source), "eval"),
                             namespace)
                if value is not None:
                    displayed.append(value)
    plt.close("all")
    namespace["_displayed"] = displayed
    return namespace


def test_six_walkthroughs_numbered():
    stems = [p.stem for p in SOURCES]
    assert stems == list(MIN_IMAGES), stems
    assert not (NOTEBOOKS / "sync.py").exists(), "jupytext pairs the notebooks now"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_ipynb_is_what_jupytext_makes_of_the_py(source: Path):
    jupytext = pytest.importorskip("jupytext")
    target = source.with_suffix(".ipynb")
    hint = f"regenerate it with `jupytext --to ipynb {source.relative_to(REPO)}`"
    assert target.exists(), f"{target.name} is missing: {hint}."
    stored = json.loads(target.read_text())
    expected = jupytext.read(source)
    got = [(c["cell_type"], "".join(c["source"])) for c in stored["cells"]]
    want = [(c.cell_type, c.source) for c in expected.cells]
    assert got == want, f"{target.name} is stale: {hint}."
    assert all(not c.get("outputs") for c in stored["cells"]), "store notebooks unexecuted"


def test_every_ipynb_has_its_py():
    orphans = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")
                     if not p.with_suffix(".py").exists())
    assert not orphans, f"notebooks without a .py source: {orphans}"


@pytest.mark.parametrize("path", [*SOURCES, REPO / "README.md"], ids=lambda p: p.name)
def test_references_resolve_inside_the_repository(path: Path):
    text = path.read_text()
    assert "../shared" not in text and not re.search(r"SPEC §", text)
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (path.parent / target).resolve().exists(), f"{path.name}: {target} is missing"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_notebook_executes_from_its_folder_with_inline_figures(source: Path, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    import nbformat

    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= MIN_IMAGES.get(source.stem, 1), (
        f"{source.name}: {len(images)} inline images")
    assert not [o for o in outputs if o.get("data", {}).get("text/plain", "").startswith(
        "<Figure size") and "image/png" not in o["data"]], "a figure shown as text"


def figures(namespace: dict) -> int:
    from matplotlib.figure import Figure

    return sum(isinstance(v, Figure) for v in namespace["_displayed"])


def test_quickstart_answers_its_question(monkeypatch):
    ns = run_in_process("01_quickstart", monkeypatch)
    r = ns["r"]
    assert r.params["leverage"] == 3 and r.params["size"] == 0.1
    assert r.stats["n_liquidations"] == 0 and r.stats["n_stops"] > 0
    assert ns["report_path"].stat().st_size > 10_000
    assert figures(ns) == 2                      # the run, the analysis
    assert ns["r"].drawdown_periods(1)["depth"].iloc[0] == pytest.approx(
        ns["max_drawdown"])                      # the deepest period is the max drawdown


def test_leverage_sweep_shows_what_the_best_row_hides(monkeypatch):
    ns = run_in_process("02_leverage_sweep", monkeypatch)
    by_return, by_sharpe = ns["by_return"], ns["by_sharpe"]
    assert not by_return["ruined"].any() and not by_sharpe["ruined"].any()
    assert by_sharpe.index[0] != by_return.index[0]
    lev = list(by_sharpe.index.names).index("leverage")
    assert by_sharpe.index[0][lev] < by_return.index[0][lev]    # "a far lower leverage"
    assert (ns["n_liquidated"], ns["n_ruined"]) == (7, 1)          # the answer's numbers
    assert round(by_return["total_return"].iloc[0], 2) == 0.25
    assert round(by_return["max_drawdown"].iloc[0], 2) == 0.42
    lev = ns["s"].stats.index.get_level_values("leverage")
    assert (ns["s"].stats["total_return"][lev >= 10] < -0.8).all()   # "from 10x up"
    assert ns["best_run"].stats["total_return"] == pytest.approx(
        by_return["total_return"].iloc[0])
    assert figures(ns) == 3


def test_mark_vs_last_finds_the_wrongly_liquidated_leverages(monkeypatch):
    ns = run_in_process("03_mark_vs_last", monkeypatch)
    table = ns["table"]
    assert ns["wrongly"] == ["6x", "7x"]
    assert (table.loc[["8x", "10x"], "liquidated (mark)"] == 1).all()
    assert (table.loc[["3x", "4x", "5x"], "liquidated (last only)"] == 0).all()
    assert ns["m"].low[ns["i"]] == 40_888.89
    assert round(ns["m"].mark_low[ns["i"]], 2) == 43_403.66


def test_cross_vs_isolated_runs_and_shows_the_seed_warning(monkeypatch):
    ns = run_in_process("04_cross_vs_isolated", monkeypatch)
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


def test_perpetual_future_spot_runs_and_its_table_says_what_the_text_does(monkeypatch):
    ns = run_in_process("05_perpetual_future_spot", monkeypatch)
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


def test_leverage_risk_answers_the_seed_question(monkeypatch):
    ns = run_in_process("06_leverage_risk", monkeypatch)
    assert figures(ns) == 1      # survival, P(liquidation) and growth vs leverage
    compare = ns["compare"]
    assert compare.loc[("long", 1), "mark price"] == 0.0
    assert (compare["difference"] >= 0).all()          # last price as mark: never safer
    assert ns["answer"].startswith("A 10x long on BTCUSDT held 30 days")
    assert f"{compare.loc[('long', 10), 'mark price']:.1%}" in ns["answer"]
    assert ns["safe"].loc["long", "p_liquidation"] < 0.05
    assert ns["versus"]["bootstrap paths"].is_monotonic_increasing
