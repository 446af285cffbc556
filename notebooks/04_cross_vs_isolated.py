# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
# ---

# %% [markdown]
# # Cross vs isolated margin: when one loss eats another position's collateral
#
# The leverage guide this project started from (its section "4. Isolated vs Cross Margin")
# puts it this way:
#
# > **Isolated Margin (Recommended):** Limits risk to the collateral assigned to that
# > specific trade. [...]
# >
# > **Cross Margin (Dangerous):** Uses your entire account balance as collateral for all
# > positions. If one position fails, the exchange draws from your main balance to prevent
# > liquidation. Sounds useful—until a market-wide crash causes your loss on your BTC long to
# > eat the collateral meant for your ETH trade.
#
# This walkthrough replays that warning three times: on two tiny hand-computable markets
# ([`docs/examples.md`](../docs/examples.md) §1), across a grid of margin mode × leverage,
# and on real data with a carry trade (short perpetual, long dated future) over Q1 2024. It
# runs from any folder (the data ships inside the package); every number below is computed,
# and the few quoted in the text are asserted by the tests (`tests/test_portfolio.py`,
# `tests/test_portfolio_sweep.py`, `tests/test_readme.py`, `tests/test_notebooks.py`).

# %%
import warnings

import numpy as np
import pandas as pd

import backtest as bt

# %% [markdown]
# ## 1. Two longs, one crash
#
# A 10,000 USDT wallet, two 10× longs of 25,000 USDT notional each (2,500 of margin each):
# 250 BTC at 100 and 2,500 ETH at 10. Maintenance margin is 0.5 % of the entry notional
# (`bt.Instrument.simple(mmr=0.005)`), no fees, no funding. Inside bar 2 BTC's price (the
# mark, here equal to the last price) falls to 60 before closing at 80; ETH does not move.

# %%
INST = bt.Instrument.simple(mmr=0.005)


def tiny_market(close: list[float], low: list[float], high: list[float]) -> bt.Market:
    """Hourly bars from 2024-01-01 UTC, open = close; the mark is the last price."""
    index = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC")
    bars = pd.DataFrame({"open": close, "high": high, "low": low, "close": close,
                         "volume": 1.0}, index=index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no mark price: mark := last" is intended here
        return bt.load_market(bars, funding=0, instrument=INST)


def crash_book(btc_low: float) -> dict[str, bt.Market]:
    """BTC 100 -> ``btc_low`` inside bar 2 -> closes 80; ETH flat at 10."""
    btc = tiny_market([100.0, 100.0, 80.0, 80.0], [99.5, 99.5, btc_low, 79.5],
                      [100.5, 100.5, 100.0, 80.5])
    eth = tiny_market([10.0] * 4, [10.0] * 4, [10.5] * 4)
    return {"BTC": btc, "ETH": eth}


book = crash_book(btc_low=60.0)
entry = np.array([True, False, False, False])  # both filled at the bar-1 open
legs = dict(entries={"BTC": entry, "ETH": entry}, leverage=10, size=25_000,
            size_type="notional")
print(pd.concat({name: m.bars[["open", "low", "close"]] for name, m in book.items()}, axis=1))

# %%
runs = {mode: bt.run(book, **legs, margin_mode=mode) for mode in ("isolated", "cross")}


def summary(results: dict) -> pd.DataFrame:
    """Per-market PnL, liquidations and final equity of each run, one column per run."""
    return pd.DataFrame({
        mode: {"BTC pnl": r.pnl_by_market.loc["BTC", "pnl"],
               "ETH pnl": r.pnl_by_market.loc["ETH", "pnl"],
               "liquidations": r.stats["n_liquidations"],
               "final equity": r.stats["final_equity"]}
        for mode, r in results.items()})


crash = summary(runs)
isolated_final = float(crash.loc["final equity", "isolated"])
cross_final = float(crash.loc["final equity", "cross"])
print(crash)

# %% [markdown]
# **Isolated** (final equity 7,500): BTC's liquidation price is `100 · (1 − 1/10 + 0.005) =
# 90.5`; the mark crosses it and the position is closed at its bankruptcy price 90, losing
# exactly its 2,500 of margin. ETH is untouched and still open at the end.
#
# **Cross** (final equity 0): one wallet backs both positions. At BTC's low the account is
# worth `10,000 + 250 · (60 − 100) + 2,500 · (10 − 10) = 0`, below the combined maintenance
# margin `125 + 125`: everything is liquidated, including the ETH long that lost nothing.

# %%
print(runs["cross"].trades[["market", "side", "entry_price", "exit_price", "exit_reason", "pnl"]])

# %%
runs["isolated"].plot()

# %%
runs["cross"].plot()

# %% [markdown]
# The other side of the trade-off: if BTC only falls to 70, isolated still loses BTC's
# margin (70 < 90.5), while cross survives (`10,000 − 7,500 = 2,500 > 250`) and ends at
# `10,000 + 250 · (80 − 100) = 5,000`. Cross margin survives moves that liquidate isolated
# positions, and when it does fail it takes everything.

# %%
mild = summary({mode: bt.run(crash_book(btc_low=70.0), **legs, margin_mode=mode)
                for mode in ("isolated", "cross")})
print(mild)

# %% [markdown]
# ## 2. The same warning across a grid
#
# `bt.sweep` takes the portfolio too. Here each entry uses half of the free wallet
# (`size=0.5`: BTC gets 5,000 of budget, ETH half of the remaining 5,000), no fees, margin
# mode × leverage. At 2× nothing reaches a liquidation and both modes end at 8,000; at 10×
# isolated keeps 5,000 and cross is ruined.

# %%
grid = bt.sweep(crash_book(btc_low=60.0), entries={"BTC": entry, "ETH": entry},
                margin_mode=["isolated", "cross"], leverage=[2, 10], size=0.5, fees=0.0,
                progress=False)
grid_final = grid.stats["final_equity"]
print(grid_final.unstack("leverage").round(2) + 0.0)  # + 0.0: no "-0.0"

# %% [markdown]
# ## 3. Real data: a carry trade over Q1 2024
#
# The README's sketch on the shipped Binance BTCUSDT 1h sample (`bt.sample_market()`): short the
# perpetual (collecting the funding its longs pay) and long a dated future (a quarterly on
# the same bars, for the example), 10,000 USDT of notional each, both entered at the first
# bar.

# %%
q1 = dict(start="2024-01-01", end="2024-03-29 07:00")
perp = bt.sample_market(**q1)   # binance:BTCUSDT with its mark prices and funding
quarterly = bt.Instrument.simple(kind="future", expiry="2024-03-29 08:00+00:00",
                                 mmr=0.005, taker_fee=0.0005)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # no mark file for the future: mark := last
    fut = bt.load_market(bt.sample_path("binance_btcusdt_perp_1h"), instrument=quarterly,
                         **q1)
carry_book = {"PERP": perp, "FUT": fut}
start = perp.index == perp.index[0]
carry_legs = dict(entries={"FUT": start}, short_entries={"PERP": start}, size=10_000,
                  size_type="notional")
carry = bt.run(carry_book, **carry_legs, leverage=10, margin_mode="cross")
print(carry.pnl_by_market)

# %% [markdown]
# Funding below zero means received: the short perpetual collected what its longs paid in
# the Q1 rally.

# %%
carry.plot()

# %% [markdown]
# Now the grid. In isolated mode the rally liquidates the short perpetual at every leverage
# tried, leaving an unhedged long (which this rally happened to reward); in cross mode the
# future's gain backs the short and the hedge survives at every leverage, earning the
# funding (final equity 10,709.6).

# %%
carry_grid = bt.sweep(carry_book, **carry_legs, margin_mode=["isolated", "cross"],
                      leverage=[3, 5, 10, 25], progress=False)
carry_stats = carry_grid.stats[["final_equity", "n_liquidations", "min_liq_distance"]]
print(carry_stats)

# %%
carry_grid.plot()
