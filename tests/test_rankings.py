"""Ruin never ranks well (issue 12, item 4): Sharpe and Sortino on floored log returns, and
``best()`` puts ruined rows last and shows ``ruined``/``n_liquidations`` beside the metric."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import backtest as bt
from backtest.results.metrics import bar_returns, compute_stats

HOUR_NS = 3600 * 10**9


def _stats(equity: list[float]) -> pd.Series:
    trades = pd.DataFrame({"pnl": [], "exit_reason": [], "fees": [], "interest": []})
    return compute_stats(np.array(equity), trades, 10_000.0, HOUR_NS, exposed_bars=0,
                         n_ambiguous=0, funding_paid=0.0, min_liq_distance=np.nan,
                         ruined=equity[-1] <= 1e-5)


def test_a_ruining_bar_is_one_return_of_ln_1e9_and_makes_the_sharpe_negative():
    # 10x with no stop, the README's old sweep: grows 278-fold, then loses it all in a bar.
    up = list(10_000.0 * np.geomspace(1.0, 278.0, 2_000)[1:])
    equity = up + [0.0, 0.0, 0.0]
    r = bar_returns(np.array(equity), 10_000.0)
    assert r[len(up)] == pytest.approx(math.log(1e-9 * 10_000.0 / up[-1]))
    assert r[len(up) + 1:].tolist() == [0.0, 0.0]
    assert r.sum() == pytest.approx(math.log(1e-9))       # ln(x_last / initial)
    s = _stats(equity)
    assert s["sharpe"] < 0 and s["sortino"] < 0
    # Simple returns would have called this good: mean(+) and one -100 % bar.
    prev = np.array([10_000.0] + equity[:-1])
    simple = (np.array(equity) - prev)[prev > 0] / prev[prev > 0]
    assert simple.mean() > 0


def test_log_returns_of_a_steady_curve_are_its_growth_rate():
    equity = 10_000.0 * 1.001 ** np.arange(1, 101)
    assert bar_returns(equity, 10_000.0) == pytest.approx(np.full(100, math.log(1.001)))
    assert math.isnan(_stats([10_000.0] * 50)["sharpe"])      # flat: undefined


@pytest.fixture(scope="module")
def market():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.sample_market(start="2020-01-01", end="2022-12-31")


def _ma_signals(m):
    close = m.bars["close"]
    fast, slow = close.rolling(24).mean(), close.rolling(168).mean()
    return ((fast > slow) & (fast.shift() <= slow.shift()),
            (fast < slow) & (fast.shift() >= slow.shift()))


def test_best_never_puts_a_ruined_row_first_and_shows_ruin(market):
    entries, exits = _ma_signals(market)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The README's first sweep, with the defaults it used (whole wallet as margin).
        s = bt.sweep(market, entries=entries, exits=exits, leverage=[1, 2, 5, 10, 20, 50],
                     stop_loss=[None, 0.01, 0.02, 0.05], margin_mode=["isolated", "cross"],
                     progress=False)
    ruined = s.stats["ruined"]
    assert ruined.any(), "the fixture must hold ruined rows to test anything"
    assert (s.stats.loc[ruined, "sharpe"].dropna() < 0).all()
    for metric in ("sharpe", "sortino", "total_return", "calmar", "cagr"):
        ranked = s.best(metric, n=len(s))
        assert list(ranked.columns[:3]) == [metric, "ruined", "n_liquidations"]
        assert not ranked["ruined"].iloc[0]
        flags = ranked["ruined"].to_numpy()
        assert not (flags[:-1] & ~flags[1:]).any(), f"{metric}: a survivor after a ruin"
    top = s.best("sharpe", n=3)
    text = repr(top)
    assert "ruined" in text.splitlines()[0] and "n_liquidations" in text.splitlines()[0]
    # include_ruined=True ranks by the metric alone (and log returns keep ruin low anyway).
    anyway = s.best("total_return", n=len(s), include_ruined=True)
    assert anyway["total_return"].is_monotonic_decreasing


def test_the_readme_sweep_ranks_a_survivor_first(market):
    entries, exits = _ma_signals(market)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = bt.sweep(market, entries=entries, exits=exits, size=0.1,
                     leverage=[1, 2, 3, 5, 10, 20, 50], stop_loss=[None, 0.02, 0.05],
                     margin_mode=["isolated", "cross"], progress=False)
    best = s.best("sharpe", n=3)
    assert not best["ruined"].any()
    assert (best["sharpe"].to_numpy()[:-1] >= best["sharpe"].to_numpy()[1:]).all()
    assert "ruined" in repr(s)
