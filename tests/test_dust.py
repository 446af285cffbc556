"""The dust a liquidation leaves does not trade (issue 12, item 13): an entry below the
instrument's minimum order (one lot; 1e-8 units without lots) is ``size_zero``, in the
kernel and in the oracle alike (docs/semantics.md, "Sizing")."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_reference_agreement import SIGNAL_NAMES, build_market, compare

import backtest as bt

N = 12


def _case(size: float, size_type: str = "margin") -> dict:
    close = np.full(N, 40_000.0)
    low = close * 0.999
    low[4] = 30_000.0                         # the crash bar: a 10x long is liquidated
    bars = {"open": close.copy(), "high": close * 1.001, "low": low, "close": close.copy()}
    bars.update({f"mark_{k}": v.copy() for k, v in list(bars.items())})
    signals = {name: [False] * N for name in SIGNAL_NAMES}
    for t in (0, 5, 7, 9):                    # enter, then try again after the liquidation
        signals["entries"][t] = True
    return {"n": N, "bars": {k: list(v) for k, v in bars.items()}, "signals": signals,
            "funding": None, "instrument": "simple-linear",
            "simple_kwargs": {"taker_fee": 0.0005, "mmr": 0.005},
            "params": {"leverage": 10, "size": size, "size_type": size_type,
                       "margin_mode": "isolated", "initial_capital": 10_000.0}}


def _run(case: dict):
    m = build_market(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.run(m, **{k: np.asarray(v) for k, v in case["signals"].items()},
                      **case["params"])


def test_the_dust_after_a_liquidation_opens_no_trade():
    # Posting all but 2e-9 of the wallet leaves 2e-5 USDT after the bankruptcy fill: above
    # the ruin threshold (1e-9 of the capital), far below a satoshi of BTC at 40,000.
    case = _case(1.0 - 2e-9)
    r = _run(case)
    assert r.trades["exit_reason"].tolist() == ["liquidation"]
    assert r.stats["n_liquidations"] == 1 and not r.stats["ruined"]
    assert r.equity.iloc[-1] == pytest.approx(2e-5, rel=0.01)
    rejected = r.events[r.events["kind"] == "size_zero"]
    assert len(rejected) == 3 and (rejected["value"] < 1e-8).all()
    compare(case)                              # the oracle follows the same rule


@pytest.mark.parametrize(("qty", "trades"), [(5e-9, 0), (1e-8, 1)])
def test_the_minimum_order_without_lots_is_1e_8_units(qty: float, trades: int):
    case = _case(qty, "qty")
    case["signals"]["entries"] = [t == 0 for t in range(N)]
    r = _run(case)
    assert len(r.trades) == trades
    compare(case)


def test_a_lot_is_the_minimum_order_of_a_preset():
    inst = bt.get_instrument("binance:BTCUSDT")
    index = pd.date_range("2024-01-01", periods=6, freq="1h", tz="UTC")
    bars = pd.DataFrame({"open": 40_000.0, "high": 40_100.0, "low": 39_900.0,
                         "close": 40_000.0, "volume": 1.0}, index=index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = bt.load_market(bars, funding=0, instrument=inst)
    entry = np.arange(6) == 0
    assert len(bt.run(m, entries=entry, size=inst.lot_size * 0.999, size_type="qty").trades) == 0
    assert len(bt.run(m, entries=entry, size=inst.lot_size, size_type="qty").trades) == 1
