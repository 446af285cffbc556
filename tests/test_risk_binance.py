"""Leverage risk on the shipped Binance BTCUSDT data (mark prices and funding), and its faces
(figure, report, notebook display)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import backtest as bt  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
LEVERAGE = [1, 2, 3, 5, 10, 20, 50, 100]


def _load(mark: bool) -> bt.Market:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(DATA / "binance_btcusdt_perp_1h.parquet",
                              mark=DATA / "binance_btcusdt_perp_1h_mark.parquet" if mark
                              else None,
                              funding=DATA / "binance_btcusdt_perp_funding.parquet",
                              instrument="binance:BTCUSDT", start="2020-01-01",
                              end="2026-05-17 07:00")


@pytest.fixture(scope="module")
def tables() -> dict[str, bt.RiskResult]:
    # one start every 12 hours since 2020; 1,000 USDT so that 100x stays inside the first
    # tier (100,000 notional); every window holds one position from its start for 30 days
    kw = dict(leverage=LEVERAGE, horizon="30D", starts=12, side=["long", "short"],
              initial_capital=1000.0)
    return {"mark": bt.leverage_risk(_load(True), **kw),
            "last": bt.leverage_risk(_load(False), **kw)}


def test_liquidation_probability_is_zero_at_1x_and_grows_with_leverage(tables) -> None:
    tab = tables["mark"].table
    assert tab.loc[("long", 1), "p_liquidation"] == 0.0
    for side in ("long", "short"):
        p = tab.loc[side, "p_liquidation"].to_numpy()
        assert (np.diff(p) >= 0).all(), p
        assert p[-1] > 0.5                    # 100x rarely survives a month
        assert (tab.loc[side, "p_no_entry"] == 0).all()   # every entry filled
    assert tab["n_windows"].iloc[0] > 4500


def test_a_1x_short_is_liquidated_only_by_a_doubling(tables) -> None:
    # 1x short: liquidated when the mark rises by 1/L - mmr ~ +99.6 % (the Dec 2020 - Jan
    # 2021 rally did that within 30 days); no long at 1x can be (the price would go to ~0)
    r = tables["mark"]
    m = r.market
    w = r.windows
    hit = w[(w["side"] == "short") & (w["leverage"] == 1) & w["liquidated"] & w["complete"]]
    assert len(hit) > 0
    for _, row in hit.iterrows():
        s = m.index.get_loc(row["start"])
        e = m.index.get_loc(row["end"])
        entry = m.open[s + 1]
        assert m.mark_high[s + 1:e + 1].max() / entry > 1.9


def test_last_price_as_mark_liquidates_at_least_as_often(tables) -> None:
    mark, last = tables["mark"].table, tables["last"].table
    assert (last["p_liquidation"] >= mark["p_liquidation"]).all()
    assert (last["p_liquidation"] > mark["p_liquidation"]).any()
    assert tables["last"].market.mark_source == "last"


def test_plot_report_and_html(tables, tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    r = tables["mark"]
    fig = r.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert len(fig.axes[0].lines) == 10          # max_curves of the 16 rows
    path = r.report(tmp_path / "risk.html")
    text = path.read_text()
    assert "p_liquidation" in text and "data:image/png;base64" in text
    assert "<table" in r._repr_html_()
    assert "BTCUSDT" in repr(r)


def test_large_chunks_every_bar_match_across_threads_and_run() -> None:
    # every hourly start, 16 leverages: each chunk holds ~4,000 columns of state (a big
    # allocation); the kernel's borrowed views must not outlive it (a former use-after-free)
    from backtest.simulation.signals import buy_and_hold

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = bt.load_market(DATA / "binance_btcusdt_perp_1h.parquet",
                           mark=DATA / "binance_btcusdt_perp_1h_mark.parquet",
                           funding=DATA / "binance_btcusdt_perp_funding.parquet",
                           instrument="binance:BTCUSDT", start="2020-01-01", end="2020-05-01")
    lev = list(range(1, 17))
    one = bt.leverage_risk(m, leverage=lev, horizon="30D", initial_capital=1000.0, threads=1)
    two = bt.leverage_risk(m, leverage=lev, horizon="30D", initial_capital=1000.0, threads=2)
    assert np.array_equal(one.out, two.out, equal_nan=True)
    for i in (0, 16 * 1000 + 9, one.out.shape[0] - 1):
        g, c = divmod(i, 16)
        sub = m.take(int(one.starts[g]), int(one.ends[g]))
        want = bt.run(sub, entries=buy_and_hold(sub.index), leverage=lev[c],
                      initial_capital=1000.0).stats
        got = one.windows.iloc[i]
        for key in ("final_equity", "max_drawdown", "n_liquidations", "funding_paid",
                    "sharpe"):
            assert got[key] == want[key] or (np.isnan(got[key]) and np.isnan(want[key]))
