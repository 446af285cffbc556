"""Figure of a rolled position (consecutive dated futures): :func:`plot_roll`.

Two panels on the roll's continuous index: the active contract's close with the roll bars
and the trades, and the account's equity with its drawdown. Reads only the public
attributes of ``RollResult`` and ``Roll``; computes no statistic.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from backtest.presentation.plotting.common import (
    _date_axis,
    _legend,
    _number_axis,
    _times,
    new_figure,
)

__all__ = ["plot_roll"]


def plot_roll(result: Any, *, log: bool | None = None) -> Figure:
    """The active contract's close (roll bars dashed, entries ▲▼, liquidations ✕) above the
    equity in the account currency with the drawdown shaded.

    ``log``: log-scale the equity axis; default when equity spans more than 10×.
    """
    roll = result.roll
    t = _times(roll.index)
    fig = new_figure(figsize=(10.0, 6.5), layout="constrained")
    price_ax, equity_ax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    price_ax.plot(t, roll.close.to_numpy(float), lw=0.8, color="0.25", label="active close")
    for leg in roll.legs[1:]:
        price_ax.axvline(t[leg.first], color="tab:blue", ls="--", lw=0.8)
    trades = result.trades
    entries = roll.index.get_indexer(trades["entry_time"])
    exits = roll.index.get_indexer(trades["exit_time"])
    longs = (trades["side"] == "long").to_numpy()
    liquidated = (trades["exit_reason"] == "liquidation").to_numpy()
    marks = (("long entry", entries, "entry_price", longs, dict(marker="^", color="tab:green")),
             ("short entry", entries, "entry_price", ~longs,
              dict(marker="v", color="tab:purple")),
             ("liquidation", exits, "exit_price", liquidated,
              dict(marker="X", color="red", edgecolors="black", s=60)))
    for label, where, price, chosen, style in marks:
        if chosen.any():   # no legend entry for what did not happen
            price_ax.scatter(t[where[chosen]], trades[price].to_numpy()[chosen], label=label,
                             zorder=4, **{"s": 30, **style})
    price_ax.set_ylabel("price (quote)")
    price_ax.set_title(" → ".join(leg.name for leg in roll.legs) + " (roll bars dashed)",
                       fontsize=10)
    _number_axis(price_ax)
    _legend(price_ax, loc="best")
    equity = result.equity.to_numpy(float)
    equity_ax.plot(t, equity, lw=0.9, color="tab:blue", label="equity")
    positive = equity[equity > 0]
    if log is None:
        log = len(positive) > 0 and positive.max() / positive.min() > 10
    if log:
        equity_ax.set_yscale("log")
    drawdown_ax = equity_ax.twinx()
    drawdown_ax.fill_between(t, 0, -100 * result.drawdown.to_numpy(float), color="tab:red",
                             alpha=0.15, lw=0, label="drawdown")
    drawdown_ax.set_ylabel("drawdown (%)")
    equity_ax.set_ylabel(f"equity ({result.account_currency})")
    _number_axis(equity_ax)
    _date_axis(equity_ax)
    _legend(equity_ax, loc="upper left")
    return fig
