"""The demo's figure worker (presentation.render_pool): the same PNG bytes as drawing here,
a dead or disabled worker falls back to drawing here, and nothing is left behind."""

from __future__ import annotations

import glob
import os
import tempfile

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import backtest as bt  # noqa: E402
from backtest.checks import usable_cpus  # noqa: E402
from backtest.cli.demo import result_png  # noqa: E402
from backtest.presentation import render_pool as rp  # noqa: E402


@pytest.fixture(scope="module")
def result():
    idx = pd.date_range("2024-01-01", periods=400, freq="h", tz="UTC")
    c = 100 + np.cumsum(np.random.default_rng(2).normal(0, 1, 400))
    bars = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c}, index=idx)
    m = bt.load_market(bars, funding=0.0, instrument=bt.Instrument.simple())
    e = np.zeros(400, bool)
    e[::40] = True
    return bt.run(m, entries=e, leverage=3)


def _leftovers() -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), "backtest-render-*"))


@pytest.mark.skipif(usable_cpus() < 2, reason="the worker needs 2 CPUs")
def test_the_worker_draws_the_same_bytes(result):
    before = set(_leftovers())
    with rp.RenderPool() as pool:
        assert pool.parallel
        [pending] = pool.render([(result_png, (result,))])
        assert pool._task_file is not None          # handed to the worker, not drawn here
        assert pending.result() == result_png(result)
    assert set(_leftovers()) == before


@pytest.mark.skipif(usable_cpus() < 2, reason="the worker needs 2 CPUs")
def test_a_dead_worker_means_drawing_here(result):
    with rp.RenderPool() as pool:
        pool._proc.kill()
        pool._proc.wait()
        pending = pool.render([(result_png, (result,))])
        assert [p.result() for p in pending] == [result_png(result)]


@pytest.mark.skipif(usable_cpus() < 2, reason="the worker needs 2 CPUs")
def test_a_worker_dying_mid_task_means_drawing_here(result, monkeypatch):
    with rp.RenderPool() as pool:
        [pending] = pool.render([(result_png, (result,))])
        pool._proc.kill()
        assert pending.result() == result_png(result)


def test_switched_off_it_starts_nothing(result, monkeypatch):
    monkeypatch.setenv("BACKTEST_RENDER_WORKER", "0")
    with rp.RenderPool() as pool:
        assert not pool.parallel
        [pending] = pool.render([(result_png, (result,))])
        assert pending.result() == result_png(result)
