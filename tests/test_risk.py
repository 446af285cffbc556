"""Leverage risk (issue 11): rolling windows and bootstrap paths as kernel columns.

Every window x parameter row must be ``run()`` on ``market.take(start, end)`` exactly;
probabilities must be hand-computable on a constructed crash; the bootstrap must be
reproducible and keep the history's daily mean and volatility within sampling error.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import backtest as bt
from backtest.kernels.stats import STAT_NAMES
from backtest.risk.bootstrap import path_market
from backtest.risk.summary import kaplan_meier
from backtest.simulation.signals import buy_and_hold, ma_cross

HOUR = pd.Timedelta("1h")


def crash_market(n: int = 60, crash: int = 30, low: float = 80.0,
                 start: str = "2024-01-01") -> bt.Market:
    """Flat at 100 (last and mark) except one bar whose low is ``low``."""
    idx = pd.date_range(start, periods=n, freq="1h", tz="UTC")
    bars = pd.DataFrame({"open": 100.0, "high": 100.0, "low": 100.0, "close": 100.0,
                         "volume": 1.0}, index=idx)
    bars.iloc[crash, bars.columns.get_loc("low")] = low
    inst = bt.Instrument.simple(mmr=0.005, taker_fee=0.0, maker_fee=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, funding=0, instrument=inst)


def test_crash_probability_is_the_share_of_windows_holding_the_crash_bar() -> None:
    n, crash, horizon = 60, 30, 10
    m = crash_market(n, crash)
    lev = [1, 2, 4, 5, 10, 50]
    r = bt.leverage_risk(m, leverage=lev, horizon=f"{horizon}h", side=["long", "short"])
    tab = r.table
    starts = np.arange(n - horizon + 1)                    # complete windows
    # the position is entered at the second bar's open, so it holds bars s+1 .. s+horizon-1
    holding = ((starts + 1 <= crash) & (crash <= starts + horizon - 1)).sum()
    for L in lev:
        # a long at L is liquidated by a low of 80 iff 80 <= 100 (1 - 1/L + mmr)
        liquidated = 80.0 <= 100.0 * (1 - 1 / L + 0.005)
        assert tab.loc[("long", L), "p_liquidation"] == (holding / len(starts) if liquidated
                                                         else 0.0)
        assert tab.loc[("short", L), "p_liquidation"] == 0.0   # nothing moved up
        assert tab.loc[("long", L), "n_windows"] == len(starts)
        assert tab.loc[("long", L), "n_censored"] == horizon - 2   # cut, >= 2 bars
    # the whole wallet backs the position: a liquidation is a ruin, a 100 % drawdown
    assert (tab["p_ruin"] == tab["p_liquidation"]).all()
    assert (tab["p_drawdown_50"] == tab["p_liquidation"]).all()
    assert tab.loc[("long", 5), "median_time_to_liquidation"] == \
        pd.Timedelta(hours=int(np.median(crash - starts[(starts + 1 <= crash)
                                                        & (crash <= starts + 9)])))


def test_crash_with_close_fills_and_starts_subsets() -> None:
    m = crash_market(48, 20)
    r = bt.leverage_risk(m, leverage=[10], horizon="6h", starts=3, fill="close")
    starts = np.arange(0, 48, 3)
    starts = starts[starts + 6 <= 48]
    # filled at the first bar's close: held over bars s+1 .. s+5
    expected = ((starts + 1 <= 20) & (20 <= starts + 5)).sum() / len(starts)
    assert r.table.loc[10, "p_liquidation"] == expected
    got = bt.leverage_risk(m, leverage=[10], horizon="6h",
                           starts=list(m.index[starts]), fill="close")
    assert got.table.loc[10, "p_liquidation"] == expected


def test_survival_censors_windows_cut_by_the_end_of_the_data() -> None:
    # by hand: times 1, 2, 2, 3 with events T, F, T, F
    s = kaplan_meier(np.array([1, 2, 2, 3]), np.array([True, False, True, False]), 3)
    assert s.tolist() == [1.0, 0.75, 0.75 * (1 - 1 / 3), 0.75 * (1 - 1 / 3)]
    # a crash in the last bars: only cut windows hold it; censoring keeps them in the curve
    m = crash_market(40, 37)
    r = bt.leverage_risk(m, leverage=[10], horizon="10h")
    assert r.table.loc[10, "p_liquidation"] == 3 / 31     # complete: s = 28..30 of 0..30
    curve = r.survival()[10]
    assert curve.iloc[0] == 1.0 and curve.is_monotonic_decreasing
    assert curve.index[1] == HOUR
    naive = 1.0 - r.windows["liquidated"].mean()          # cut windows counted as survivors
    assert curve.iloc[-1] < naive


@pytest.fixture(scope="module")
def btc_2022() -> bt.Market:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market("data/binance_btcusdt_perp_1h.parquet",
                              mark="data/binance_btcusdt_perp_1h_mark.parquet",
                              funding="data/binance_btcusdt_perp_funding.parquet",
                              instrument="binance:BTCUSDT", start="2022-05-01",
                              end="2022-07-20")


def _assert_row_is_run(r: bt.risk.RiskResult, rows: np.ndarray, own_run) -> None:
    w = r.windows
    n_c = r.params.shape[0]
    for i in rows:
        g, c = divmod(int(i), n_c)
        got = w.iloc[int(i)]
        res = own_run(g, c)
        want = res.stats[list(STAT_NAMES)].to_numpy(float)
        have = got[list(STAT_NAMES)].to_numpy(float)
        assert np.array_equal(have, want, equal_nan=True), (g, c, dict(zip(
            STAT_NAMES, zip(have, want, strict=True), strict=True)))
        liq = res.trades[res.trades["exit_reason"] == "liquidation"]
        assert got["liquidated"] == (not liq.empty)
        stops = res.trades[res.trades["exit_reason"].isin(["stop_loss", "trailing_stop"])]
        assert got["stopped"] == (not stops.empty)


def test_window_rows_equal_run_on_the_window_holding(btc_2022: bt.Market) -> None:
    m = btc_2022
    r = bt.leverage_risk(m, leverage=[1, 3, 10, 25, 60], horizon="5D", starts=13,
                         side=["long", "short"], stop_loss=[None, 0.03],
                         margin_mode=["isolated", "cross"], fill=["next_open", "close"],
                         initial_capital=1000.0)
    levels = dict(r.levels)

    def own_run(g: int, c: int) -> bt.Result:
        s, e = int(r.starts[g]), int(r.ends[g])
        sub = m.take(s, e)
        combo = {name: levels[name][k] for name, k in zip(levels, r.level_codes[c],
                                                          strict=True)}
        side = combo.pop("side")
        key = "entries" if side == "long" else "short_entries"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bt.run(sub, **{key: buy_and_hold(sub.index)}, **combo,
                          initial_capital=1000.0)

    rng = np.random.default_rng(11)
    rows = rng.choice(r.out.shape[0], 60, replace=False)
    liquidated = np.flatnonzero(r.windows["liquidated"].to_numpy())
    _assert_row_is_run(r, np.concatenate([rows, rng.choice(liquidated, 10)]), own_run)
    assert (r.windows["complete"] == (r.windows["end"] - r.windows["start"]
                                      == pd.Timedelta("5D") - HOUR)).all()


def test_window_rows_equal_run_with_signals_sliced(btc_2022: bt.Market) -> None:
    m = btc_2022
    entries, exits = ma_cross(m.bars["close"], 12, 48)
    r = bt.leverage_risk(m, leverage=[2, 20], horizon="10D", starts="1D", entries=entries,
                         short_entries=exits, stop_loss=[None, 0.02], take_profit=0.05,
                         trailing_stop=[None, 0.03], initial_capital=1000.0)

    def own_run(g: int, c: int) -> bt.Result:
        s, e = int(r.starts[g]), int(r.ends[g])
        combo = {name: values[k] for (name, values), k in zip(r.levels, r.level_codes[c],
                                                               strict=True)}
        return bt.run(m.take(s, e), entries=entries.iloc[s:e + 1],
                      short_entries=exits.iloc[s:e + 1], take_profit=0.05,
                      initial_capital=1000.0, **combo)

    rng = np.random.default_rng(5)
    _assert_row_is_run(r, rng.choice(r.out.shape[0], 40, replace=False), own_run)
    assert r.windows["n_trades"].max() > 1          # the strategy trades inside windows


def test_results_do_not_depend_on_threads_or_chunks(btc_2022: bt.Market) -> None:
    from backtest.risk import engine

    a = bt.leverage_risk(btc_2022, leverage=[5, 50], horizon="3D", starts=7, threads=1)
    b = bt.leverage_risk(btc_2022, leverage=[5, 50], horizon="3D", starts=7, threads=2)
    assert np.array_equal(a.out, b.out, equal_nan=True)
    old = engine.CHUNK_COLUMNS
    try:
        engine.CHUNK_COLUMNS = 6
        c = bt.leverage_risk(btc_2022, leverage=[5, 50], horizon="3D", starts=7, threads=2)
    finally:
        engine.CHUNK_COLUMNS = old
    assert np.array_equal(a.out, c.out, equal_nan=True)


def test_bootstrap_is_reproducible_and_rows_equal_run_on_the_path(btc_2022: bt.Market) -> None:
    kw = dict(leverage=[2, 10, 40], side=["long", "short"], horizon="7D",
              method="bootstrap", n_paths=60, block="1D", initial_capital=1000.0)
    a = bt.leverage_risk(btc_2022, seed=7, **kw)
    b = bt.leverage_risk(btc_2022, seed=7, **kw)
    c = bt.leverage_risk(btc_2022, seed=8, **kw)
    assert np.array_equal(a.out, b.out, equal_nan=True)
    assert np.array_equal(a.bootstrap["src"], b.bootstrap["src"])
    assert not np.array_equal(a.bootstrap["src"], c.bootstrap["src"])
    assert not np.array_equal(a.out, c.out, equal_nan=True)
    moving = bt.leverage_risk(btc_2022, seed=7, bootstrap="moving", **kw)
    runs = np.diff(moving.bootstrap["src"], axis=1) != 1     # block boundaries
    assert (runs.sum(axis=1) <= 7).all()                      # 7 days of 24-bar blocks

    def own_run(g: int, c: int) -> bt.Result:
        path = path_market(btc_2022, a.bootstrap["src"][g], a.bootstrap["scale"][g])
        side, lev = a.levels[0][1][a.level_codes[c, 0]], a.levels[1][1][a.level_codes[c, 1]]
        key = "entries" if side == "long" else "short_entries"
        return bt.run(path, **{key: buy_and_hold(path.index)}, leverage=lev,
                      initial_capital=1000.0)

    rng = np.random.default_rng(3)
    _assert_row_is_run(a, rng.choice(a.out.shape[0], 30, replace=False), own_run)


def test_bootstrap_keeps_the_wick_and_the_mark_relation(btc_2022: bt.Market) -> None:
    r = bt.leverage_risk(btc_2022, leverage=[5], horizon="3D", method="bootstrap",
                         n_paths=20, seed=1)
    src, scale = r.bootstrap["src"], r.bootstrap["scale"]
    path = path_market(btc_2022, src[0], scale[0])
    m = btc_2022
    ratio = path.low / path.close
    assert np.allclose(ratio, m.low[src[0]] / m.close[src[0]], rtol=1e-12)
    assert np.allclose(path.mark_close / path.close, m.mark_close[src[0]] / m.close[src[0]],
                       rtol=1e-12)
    assert np.array_equal(path.funding_rate, m.funding_rate[src[0]])
    # continuous: each bar's open moves from the previous path close as in history
    jump = path.open[1:] / path.close[:-1]
    hist = m.open[src[0][1:]] / m.close[src[0][1:] - 1]
    assert np.allclose(jump, hist, rtol=1e-12)
    assert path.close[-1] != 0 and path.open[0] / m.close[-1] == pytest.approx(
        m.open[src[0][0]] / m.close[src[0][0] - 1], rel=1e-12)


def test_bootstrap_daily_mean_and_volatility_within_sampling_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = bt.load_market("data/binance_btcusdt_perp_1h.parquet",
                           mark="data/binance_btcusdt_perp_1h_mark.parquet",
                           funding="data/binance_btcusdt_perp_funding.parquet",
                           instrument="binance:BTCUSDT", start="2020-01-01",
                           end="2026-05-17 07:00")
    r = bt.leverage_risk(m, leverage=[1], horizon="30D", method="bootstrap", n_paths=400,
                         seed=2024)
    src, scale = r.bootstrap["src"], r.bootstrap["scale"]
    closes = m.close[src] * scale                                   # [paths, 720]
    daily = np.concatenate([np.full((len(closes), 1), m.close[-1]), closes[:, 23::24]],
                           axis=1)
    boot = np.diff(np.log(daily), axis=1).ravel()
    hist = np.diff(np.log(m.close[::24]))
    n = len(boot)
    # the bootstrap estimates the history's own moments; sampling error of n resampled days
    mean_se = hist.std(ddof=1) / np.sqrt(n)
    var = hist.var(ddof=1)
    m4 = np.mean((hist - hist.mean()) ** 4)
    std_se = np.sqrt((m4 - var ** 2) / n) / (2 * np.sqrt(var))
    assert abs(boot.mean() - hist.mean()) < 4 * mean_se
    assert abs(boot.std(ddof=1) - hist.std(ddof=1)) < 4 * std_se


def test_bootstrap_recomputes_signal_functions_and_refuses_fixed_arrays(
        btc_2022: bt.Market) -> None:
    def signals(market: bt.Market) -> dict:
        entries, exits = ma_cross(market.bars["close"], 6, 24)
        return {"entries": entries, "short_entries": exits}

    r = bt.leverage_risk(btc_2022, leverage=[3], horizon="7D", method="bootstrap",
                         n_paths=12, seed=4, signals=signals)
    for g in (0, 5, 11):
        path = path_market(btc_2022, r.bootstrap["src"][g], r.bootstrap["scale"][g])
        want = bt.run(path, **signals(path), leverage=3).stats[list(STAT_NAMES)]
        assert np.array_equal(r.windows.iloc[g][list(STAT_NAMES)].to_numpy(float),
                              want.to_numpy(float), equal_nan=True)
    entries, _ = ma_cross(btc_2022.bars["close"], 6, 24)
    with pytest.raises(ValueError, match="fixed signal arrays cannot be used with "
                                         "method='bootstrap'"):
        bt.leverage_risk(btc_2022, entries=entries, method="bootstrap", n_paths=5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(horizon="1h"), "shorter than two bars"),
    (dict(horizon="1 month"), "not a duration"),
    (dict(method="monte"), "method='monte' is not one of"),
    (dict(starts=0), "every k-th bar and must be >= 1"),
    (dict(side="up"), "side must be 'long', 'short'"),
    (dict(leverage=[0, 2]), "leverage must be > 0"),
    (dict(method="bootstrap", n_paths=0), "n_paths must be an int >= 1"),
    (dict(method="bootstrap", block="2000D"), "shorter than the data"),
    (dict(horizon="400D"), "longer than the data"),
])
def test_bad_input_is_named(kwargs: dict, match: str) -> None:
    m = crash_market(100, 50)
    with pytest.raises((ValueError, TypeError), match=match):
        bt.leverage_risk(m, **{"leverage": [2], **kwargs})


def test_side_with_signals_is_refused() -> None:
    m = crash_market(100, 50)
    with pytest.raises(ValueError, match="with signals the signals decide the side"):
        bt.leverage_risk(m, entries=buy_and_hold(m.index), side="short")


def test_safe_leverage_on_the_crash() -> None:
    m = crash_market(200, 100, low=90.0)
    got = bt.safe_leverage(m, horizon="24h", threshold=0.05,
                           leverage=[1, 2, 5, 9, 10, 20])
    # a 10 % wick liquidates a long iff 90 <= 100 (1 - 1/L + 0.005): L >= 9.52
    assert got.loc["long", "safe_leverage"] == 9.0
    assert got.loc["long", "next_leverage"] == 10.0
    assert got.loc["long", "next_p_liquidation"] > 0.05
    assert got.loc["short", "safe_leverage"] == 20.0
    assert np.isnan(got.loc["short", "next_leverage"])


def test_cli_risk_prints_the_table_and_writes_the_files(tmp_path, capsys) -> None:
    from backtest.cli.main import main

    m = crash_market(60, 30)
    bars = m.bars.reset_index()
    bars.to_parquet(tmp_path / "bars.parquet")
    config = tmp_path / "crash.toml"
    config.write_text(
        '[market]\nbars = "bars.parquet"\nfunding = 0\n'
        'instrument = { mmr = 0.005, taker_fee = 0.0, maker_fee = 0.0 }\n'
        '[risk]\nhorizon = "10h"\nside = ["long", "short"]\nthreshold = 0.05\n'
        '[params]\nleverage = [2, 4, 5, 10]\n')
    assert main(["risk", str(config), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "p_liquidation" in out
    assert "safe leverage (long): 4x" in out
    for name in ("risk_table.csv", "survival.csv", "risk.png", "report.html"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    table = pd.read_csv(tmp_path / "out" / "risk_table.csv", index_col=[0, 1])
    assert table.loc[("long", 5), "p_liquidation"] == pytest.approx(9 / 51)
    config.write_text(config.read_text().replace("[risk]\n", "[risk]\nhorizn = 1\n"))
    assert main(["risk", str(config)]) == 2
    assert "[risk].horizn: unknown key. Did you mean 'horizon'?" in capsys.readouterr().err


def test_signal_function_rolling_equals_the_arrays_and_run_reproduces_a_row(
        btc_2022: bt.Market) -> None:
    def signals(market: bt.Market) -> dict:
        entries, exits = ma_cross(market.bars["close"], 6, 24)
        return {"entries": entries, "exits": exits}

    kw = dict(leverage=[3, 15], horizon="4D", starts=29, initial_capital=1000.0)
    by_function = bt.leverage_risk(btc_2022, signals=signals, **kw)
    by_arrays = bt.leverage_risk(btc_2022, **signals(btc_2022), **kw)
    assert np.array_equal(by_function.out, by_arrays.out, equal_nan=True)
    for g, c in ((0, 0), (7, 1)):
        again = by_function.run(g, c).stats[list(STAT_NAMES)].to_numpy(float)
        row = by_function.windows.iloc[g * 2 + c][list(STAT_NAMES)].to_numpy(float)
        assert np.array_equal(again, row, equal_nan=True)
    with pytest.raises(TypeError, match="signals= takes a function"):
        bt.leverage_risk(btc_2022, signals=signals, entries=signals(btc_2022)["entries"])
