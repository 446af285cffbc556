"""Sweep progress: a bar appears only once a sweep has run PROGRESS_AFTER_S seconds, never
for a quick one, never with progress=False; best(n) takes a whole number >= 1."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_sweep import make_market, random_signals

from backtest.sweeps import sweep
from backtest.sweeps.executor import PROGRESS_AFTER_S, progress_bar


def test_progress_bar_waits_before_it_shows():
    assert progress_bar(False, 100) is None
    assert progress_bar(True, 0) is None
    bar = progress_bar(True, 100)
    try:
        assert bar.delay == PROGRESS_AFTER_S == 2.0 and bar.total == 100
    finally:
        bar.close()


def test_a_quick_sweep_prints_no_bar(capsys):
    market = make_market(n=200, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = sweep(market, **random_signals(market.n_bars, 3), leverage=[1, 2, 3])
    assert len(s) == 3
    assert "sweep" not in capsys.readouterr().err


@pytest.mark.parametrize("n", [0, -1, 1.5, "2", True, np.float64(3.0)])
def test_best_refuses_a_count_that_is_not_a_positive_whole_number(n):
    market = make_market(n=120, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = sweep(market, **random_signals(market.n_bars, 4), leverage=[1, 2], progress=False)
    with pytest.raises(ValueError, match=r"whole number >= 1.*Fix: e\.g\. best"):
        s.best("sharpe", n=n)
