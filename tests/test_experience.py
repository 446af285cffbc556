"""What a new user meets first (issue 12): figures that show, reprs, ``--version``, reports
without local paths, no figure left open by a report loop."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

import backtest as bt  # noqa: E402
from backtest.cli.main import main  # noqa: E402
from backtest.presentation.plotting import figure_png, plot_comparison  # noqa: E402
from backtest.presentation.plotting.common import ShownFigure, log_scale_wanted  # noqa: E402


def _market(close: np.ndarray) -> bt.Market:
    n = len(close)
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    bars = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999,
                         "close": close, "volume": 1.0}, index=index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, funding=0, instrument="binance:BTCUSDT")


@pytest.fixture
def crash() -> tuple[bt.Market, pd.Series]:
    """A rally, then a 60 % crash: 20x long is liquidated, 1x is not."""
    close = np.concatenate([np.linspace(100, 400, 60), np.linspace(400, 160, 20),
                            np.full(20, 160.0)])
    m = _market(close)
    entries = pd.Series(False, index=m.index)
    entries.iloc[0] = True
    return m, entries


def test_version_flag_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"backtest {bt.__version__}"


def test_figures_are_pyplot_managed_and_rendering_closes_them(crash):
    m, entries = crash
    plt.close("all")
    r = bt.run(m, entries=entries, leverage=3, size=0.5)
    fig = r.plot()
    assert isinstance(fig, ShownFigure) and plt.fignum_exists(fig.number)  # plt.show() sees it
    plt.show()                         # headless Agg: a no-op, never an error
    assert figure_png(fig).startswith(b"\x89PNG")
    assert not plt.get_fignums()       # rendered = closed: report loops do not leak
    for _ in range(25):                # more than pyplot's 20-figure warning
        figure_png(r.plot())
    assert not plt.get_fignums()


def test_reports_and_the_demo_loop_leave_no_figure_open(crash, tmp_path):
    m, entries = crash
    plt.close("all")
    runs = {f"{lev}x": bt.run(m, entries=entries, leverage=lev, size=0.5) for lev in (1, 20)}
    for r in runs.values():
        r.report(str(tmp_path / "r.html"))
    bt.presentation.reports.single.write_comparison_report(runs, tmp_path / "c.html")
    assert not plt.get_fignums()


def test_one_log_rule_for_every_equity_axis(crash):
    m, entries = crash
    assert not log_scale_wanted([100.0, 500.0, 900.0])
    assert log_scale_wanted([100.0, 2_000.0]) and log_scale_wanted([10_000.0, 5.0, 0.0])
    calm = bt.run(m, entries=entries, leverage=1, size=0.2)
    drop = _market(np.linspace(100.0, 85.0, len(m.index)))   # -15 %: 20x long liquidated
    wild = bt.run(drop, entries=entries.to_numpy(), leverage=20, size=1.0)
    assert wild.stats["n_liquidations"] == 1
    fig = calm.plot()
    assert fig.axes[1].get_yscale() == "linear"
    plt.close(fig)
    fig = wild.plot()                        # lost ~all: spans far more than 10x
    equity_ax = fig.axes[1]
    assert equity_ax.get_yscale() == "log" and "log scale" in equity_ax.get_ylabel()
    assert any("liquidation (1)" in t.get_text() for t in equity_ax.get_legend().get_texts())
    for ax in fig.axes:                      # units on every axis
        assert "(" in ax.get_ylabel()
    plt.close(fig)
    fig = plot_comparison({"1x": calm, "20x": wild}, normalize=True)
    assert fig.axes[0].get_yscale() == "log"
    plt.close(fig)


def test_results_show_a_formatted_table_in_jupyter(crash):
    m, entries = crash
    r = bt.run(m, entries=entries, leverage=3, size=0.5)
    page = r._repr_html_()
    assert "<table" in page and "total_return" in page and " %" in page and "USDT" in page
    book = {"A": m, "B": m}
    p = bt.run(book, entries={"A": entries, "B": entries}, leverage=3, size=0.2)
    assert isinstance(p, bt.PortfolioResult)
    page = p._repr_html_()
    assert "by market" in page and ">A<" in page and ">B<" in page and "n_liquidations" in page


def test_a_report_names_its_files_not_the_authors_folders(tmp_path):
    m = bt.sample_market(start="2024-01-01", end="2024-01-08")
    r = bt.run(m, entries=m.index == m.index[0], leverage=2, size=0.1)
    text = r.report(str(tmp_path / "r.html")) and (tmp_path / "r.html").read_text()
    folder = str(bt.sample_path("binance_btcusdt_perp_1h").parent)
    assert folder not in text and "binance_btcusdt_perp_1h.parquet" in text


def test_sweep_figures_state_their_units(crash):
    m, entries = crash
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = bt.sweep(m, entries=entries, leverage=[1, 2, 5], stop_loss=[None, 0.05],
                     size=0.2, progress=False)
    fig = s.leverage_curve("total_return")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("leverage (×)")
    assert ax.get_ylabel() == "total_return (fraction; 1 = +100 %)"
    plt.close(fig)
    fig = s.heatmap("final_equity")
    assert fig.axes[0].get_ylabel() == "stop_loss (fraction of entry)"
    plt.close(fig)


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["data", "check", "--help"],
                                  ["run", "--help"], ["sweep", "--help"]])
def test_cli_help_points_inside_the_repository(argv, capsys):
    main(argv)
    text = capsys.readouterr().out
    assert "SPEC" not in text and "../shared" not in text


def test_python_310_gets_tomli():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    deps = project["project"]["dependencies"]
    assert any(d.replace(" ", "").startswith("tomli") and "python_version<'3.11'" in
               d.replace(" ", "").replace('"', "'") for d in deps), deps
