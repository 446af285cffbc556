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
# # One strategy, three ways to hold it: perpetual, dated future, spot margin
#
# The leverage guide this project started from contrasts the carrying costs:
# margin trading "borrows real assets and charges interest, futures contracts use synthetic
# leverage with funding rates instead", and it suggests switching "to traditional futures
# (with expiry dates) if funding is consistently high. These have no funding fees."
#
# Here the same 3× long over Q1 2024 on the shipped Binance BTCUSDT 1h bars
# (`bt.sample_market()`) is held as a perpetual (funding from the data), as a dated
# quarterly future (no carry, settled at expiry) and on spot margin (hourly interest), as in
# [`docs/examples.md`](../docs/examples.md) §2 and `tests/test_futures_spot.py`. Then a roll
# of two quarterlies (`docs/examples.md` §4). It runs from any folder (the data ships inside
# the package); every number is computed below, and the few quoted in the
# text are asserted by `tests/test_roll.py` and `tests/test_notebooks.py`.

# %%
import warnings

import numpy as np
import pandas as pd

import backtest as bt
from backtest.presentation.plotting import plot_comparison

# %% [markdown]
# ## 1. The three markets
#
# The same last-price bars each time; what differs is the instrument: `binance:BTCUSDT`
# (perpetual, funding every 8 hours from the funding file), a quarterly expiring on
# 2024-03-29 08:00 UTC (`Instrument.simple(kind="future", ...)`), and
# `binance-margin:BTCUSDT` (3× maximum, interest charged hourly on what is borrowed).

# %%
q1 = dict(start="2024-01-01", end="2024-04-01")
BARS = bt.sample_path("binance_btcusdt_perp_1h")
MARK = bt.sample_path("binance_btcusdt_perp_1h_mark")
perp = bt.sample_market(**q1)   # binance:BTCUSDT: BARS, MARK and the funding file
quarterly = bt.Instrument.simple(mmr=0.004, taker_fee=0.0005, kind="future",
                                 expiry=pd.Timestamp("2024-03-29 08:00", tz="UTC"))
future = bt.load_market(BARS, mark=MARK, instrument=quarterly, **q1)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # no mark file for spot margin: mark := last, as intended
    spot = bt.load_market(BARS, instrument=bt.get_instrument("binance-margin:BTCUSDT"), **q1)
markets = {"perpetual": perp, "dated future": future, "spot margin": spot}
bars = {name: f"{m.index[0]:%m-%d %H:%M} to {m.index[-1]:%m-%d %H:%M} ({m.n_bars})"
        for name, m in markets.items()}
print(pd.DataFrame({"kind": {n: m.instrument.kind for n, m in markets.items()},
                    "expiry": {n: str(m.instrument.expiry or "-")[:16]
                               for n, m in markets.items()},
                    "bars (2024, UTC)": bars}))

# %% [markdown]
# ## 2. The same 3× long on each
#
# Entered at the first bar (filled at the next open), half the 10,000 USDT wallet as
# margin, held to the end of the data or the future's expiry.

# %%
results = {}
for name, m in markets.items():
    entries = np.zeros(m.n_bars, dtype=bool)
    entries[0] = True
    results[name] = bt.run(m, entries=entries, leverage=3, size=0.5)

carry = pd.DataFrame({
    name: {"exit": r.trades["exit_reason"].iloc[0],
           "exit price": r.trades["exit_price"].iloc[0],
           "funding paid": r.stats["funding_paid"],
           "interest paid": r.stats["interest_paid"],
           "fees paid": r.stats["fees_paid"],
           "total return": r.stats["total_return"]}
    for name, r in results.items()})
print(carry)

# %% [markdown]
# The rally of early 2024 made longs pay funding: only the perpetual pays funding, only spot
# margin pays interest, and the future pays neither but stops at its expiry (settled at the
# last close of the bar ending at 08:00 on 29 March). How much more the perpetual's funding
# cost than the interest on the same exposure:

# %%
funding_over_interest = (results["perpetual"].stats["funding_paid"]
                         / results["spot margin"].stats["interest_paid"])
print(f"funding paid / interest paid: {funding_over_interest:.1f}")

# %%
plot_comparison(results, title="The same 3× long, three instruments (Q1 2024)")

# %% [markdown]
# ## 3. Rolling dated futures: one position across two contracts
#
# Two hourly linear futures, taker fee 0.1 %, mark := last. Contract A expires at 04:00 (its
# expiry bar is 03:00); contract B expires at 08:00 and trades above A. `bt.roll` chains
# them into one continuous market: A is active until its expiry bar, then B.

# %%
def hourly(close: list[float], start: str) -> pd.DataFrame:
    """Hourly bars, open = close, low/high half a point away."""
    close_ = np.asarray(close, dtype=float)
    index = pd.date_range(start, periods=len(close_), freq="1h", tz="UTC")
    return pd.DataFrame({"open": close_, "high": close_ + 0.5, "low": close_ - 0.5,
                         "close": close_, "volume": 1.0}, index=index)


def contract(symbol: str, expiry: str) -> bt.Instrument:
    return bt.Instrument.simple(kind="future", expiry=pd.Timestamp(expiry, tz="UTC"),
                                taker_fee=0.001, mmr=0.005).replace(symbol=symbol)


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # mark := last
    m_a = bt.load_market(hourly([100, 100, 104, 110], "2024-01-01 00:00"),
                         instrument=contract("A", "2024-01-01 04:00"))
    m_b = bt.load_market(hourly([112, 113, 114, 115, 116, 117, 118], "2024-01-01 01:00"),
                         instrument=contract("B", "2024-01-01 08:00"))
rl = bt.roll([m_a, m_b])
print(pd.DataFrame({"A close": m_a.bars["close"], "B close": m_b.bars["close"],
                    "roll close": rl.close}))

# %% [markdown]
# A 2× long with half the wallet, entered at the first bar. A settles at its expiry bar's
# close 110 (pnl 977.05); the roll reopens the long on B at its first active open 115, sized
# anew on the grown wallet, and B settles at 118 (pnl 263.59): final equity 11,240.64.
# Note that 5 of the 18 points `rl.close` rose are the jump from A's 110 to B's 115 at the
# roll, which no position earned.

# %%
rolled = bt.run(rl, entries=rl.index == rl.index[0], leverage=2, size=0.5)
print(rolled.trades[["leg", "entry_price", "exit_price", "size", "pnl", "exit_reason"]])
roll_final = float(rolled.stats["final_equity"])
print(f"final equity: {roll_final:,.2f}")
