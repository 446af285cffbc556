"""Portfolio and sweep presentation: plot_portfolio, plot_sweep and their HTML reports."""

from __future__ import annotations

import html
import os
import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless; the module itself never touches pyplot

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import backtest as bt  # noqa: E402
from backtest.kernels.stats import STAT_NAMES  # noqa: E402
from backtest.presentation import plotting  # noqa: E402
from backtest.presentation import reports as report  # noqa: E402
from backtest.presentation.reports.html import money as _money  # noqa: E402
from backtest.presentation.tables import format_value  # noqa: E402

INST = bt.Instrument.simple(mmr=0.005)


def _market(close, low, high):
    ts = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC")
    bars = pd.DataFrame({"open": close, "high": high, "low": low, "close": close,
                         "volume": 1.0}, index=ts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mark := last
        return bt.load_market(bars, funding=0, instrument=INST)


def _crash_markets():
    """BTC 100 -> a wick to 60 inside bar 2 -> recovers to 86; ETH flat at 10 (12 bars)."""
    btc = np.array([100, 100, 80, 80, 80, 82, 84, 85, 85, 86, 86, 86.0])
    btc_low = btc - 0.5
    btc_low[2] = 60.0
    eth = np.full(12, 10.0)
    return {"BTC": _market(btc, btc_low, btc + 0.5), "ETH": _market(eth, eth - 0.05, eth + 0.05)}


def _run(mode: str):
    entry = np.zeros(12, bool)
    entry[[0, 5]] = True
    return bt.run(_crash_markets(), entries={"BTC": entry, "ETH": entry}, leverage=10,
                  size=25_000, size_type="notional", margin_mode=mode)


@pytest.fixture(scope="module")
def isolated():
    r = _run("isolated")
    # The premise: BTC alone is liquidated (its wick), ETH survives and is re-entered.
    assert list(r.pnl_by_market["n_liquidations"]) == [1, 0]
    return r


@pytest.fixture(scope="module")
def cross():
    r = _run("cross")
    # The premise: BTC's loss takes the whole wallet, so ETH is liquidated with it.
    assert list(r.pnl_by_market["n_liquidations"]) == [1, 1] and r.stats["ruined"]
    return r


@pytest.fixture(scope="module")
def three_markets():
    rng = np.random.default_rng(3)
    n = 150
    markets, entries, exits = {}, {}, {}
    for name, base in (("BTC", 100.0), ("ETH", 30.0), ("SOL", 7.0)):
        close = base * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        markets[name] = _market(close, close * 0.99, close * 1.01)
        entries[name] = rng.random(n) < 0.05
        exits[name] = rng.random(n) < 0.05
    return bt.run(markets, entries=entries, exits=exits, leverage=5, size=2_000,
                  size_type="notional", margin_mode="cross", fees=0.0005)


def _labels(ax) -> list[str]:
    return [line.get_label() for line in ax.lines if not line.get_label().startswith("_")]


# --- plot_portfolio -----------------------------------------------------------------------

def test_plot_portfolio_has_a_panel_each_and_a_line_per_market(three_markets) -> None:
    fig = plotting.plot_portfolio(three_markets)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == len(plotting.PORTFOLIO_PANELS) == 6
    equity, price, pnl, margin, position, funding = fig.axes
    names = ["BTC", "ETH", "SOL"]
    assert _labels(equity)[:2] == ["equity (USDT): wallet + Σ uPnL at mark",
                                   "wallet (cash: realised PnL, fees, funding)"]
    # Price: one rebased line per market, each starting at 100.
    lines = [line for line in price.lines if line.get_label().split(" ")[0] in names]
    assert [line.get_label().split(" ")[0] for line in lines] == names
    for line in lines:
        assert line.get_ydata()[0] == pytest.approx(100.0)
    assert [lbl.split(":")[0] for lbl in _labels(funding)] == names
    assert [t.get_text() for t in position.get_yticklabels()] == names
    assert len(margin.collections) >= 3  # one stacked area per market
    assert figure_is_png(fig)


def figure_is_png(fig: Figure) -> bool:
    return plotting.figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_pnl_panel_lines_add_up_to_equity_minus_capital(three_markets) -> None:
    r = three_markets
    fig = plotting.plot_portfolio(r, panels=["pnl"])
    ax = fig.axes[0]
    by_market = [line for line in ax.lines if line.get_label().split(":")[0] in r.names]
    assert len(by_market) == 3
    opened = next(line for line in ax.lines if line.get_label().startswith("open positions"))
    total = sum(np.asarray(line.get_ydata(), float) for line in by_market + [opened])
    capital = r.params["initial_capital"]
    np.testing.assert_allclose(total, r.equity.to_numpy() - capital, atol=1e-6)
    # Each market's line ends at its realised PnL (pnl_by_market).
    for line in by_market:
        name = line.get_label().split(":")[0]
        assert line.get_ydata()[-1] == pytest.approx(r.pnl_by_market.loc[name, "pnl"])


def test_liquidations_are_marked_per_market(isolated, cross) -> None:
    for r, liquidated in ((isolated, ["BTC"]), (cross, ["BTC", "ETH"])):
        fig = plotting.plot_portfolio(r, panels=("equity", "position"))
        equity, position = fig.axes
        marks = [c.get_label() for c in equity.collections if "liquidated" in c.get_label()]
        assert marks == [f"{name} liquidated (1)" for name in liquidated]
        legend = [t.get_text() for t in position.get_legend().get_texts()]
        assert "liquidation" in legend and "long" in legend
    # Isolated: each position has its own liquidation price (dashed); cross has none.
    price_iso = plotting.plot_portfolio(isolated, panels=["price"]).axes[0]
    price_cross = plotting.plot_portfolio(cross, panels=["price"]).axes[0]
    assert any(line.get_linestyle() == "--" and len(line.get_xdata())
               for line in price_iso.lines)
    assert not any(line.get_linestyle() == "--" and len(line.get_xdata())
                   for line in price_cross.lines)


def test_plot_portfolio_into_given_axes_and_bad_panels(isolated) -> None:
    own = Figure()
    axes = own.subplots(2, 1)
    assert plotting.plot_portfolio(isolated, ax=axes, panels=("funding", "margin")) is own
    assert "funding" in axes[0].get_ylabel() and "margin" in axes[1].get_ylabel()
    with pytest.raises(ValueError, match="need as many Axes"):
        plotting.plot_portfolio(isolated, ax=axes, panels=("funding",))
    with pytest.raises(ValueError, match="subset of"):
        plotting.plot_portfolio(isolated, panels=("equity", "pnL"))


# --- plot_sweep ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sweep_market():
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    return _market(close, close * 0.99, close * 1.01)


@pytest.fixture(scope="module")
def entries(sweep_market):
    return np.random.default_rng(8).random(sweep_market.n_bars) < 0.05


@pytest.fixture(scope="module")
def grid(sweep_market, entries):
    return bt.sweep(sweep_market, entries=entries, leverage=[1, 2, 5], stop_loss=[None, 0.02],
                    size=0.5, progress=False)


def test_plot_sweep_picks_heatmap_leverage_curve_or_bars(grid, sweep_market, entries) -> None:
    assert plotting.sweep_figure_kind(grid) == ("heatmap", ["leverage", "stop_loss"])
    fig = plotting.plot_sweep(grid, ["total_return", "sharpe"])
    assert isinstance(fig, Figure)
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == 2 and heat[0].get_xlabel() == "leverage (×)"
    assert heat[0].images[0].get_array().shape == (2, 3)  # stop_loss rows x leverage columns

    lev = bt.sweep(sweep_market, entries=entries, leverage=[1, 2, 5], progress=False)
    assert plotting.sweep_figure_kind(lev) == ("leverage", ["leverage"])
    ax = plotting.plot_sweep(lev, ["total_return"]).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), lev.stats["total_return"].to_numpy())

    stops = bt.sweep(sweep_market, entries=entries, stop_loss=[None, 0.01, 0.02],
                     progress=False)
    assert plotting.sweep_figure_kind(stops) == ("bar", ["stop_loss"])
    ax = plotting.plot_sweep(stops, ["total_return"]).axes[0]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, stops.stats["total_return"].to_numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["None", "0.01", "0.02"]
    with pytest.raises(ValueError, match="two numeric levels"):
        plotting.plot_sweep(stops, kind="heatmap")

    single = bt.sweep(sweep_market, entries=entries, progress=False)
    assert plotting.sweep_figure_kind(single) == (None, [])
    with pytest.raises(ValueError, match="nothing was swept"):
        plotting.plot_sweep(single)


# --- reports ------------------------------------------------------------------------------

def _text(path: Path) -> str:
    return html.unescape(path.read_text(encoding="utf-8"))


def test_portfolio_report_is_complete_and_atomic(isolated, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "portfolio.html"
    assert report.write_portfolio_report(isolated, path) == path
    assert os.listdir(path.parent) == ["portfolio.html"]  # no temporary file left
    raw = path.read_text(encoding="utf-8")
    assert raw.startswith("<!DOCTYPE html>") and raw.rstrip().endswith("</html>")
    assert raw.count("data:image/png;base64,") == 2 and "<script" not in raw  # + analysis
    text = _text(path)
    for key in STAT_NAMES:
        assert f">{key}<" in text
    # pnl_by_market: one row per market and a total, amounts as _money shows them.
    pnl = isolated.pnl_by_market
    for name in ("BTC", "ETH"):
        row = (f"<td class='l'>{name}</td><td class=''>{_money(pnl.loc[name, 'pnl'])}</td>")
        assert row in text
    assert f"<td class='l'>total</td><td class=''>{_money(pnl['pnl'].sum())}</td>" in text
    assert "<th class='l'>market</th>" in text  # trades carry their market
    assert f"{len(isolated.trades)} trades." in text
    assert "Events by market and kind" in text and "isolated margin:" in text
    data = text.split("<h2>Data</h2>")[1]     # one data section per market
    assert data.count("<h3>") == 2 and "<h3>BTC</h3>" in data and "<h3>ETH</h3>" in data
    # The liquidation is in the trades table with its market.
    assert re.search(r"<td class='l'>BTC</td>(?:(?!</tr>).)*<td class='l'>liquidation</td>",
                     text)


def test_cross_portfolio_report_names_the_shared_wallet(cross, tmp_path: Path) -> None:
    text = _text(report.write_portfolio_report(cross, tmp_path / "c.html", title="X <&>"))
    assert "<title>X <&></title>" in text
    assert "cross margin: one wallet backs every position" in text
    assert "signal_after_ruin" in text  # the simulation's events, by market


def _table_rows(text: str, heading: str) -> int:
    section = text.split(f"<h2>{heading}</h2>")[1].split("<h2>")[0]
    return section.count("<tr>") - 1  # minus the header row


def test_sweep_report_contents(grid, tmp_path: Path) -> None:
    path = report.write_sweep_report(grid, tmp_path / "sweep.html")
    assert os.listdir(tmp_path) == ["sweep.html"]
    text = _text(path)
    assert text.count("data:image/png;base64,") == 1
    assert "over stop_loss (rows) × leverage (columns)" in text
    assert "All 6 combinations." in text and _table_rows(text, "All combinations") == 6
    for key in STAT_NAMES:
        assert f">{key}<" in text
    for metric in ("sharpe", "total_return", "calmar", "max_drawdown"):
        assert f"<h3>By {metric}" in text
    best = grid.best("sharpe").iloc[0]
    assert format_value("total_return", best["total_return"]) in text   # one formatter
    # Levels and the parameters that were fixed (size was set, margin_mode default).
    assert "<td class='l'>None, 0.02</td>" in text
    assert re.search(r"<td class='l'>size</td><td class='l'>0.5</td><td class='l'>set</td>",
                     text)
    assert re.search(r"<td class='l'>margin_mode</td><td class='l'>isolated</td>"
                     r"<td class='l'>default</td>", text)
    fixed = text.split("<h2>Fixed parameters</h2>")[1].split("<h2>")[0]
    assert ">leverage<" not in fixed and ">stop_loss<" not in fixed


def test_sweep_report_caps_the_rows_with_a_note(grid, sweep_market, entries,
                                                tmp_path: Path) -> None:
    text = _text(report.write_sweep_report(grid, tmp_path / "capped.html", max_rows=4))
    assert "Showing the first 4 of 6 combinations" in text and "2 rows not shown" in text
    assert _table_rows(text, "All combinations") == 4
    big = bt.sweep(sweep_market, entries=entries, leverage=list(np.linspace(1, 20, 251)),
                   stop_loss=[None, 0.02], progress=False)
    assert len(big) == 502
    text = _text(report.write_sweep_report(big, tmp_path / "big.html"))
    assert "Showing the first 500 of 502 combinations" in text
    assert _table_rows(text, "All combinations") == 500


def test_sweep_report_describes_every_market_of_a_portfolio_sweep(tmp_path: Path) -> None:
    # A portfolio sweep's `market` is a dict name -> Market; the stats are the same shape.
    entry = np.zeros(12, bool)
    entry[0] = True
    s = bt.sweep(_crash_markets(), entries={"BTC": entry, "ETH": entry}, leverage=[1, 2],
                 progress=False)
    assert s.report(tmp_path / "p.html") is s
    text = _text(tmp_path / "p.html")
    assert "BTC + ETH — sweep of 2 combinations" in text
    assert "<h3>BTC</h3>" in text and "<h3>ETH</h3>" in text
    assert "over 12 bars of BTC, ETH" in text


def test_sweep_report_of_a_single_combination(sweep_market, entries, tmp_path: Path) -> None:
    single = bt.sweep(sweep_market, entries=entries, progress=False)
    text = _text(report.write_sweep_report(single, tmp_path / "one.html"))
    assert "sweep of 1 combination" in text and "Nothing was swept" in text
    assert "data:image/png" not in text and "All 1 combination." in text


def test_result_methods_draw_and_write(isolated, grid, tmp_path: Path) -> None:
    assert len(isolated.plot(panels=["equity", "pnl"]).axes) == 2
    assert isolated.report(tmp_path / "r.html") is isolated
    same = report.write_portfolio_report(isolated, tmp_path / "same.html")
    assert _text(tmp_path / "r.html") == _text(same)
    assert len(grid.plot(["total_return"]).axes) >= 1
    assert grid.report(tmp_path / "s.html") is grid and (tmp_path / "s.html").stat().st_size
