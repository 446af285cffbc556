"""``backtest run/sweep CONFIG.toml`` (SPEC §10): outputs equal direct API calls; bad
configs exit 2 with a message naming the file and ``[section].key`` (SPEC §11)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, REPO_DATA

import backtest as bt
from backtest.cli.config import read_config
from backtest.cli.main import main
from backtest.simulation.signals import breakout, ma_cross

BARS = REPO_DATA / "binance_btcusdt_perp_1h.parquet"
MARK = REPO_DATA / "binance_btcusdt_perp_1h_mark.parquet"
FUNDING = REPO_DATA / "binance_btcusdt_perp_funding.parquet"
START, END = "2024-01-01", "2024-03-01"   # ~1,400 hourly bars: fast
MARKET = f"""[market]
bars = {json.dumps(str(BARS))}
mark = {json.dumps(str(MARK))}
funding = {json.dumps(str(FUNDING))}
instrument = "binance:BTCUSDT"
start = "{START}"
end = "{END}"
"""


def market() -> bt.Market:
    return bt.load_market(BARS, mark=MARK, funding=FUNDING, instrument="binance:BTCUSDT",
                          start=START, end=END)


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_stats_equal(got: pd.Series, want: pd.Series) -> None:
    assert list(got.index) == list(want.index)
    for key, value in want.items():
        if isinstance(value, (bool, np.bool_)):
            assert str(got[key]) == str(value), key
        elif isinstance(value, str):
            assert got[key] == value, key
        else:
            assert float(got[key]) == pytest.approx(float(value), rel=1e-12, nan_ok=True), key


# --------------------------------------------------------------------------- run


def test_run_writes_outputs_equal_to_direct_run(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, MARKET + """
[signals]
rule = "ma_cross"
fast = 12
slow = 48
side = "both"

[params]
leverage = 5
size = 0.5
stop_loss = 0.03
""")
    out = tmp_path / "result"
    code, stdout, err = cli(capsys, "run", cfg, "--out", out)
    assert code == 0, err
    assert "Traceback" not in err
    names = {"stats.csv", "trades.csv", "equity.csv", "equity.png", "report.html"}
    assert {p.name for p in out.iterdir()} == names   # no temporary files left

    m = market()
    up, down = ma_cross(m.bars["close"], 12, 48)
    r = bt.run(m, entries=up, short_entries=down, leverage=5, size=0.5, stop_loss=0.03)
    assert r.stats["n_trades"] > 3
    stats = pd.read_csv(out / "stats.csv", index_col="stat")["value"]
    assert_stats_equal(stats, r.stats)
    trades = pd.read_csv(out / "trades.csv")
    assert len(trades) == len(r.trades)
    np.testing.assert_allclose(trades["pnl"], r.trades["pnl"], rtol=1e-12)
    assert list(trades["exit_reason"]) == list(r.trades["exit_reason"])
    curves = pd.read_csv(out / "equity.csv", index_col="timestamp", parse_dates=True)
    assert curves.index.equals(r.equity.index)
    np.testing.assert_allclose(curves["equity"], r.equity, rtol=1e-12)
    np.testing.assert_allclose(curves["liquidation_price"], r.liquidation_price, rtol=1e-12)
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<html" in (out / "report.html").read_text().lower()
    assert f"{r.stats['final_equity']:,.2f} USDT" in stdout
    assert "total_return" in stdout and str(out / "report.html") in stdout


def test_run_none_stop_and_breakout_short(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, MARKET + """
[signals]
rule = "breakout"
window = 30
side = "short"
[params]
stop_loss = "none"
fees = 0.0002
""")
    code, _, err = cli(capsys, "run", cfg, "--out", tmp_path / "o")
    assert code == 0, err
    m = market()
    up, down = breakout(m.bars["close"], 30, m.bars["high"], m.bars["low"])
    r = bt.run(m, short_entries=down, short_exits=up, stop_loss=None, fees=0.0002)
    assert (r.trades["side"] == "short").all() and len(r.trades) > 0
    stats = pd.read_csv(tmp_path / "o" / "stats.csv", index_col="stat")["value"]
    assert_stats_equal(stats, r.stats)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_run_signal_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         suffix: str) -> None:
    # The file covers more than the trimmed span: rows outside start/end are ignored.
    full = bt.load_market(BARS, mark=MARK, funding=FUNDING, start="2023-12-01",
                          end="2024-04-01")
    up, down = ma_cross(full.bars["close"], 10, 40)
    frame = pd.DataFrame({"timestamp": full.index, "entries": up.to_numpy(),
                          "exits": down.to_numpy()})
    path = tmp_path / f"signals{suffix}"
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    cfg = write(tmp_path, MARKET + f'[signals]\nfile = "signals{suffix}"\n'
                "[params]\nleverage = 3\n")
    code, _, err = cli(capsys, "run", cfg, "--out", tmp_path / "o")
    assert code == 0, err
    m = market()
    r = bt.run(m, entries=up.reindex(m.index), exits=down.reindex(m.index), leverage=3)
    assert r.stats["n_trades"] > 0
    stats = pd.read_csv(tmp_path / "o" / "stats.csv", index_col="stat")["value"]
    assert_stats_equal(stats, r.stats)


def test_run_simple_instrument_table_without_funding(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, f"""[market]
bars = {json.dumps(str(BARS))}
funding = 0
start = "{START}"
end = "{END}"
instrument = {{ mmr = 0.01, taker_fee = 0.0004 }}
[signals]
rule = "buy_and_hold"
[params]
leverage = 20
""")
    code, _, err = cli(capsys, "run", cfg, "--out", tmp_path / "o")
    assert code == 0, err
    assert "mark" in err   # load_market's warning (no mark bars) reaches stderr, once
    with pytest.warns(UserWarning, match="no mark bars"):
        m = bt.load_market(BARS, funding=0, start=START, end=END,
                           instrument=bt.Instrument.simple(mmr=0.01, taker_fee=0.0004))
    r = bt.run(m, entries=pd.Series(np.arange(m.n_bars) == 0, index=m.index), leverage=20)
    stats = pd.read_csv(tmp_path / "o" / "stats.csv", index_col="stat")["value"]
    assert_stats_equal(stats, r.stats)
    bad = write(tmp_path, MARKET.replace('instrument = "binance:BTCUSDT"',
                                         "instrument = { mmr = 0.01, taker = 0.0004 }")
                + SIGNALS, "bad.toml")
    code, _, err = cli(capsys, "run", bad, "--out", tmp_path / "o2")
    assert code == 2 and "[market].instrument.taker" in err and "'taker_fee'" in err


# --------------------------------------------------------------------------- sweep


def test_sweep_writes_stats_equal_to_direct_sweep(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, MARKET + """
[signals]
rule = "ma_cross"
fast = [12, 24]
slow = 72
side = "both"

[params]
leverage = [2, 5, 20]
stop_loss = ["none", 0.02]
size = 0.5
""")
    out = tmp_path / "sweep"
    code, stdout, err = cli(capsys, "sweep", cfg, "--out", out, "--no-progress")
    assert code == 0, err
    m = market()
    sets = {f"fast={f}": ma_cross(m.bars["close"], f, 72) for f in (12, 24)}
    s = bt.sweep(m, entries={k: v[0] for k, v in sets.items()},
                 short_entries={k: v[1] for k, v in sets.items()},
                 leverage=[2, 5, 20], stop_loss=[None, 0.02], size=0.5, progress=False)
    got = pd.read_csv(out / "sweep_stats.csv")
    want = s.stats.reset_index()
    assert list(got.columns) == list(want.columns)
    assert got.columns[:3].tolist() == ["signals", "leverage", "stop_loss"]
    assert len(got) == len(want) == 12
    assert got["signals"].tolist() == want["signals"].tolist()
    for col in want.columns[1:]:
        np.testing.assert_allclose(got[col].astype(float), want[col].astype(float),
                                   rtol=1e-12, err_msg=col)
    # a row equals run() with the same parameters (SPEC §9), through the CLI too
    r = bt.run(m, entries=sets["fast=24"][0], short_entries=sets["fast=24"][1], leverage=5,
               stop_loss=0.02, size=0.5)
    row = got[(got["signals"] == "fast=24") & (got["leverage"] == 5)
              & (got["stop_loss"] == 0.02)].iloc[0]
    assert row["total_return"] == pytest.approx(r.stats["total_return"], rel=1e-12)
    assert "best 5 by sharpe:" in stdout and "best 5 by total_return:" in stdout
    best = s.best("sharpe", n=1).index[0]
    assert str(best[0]) in stdout.split("best 5 by sharpe:")[1].splitlines()[3]
    assert (out / "report.html").is_file()


def test_sweep_store_option_resumes_and_refuses_another_sweep(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = MARKET + """
[signals]
rule = "ma_cross"
fast = 24
slow = 72

[params]
leverage = [2, 5, 20]
"""
    cfg = write(tmp_path, body)
    store = tmp_path / "store"
    code, _, err = cli(capsys, "sweep", cfg, "--out", tmp_path / "a", "--no-progress",
                       "--store", store)
    assert code == 0, err
    assert (store / "stats.parquet").is_file()
    first = pd.read_csv(tmp_path / "a" / "sweep_stats.csv")
    # a chunk lost (an interrupted run): the same command recomputes it, same numbers
    for chunk in (store / "chunks").iterdir():
        chunk.unlink()
        break
    code, _, err = cli(capsys, "sweep", cfg, "--out", tmp_path / "b", "--no-progress",
                       "--store", store)
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b" / "sweep_stats.csv"), first)
    other = write(tmp_path, body.replace("[2, 5, 20]", "[2, 5, 50]"), "other.toml")
    code, _, err = cli(capsys, "sweep", other, "--no-progress", "--out", tmp_path / "c",
                       "--store", store)
    assert code == 2 and "holds the stats of another sweep" in err and str(other) in err


def test_examples_run_and_reproduce_the_demo(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from backtest.cli import demo as demo

    code, _, err = cli(capsys, "run", REPO / "examples" / "ma_cross.toml", "--out",
                       tmp_path / "run")
    assert code == 0, err
    # examples/ma_cross.toml is the demo's strategy at 10x: the same numbers
    m = bt.load_market(BARS, mark=MARK, funding=FUNDING, instrument=demo.INSTRUMENT,
                       start=demo.START, end=demo.END)
    up, down = ma_cross(m.bars["close"], demo.FAST, demo.SLOW)
    r = bt.run(m, entries=up, short_entries=down, leverage=10, **demo.RUN_PARAMS)
    stats = pd.read_csv(tmp_path / "run" / "stats.csv", index_col="stat")["value"]
    assert_stats_equal(stats, r.stats)

    code, stdout, err = cli(capsys, "sweep", REPO / "examples" / "leverage_sweep.toml",
                            "--out", tmp_path / "sweep", "--no-progress")
    assert code == 0, err
    assert "84 combinations" in stdout
    assert len(pd.read_csv(tmp_path / "sweep" / "sweep_stats.csv")) == 84
    sweep_cfg = read_config(REPO / "examples" / "leverage_sweep.toml", sweep=True)
    assert sweep_cfg.params["stop_loss"][0] is None


# --------------------------------------------------------------------------- bad input


SIGNALS = '[signals]\nrule = "ma_cross"\n'
BAD = {  # name: (command, config text, substrings expected on stderr)
    "unknown-key": ("run", MARKET + SIGNALS + "[params]\nlevrage = 5\n",
                    ("[params].levrage", "Did you mean 'leverage'")),
    "unknown-section": ("run", MARKET + '[signal]\nrule = "ma_cross"\n',
                        ("[signal]", "Did you mean 'signals'")),
    "unknown-signal-key": ("run", MARKET + SIGNALS + "window = 5\n",
                           ("[signals].window", "Known: rule, fast, slow, side")),
    "wrong-type": ("run", MARKET + SIGNALS + '[params]\nstop_loss = "5%"\n',
                   ("[params].stop_loss", "expected a number", '"none"')),
    "wrong-type-int": ("run", MARKET + SIGNALS + "fast = 2.5\n",
                       ("[signals].fast", "whole number of bars")),
    "missing-file": ("run", MARKET.replace(str(MARK), str(REPO_DATA / "nope.parquet"))
                     + SIGNALS, ("[market].mark", "file not found", "nope.parquet")),
    "leverage-too-high": ("run", MARKET + SIGNALS + "[params]\nsize = 0.5\nleverage = 500\n",
                          ("[params].leverage", "above", "maximum of 125x")),
    "swept-leverage-too-high": ("sweep", MARKET + SIGNALS + "[params]\nleverage = [5, 500]\n",
                                ("[params].leverage[1] = 500", "maximum of 125x")),
    "toml-syntax": ("run", MARKET + '[signals]\nrule = ma_cross\n',
                    ("not valid TOML", "line 9")),
    "list-in-run": ("run", MARKET + SIGNALS + "[params]\nleverage = [1, 2]\n",
                    ("[params].leverage", "backtest sweep")),
    "bad-choice": ("run", MARKET + SIGNALS + '[params]\nmargin_mode = "crossed"\n',
                   ("[params].margin_mode", "Did you mean 'cross'")),
    "none-not-allowed": ("run", MARKET + SIGNALS + '[params]\nleverage = "none"\n',
                         ("[params].leverage", "omit leverage")),
    "bad-instrument": ("run", MARKET.replace("binance:BTCUSDT", "binance:BTCUSDTT") + SIGNALS,
                       ("[market].instrument", "Did you mean 'binance:BTCUSDT'")),
    "bad-ma-windows": ("run", MARKET + SIGNALS + "fast = 200\nslow = 100\n",
                       ("[signals]", "fast (200) must be shorter than slow (100)")),
    "bad-start": ("run", MARKET.replace(f'start = "{START}"', 'start = "soon"') + SIGNALS,
                  ("[market].start", "'soon' is not a time")),
    "no-signals": ("run", MARKET, ("[signals]", "missing section")),
    "data-error": ("run", MARKET.replace(f'end = "{END}"', 'end = "2026-06-01"') + SIGNALS,
                   ("[market]", "mark")),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            case: str) -> None:
    command, text, expected = BAD[case]
    cfg = write(tmp_path, text, "bad.toml")
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, command, cfg, "--out", out)
    assert code == 2, (stdout, err)
    assert err.startswith("backtest: ") and "Traceback" not in err
    assert "bad.toml" in err
    for part in expected:
        assert part in err, (part, err)
    assert not out.exists()   # nothing written


def test_missing_config_file_exits_2(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", tmp_path / "absent.toml")
    assert code == 2 and "absent.toml" in err and "config file not found" in err


def test_out_refuses_an_existing_file(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, MARKET + SIGNALS)
    target = tmp_path / "taken"
    target.write_text("keep me")
    for command in ("run", "sweep"):
        code, _, err = cli(capsys, command, cfg, "--out", target)
        assert code == 2 and "exists and is a file" in err and "--out" in err
        assert target.read_text() == "keep me"
