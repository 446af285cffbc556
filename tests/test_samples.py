"""The shipped sample data is found from anywhere (issue 12, items 1 and 3)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import backtest as bt
from backtest.data.samples import SAMPLES


def test_every_sample_is_package_data_and_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, (file, _) in SAMPLES.items():
        path = bt.sample_path(name)
        assert path.is_file() and path.name == file
        assert Path(bt.__file__).parent in path.parents     # inside the package
        assert bt.sample_path(file) == path                  # ".parquet" accepted
    assert set(bt.list_samples()) == set(SAMPLES)


def test_an_unknown_sample_names_the_close_one():
    with pytest.raises(KeyError, match="binance_btcusdt_perp_1h"):
        bt.sample_path("binance_btcusdt_perp_1hh")


def test_sample_market_is_the_readme_market(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = bt.sample_market(start="2024-01-01", end="2024-02-01")   # end exclusive
    assert m.mark_source == "mark" and m.instrument.symbol == "BTCUSDT"
    assert m.n_bars == 31 * 24 and m.funding_count.sum() == 31 * 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # no mark file: the loader warns
        x = bt.sample_market("bitmex", end="2016-06-01")
    assert x.instrument.settlement == "inverse"


def test_the_repository_data_folder_points_at_the_package_data():
    repo_data = Path(__file__).resolve().parents[1] / "data"
    for name, (file, _) in SAMPLES.items():
        assert (repo_data / file).resolve() == bt.sample_path(name).resolve()
