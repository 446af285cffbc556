# %% [markdown]
# # Leverage risk: how often would a 10× long on BTCUSDT held 30 days have been liquidated?
#
# A common leverage guide for beginners says: *"If your liquidation price is
# within a range Bitcoin regularly wicks to during volatility (e.g. 10% below current
# price), you're over-leveraged"*, and *"Beginners should stick to 2x–3x maximum"*. A single
# backtest answers that for one start date. `bt.leverage_risk` answers it for **every start
# date**: each window `[start, start + 30 days)` holds one position opened at its start
# (an entry signal on the window's first bar, filled at the next bar's open), and each
# window × leverage row is exactly `bt.run()` on that window (`tests/test_risk.py`).
#
# Data: the shipped Binance BTCUSDT perpetual, 1h bars since 2020 with the exchange's
# **mark price** (which triggers liquidations) and the funding history. To keep this
# notebook quick a window starts every 12 hours (~4,600 windows per row); the README's
# numbers (`docs/leverage_risk.md`) use every hourly start. Definitions:
# `docs/leverage_risk.md`.

# %%
import warnings

import pandas as pd

import backtest as bt
from backtest.risk.safe import safe_rows

FILES = dict(bars=bt.sample_path("binance_btcusdt_perp_1h"),
             funding=bt.sample_path("binance_btcusdt_perp_funding"),
             instrument="binance:BTCUSDT", start="2020-01-01", end="2026-05-17 07:00")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")   # the mark=None load warns: intended below
    market = bt.load_market(**FILES, mark=bt.sample_path("binance_btcusdt_perp_1h_mark"))
    last_as_mark = bt.load_market(**FILES)
print(market)

# %% [markdown]
# ## 1. Every start since 2020, 1× to 100×, long and short
#
# The whole wallet (1,000 USDT, so that 100× stays inside Binance's first maintenance tier)
# is the position's isolated margin: the seed's "$1,000 of margin at 10×".

# %%
LEVERAGE = [1, 2, 3, 5, 10, 20, 50, 100]
risk = bt.leverage_risk(market, leverage=LEVERAGE, horizon="30D", starts=12,
                        side=["long", "short"], initial_capital=1000.0)
COLUMNS = ["p_liquidation", "p_drawdown_50", "total_return_q50", "max_drawdown_q50",
           "median_time_to_liquidation", "growth_rate", "funding_paid"]
print(risk.table[COLUMNS])

# %% [markdown]
# ## 2. Mark price vs last price
#
# Liquidations fire on the mark price. Loading the bars without the mark file makes the
# last price the mark (pessimistic: a last-price wick the mark did not follow liquidates
# you too). Same windows, same leverages:

# %%
risk_last = bt.leverage_risk(last_as_mark, leverage=LEVERAGE, horizon="30D", starts=12,
                             side=["long", "short"], initial_capital=1000.0)
compare = pd.DataFrame({"mark price": risk.table["p_liquidation"],
                        "last price as mark": risk_last.table["p_liquidation"]})
compare["difference"] = compare["last price as mark"] - compare["mark price"]
print(compare)

# %% [markdown]
# The answer to the question in the title:

# %%
ten_x = compare.loc[("long", 10)]
answer = (f"A 10x long on BTCUSDT held 30 days from a start since 2020 was liquidated in "
          f"{ten_x['mark price']:.1%} of the windows on the mark price "
          f"({ten_x['last price as mark']:.1%} had the last price been the mark), "
          f"typically after {risk.table.loc[('long', 10), 'median_time_to_liquidation']}.")
print(answer)

# %% [markdown]
# ## 3. When does it happen? Survival curves
#
# The fraction of positions not yet liquidated after each hour held (Kaplan–Meier; the
# windows cut by the end of the data are censored, not counted as survivors).

# %%
survival = risk.survival()
print(survival.loc[[pd.Timedelta(h, "h") for h in (1, 24, 7 * 24, 719)],
                   [("long", 5), ("long", 10), ("long", 20), ("short", 10)]])

# %%
risk.plot()

# %% [markdown]
# ## 4. The calculator's pro tip, measured
#
# The highest leverage whose historical probability of liquidation within 30 days stays
# below 5 % (and every lower leverage too):

# %%
safe = safe_rows(risk, threshold=0.05)
print(safe[["safe_leverage", "p_liquidation", "next_leverage", "next_p_liquidation"]])

# %% [markdown]
# ## 5. Beyond the one history: block bootstrap
#
# 1,000 paths of 30 days stitched from random one-day blocks of the history (last and mark
# OHLC and funding together, each block rescaled to the previous close, so wicks and the
# mark/last relation are the historical ones). A seed makes it reproducible. It answers
# "what if the crashes had come in another order", not "what if the future differs".

# %%
boot = bt.leverage_risk(market, leverage=[2, 5, 10, 20], horizon="30D", method="bootstrap",
                        n_paths=1000, block="1D", seed=2026, initial_capital=1000.0)
versus = pd.DataFrame({"rolling windows": risk.table.loc["long"].loc[[2, 5, 10, 20],
                                                                     "p_liquidation"],
                       "bootstrap paths": boot.table["p_liquidation"]})
print(versus)
