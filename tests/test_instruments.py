"""Instruments, tier tables and presets: loading, table continuity, codes, validation."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest

from backtest.instruments.instrument import Instrument
from backtest.instruments.presets import get_instrument, list_instruments
from backtest.instruments.tiers import TierTable
from backtest.kernels import contracts as k

VENUE_PRESETS = ["bitmex:XBTUSD", "bitmex:ETHUSD", "binance:BTCUSDT", "binance:BTCUSD_PERP",
                 "binance-margin:BTCUSDT", "linear"]


def make(**changes: object) -> Instrument:
    """A valid linear perpetual with ``changes`` applied (validation runs in __init__)."""
    fields = dict(symbol="TEST", kind="perpetual", settlement="linear",
                  tiers=TierTable.single(0.005), max_leverage=100.0, rules="simple",
                  base_currency="BTC", quote_currency="USDT")
    fields.update(changes)
    return Instrument(**fields)  # type: ignore[arg-type]


# -- presets ----------------------------------------------------------------------------------

def test_list_contains_the_spec_presets_and_rule_names() -> None:
    names = list_instruments()
    for name in VENUE_PRESETS + ["simple", "binance", "bitmex", "inverse", "quanto"]:
        assert name in names
    assert names == sorted(names)


@pytest.mark.parametrize("name", sorted(set(list_instruments())))
def test_every_preset_loads_with_a_dated_sourced_table(name: str) -> None:
    inst = get_instrument(name)
    assert isinstance(inst, Instrument)
    date.fromisoformat(inst.tiers.effective_date)
    assert inst.tiers.source.strip()
    floor, mmr, cum, lev = inst.tiers.arrays()
    for a in (floor, mmr, cum, lev):
        assert a.dtype == np.float64 and a.flags.c_contiguous and not a.flags.writeable
    assert inst.tiers.arrays()[0] is floor  # cached
    assert inst.max_leverage >= 1.0


def test_rule_names_map_to_representative_instruments() -> None:
    assert get_instrument("simple") == Instrument.simple()
    assert get_instrument("binance") is get_instrument("binance:BTCUSDT")
    assert get_instrument("bitmex") is get_instrument("bitmex:XBTUSD")


@pytest.mark.parametrize("name", ["binance:BTCUSDT", "binance:BTCUSD_PERP"])
def test_binance_tables_are_continuous(name: str) -> None:
    t = get_instrument(name).tiers
    for n in range(1, len(t)):
        assert t.cum[n] == pytest.approx(t.cum[n - 1] + t.floor[n] * (t.mmr[n] - t.mmr[n - 1]),
                                         rel=1e-12, abs=1e-12)
    assert t.is_continuous()
    # MM = notional*mmr - cum does not jump at any floor.
    for n in range(1, len(t)):
        below = t.floor[n] * t.mmr[n - 1] - t.cum[n - 1]
        above = t.floor[n] * t.mmr[n] - t.cum[n]
        assert above == pytest.approx(below, rel=1e-12, abs=1e-9)


def test_bitmex_tables_are_risk_limit_steps() -> None:
    t = get_instrument("bitmex:XBTUSD").tiers
    assert not t.is_continuous()  # BitMEX steps jump by design (cum = 0)
    assert t.floor == (0.0, 200.0, 350.0, 500.0)
    assert [1 / lev for lev in t.max_leverage] == pytest.approx([0.01, 0.015, 0.02, 0.025])
    eth = get_instrument("bitmex:ETHUSD")
    assert eth.tiers.mmr == (0.01,) and eth.max_leverage == 50.0


def test_preset_fields() -> None:
    xbt = get_instrument("bitmex:XBTUSD")
    assert (xbt.settlement, xbt.rules, xbt.contract_size, xbt.tick_size) == \
        ("inverse", "bitmex", 1.0, 0.5)
    assert (xbt.taker_fee, xbt.maker_fee, xbt.max_leverage) == (0.00075, -0.00025, 100.0)
    assert xbt.account_currency == "XBT" and xbt.funding_interval_hours == 8.0
    eth = get_instrument("bitmex:ETHUSD")
    assert (eth.settlement, eth.contract_size, eth.tick_size) == ("quanto", 1e-6, 0.05)
    assert eth.account_currency == "XBT" and eth.base_currency == "ETH"
    usdt = get_instrument("binance:BTCUSDT")
    assert (usdt.tick_size, usdt.lot_size, usdt.taker_fee, usdt.maker_fee) == \
        (0.1, 0.001, 0.0005, 0.0002)
    assert usdt.account_currency == "USDT" and usdt.max_leverage == 125.0
    coinm = get_instrument("binance:BTCUSD_PERP")
    assert (coinm.settlement, coinm.contract_size, coinm.account_currency) == \
        ("inverse", 100.0, "BTC")
    margin = get_instrument("binance-margin:BTCUSDT")
    assert (margin.kind, margin.max_leverage, margin.liquidation_margin_level) == \
        ("spot_margin", 3.0, 1.1)
    assert margin.borrow_rate == pytest.approx(0.0002 / 24)


def test_codes_match_the_kernel_constants() -> None:
    assert get_instrument("linear").settlement_code == k.LINEAR
    assert get_instrument("bitmex:XBTUSD").settlement_code == k.INVERSE
    assert get_instrument("bitmex:ETHUSD").settlement_code == k.QUANTO
    assert get_instrument("simple").rules_code == k.RULES_SIMPLE
    assert get_instrument("binance").rules_code == k.RULES_BINANCE
    assert get_instrument("bitmex").rules_code == k.RULES_BITMEX
    assert get_instrument("linear").kind_code == 0
    assert get_instrument("binance-margin:BTCUSDT").kind_code == 2
    future = Instrument.simple(kind="future", expiry="2024-12-27 08:00+00:00")
    assert future.kind_code == 1
    assert future.expiry_ns == pd.Timestamp("2024-12-27 08:00", tz="UTC").value


def test_max_leverage_at_uses_the_tier_row() -> None:
    usdt = get_instrument("binance:BTCUSDT")
    assert usdt.max_leverage_at(10_000) == 125.0
    assert usdt.max_leverage_at(1_000_000) == 75.0
    assert usdt.max_leverage_at(2e9) == 1.0


# -- lookup -----------------------------------------------------------------------------------

def test_get_instrument_passes_instruments_through_and_ignores_case() -> None:
    inst = Instrument.simple(mmr=0.01)
    assert get_instrument(inst) is inst
    assert get_instrument("BITMEX:xbtusd") is get_instrument("bitmex:XBTUSD")


def test_unknown_name_suggests_close_matches_and_lists_all() -> None:
    with pytest.raises(ValueError) as info:
        get_instrument("binance:BTCUSTD")
    message = str(info.value)
    assert "Did you mean 'binance:BTCUSDT'" in message
    for name in list_instruments():
        assert name in message
    with pytest.raises(TypeError, match="preset name"):
        get_instrument(None)  # type: ignore[arg-type]


# -- Instrument.simple ------------------------------------------------------------------------

def test_simple_defaults() -> None:
    inst = Instrument.simple()
    assert (inst.rules, inst.settlement, inst.kind) == ("simple", "linear", "perpetual")
    assert inst.tiers.mmr == (0.005,) and inst.max_leverage == 200.0
    assert Instrument.simple(mmr=0.0).max_leverage == 1000.0
    assert Instrument.simple(mmr=0.0005).max_leverage == 1000.0  # capped
    assert Instrument.simple(max_leverage=20).max_leverage == 20.0
    assert Instrument.simple(settlement="inverse").account_currency == "BTC"
    assert Instrument.simple(settlement="quanto").account_currency == "BTC"
    spot = Instrument.simple(kind="spot_margin")
    assert (spot.borrow_rate, spot.liquidation_margin_level, spot.max_leverage) == \
        (0.0, 1.1, 3.0)


def test_simple_future_expiry_is_utc() -> None:
    inst = Instrument.simple(kind="future",
                             expiry=pd.Timestamp("2024-12-27 09:00", tz="Europe/Paris"))
    assert inst.expiry == pd.Timestamp("2024-12-27 08:00", tz="UTC")
    assert str(inst.expiry.tz) == "UTC"


# -- validation messages ------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, pattern", [
    ("kind", "perp", r"kind must be one of .*Did you mean 'perpetual'"),
    ("settlement", "inverted", r"settlement must be one of .*'inverse'"),
    ("rules", "binanse", r"rules must be one of .*Did you mean 'binance'"),
    ("taker_fee", 5, r"taker_fee=5 .*Did you pass basis points/percent"),
    ("maker_fee", 1.0, r"maker_fee.*basis points/percent"),
    ("maker_fee", -0.02, r"maker_fee must be >= -0.01"),
    ("contract_size", 0.0, r"contract_size must be > 0"),
    ("tick_size", -0.5, r"tick_size must be >= 0"),
    ("max_leverage", 0.5, r"max_leverage must be >= 1"),
    ("max_leverage", 500.0, r"would liquidate at entry.*max_leverage <= 1/mmr = 200"),
    ("funding_interval_hours", 0.0, r"funding_interval_hours must be > 0"),
    ("symbol", "", r"symbol must be a non-empty string"),
    ("tiers", None, r"tiers must be a TierTable"),
    ("taker_fee", "5bp", r"taker_fee must be a number"),
])
def test_instrument_validation(field: str, value: object, pattern: str) -> None:
    with pytest.raises((ValueError, TypeError), match=pattern):
        make(**{field: value})


def test_kind_specific_fields() -> None:
    with pytest.raises(ValueError, match=r"expiry is required for kind='future'"):
        make(kind="future")
    with pytest.raises(ValueError, match="no time zone"):
        make(kind="future", expiry="2024-12-27 08:00")
    with pytest.raises(ValueError, match="expiry is required for kind='future' and not allowed"):
        make(expiry=pd.Timestamp("2024-12-27", tz="UTC"))
    with pytest.raises(ValueError, match="funding_interval_hours applies to perpetuals only"):
        make(kind="future", expiry="2024-12-27Z", funding_interval_hours=8)
    with pytest.raises(ValueError, match=r"borrow_rate is required for kind='spot_margin'"):
        make(kind="spot_margin", max_leverage=3.0, liquidation_margin_level=1.1)
    with pytest.raises(ValueError, match="borrow_rate is required .* and not allowed"):
        make(borrow_rate=0.0001)
    spot = dict(kind="spot_margin", max_leverage=3.0, borrow_rate=0.0001)
    with pytest.raises(ValueError, match="liquidation_margin_level must be > 1"):
        make(liquidation_margin_level=1.0, **spot)
    with pytest.raises(ValueError, match="hourly interest rate.*0.0002/24"):
        make(liquidation_margin_level=1.1, **{**spot, "borrow_rate": 2.0})
    with pytest.raises(ValueError, match="spot_margin instruments are linear"):
        make(liquidation_margin_level=1.1, settlement="inverse", **spot)
    with pytest.raises(ValueError, match="quanto instrument needs settlement_currency"):
        make(settlement="quanto")


def test_replace_validates_and_suggests() -> None:
    base = get_instrument("binance:BTCUSDT")
    cheaper = base.replace(taker_fee=0.0004)
    assert cheaper.taker_fee == 0.0004 and base.taker_fee == 0.0005
    assert cheaper.tiers is base.tiers
    with pytest.raises(ValueError, match="basis points"):
        base.replace(taker_fee=4)
    with pytest.raises(TypeError, match=r"unknown field 'taker'.*'taker_fee'"):
        base.replace(taker=0.0004)


def test_frozen_and_hashable() -> None:
    inst = get_instrument("bitmex:XBTUSD")
    with pytest.raises(dataclasses.FrozenInstanceError):
        inst.taker_fee = 0.0  # type: ignore[misc]
    assert hash(inst) == hash(dataclasses.replace(inst))
    assert inst == dataclasses.replace(inst)


# -- TierTable ----------------------------------------------------------------------------------

def table(**changes: object) -> TierTable:
    fields = dict(effective_date="2024-10-24", source="test", floor=(0, 100), mmr=(0.01, 0.02),
                  cum=(0, 1), max_leverage=(50, 25))
    fields.update(changes)
    return TierTable(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("changes, pattern", [
    (dict(floor=(10, 100)), r"floor\[0\] must be 0"),
    (dict(floor=(0, 0)), r"strictly ascending"),
    (dict(mmr=(0.01,)), r"same, non-zero length"),
    (dict(floor=(), mmr=(), cum=(), max_leverage=()), r"non-zero length"),
    (dict(mmr=(0.5, 2.0), max_leverage=(2, 1)), r"mmr\[1\]=2.0 .*basis points/percent"),
    (dict(cum=(0, -1)), r"cum\[1\] .* must be >= 0"),
    (dict(max_leverage=(50, 0)), r"max_leverage\[1\] must be > 0"),
    (dict(max_leverage=(200, 25)), r"row 0 .* liquidated at entry"),
    (dict(effective_date="Oct 2024"), r"effective_date must be an ISO date"),
    (dict(source=""), r"source must be a non-empty string"),
    (dict(mmr="0.01"), r"mmr must be a sequence"),
    (dict(cum=(0, float("nan"))), r"cum\[1\] must be finite"),
])
def test_tier_table_validation(changes: dict, pattern: str) -> None:
    with pytest.raises((ValueError, TypeError), match=pattern):
        table(**changes)


def test_tier_rows_and_conversion() -> None:
    t = table(floor=[0, 100], mmr=np.array([0.01, 0.02]))
    assert t.floor == (0.0, 100.0) and isinstance(t.mmr, tuple)
    assert (t.row(0), t.row(99.9), t.row(100), t.row(1e12)) == (0, 0, 1, 1)
    rows = TierTable.from_rows([(0, 0.01, 0, 50), (100, 0.02, 1, 25)],
                               effective_date="2024-10-24", source="test")
    assert rows == t


def test_single_and_risk_limit_steps() -> None:
    one = TierTable.single(0.004, maint_amount=1.0)
    assert (one.floor, one.mmr, one.cum, one.max_leverage) == ((0.0,), (0.004,), (1.0,), (250.0,))
    steps = TierTable.risk_limit_steps(0.005, 0.01, 200, 150, 3, effective_date="2021-08-31",
                                       source="test")
    assert steps.mmr == pytest.approx((0.005, 0.01, 0.015, 0.02))
    assert [steps.initial_margin_rate(n) for n in range(4)] == \
        pytest.approx([0.01, 0.015, 0.02, 0.025])
    with pytest.raises(ValueError, match="n_steps must be an int"):
        TierTable.risk_limit_steps(0.005, 0.01, 200, 150, -1, effective_date="2021-08-31",
                                   source="test")
