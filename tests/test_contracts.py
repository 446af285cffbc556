"""Exchange reference cases (``exchange_cases.json``) against the contract maths.

Every case id in the JSON has one checker below, registered with the rule it checks; the
test ids read ``<rule>::<case id>``. Checks go through ``backtest.calc`` (which only
validates and calls ``backtest.kernels.contracts``) and, where the case gives the pieces,
through the kernels directly. Cases that describe another project's shortcut (freqtrade's
liquidation buffer, its funding window, its interest rounding) are reproduced with the
exchange mechanics, and the checker says which.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from backtest import calc
from backtest.instruments.instrument import TierTable
from backtest.instruments.presets import get_instrument
from backtest.kernels import contracts as k

_CASE_FILES = (
    Path(__file__).parent / "data" / "exchange_cases.json",  # the copy shipped with the repo
    Path(__file__).parents[1].parent / "shared" / "reference" / "exchange_cases.json",
)


def _load_cases() -> dict[str, dict]:
    for path in _CASE_FILES:
        if path.is_file():
            return {case["id"]: case for case in json.loads(path.read_text(encoding="utf-8"))}
    return {}


CASES = _load_cases()
CHECKERS: dict[str, tuple[str, Callable[[dict], None]]] = {}


def checks(rule: str, *case_ids: str) -> Callable:
    """Register a checker for ``case_ids`` under the name of the rule it exercises."""

    def register(func: Callable[[dict], None]) -> Callable[[dict], None]:
        for case_id in case_ids:
            CHECKERS[case_id] = (rule, func)
        return func

    return register


def tol(case: dict, key: str = "abs") -> float:
    return float(case["tolerance"][key])


def one_row(mmr: float, cum: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(1), np.array([mmr]), np.array([cum])


# -- simple rules (Bybit as modelled by freqtrade, MoonXBT) ------------------------------

@checks("simple", "ft-bybit-iso-long-lev3", "ft-bybit-iso-long-lev10", "ft-bybit-iso-short-lev5")
def check_simple_bybit(case: dict) -> None:
    # liquidation_buffer is 0 in the case: freqtrade's buffer is a safety margin of its own,
    # not exchange mechanics, so the exchange formula is checked unbuffered.
    i = case["inputs"]
    got = calc.liquidation_price(i["entry_price_usdt"], case["side"], leverage=i["leverage"],
                                 size=i["amount"], instrument="simple",
                                 mmr=i["maint_margin_rate"])
    assert got == pytest.approx(case["expected"]["liquidation_price_usdt"], abs=tol(case))


@checks("simple", "moonxbt-iso-long-50x")
def check_simple_moonxbt(case: dict) -> None:
    i = case["inputs"]
    got = calc.liquidation_price(i["entry_price"], case["side"], leverage=i["leverage"],
                                 size=i["qty_btc"], mmr=i["mmr"])
    assert got == pytest.approx(case["expected"]["liquidation_price"], abs=tol(case))


# -- binance USDⓈ-M ------------------------------------------------------------------------

def _binance_equation_holds(price: float, side: int, size: float, entry: float,
                            wallet: float, mmr: float, cum: float) -> None:
    """At the liquidation price, margin + uPnL equals the maintenance margin (kernel MM)."""
    floor, m, c = one_row(mmr, cum)
    mm = k.maintenance_margin(k.RULES_BINANCE, k.LINEAR, side, size, entry, price, 1.0, floor,
                              m, c, 0.0)
    equity = wallet + k.upnl(k.LINEAR, side, size, entry, price, 1.0)
    assert equity == pytest.approx(mm, rel=1e-9, abs=1e-6)


@checks("binance-usdm-isolated", "ft-binance-iso-short-lev5-ep10-amt1",
        "ft-binance-iso-long-lev5-ep10-amt1", "ft-binance-iso-long-lev3-ep10-amt1")
def check_binance_freqtrade_isolated(case: dict) -> None:
    # Exchange formula with liquidation_buffer = 0 (freqtrade's buffer is its own shortcut).
    i = case["inputs"]
    expected = case["expected"]["liquidation_price_usdt"]
    kwargs = dict(size=i["amount_base"], instrument="binance", mmr=i["maint_margin_rate"],
                  maint_amount=i["maint_amount_cum_usdt"])
    got = calc.liquidation_price(i["entry_price_usdt"], case["side"],
                                 wallet=i["wallet_balance_usdt"], **kwargs)
    assert got == pytest.approx(expected, abs=tol(case))
    # The isolated wallet is the stake amount*entry/leverage: leverage= gives the same price.
    by_leverage = calc.liquidation_price(i["entry_price_usdt"], case["side"],
                                         leverage=i["leverage"], **kwargs)
    assert by_leverage == pytest.approx(expected, abs=tol(case))
    side = 1 if case["side"] == "long" else -1
    _binance_equation_holds(got, side, i["amount_base"], i["entry_price_usdt"],
                            i["wallet_balance_usdt"], i["maint_margin_rate"],
                            i["maint_amount_cum_usdt"])


@checks("binance-usdm-isolated", "binance-faq-eth-iso-long", "binance-faq-btc-iso-long")
def check_binance_faq_isolated(case: dict) -> None:
    i = case["inputs"]
    got = calc.liquidation_price(i["entry_price_usdt"], case["side"], size=i["position_base"],
                                 wallet=i["wallet_balance_usdt"], instrument="binance",
                                 mmr=i["maint_margin_rate"],
                                 maint_amount=i["maint_amount_cum_usdt"])
    # Binance displays the price rounded to 0.01; the tolerance covers that rounding.
    assert got == pytest.approx(case["expected"]["liquidation_price_usdt"], abs=tol(case))
    _binance_equation_holds(got, 1, i["position_base"], i["entry_price_usdt"],
                            i["wallet_balance_usdt"], i["maint_margin_rate"],
                            i["maint_amount_cum_usdt"])


@checks("binance-usdm-cross", "binance-faq-eth-cross-long", "binance-faq-btc-cross-long")
def check_binance_faq_cross(case: dict) -> None:
    i = case["inputs"]
    # The other positions' maintenance and uPnL, at their MARK price, from the kernels.
    other_mm = other_upnl = 0.0
    for pos in i["other_positions"]:
        floor, m, c = one_row(pos["maint_margin_rate"], pos["maint_amount_cum"])
        side = 1 if pos["side"] == "long" else -1
        other_mm += k.maintenance_margin(k.RULES_BINANCE, k.LINEAR, side,
                                         pos["position_base"], pos["entry_price"],
                                         pos["mark_price"], 1.0, floor, m, c, 0.0)
        other_upnl += k.upnl(k.LINEAR, side, pos["position_base"], pos["entry_price"],
                             pos["mark_price"], 1.0)
    assert other_mm == pytest.approx(i["TMM1_other_maint_margin_usdt"], abs=0.01)
    assert other_upnl == pytest.approx(i["UPNL1_other_unrealized_pnl_usdt"], abs=0.01)
    got = calc.liquidation_price(i["entry_price_usdt"], case["side"], size=i["position_base"],
                                 wallet=i["cross_wallet_balance_usdt"], instrument="binance",
                                 mmr=i["maint_margin_rate"],
                                 maint_amount=i["maint_amount_cum_usdt"],
                                 other_maintenance=i["TMM1_other_maint_margin_usdt"],
                                 other_upnl=i["UPNL1_other_unrealized_pnl_usdt"])
    assert got == pytest.approx(case["expected"]["liquidation_price_usdt"], abs=tol(case))


@checks("binance-tiers", "ft-mm-bracket-BTC-170.3")
def check_binance_bracket_lookup(case: dict) -> None:
    # The case's fixture is an older Binance table; its first row (0.4 %, cum 0, inclusive
    # floor) is the same in the 2024-10 table of our preset.
    tiers = get_instrument("binance:BTCUSDT").tiers
    row = tiers.row(case["inputs"]["value_looked_up"])
    assert tiers.mmr[row] == case["expected"]["maint_margin_rate"]
    assert tiers.cum[row] == case["expected"]["maint_amount_cum"]
    assert tiers.row(50_000.0) == 1 and tiers.row(49_999.99) == 0  # floors are inclusive


@checks("binance-tiers", "binance-btcusdt-brackets-2024-10")
def check_binance_btcusdt_table(case: dict) -> None:
    rows = case["expected"]["rows_[minNotional,maxNotional,mmr,maxLeverage,cum]"]
    tiers = get_instrument("binance:BTCUSDT").tiers
    assert tiers.effective_date == "2024-10-24"
    assert list(tiers.floor) == [r[0] for r in rows]
    assert list(tiers.mmr) == [r[2] for r in rows]
    assert list(tiers.max_leverage) == [r[3] for r in rows]
    assert list(tiers.cum) == [r[4] for r in rows]
    assert tiers.is_continuous()


# -- binance COIN-M ------------------------------------------------------------------------

@checks("binance-coinm", "binance-coinm-btcusd-cross-long")
def check_binance_coinm(case: dict) -> None:
    i = case["inputs"]
    expected = case["expected"]["liquidation_price_usd"]
    common = dict(size=i["contracts"], wallet=i["wallet_balance_btc"])
    # With the preset's bracket table: the row is re-chosen at the notional at the liquidation
    # price (~297.6 BTC -> 12.5 %, 11.605 BTC).
    preset = calc.liquidation_price(i["entry_price_usd"], case["side"],
                                    instrument="binance:BTCUSD_PERP", **common)
    assert preset == pytest.approx(expected, abs=tol(case))
    inst = get_instrument("binance:BTCUSD_PERP")
    assert inst.contract_size == i["contract_size_usd"]
    at_liq = k.notional(k.INVERSE, i["contracts"], preset, inst.contract_size)
    row = inst.tiers.row(at_liq)
    assert (inst.tiers.mmr[row], inst.tiers.cum[row]) == (i["maint_margin_rate"],
                                                          i["maint_amount_cum_btc"])
    # With the case's MMR/cum given directly.
    given = calc.liquidation_price(i["entry_price_usd"], case["side"],
                                   instrument="binance:BTCUSD_PERP",
                                   mmr=i["maint_margin_rate"],
                                   maint_amount=i["maint_amount_cum_btc"], **common)
    assert given == pytest.approx(expected, abs=tol(case))
    # The forum poster's 33578.86 came from cum = 11.81 of an older table (dates matter).
    stale = calc.liquidation_price(i["entry_price_usd"], case["side"],
                                   instrument="binance:BTCUSD_PERP",
                                   mmr=i["maint_margin_rate"], maint_amount=11.81, **common)
    assert stale == pytest.approx(33578.86, abs=0.05)


# -- bitmex --------------------------------------------------------------------------------

@checks("bitmex-isolated", "bitmex-testnet-xbtusd-long-1x")
def check_bitmex_testnet(case: dict) -> None:
    i, e = case["inputs"], case["expected"]
    inst = get_instrument("bitmex:XBTUSD")
    assert inst.taker_fee == i["commission_taker"]
    cost = i["abs_pos_cost_satoshi"]  # BitMEX's own rounding of 100 / 3582.5 XBT
    row = inst.tiers.row(cost / 1e8)
    assert inst.tiers.mmr[row] == i["maint_margin_req"]
    pos_init = math.ceil(i["init_margin_req"] * cost)
    pos_comm = math.ceil(inst.taker_fee * (cost + pos_init + i["pos_cross_satoshi"]))
    # MM from the kernel (bitmex rules: fixed at entry, funding reserve 0 for this long)...
    floor, mmr, cum, _ = inst.tiers.arrays()
    mm_xbt = k.maintenance_margin(k.RULES_BITMEX, k.LINEAR, 1, cost / 1e8, 1.0, 1.0, 1.0,
                                  floor, mmr, cum, i["inferred_funding_reserve_rate"])
    # ...plus the closing-fee reserve, which also sits in posMargin and so cancels in prices.
    pos_maint = math.ceil(round(mm_xbt * 1e8, 6)) + pos_comm
    assert abs(pos_init - e["posInit"]) <= tol(case, "satoshi_fields_abs")
    assert abs(pos_comm - e["posComm"]) <= tol(case, "satoshi_fields_abs")
    assert abs(pos_maint - e["posMaint"]) <= tol(case, "satoshi_fields_abs")
    assert abs(pos_init + pos_comm - e["posMargin"]) <= tol(case, "satoshi_fields_abs")
    kwargs = dict(leverage=1.0 / i["init_margin_req"], size=i["current_qty_contracts"],
                  instrument=inst)
    liq = calc.liquidation_price(i["avg_entry_price"], "long", **kwargs)
    bank = calc.bankruptcy_price(i["avg_entry_price"], "long", **kwargs)
    assert liq == e["liquidationPrice"] and bank == e["bankruptPrice"]


@checks("bitmex-isolated+funding-reserve", "bitmex-ui-xbtusd-long-25x-fr-0.000139")
def check_bitmex_ui_25x(case: dict) -> None:
    i = case["inputs"]
    inst = get_instrument("bitmex:XBTUSD")
    assert inst.tick_size == i["tick"]
    kwargs = dict(leverage=i["leverage"], size=i["contracts"], instrument=inst)
    got = calc.liquidation_price(i["entry_price"], case["side"], mmr=i["maint_margin_req"],
                                 funding_rate=i["funding_rate"], **kwargs)
    assert got == case["expected"]["liquidation_price"]
    # The preset's tier gives the same MMR; a negative rate is received by a long: no reserve.
    assert calc.liquidation_price(i["entry_price"], "long", funding_rate=i["funding_rate"],
                                  **kwargs) == got
    assert calc.liquidation_price(i["entry_price"], "long", **kwargs) == got
    # The same rate with the other sign is paid by the long and reserved: liq moves up.
    assert calc.liquidation_price(i["entry_price"], "long", funding_rate=-i["funding_rate"],
                                  **kwargs) > got


@checks("bitmex-risk-limits", "bitmex-risk-limit-step-example")
def check_bitmex_risk_limits(case: dict) -> None:
    i, e = case["inputs"], case["expected"]
    table = TierTable.risk_limit_steps(i["base_mm"], i["base_im"], i["base_risk_limit_xbt"],
                                       i["step_xbt"], len(e["table"]) - 1,
                                       effective_date="2021-08-31", source=case["source"])
    for n, (_, mm, im) in enumerate(e["table"]):
        assert table.mmr[n] == pytest.approx(mm, abs=tol(case))
        assert table.initial_margin_rate(n) == pytest.approx(im, abs=tol(case))
    assert table.floor == (0.0, 200.0, 350.0, 500.0)
    before = table.row(i["position_value_before_xbt"])
    after = table.row(i["position_value_after_xbt"])
    assert before == 0 and after == e["steps_after"]
    assert table.mmr[before] == pytest.approx(e["mm_before"], abs=tol(case))
    assert table.initial_margin_rate(before) == pytest.approx(e["im_before"], abs=tol(case))
    assert i["position_value_before_xbt"] * table.mmr[before] == pytest.approx(
        e["mm_before_xbt"], abs=tol(case))
    assert table.mmr[after] == pytest.approx(e["mm_after"], abs=tol(case))
    assert table.initial_margin_rate(after) == pytest.approx(e["im_after"], abs=tol(case))
    assert get_instrument("bitmex:XBTUSD").tiers.arrays()[1] == pytest.approx(table.mmr)


@checks("bitmex-preset-margins", "bitmex-funding-cap")
def check_bitmex_funding_cap(case: dict) -> None:
    # Funding rates are data to the backtester (it never caps them); this checks that the
    # XBTUSD preset's base margins are the ones the cap case is built on.
    tiers = get_instrument("bitmex:XBTUSD").tiers
    assert tiers.initial_margin_rate(0) == pytest.approx(case["inputs"]["initial_margin_rate"])
    assert tiers.mmr[0] == pytest.approx(case["inputs"]["maint_margin_rate"])
    cap = 0.75 * (tiers.initial_margin_rate(0) - tiers.mmr[0])
    assert cap == pytest.approx(case["expected"]["max_abs_funding_rate"], abs=tol(case))


@checks("bitmex-quanto", "bitmex-quanto-ethusd-initial-margin")
def check_bitmex_quanto(case: dict) -> None:
    i = case["inputs"]
    inst = get_instrument("bitmex:ETHUSD")
    assert inst.settlement == "quanto" and inst.account_currency == "XBT"
    assert inst.contract_size == i["multiplier_xbt_per_usd"]
    value = k.notional(inst.settlement_code, i["contracts"], i["price_usd"], inst.contract_size)
    assert value == pytest.approx(5.0, abs=tol(case))  # XBT, independent of BTC/USD
    assert 1.0 / inst.max_leverage_at(value) == pytest.approx(i["initial_margin_rate"])
    initial_margin = value / inst.max_leverage_at(value)
    assert initial_margin == pytest.approx(case["expected"]["initial_margin_xbt"],
                                           abs=tol(case))
    # PnL = (exit - entry) * multiplier * contracts, in XBT.
    assert calc.pnl(500, 510, i["contracts"], "long", inst) == pytest.approx(0.1, abs=1e-12)


@checks("bitmex-inverse-pnl", "bitmex-xbtusd-inverse-pnl-example")
def check_bitmex_inverse_pnl(case: dict) -> None:
    i, e = case["inputs"], case["expected"]
    got = calc.pnl(i["entry_price_usd"], i["exit_price_usd"], i["contracts"], case["side"],
                   "bitmex:XBTUSD")
    assert got == pytest.approx(e["pnl_xbt"], abs=tol(case))
    assert got - i["funding_paid_xbt"] == pytest.approx(e["total_profit_after_funding_xbt"],
                                                        abs=tol(case))


@checks("funding-bitmex", "bitmex-xbtusd-funding-example")
def check_bitmex_funding(case: dict) -> None:
    i, e = case["inputs"], case["expected"]
    inst = get_instrument("bitmex:XBTUSD")
    value = k.notional(inst.settlement_code, i["contracts"], i["mark_price_usd"],
                       inst.contract_size)
    assert value == pytest.approx(e["position_value_xbt"], abs=tol(case))
    # The example's rate: interest component (quote - base) / intervals per day, premium 0.
    rate = (i["quote_interest_rate_per_day"] - i["base_interest_rate_per_day"]) \
        / i["funding_intervals_per_day"] + i["premium_index"]
    assert rate == pytest.approx(e["funding_rate"], abs=tol(case))
    paid = calc.funding_payment(i["contracts"], i["mark_price_usd"], rate, "long", inst)
    assert paid == pytest.approx(e["funding_paid_by_long_xbt"], abs=tol(case))
    assert calc.funding_payment(i["contracts"], i["mark_price_usd"], rate, "short",
                                inst) == pytest.approx(-paid)


# -- funding, profit and interest (freqtrade cases; exchange mechanics) ------------------

@checks("funding-sign", "ft-funding-single-10-0.0001-2.0")
def check_funding_single(case: dict) -> None:
    i, e = case["inputs"], case["expected"]
    # freqtrade reports +0.002 for the short (received); ours is paid > 0, so -0.002.
    got = calc.funding_payment(i["amount"], i["mark_price_open"], i["funding_rate"], "short")
    assert -got == pytest.approx(e["funding_fee_short"], abs=tol(case))
    assert -got * i["kraken_time_in_ratio"] == pytest.approx(e["kraken_funding_fee_short"],
                                                             abs=tol(case))


@checks("funding-window-spec6", "ft-funding-window-000000-080000-30")
def check_funding_window(case: dict) -> None:
    i, e = case["inputs"], case["expected"]
    rows = list(i["funding_rows"].values())

    def paid(side: str, events: list[dict]) -> float:
        return sum(calc.funding_payment(i["amount"], r["mark_open"], r["funding_rate"], side)
                   for r in events)

    # Each payment is side * amount * mark_open * rate; freqtrade sums both events in
    # [open, close] and reports a payer negative: its numbers are ours with the sign flipped.
    assert -paid("short", rows) == pytest.approx(e["funding_fees_short"], abs=tol(case))
    assert -paid("long", rows) == pytest.approx(e["funding_fees_long"], abs=tol(case))
    # Exchange mechanics (SPEC §6): a position opened at the 00:00 open was not held at the
    # 00:00 funding time and does not pay it; it is still held at 08:00 (closed by a fill at
    # that bar's open, after funding), so only the 08:00 event applies. Negative rate:
    # shorts pay longs.
    spec_short = paid("short", rows[1:])
    assert spec_short == pytest.approx(30.0 * 2.77 * 3e-6, abs=tol(case))
    assert spec_short > 0


@checks("pnl+fees+funding", "ft-profit-futures-long-lev3-close2.1-ff1")
def check_futures_profit(case: dict) -> None:
    i, e = case["inputs"], case["expected"]
    gross = calc.pnl(i["open_rate"], i["close_rate"], i["amount"], case["side"])
    fees = (i["amount"] * i["open_rate"] * i["fee_open"]
            + i["amount"] * i["close_rate"] * i["fee_close"])
    funding_received = i["funding_fees"]  # freqtrade's +1 is money received by the trader
    profit = gross - fees + funding_received
    assert profit == pytest.approx(e["profit_abs"], abs=tol(case))
    margin_with_fee = i["amount"] * i["open_rate"] * (1 + i["fee_open"]) / i["leverage"]
    assert profit / margin_with_fee == pytest.approx(e["profit_ratio"], abs=tol(case))


@checks("interest-per-started-hour", "ft-interest-binance-0.00025-5.0h")
def check_interest_freqtrade(case: dict) -> None:
    i = case["inputs"]
    hourly = i["rate"] / 24  # Binance quotes a daily rate
    # Borrow aligned on the hour: started clock hours == ceil(duration) == 5.
    got = calc.borrow_interest(i["borrowed"], hourly, "2021-09-01 00:00", "2021-09-01 05:00")
    assert got == pytest.approx(case["expected"]["interest"], abs=tol(case))
    # Not aligned: Binance charges every started clock hour (6 here); freqtrade's
    # ceil(duration) shortcut would charge 5.
    shifted = calc.borrow_interest(i["borrowed"], hourly, "2021-09-01 00:30",
                                   "2021-09-01 05:30")
    assert shifted == pytest.approx(i["borrowed"] * hourly * 6, abs=tol(case))


@checks("interest-per-started-hour", "binance-margin-interest-legacy")
def check_interest_binance(case: dict) -> None:
    i, e = case["inputs"], case["expected"]
    hourly = i["daily_rate"] / 24
    start, end = f"2024-01-01 {i['borrow_time']}", f"2024-01-01 {i['repay_time']}"
    got = calc.borrow_interest(i["borrowed_usdt"], hourly, start, end)
    assert got / (i["borrowed_usdt"] * hourly) == pytest.approx(e["hours_charged"])
    assert got == pytest.approx(e["interest_usdt"], abs=tol(case))


@checks("spot-margin-level", "binance-cross-margin-level-thresholds")
def check_spot_margin_level(case: dict) -> None:
    e = case["expected"]
    inst = get_instrument("binance-margin:BTCUSDT")
    assert inst.kind == "spot_margin" and inst.max_leverage == 3.0
    assert inst.liquidation_margin_level == e["cross3x_liquidation_at_or_below"]
    # At the calculator's liquidation price the margin level (assets / liabilities,
    # interest excluded) is exactly the threshold, for a long and a short at 3x.
    entry, lev, size = 100.0, 3.0, 2.0
    margin = size * entry / lev
    long_liq = calc.liquidation_price(entry, "long", leverage=lev, size=size, instrument=inst)
    assert size * long_liq / (size * entry - margin) == pytest.approx(1.1)
    short_liq = calc.liquidation_price(entry, "short", leverage=lev, size=size, instrument=inst)
    assert (margin + size * entry) / (size * short_liq) == pytest.approx(1.1)
    pro = get_instrument("binance-margin-5x:BTCUSDT")
    assert pro.max_leverage == 5.0
    assert pro.liquidation_margin_level == e["cross5x_liquidation_at_or_below"]
    margin = size * entry / 5.0
    long_liq = calc.liquidation_price(entry, "long", leverage=5.0, size=size, instrument=pro)
    assert size * long_liq / (size * entry - margin) == pytest.approx(1.1)
    with pytest.raises(ValueError, match="leverage"):
        calc.liquidation_price(entry, "long", leverage=6.0, size=size, instrument=pro)


_NOT_MODELLED = "is data to the backtester (read from files), not computed by it"


@checks("not-modelled", "bitmex-ondousdt-funding-rate-clamp")
def check_funding_rate_formation(case: dict) -> None:
    pytest.skip(f"{case['id']}: the funding rate {_NOT_MODELLED} (SPEC §2, §6)")


@checks("not-modelled", "gate-delivery-fair-price")
def check_fair_price(case: dict) -> None:
    pytest.skip(f"{case['id']}: the mark (fair) price {_NOT_MODELLED} (SPEC §2)")


# -- the parametrized test -----------------------------------------------------------------

def _params() -> list:
    if not CASES:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"exchange_cases.json not found in {[str(p) for p in _CASE_FILES]}"))]
    return [pytest.param(case_id, id=f"{CHECKERS.get(case_id, ('unchecked',))[0]}::{case_id}")
            for case_id in CASES]


@pytest.mark.parametrize("case_id", _params())
def test_exchange_case(case_id: str) -> None:
    if case_id not in CHECKERS:
        pytest.fail(f"case {case_id!r} has no checker: add one to tests/test_contracts.py")
    _, check = CHECKERS[case_id]
    check(CASES[case_id])


def test_every_checker_has_a_case() -> None:
    if not CASES:
        pytest.skip("exchange_cases.json not found")
    assert sorted(set(CHECKERS) - set(CASES)) == []


def test_repo_copy_matches_shared_reference() -> None:
    repo_copy, shared = _CASE_FILES
    if not (repo_copy.is_file() and shared.is_file()):
        pytest.skip("needs both tests/data/exchange_cases.json and ../shared/reference")
    assert json.loads(repo_copy.read_text("utf-8")) == json.loads(shared.read_text("utf-8"))


# -- kernel identities the cases rely on ---------------------------------------------------

@pytest.mark.parametrize("settlement", [k.LINEAR, k.INVERSE, k.QUANTO],
                         ids=["linear", "inverse", "quanto"])
@pytest.mark.parametrize("side", [1, -1], ids=["long", "short"])
def test_kernel_solve_price_satisfies_its_equation(settlement: int, side: int) -> None:
    # 3 units at 2,000 with 10x (linear), 5x (inverse: 0.15 BTC) and 5x (quanto: 60 coin).
    size, entry = 3.0, 2_000.0
    cs, wallet = {k.LINEAR: (1.0, 600.0), k.INVERSE: (100.0, 0.03),
                  k.QUANTO: (0.01, 12.0)}[settlement]
    a, b = 0.02, 0.01 * k.notional(settlement, size, entry, cs)
    price = k.solve_price(settlement, side, size, entry, wallet, cs, a, b)
    lhs = wallet + k.upnl(settlement, side, size, entry, price, cs)
    rhs = a * k.notional(settlement, size, price, cs) + b
    assert lhs == pytest.approx(rhs, rel=1e-9)
    assert k.size_for_notional(settlement, k.notional(settlement, size, price, cs), price,
                               cs) == pytest.approx(size)


def test_kernel_round_toward_entry() -> None:
    assert k.round_toward_entry(1795.74, 3582.5, 1, 0.5) == 1796.0
    assert k.round_toward_entry(41884.82, 40000.0, -1, 0.5) == 41884.5
    assert k.round_toward_entry(1796.0, 3582.5, 1, 0.5) == 1796.0  # already on the tick
    assert k.round_toward_entry(123.456, 130.0, 1, 0.0) == 123.456  # no tick, no rounding
    # Within a tick of the entry, rounding would cross it: the price stays unrounded.
    assert k.round_toward_entry(2.7, 3.0, 1, 0.5) == 2.7
    assert k.round_toward_entry(3.2, 3.0, -1, 0.5) == 3.2


@pytest.mark.parametrize("settlement, cs", [(k.LINEAR, 1.0), (k.INVERSE, 100.0),
                                            (k.QUANTO, 1e-6)])
@pytest.mark.parametrize("side", [1, -1])
def test_price_for_pnl_inverts_upnl(settlement, cs, side):
    entry, size = 40_000.0, 3.0
    for exit_price in (20_000.0, 39_999.5, 40_000.0, 52_000.0):
        pnl = k.upnl(settlement, side, size, entry, exit_price, cs)
        assert k.price_for_pnl(settlement, side, size, entry, pnl, cs) == \
            pytest.approx(exit_price, rel=1e-9)


def test_price_for_pnl_of_an_unreachable_inverse_gain_is_inf():
    # a long inverse gains at most size * cs / entry as the price goes to infinity
    most = 3.0 * 100.0 / 40_000.0
    assert k.price_for_pnl(k.INVERSE, 1, 3.0, 40_000.0, 2 * most, 100.0) == math.inf
    assert k.price_for_pnl(k.INVERSE, -1, 3.0, 40_000.0, -2 * most, 100.0) == math.inf
    # at the limit itself, float rounding leaves 1/E - pnl/(q cs) at 0 or a few ulps
    assert k.price_for_pnl(k.INVERSE, 1, 3.0, 40_000.0, most, 100.0) > 1e15
