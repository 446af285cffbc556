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
# # Quickstart: what did a plain trend-following rule do on BTCUSDT, sized with care?
#
# One question, answered on the data that ships with the package (Binance USDⓈ-M BTCUSDT
# perpetual, 1h bars 2020-01-01 → 2026-05-17, with the exchange's mark prices and funding):
# **how did a 24h/168h moving-average cross, long and short, do at 3× leverage with 10 % of
# the wallet as margin and a 5 % stop** — a size at which a stopped trade costs about 1.5 %
# of equity, inside the "risk 1–2 % per trade" rule of thumb. The notebook runs from any
# folder: `bt.sample_market()` finds the data inside the installed package.

# %%
import tempfile
import warnings
from pathlib import Path

import backtest as bt

m = bt.sample_market()   # binance:BTCUSDT: last-price bars, mark-price bars, funding
m

# %% [markdown]
# ## The signals
#
# Built in pandas on the market's own index: a long entry when the fast average crosses
# above the slow one, an exit on the opposite cross. Signals at a bar's close fill at the
# next bar's open (taker fee).

# %%
close = m.bars["close"]
fast, slow = close.rolling(24).mean(), close.rolling(168).mean()
entries = (fast > slow) & (fast.shift() <= slow.shift())
exits = (fast < slow) & (fast.shift() >= slow.shift())
short_entries, short_exits = exits, entries
print(f"{int(entries.sum())} long and {int(short_entries.sum())} short signals")

# %% [markdown]
# ## One run
#
# Everything a run does is in `docs/semantics.md` (linked from the README); the stats are
# fractions (0.05 = 5 %), money is in USDT.

# %%
careful = dict(leverage=3, size=0.1, stop_loss=0.05)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    r = bt.run(m, entries=entries, exits=exits, short_entries=short_entries,
               short_exits=short_exits, **careful)
r

# %%
stats = r.stats
total_return, max_drawdown = stats["total_return"], stats["max_drawdown"]
print(f"total return {total_return:+.2%}, max drawdown {max_drawdown:.2%}, "
      f"{stats['n_trades']} trades, {stats['n_stops']} stops, "
      f"{stats['n_liquidations']} liquidations, funding paid {stats['funding_paid']:,.2f} USDT, "
      f"fees {stats['fees_paid']:,.2f} USDT")

# %% [markdown]
# The figure: price with entries, exits by reason and the liquidation price of the open
# position; equity with the drawdown shaded; cumulative funding. It displays inline —
# no `%matplotlib inline` needed, and `plt.show()` shows it from a script.

# %%
r.plot()

# %% [markdown]
# ## What the money did
#
# The trades, and where the returns came from: the losing trades are mostly the 5 % stops
# (each about 1.5 % of equity plus fees), the funding a cost of holding.

# %%
r.trades.head()

# %%
by_reason = r.trades.groupby("exit_reason")["pnl"].agg(["count", "sum", "mean"])
by_reason

# %% [markdown]
# Month by month: the returns grid, the PnL of each trade by exit reason, and what funding
# and fees cost (their drag is a share of the month's mean equity). The same numbers are
# tables: `r.monthly_returns()`, `r.drawdown_periods()`, `r.exit_breakdown()`,
# `r.costs_by_month()`.

# %%
r.plot_analysis()

# %%
r.drawdown_periods(3)

# %% [markdown]
# ## A report to share
#
# `r.report(path)` writes one self-contained HTML page: the figure, monthly returns,
# drawdown periods, the buy-and-hold benchmark, exit reasons, the trade PnL distribution
# and the funding over time.

# %%
report_path = Path(tempfile.mkdtemp()) / "quickstart_report.html"
r.report(str(report_path))
print(f"report: {report_path.name}, {report_path.stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# **Answer.** At 3× with 10 % of the wallet per entry and a 5 % stop, the rule ends with
# the total return and drawdown printed above, no liquidation: the stop always fires
# well before the liquidation price (≈ 33 % away at 3×). The leverage sweep notebook
# (`02_leverage_sweep.ipynb`) shows what the same rule does when the leverage grows.
