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
# # A leverage sweep, and what its best row hides
#
# **Question: on the shipped BTCUSDT data, which leverage "wins" for a 24h/168h moving-average
# cross, and what does ranking by total return hide?** A sweep runs every combination of
# leverage × stop × margin mode in one compiled pass and keeps only the stats; each row equals
# `bt.run()` with the same parameters exactly. Sizing is fixed (25 % of the wallet posted as
# margin per entry) so that only the leverage and the stop differ.

# %%
import warnings

import backtest as bt

m = bt.sample_market()
close = m.bars["close"]
fast, slow = close.rolling(24).mean(), close.rolling(168).mean()
entries = (fast > slow) & (fast.shift() <= slow.shift())
exits = (fast < slow) & (fast.shift() >= slow.shift())

with warnings.catch_warnings():
    warnings.simplefilter("ignore")   # 50x with a 5 % stop: the stop lies beyond liquidation
    s = bt.sweep(m, entries=entries, exits=exits, short_entries=exits, short_exits=entries,
                 size=0.25, leverage=[1, 2, 3, 5, 10, 20, 50],
                 stop_loss=[None, 0.02, 0.05], margin_mode=["isolated", "cross"],
                 progress=False)
s

# %% [markdown]
# ## Ranked by total return
#
# Every ranking shows `ruined` and `n_liquidations` beside the metric, and ruined rows come
# last whatever they made before (`include_ruined=True` to rank them anyway).

# %%
by_return = s.best("total_return", n=5)
by_return

# %% [markdown]
# ## Ranked by Sharpe
#
# The Sharpe ratio here is computed on log returns (docs/semantics.md, "Trades and stats"):
# a bar that wipes the account out is one return of about ln(1e-9), so a run that made a
# fortune and then lost everything can never look good.

# %%
by_sharpe = s.best("sharpe", n=5)
by_sharpe

# %% [markdown]
# ## What the best total return hides
#
# The row with the highest total return, re-run for its curves: its worst drawdown, how
# close the mark came to liquidating it (`min_liq_distance`), and how many rows of the
# sweep were liquidated at least once or ruined.

# %%
top = by_return.iloc[0]
n_liquidated = int((s.stats["n_liquidations"] > 0).sum())
n_ruined = int(s.stats["ruined"].sum())
print(f"best total return: {top['total_return']:+.2%} with a max drawdown of "
      f"{top['max_drawdown']:.2%} (Sharpe {top['sharpe']:.3f}); "
      f"mark came within {top['min_liq_distance']:.2%} of its liquidation price")
print(f"{n_liquidated} of {len(s)} combinations were liquidated at least once, "
      f"{n_ruined} ruined")
best_run = s.run(s.position(by_return.index[0]))
best_run.plot()

# %% [markdown]
# ## Leverage against return and drawdown
#
# One line per stop × margin mode: return rises with leverage only while the drawdowns still
# leave something to compound; from 10× on, every line ends near −100 %.

# %%
s.leverage_curve("total_return")

# %%
s.leverage_curve("max_drawdown")

# %% [markdown]
# **Answer.** By total return the sweep crowns a low leverage without a stop (the row
# printed above: about +25 % over six years, after a 42 % drawdown); by Sharpe an even lower
# leverage wins. What the single best row hides is the rest of the table: every leverage
# from 10× up lost nearly everything whatever the stop, seven combinations were liquidated
# at least once and one was ruined — and a ruined row, however good its path before, is
# ranked last. Read a sweep by several metrics, with `n_liquidations`, `ruined`,
# `max_drawdown` and `min_liq_distance` beside them.
