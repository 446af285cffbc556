"""``backtest.calc``: the seed article's numbers, mirrors, inverse/quanto, bad inputs and
properties (Hypothesis)."""

from __future__ import annotations

import doctest
import importlib
import math
import pkgutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest import calc
from backtest.instruments.instrument import Instrument
from backtest.instruments.presets import get_instrument
from backtest.kernels import contracts as k

# -- the seed article ----------------------------------------------------------------------


def test_exposure_10x_on_1000_is_10000() -> None:
    assert calc.exposure(1_000, 10) == 10_000


@pytest.mark.parametrize("move, expected", [(0.05, 500.0), (-0.05, -500.0)])
def test_five_percent_on_10000_is_500(move: float, expected: float) -> None:
    entry, notional = 40_000.0, 10_000.0
    size = notional / entry
    assert calc.pnl(entry, entry * (1 + move), size, "long") == pytest.approx(expected)
    assert calc.pnl(entry, entry * (1 + move), size, "short") == pytest.approx(-expected)


@pytest.mark.parametrize("leverage, distance", [(10, 0.10), (50, 0.02), (100, 0.01)])
def test_liquidation_distance_without_maintenance(leverage: float, distance: float) -> None:
    assert calc.liquidation_distance(leverage) == pytest.approx(distance, abs=1e-12)


def test_liquidation_distance_with_maintenance() -> None:
    assert calc.liquidation_distance(10, 0.005) == pytest.approx(0.095, abs=1e-12)
    assert calc.liquidation_distance(200, 0.005) == pytest.approx(0.0, abs=1e-12)


def test_10x_long_at_40000() -> None:
    assert calc.bankruptcy_price(40_000, "long", leverage=10) == 36_000.0
    assert calc.liquidation_price(40_000, "long", leverage=10, mmr=0.005) == 36_200.0
    # The "simple" instrument's own one-row table is mmr 0.5 %: same answer without mmr=.
    assert calc.liquidation_price(40_000, "long", leverage=10) == 36_200.0


def test_10x_short_at_40000_mirrors_the_long() -> None:
    assert calc.bankruptcy_price(40_000, "short", leverage=10) == 44_000.0
    assert calc.liquidation_price(40_000, "short", leverage=10, mmr=0.005) == 43_800.0


def test_annualised_funding() -> None:
    assert calc.annualised_funding(0.001) == 1.095
    assert calc.annualised_funding(0.0001, interval_hours=1) == pytest.approx(0.876)
    assert calc.annualised_funding(-0.0001) == pytest.approx(-0.1095)


def test_funding_payment_sign_by_side() -> None:
    assert calc.funding_payment(1, 40_000, 0.0001, "long") == pytest.approx(4.0)
    assert calc.funding_payment(1, 40_000, 0.0001, "short") == pytest.approx(-4.0)
    assert calc.funding_payment(1, 40_000, -0.0001, "long") == pytest.approx(-4.0)


def test_risk_size() -> None:
    assert calc.risk_size(10_000, 0.01, 0.02) == pytest.approx(5_000.0)
    # Losing stop_distance on that notional costs exactly risk * equity.
    notional = calc.risk_size(25_000, 0.02, 0.05)
    assert notional * 0.05 == pytest.approx(0.02 * 25_000)


def test_size_and_wallet_do_not_change_simple_prices() -> None:
    a = calc.liquidation_price(40_000, "long", leverage=10, mmr=0.005)
    b = calc.liquidation_price(40_000, "long", leverage=10, size=3.5, mmr=0.005)
    c = calc.liquidation_price(40_000, "long", wallet=3.5 * 4_000, size=3.5, mmr=0.005)
    assert a == pytest.approx(b) == pytest.approx(c)


def test_cross_other_positions_move_the_price() -> None:
    alone = calc.liquidation_price(40_000, "long", wallet=4_000, instrument="binance",
                                   mmr=0.004)
    losing = calc.liquidation_price(40_000, "long", wallet=4_000, instrument="binance",
                                    mmr=0.004, other_upnl=-1_000)
    held = calc.liquidation_price(40_000, "long", wallet=4_000, instrument="binance",
                                  mmr=0.004, other_maintenance=500)
    assert losing > alone and held > alone


def test_borrow_interest_started_hours() -> None:
    rate = 0.0002 / 24
    assert calc.borrow_interest(1_000, rate, "2024-01-01 13:20", "2024-01-01 14:15") \
        == pytest.approx(1_000 * rate * 2)
    assert calc.borrow_interest(1_000, rate, "2024-01-01 13:00", "2024-01-01 14:00") \
        == pytest.approx(1_000 * rate)
    assert calc.borrow_interest(1_000, rate, "2024-01-01 13:20", "2024-01-01 13:20") == 0.0
    # Int nanoseconds, tz-aware timestamps in another zone (converted to UTC).
    start = 1_704_114_000_000_000_000  # 2024-01-01 13:00 UTC
    assert calc.borrow_interest(1_000, rate, start, start + 90 * 60 * 10**9) \
        == pytest.approx(1_000 * rate * 2)
    assert calc.borrow_interest(1_000, rate, "2024-01-01 14:20+01:00",
                                "2024-01-01 15:15+01:00") == pytest.approx(1_000 * rate * 2)


def test_docstring_examples() -> None:
    attempted = 0
    for info in pkgutil.iter_modules(calc.__path__):
        module = importlib.import_module(f"{calc.__name__}.{info.name}")
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 10


# -- inverse and quanto ----------------------------------------------------------------------

def test_inverse_prices() -> None:
    inverse = Instrument.simple(settlement="inverse")
    # Inverse simple rules: W + uPnL = mmr * notional(E) with W = notional(E)/L
    # gives long E / (1 + 1/L - mmr), bankruptcy E / (1 + 1/L).
    assert calc.liquidation_price(40_000, "long", leverage=10, instrument=inverse) \
        == pytest.approx(40_000 / (1 + 0.1 - 0.005))
    assert calc.bankruptcy_price(40_000, "long", leverage=10, instrument=inverse) \
        == pytest.approx(40_000 / 1.1)
    assert calc.liquidation_price(40_000, "short", leverage=10, instrument=inverse) \
        == pytest.approx(40_000 / (1 - 0.1 + 0.005))
    assert calc.bankruptcy_price(40_000, "short", leverage=10, instrument=inverse) \
        == pytest.approx(40_000 / 0.9)


def test_inverse_short_below_1x_cannot_be_liquidated() -> None:
    inverse = Instrument.simple(settlement="inverse", mmr=0.0)
    assert calc.bankruptcy_price(40_000, "short", leverage=1, instrument=inverse) == math.inf
    assert calc.bankruptcy_price(40_000, "long", leverage=1, instrument="linear") == 0.0


def test_inverse_pnl_in_coin() -> None:
    assert calc.pnl(750, 800, 15_000, "long", "inverse") == pytest.approx(1.25)
    assert calc.pnl(750, 800, 15_000, "short", "inverse") == pytest.approx(-1.25)
    assert calc.funding_payment(15_000, 750, 0.0025, "long", "inverse") == pytest.approx(0.05)


def test_quanto_uses_the_linear_form_with_the_multiplier() -> None:
    quanto = get_instrument("quanto")
    assert calc.pnl(500, 510, 10_000, "long", quanto) == pytest.approx(10_000 * 1e-6 * 10)
    for side in ("long", "short"):
        q = calc.liquidation_price(2_000, side, leverage=20, instrument=quanto)
        lin = calc.liquidation_price(2_000, side, leverage=20, instrument="linear")
        assert q == pytest.approx(lin)


def test_bitmex_quanto_rounds_to_its_tick() -> None:
    price = calc.liquidation_price(2_000, "long", leverage=20, instrument="bitmex:ETHUSD")
    assert price == pytest.approx(round(price / 0.05) * 0.05, abs=1e-9)
    assert 2_000 * (1 - 1 / 20) < price < 2_000


def test_spot_margin_prices() -> None:
    inst = get_instrument("binance-margin:BTCUSDT")
    # 3x long: liabilities 2/3 of entry; margin level 1.1 at 1.1 * 2/3 * entry.
    assert calc.liquidation_price(100, "long", leverage=3, instrument=inst) \
        == pytest.approx(1.1 * 2 / 3 * 100)
    # 1x long borrows nothing: never liquidated.
    assert calc.liquidation_price(100, "long", leverage=1, instrument=inst) == 0.0
    assert calc.liquidation_price(100, "short", leverage=2, instrument=inst) \
        == pytest.approx(100 * 1.5 / 1.1)


def test_spot_margin_price_counts_accrued_interest() -> None:
    """At the price returned, assets / (liabilities + interest) is exactly the threshold."""
    inst = get_instrument("binance-margin:BTCUSDT")
    m = inst.liquidation_margin_level
    # 3x long of 1 BTC at 30,000: own 10,000, borrowed 20,000 USDT, 250 USDT accrued
    p = calc.liquidation_price(30_000, "long", leverage=3, size=1.0, instrument=inst,
                               interest=250.0)
    assert 1.0 * p / (20_000 + 250) == pytest.approx(m, rel=1e-12)
    assert p > calc.liquidation_price(30_000, "long", leverage=3, size=1.0, instrument=inst)
    # 3x short of 1 BTC at 30,000: assets 30,000 proceeds + 10,000 own; owes 1 BTC + 0.004 BTC
    # of interest (valued at the liquidation price, 0.004 * p quote)
    p = calc.liquidation_price(30_000, "short", leverage=3, size=1.0, instrument=inst,
                               interest=0.004 * 30_000)
    assert 40_000 / (p + 0.004 * 30_000) == pytest.approx(m, rel=1e-12)
    with pytest.raises(ValueError, match="interest= applies to spot-margin"):
        calc.liquidation_price(30_000, "long", leverage=3, interest=1.0)
    with pytest.raises(ValueError, match="interest must be >= 0"):
        calc.liquidation_price(30_000, "long", leverage=3, instrument=inst, interest=-1.0)


# -- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("leverage", [0, -1, -0.5])
def test_leverage_must_be_positive(leverage: float) -> None:
    with pytest.raises(ValueError, match=r"leverage must be > 0.*10 = 10x"):
        calc.liquidation_price(40_000, "long", leverage=leverage)
    with pytest.raises(ValueError, match="leverage must be > 0"):
        calc.exposure(1_000, leverage)


def test_side_suggestion() -> None:
    with pytest.raises(ValueError, match=r"side must be 'long' or 'short'.*'long'"):
        calc.liquidation_price(40_000, "lon", leverage=10)
    with pytest.raises(ValueError, match=r"Did you mean 'short'"):
        calc.pnl(1, 2, 1, "shrt")


def test_rates_in_percent_are_caught() -> None:
    with pytest.raises(ValueError, match="basis points/percent"):
        calc.liquidation_price(40_000, "long", leverage=10, mmr=5)
    with pytest.raises(ValueError, match="percent"):
        calc.annualised_funding(1.0)
    with pytest.raises(ValueError, match="above 5 %"):
        calc.funding_payment(1, 40_000, 0.1, "long")
    with pytest.raises(ValueError, match="basis points/percent"):
        calc.borrow_interest(1_000, 2.0, "2024-01-01", "2024-01-02")
    with pytest.raises(ValueError, match="risk 1 % of equity"):
        calc.risk_size(10_000, 1, 0.02)
    with pytest.raises(ValueError, match="stop 2 % from entry"):
        calc.risk_size(10_000, 0.01, 2)


def test_needs_leverage_or_wallet() -> None:
    with pytest.raises(ValueError, match=r"pass leverage=.*or wallet="):
        calc.liquidation_price(40_000, "long")


def test_leverage_above_the_tier_maximum() -> None:
    with pytest.raises(ValueError, match=r"above the maximum 125x.*Fix: leverage <= "):
        calc.liquidation_price(40_000, "long", leverage=150, instrument="binance")
    with pytest.raises(ValueError, match="above the maximum 200x"):
        calc.liquidation_price(40_000, "long", leverage=250)  # simple: 1/0.5 %


def test_leverage_that_liquidates_at_entry() -> None:
    with pytest.raises(ValueError, match="liquidated at entry"):
        calc.liquidation_price(40_000, "long", leverage=300, mmr=0.005)
    with pytest.raises(ValueError, match="liquidated at entry"):
        calc.liquidation_distance(300, 0.005)


def test_unknown_instrument_suggests() -> None:
    with pytest.raises(ValueError, match=r"Did you mean 'bitmex:XBTUSD'"):
        calc.liquidation_price(40_000, "long", leverage=10, instrument="bitmex:XBTUSDT")
    with pytest.raises(TypeError, match="preset name"):
        calc.pnl(1, 2, 1, "long", instrument=3)


def test_type_and_range_errors_name_the_parameter() -> None:
    with pytest.raises(TypeError, match="entry must be a number"):
        calc.liquidation_price("40000", "long", leverage=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="entry must be > 0"):
        calc.bankruptcy_price(-1, "long", leverage=10)
    with pytest.raises(ValueError, match="size must be > 0"):
        calc.pnl(1, 2, 0, "long")
    with pytest.raises(ValueError, match="must be finite"):
        calc.exposure(math.nan, 10)
    with pytest.raises(ValueError, match="end .* is before start"):
        calc.borrow_interest(1, 0.0001, "2024-01-02", "2024-01-01")
    with pytest.raises(ValueError, match="start must be a timestamp"):
        calc.borrow_interest(1, 0.0001, "yesterday-ish", "2024-01-01")


def test_spot_margin_rejects_derivative_overrides() -> None:
    with pytest.raises(ValueError, match="margin level"):
        calc.liquidation_price(100, "long", leverage=3, instrument="binance-margin:BTCUSDT",
                               mmr=0.01)


def test_funding_rate_ignored_outside_bitmex_warns() -> None:
    with pytest.warns(UserWarning, match="BitMEX's maintenance reserve"):
        calc.liquidation_price(40_000, "long", leverage=10, funding_rate=0.0001)


# -- properties -----------------------------------------------------------------------------

INSTRUMENTS = ["simple", "linear", "inverse", "quanto", "binance:BTCUSDT", "bitmex:XBTUSD",
               "binance:BTCUSD_PERP", "bitmex:ETHUSD"]
entries = st.floats(min_value=100.0, max_value=100_000.0)
leverages = st.floats(min_value=1.5, max_value=50.0)


@settings(max_examples=150, deadline=None)
@given(entry=entries, leverage=leverages, name=st.sampled_from(INSTRUMENTS),
       side=st.sampled_from(["long", "short"]))
def test_liquidation_between_bankruptcy_and_entry(entry: float, leverage: float, name: str,
                                                  side: str) -> None:
    liq = calc.liquidation_price(entry, side, leverage=leverage, instrument=name)
    bank = calc.bankruptcy_price(entry, side, leverage=leverage, instrument=name)
    if side == "long":
        assert 0.0 < bank <= liq < entry
    else:
        assert entry < liq <= bank


@settings(max_examples=100, deadline=None)
@given(entry=entries, low=leverages, high=leverages, name=st.sampled_from(INSTRUMENTS),
       side=st.sampled_from(["long", "short"]))
def test_liquidation_moves_toward_entry_with_leverage(entry: float, low: float, high: float,
                                                      name: str, side: str) -> None:
    low, high = min(low, high), max(low, high)
    at_low = calc.liquidation_price(entry, side, leverage=low, instrument=name)
    at_high = calc.liquidation_price(entry, side, leverage=high, instrument=name)
    if side == "long":
        assert at_low <= at_high
    else:
        assert at_low >= at_high


@settings(max_examples=100, deadline=None)
@given(entry=entries, leverage=leverages, mmr=st.floats(min_value=0.0, max_value=0.02),
       side=st.sampled_from(["long", "short"]),
       name=st.sampled_from(["simple", "inverse", "quanto", "binance:BTCUSDT"]))
def test_margin_equals_maintenance_at_the_liquidation_price(entry: float, leverage: float,
                                                            mmr: float, side: str,
                                                            name: str) -> None:
    inst = get_instrument(name)
    size = 2.0 if inst.settlement == "linear" else 3_000.0
    liq = calc.liquidation_price(entry, side, leverage=leverage, size=size, instrument=inst,
                                 mmr=mmr)
    s = 1 if side == "long" else -1
    code, cs = inst.settlement_code, inst.contract_size
    wallet = k.notional(code, size, entry, cs) / leverage
    equity = wallet + k.upnl(code, s, size, entry, liq, cs)
    mm = k.maintenance_margin(inst.rules_code, code, s, size, entry, liq, cs, np.zeros(1),
                              np.array([mmr]), np.zeros(1), 0.0)
    assert equity == pytest.approx(mm, rel=1e-7, abs=1e-9 * wallet)


@settings(max_examples=100, deadline=None)
@given(entry=entries, exit_=entries, size=st.floats(min_value=0.001, max_value=1e4),
       name=st.sampled_from(["linear", "inverse", "quanto"]))
def test_pnl_antisymmetric_and_zero_at_entry(entry: float, exit_: float, size: float,
                                             name: str) -> None:
    long = calc.pnl(entry, exit_, size, "long", name)
    assert calc.pnl(entry, exit_, size, "short", name) == pytest.approx(-long)
    assert calc.pnl(entry, entry, size, "long", name) == 0.0
    assert (long > 0) == (exit_ > entry) or long == 0.0


@settings(max_examples=50, deadline=None)
@given(leverage=st.floats(min_value=1.0, max_value=1000.0))
def test_distance_matches_the_price(leverage: float) -> None:
    d = calc.liquidation_distance(leverage)
    liq = calc.liquidation_price(100.0, "long", leverage=leverage, mmr=0.0)
    assert d == pytest.approx((100.0 - liq) / 100.0, abs=1e-12)
