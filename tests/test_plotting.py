"""Figures and HTML reports: structure, the liquidation marker, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless; the module itself never touches pyplot

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from backtest.atomic import write_atomic  # noqa: E402
from backtest.data.market import load_market  # noqa: E402
from backtest.instruments.instrument import Instrument  # noqa: E402
from backtest.kernels.stats import STAT_NAMES  # noqa: E402
from backtest.presentation.plotting import figure_png, plot_comparison, plot_result  # noqa: E402
from backtest.presentation.reports import (  # noqa: E402
    write_comparison_report,
    write_result_report,
)
from backtest.simulation.run import run  # noqa: E402

N = 10


def _market(settlement: str = "linear", crash_bar: int | None = 4):
    """Flat 100 bars; on ``crash_bar`` last and mark lows reach 85 (a 10x long liquidates)."""
    ts = pd.date_range("2024-01-01", periods=N, freq="1h", tz="UTC")
    o = np.full(N, 100.0)
    low = o - 1.0
    if crash_bar is not None:
        low[crash_bar] = 85.0
    bars = pd.DataFrame({"timestamp": ts, "open": o, "high": o + 1.0, "low": low, "close": o,
                         "volume": 1.0})
    return load_market(bars, mark=bars.drop(columns="volume"), funding=0,
                       instrument=Instrument.simple(mmr=0.005, settlement=settlement))


def _entries() -> np.ndarray:
    e = np.zeros(N, dtype=bool)
    e[[0, 6]] = True
    return e


@pytest.fixture(scope="module")
def liquidated():
    r = run(_market(), entries=_entries(), leverage=10, size=0.5)
    assert r.stats["n_liquidations"] == 1  # the premise of the marker tests
    return r


@pytest.fixture(scope="module")
def calm():
    return run(_market(crash_bar=None), entries=_entries(), leverage=2, size=0.5)


def _labels(ax) -> list[str]:
    return [c.get_label() for c in ax.collections]


def test_plot_result_has_three_panels_and_a_liquidation_marker(liquidated) -> None:
    fig = plot_result(liquidated)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3  # price, equity, funding (linear: no quote twin axis)
    price = fig.axes[0]
    marker = [c for c in price.collections if c.get_label().startswith("liquidation")]
    assert len(marker) == 1 and marker[0].get_label() == "liquidation (1)"
    # Placed at the liquidation fill: its exit time and (bankruptcy) price.
    trade = liquidated.trades.iloc[0]
    x, y = marker[0].get_offsets()[0]
    when = trade["exit_time"].tz_convert("UTC").tz_localize(None)
    assert y == pytest.approx(trade["exit_price"])
    assert matplotlib.dates.num2date(x).replace(tzinfo=None) == when.to_pydatetime()
    legend = [t.get_text() for t in price.get_legend().get_texts()]
    assert "liquidation (1)" in legend and any("long entry" in t for t in legend)
    assert any(line.get_label().startswith("liquidation price") for line in price.lines)
    assert any("funding" in line.get_label() for line in fig.axes[2].lines)
    assert "USDT" in fig.axes[1].get_ylabel()
    assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_liquidation_marker_without_a_liquidation(calm) -> None:
    fig = plot_result(calm)
    assert not any(lbl.startswith("liquidation") for lbl in _labels(fig.axes[0]))


def test_plot_result_into_given_axes_and_inverse_quote_twin() -> None:
    r = run(_market("inverse"), entries=_entries(), leverage=10, size=0.5, initial_capital=1.0)
    fig = plot_result(r)
    assert len(fig.axes) == 4  # + equity valued in quote (USD) on a twin axis
    assert "BTC" in fig.axes[1].get_ylabel()
    own = Figure()
    ax = own.add_subplot()
    assert plot_result(r, ax=ax) is own and len(own.axes) == 1
    three = Figure()
    axes = three.subplots(3, 1)
    assert plot_result(r, ax=axes, quote_equity=False) is three and len(three.axes) == 3
    with pytest.raises(ValueError, match="three Axes"):
        plot_result(r, ax=[ax, ax])


def test_plot_comparison_and_result_plot_shortcut(liquidated, calm) -> None:
    fig = plot_comparison({"10x": liquidated, "2x": calm}, log=True)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels[0].startswith("10x:") and labels[1].startswith("2x:")
    assert fig.axes[0].get_yscale() == "log"
    assert isinstance(liquidated.plot(), Figure)
    with pytest.raises(ValueError, match="empty"):
        plot_comparison({})


def test_result_report_is_self_contained_and_leaves_no_temp_files(liquidated,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "sub" / "report.html"
    assert write_result_report(liquidated, path) == path
    text = path.read_text(encoding="utf-8")
    for key in STAT_NAMES:
        assert f">{key}<" in text
    assert "data:image/png;base64," in text and "<script" not in text
    assert "liquidation" in text and "mark source" in text and "leverage" in text
    assert os.listdir(path.parent) == ["report.html"]
    assert liquidated.report(str(tmp_path / "again.html")) is liquidated


def test_long_trade_lists_show_both_ends(tmp_path: Path) -> None:
    n = 300
    ts = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    o = 100.0 + np.arange(n) % 7
    c = o + np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    bars = pd.DataFrame({"timestamp": ts, "open": o, "high": np.maximum(o, c) + 1,
                         "low": np.minimum(o, c) - 1, "close": c, "volume": 1.0})
    with pytest.warns(UserWarning, match="mark"):
        m = load_market(bars, funding=0, instrument=Instrument.simple(mmr=0.005))
    step = np.arange(n) % 2 == 0
    r = run(m, entries=step, exits=~step, leverage=2, size=0.5)
    assert len(r.trades) > 100
    write_result_report(r, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"{len(r.trades) - 100} rows omitted" in text


def test_comparison_report(liquidated, calm, tmp_path: Path) -> None:
    path = write_comparison_report({"10x": liquidated, "2x": calm}, tmp_path / "c.html",
                                   title="A <title>", notes="table & notes")
    text = path.read_text(encoding="utf-8")
    assert "A &lt;title&gt;" in text and "table &amp; notes" in text
    # the comparison figure, then per run its figure and its analysis figure
    assert "Run 10x" in text and "Run 2x" in text and text.count("data:image/png") == 5
    assert os.listdir(tmp_path) == ["c.html"]


def test_interrupted_write_keeps_the_old_file_and_no_temp(tmp_path: Path,
                                                          monkeypatch) -> None:
    path = tmp_path / "out.html"
    write_atomic(path, "old")

    def boom(src, dst):  # the rename never happens, e.g. the process is interrupted
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.html"]


def test_legends_go_to_the_corner_with_the_fewest_points():
    from matplotlib import pyplot as plt

    from backtest.presentation.plotting.common import quiet_corner

    fig, ax = plt.subplots()
    x = np.linspace(0.0, 1.0, 50_000)
    ax.plot(x, 1.0 - x)                      # a falling line crowds upper left, lower right
    assert quiet_corner(ax, rows=3) in ("upper right", "lower left")
    ax.scatter([0.05, 0.1, 0.15], [0.02, 0.05, 0.1])   # markers in the lower left outweigh
    assert quiet_corner(ax, rows=3) == "upper right"
    ax.axhline(0.95)                         # axes-coordinate lines are not data: ignored
    assert quiet_corner(ax, rows=3) == "upper right"
    plt.close(fig)
    fig, ax = plt.subplots()
    ax.plot(x, np.full_like(x, 0.02))        # flat along the bottom: upper left is free
    assert quiet_corner(ax, rows=3) == "upper left"
    plt.close(fig)
