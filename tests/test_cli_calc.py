"""``backtest calc ...`` on the command line: output and exit codes (SPEC §10)."""

from __future__ import annotations

import pytest

from backtest.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_liquidation_10x_long_at_40000(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "calc", "liquidation", "--entry", "40000", "--leverage", "10",
                         "--side", "long", "--mmr", "0.005")
    assert code == 0, err
    assert "36,200" in out and "36,000" in out
    assert "9.50% of entry" in out and "10.00x" in out


def test_liquidation_short_and_preset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calc", "liquidation", "--entry", "40000", "--leverage", "10",
                       "--side", "short", "--mmr", "0.005")
    assert code == 0 and "43,800" in out and "44,000" in out
    code, out, _ = run(capsys, "calc", "liquidation", "--entry", "5000", "--leverage", "25",
                       "--size", "1000", "--instrument", "bitmex:XBTUSD",
                       "--funding-rate", "-0.000139")
    assert code == 0 and "4,831.00" in out and "XBT" in out


def test_funding(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calc", "funding", "--rate", "0.001")
    assert code == 0
    assert "109.50%" in out  # 0.1 % every 8 h, 365 days
    assert "10.0000" in out  # per interval on the default notional of 10,000


@pytest.mark.parametrize("argv, pattern", [
    (["--leverage", "-5"], "leverage must be > 0"),
    (["--leverage", "10", "--instrument", "bitmex:XBTUSDT"], "Did you mean 'bitmex:XBTUSD'"),
    ([], "pass leverage="),
    (["--leverage", "10", "--mmr", "5"], "basis points/percent"),
    (["--leverage", "500", "--instrument", "binance"], "above the maximum"),
])
def test_bad_liquidation_input_exits_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                       pattern: str) -> None:
    code, out, err = run(capsys, "calc", "liquidation", "--entry", "40000", *argv)
    assert code == 2
    assert pattern in err and err.startswith("backtest: ")
    assert "Traceback" not in err


def test_bad_funding_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "calc", "funding", "--rate", "1")
    assert code == 2 and "percent" in err


def test_argparse_rejects_unknown_side(capsys: pytest.CaptureFixture[str]) -> None:
    # main() returns the exit code (2) instead of letting argparse raise SystemExit.
    assert main(["calc", "liquidation", "--entry", "40000", "--leverage", "10",
                 "--side", "up"]) == 2
    assert "invalid choice" in capsys.readouterr().err
