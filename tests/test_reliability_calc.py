"""Issue 13, the calculator's messages: examples that fit the parameter, and wallet= with
leverage= never silently overriding each other (refused with the numbers and the fix)."""

from __future__ import annotations

import pytest

from backtest import calc
from backtest.cli.main import main


@pytest.mark.parametrize("call, name, example", [
    (lambda: calc.exposure(1_000, "x"), "leverage", "leverage=10"),
    (lambda: calc.exposure("x", 10), "margin", "margin=1000"),
    (lambda: calc.pnl("x", 42_000, 1, "long"), "entry", "entry=40000"),
    (lambda: calc.pnl(40_000, 42_000, float("nan"), "long"), "size", "size=0.25"),
    (lambda: calc.funding_payment(1, 40_000, None, "long"), "rate", "rate=0.0001"),
    (lambda: calc.risk_size(10_000, "1%", 0.02), "risk", "risk=0.01"),
    (lambda: calc.liquidation_price(40_000, "long", leverage=10, mmr="x"), "mmr", "mmr=0.005"),
])
def test_type_errors_give_an_example_that_fits_the_parameter(call, name, example):
    with pytest.raises((TypeError, ValueError)) as err:
        call()
    text = str(err.value)
    assert name in text and example in text
    assert "=0.02" not in text or name == "stop_distance"


@pytest.mark.parametrize("call, example", [
    (lambda: calc.exposure(1_000, 0), "leverage=10"),
    (lambda: calc.exposure(-5, 10), "margin=1000"),
    (lambda: calc.pnl(0, 42_000, 1, "long"), "entry=40000"),
    (lambda: calc.funding_payment(1, -1, 0.0001, "long"), "mark=40000"),
])
def test_non_positive_values_give_a_fitting_example(call, example):
    with pytest.raises(ValueError, match="must be > 0") as err:
        call()
    assert f"Fix: pass e.g. {example}" in str(err.value)


def test_wallet_and_leverage_that_contradict_are_refused_with_the_numbers():
    with pytest.raises(ValueError, match="contradict") as err:
        calc.liquidation_price(40_000, "long", wallet=100, leverage=10)
    text = str(err.value)
    assert "notional of 40000" in text and "wallet=100 means 400x" in text
    assert "leverage=10 means a margin of 4000" in text and "size=0.025" in text
    with pytest.raises(ValueError, match="contradict"):
        calc.bankruptcy_price(40_000, "short", wallet=100, leverage=10)


def test_wallet_and_leverage_that_agree_or_a_cross_wallet_are_accepted():
    both = calc.liquidation_price(40_000, "long", wallet=4_000, leverage=10, mmr=0.005)
    assert both == calc.liquidation_price(40_000, "long", leverage=10, mmr=0.005) == 36_200
    sized = calc.liquidation_price(40_000, "long", wallet=100, leverage=10, size=0.025,
                                   mmr=0.005)
    assert sized == pytest.approx(36_200)
    cross = calc.liquidation_price(40_000, "long", wallet=10_000, leverage=10, mmr=0.005,
                                   other_maintenance=50.0)
    assert cross < 36_200   # the cross wallet stands behind it


def test_cli_calc_contradiction_exits_2(capsys):
    code = main(["calc", "liquidation", "--entry", "40000", "--leverage", "10",
                 "--wallet", "100"])
    err = capsys.readouterr().err
    assert code == 2 and "contradict" in err and "Traceback" not in err


def test_toml_funding_zero_in_quotes_says_write_the_number(tmp_path, capsys):
    from test_cli_config import BARS

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[market]\nbars = "{BARS}"\nfunding = "0"\n[signals]\nrule = '
                   '"buy_and_hold"\n')
    code = main(["run", str(cfg)])
    err = capsys.readouterr().err
    assert code == 2 and "[market].funding" in err and "funding = 0" in err
