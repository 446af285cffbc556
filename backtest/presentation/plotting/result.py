"""Figures of single runs: :func:`plot_result` (price with trades and the liquidation line,
equity with drawdown, cumulative funding) and :func:`plot_comparison` (equity curves of
several runs).

Reads only the public attributes of ``Result`` and its ``Market``; computes no statistic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from backtest.presentation.plotting.common import (
    _currencies,
    _date_axis,
    _legend,
    _number_axis,
    _set_limits,
    _times,
    log_scale_wanted,
    new_figure,
)

__all__ = ["plot_comparison", "plot_result"]

# Exit markers: reasons grouped into what a reader needs to tell apart on a price chart.
_EXIT_STYLES: tuple[tuple[str, tuple[str, ...], dict[str, Any]], ...] = (
    ("exit (signal/reverse/end)", ("signal", "reverse", "end", "expiry"),
     {"marker": "o", "s": 22, "facecolors": "none", "edgecolors": "0.3", "linewidths": 0.8}),
    ("stop fill", ("stop_loss", "trailing_stop"),
     {"marker": "s", "s": 26, "color": "tab:orange", "edgecolors": "0.2", "linewidths": 0.4}),
    ("take-profit", ("take_profit",),
     {"marker": "P", "s": 40, "color": "tab:cyan", "edgecolors": "0.2", "linewidths": 0.4}),
    ("liquidation", ("liquidation",),
     {"marker": "X", "s": 60, "color": "red", "edgecolors": "black", "linewidths": 0.8,
      "zorder": 6}),
)
_LONG = {"marker": "^", "s": 36, "color": "tab:green", "edgecolors": "0.15", "linewidths": 0.4}
_SHORT = {"marker": "v", "s": 36, "color": "tab:purple", "edgecolors": "0.15", "linewidths": 0.4}


def _price_limits(ax: Axes, market: Any, trades: pd.DataFrame, log: bool) -> None:
    """Y range of the traded prices, so that a far liquidation level (e.g. a 1x long's,
    near zero) runs off the chart instead of squashing the price."""
    prices = [np.asarray(market.low, dtype=float), np.asarray(market.high, dtype=float),
              trades["entry_price"].to_numpy(float), trades["exit_price"].to_numpy(float)]
    _set_limits(ax, np.concatenate(prices), log)


def _price_panel(ax: Axes, result: Any, *, log_price: bool) -> None:
    """Last close, liquidation-price line, entries and exits by reason."""
    market = result.market
    t = _times(market.index)
    _, quote = _currencies(result)
    ax.plot(t, np.asarray(market.close, dtype=float), lw=0.7, color="0.25",
            label="last close", zorder=2)
    liq = np.asarray(result.liquidation_price, dtype=float)
    position = np.asarray(result.position, dtype=float)
    # One line per side, so a reversal does not draw a jump from one level to the other.
    for sign, name, color in ((1.0, "long", "red"), (-1.0, "short", "deeppink")):
        line = np.where(np.sign(position) == sign, liq, np.nan)
        if np.isfinite(line).any():
            ax.plot(t, line, lw=0.8, color=color, alpha=0.6, zorder=1,
                    label=f"liquidation price, {name} (on {result.mark_source} price)")
    trades = result.trades
    if len(trades):
        entry_t = _times(trades["entry_time"])
        exit_t = _times(trades["exit_time"])
        long = (trades["side"] == "long").to_numpy()
        for mask, style, name in ((long, _LONG, "long entry ▲"), (~long, _SHORT,
                                                                   "short entry ▼")):
            if mask.any():
                ax.scatter(entry_t[mask], trades["entry_price"].to_numpy()[mask], zorder=4,
                           label=f"{name} ({int(mask.sum())})", **style)
        reasons = trades["exit_reason"].to_numpy()
        for name, group, style in _EXIT_STYLES:
            mask = np.isin(reasons, group)
            if mask.any():
                ax.scatter(exit_t[mask], trades["exit_price"].to_numpy()[mask],
                           label=f"{name} ({int(mask.sum())})", **{"zorder": 5, **style})
    if log_price:
        ax.set_yscale("log")
    _price_limits(ax, market, trades, log_price)
    ax.set_ylabel(f"price ({quote})")
    _number_axis(ax)
    ax.grid(alpha=0.25)
    _legend(ax, loc="quiet", ncol=2)


def _equity_panel(ax: Axes, result: Any, *, log_equity: bool, quote_equity: bool | None) -> None:
    """Equity (account currency) with the drawdown from the running peak shaded below it."""
    t = _times(result.market.index)
    account, quote = _currencies(result)
    capital = float(result.params["initial_capital"])
    equity = np.asarray(result.equity, dtype=float)
    drawdown = np.asarray(result.drawdown, dtype=float)
    peak = np.maximum.accumulate(np.maximum(equity, capital))  # the peak drawdown refers to
    shown = np.where(equity > 0, equity, np.nan) if log_equity else equity
    ax.plot(t, shown, lw=0.9, color="tab:blue", label=f"equity ({account})", zorder=3)
    max_dd = float(np.nanmax(drawdown)) if len(drawdown) else 0.0
    low = np.where(equity > 0, equity, np.nan) if log_equity else equity
    ax.fill_between(t, low, peak, where=drawdown > 0, color="tab:red", alpha=0.22, lw=0,
                    label=f"drawdown from peak (max {max_dd:.1%})", zorder=2)
    ax.axhline(capital, color="0.45", lw=0.7, ls=":",
               label=f"initial capital {capital:,.6g} {account}")
    hold = result.buy_and_hold() if hasattr(result, "buy_and_hold") else None
    if hold is not None:
        ax.plot(t, np.asarray(hold, dtype=float), lw=0.8, color="0.35", ls="--", zorder=2,
                label=f"buy and hold, 1x, no costs ({hold.iloc[-1] / capital - 1:+.0%})")
    trades = result.trades
    liq = trades[trades["exit_reason"] == "liquidation"]
    if len(liq):
        pos = result.market.index.get_indexer(liq["exit_time"])
        y = shown[pos]
        ax.scatter(t[pos], np.where(np.isfinite(y), y, np.nanmin(shown) if
                                    np.isfinite(shown).any() else 0.0),
                   marker="X", s=60, color="red", edgecolors="black", linewidths=0.8,
                   zorder=6, label=f"liquidation ({len(liq)})")
    if log_equity:
        ax.set_yscale("log")
    ax.set_ylabel(f"equity ({account}{', log scale' if log_equity else ''})")
    _number_axis(ax)
    ax.grid(alpha=0.25)
    settlement = getattr(result.market.instrument, "settlement", "linear")
    if quote_equity is None:
        quote_equity = settlement != "linear"
    if quote_equity and settlement != "linear":
        twin = ax.twinx()
        twin.plot(t, np.asarray(result.quote_equity, dtype=float), lw=0.7, color="tab:green",
                  alpha=0.7, label=f"equity valued in {quote} (× mark close)")
        twin.set_ylabel(f"equity ({quote})", color="tab:green")
        handles, labels = ax.get_legend_handles_labels()
        h2, l2 = twin.get_legend_handles_labels()
        ax.legend(handles + h2, labels + l2, fontsize=7.5, framealpha=0.85, loc="upper left")
    else:
        _legend(ax, loc="quiet")


def _funding_panel(ax: Axes, result: Any) -> None:
    """Cumulative funding paid (> 0 paid, < 0 received), account currency."""
    t = _times(result.market.index)
    account, _ = _currencies(result)
    cum = np.cumsum(np.asarray(result.funding, dtype=float))
    total = float(cum[-1]) if len(cum) else 0.0
    ax.plot(t, cum, lw=0.8, color="tab:brown",
            label=f"cumulative funding paid: {total:,.2f} {account} (> 0 paid, < 0 received)")
    ax.fill_between(t, 0.0, cum, where=cum >= 0, color="tab:red", alpha=0.18, lw=0)
    ax.fill_between(t, 0.0, cum, where=cum < 0, color="tab:green", alpha=0.18, lw=0)
    ax.axhline(0.0, color="0.45", lw=0.6)
    ax.set_ylabel(f"funding\n({account})")
    _number_axis(ax)
    ax.grid(alpha=0.25)
    _legend(ax, loc="quiet")


def _title(result: Any) -> str:
    s = result.stats
    inst = result.market.instrument
    prm = result.params
    return (f"{inst.symbol} · {prm['leverage']:g}× {prm['margin_mode']} · total return "
            f"{s['total_return']:+.2%} · max drawdown {s['max_drawdown']:.2%} · "
            f"{s['n_trades']} trades · {s['n_liquidations']} liquidations · "
            f"{s['n_stops']} stops · liquidation on the {result.mark_source} price")


def plot_result(result: Any, ax: Axes | Sequence[Axes] | None = None, *,
                title: str | None = None, figsize: tuple[float, float] = (12.0, 8.5),
                log_price: bool = False, log_equity: bool | None = None,
                quote_equity: bool | None = None) -> Figure:
    """Price with trades and the liquidation line, equity with drawdown, cumulative funding.

    Top panel: last-price close (quote currency); entries (▲ long, ▼ short) at their fill
    price and time; exits at theirs, marked by reason (hollow circle: signal/reverse/end;
    orange square: stop fill; cyan plus: take-profit; red cross: liquidation); the
    liquidation price of the open position (NaN, so no line, when flat). Middle panel: equity
    in the account currency, the drawdown from the running peak shaded between peak and
    equity; for inverse/quanto contracts also the equity valued in quote on a right axis.
    Bottom panel: ``result.funding.cumsum()``.

    Parameters
    ----------
    result : Result
    ax : Axes, sequence of three Axes, or None
        ``None``: a new figure with the three panels. Three Axes: the panels are drawn into
        them (price, equity, funding). One Axes: only the price panel is drawn into it.
    title : str, optional
        Figure title; default: instrument, leverage, margin mode and headline stats.
    figsize : (float, float)
        Inches, for a new figure.
    log_price : bool
        Log-scale the price axis.
    log_equity : bool, optional
        Log-scale the equity axis (non-positive equity is then not drawn). Default: the rule
        of every equity axis, log when the positive equity spans more than 10×
        (:func:`~backtest.presentation.plotting.common.log_scale_wanted`).
    quote_equity : bool, optional
        Draw the quote-valued equity (inverse/quanto only); default True for those.

    Returns
    -------
    matplotlib.figure.Figure
        pyplot-managed: displayed inline in Jupyter, shown by ``plt.show()`` in a script;
        save it with ``fig.savefig(path)``. Liquidations are marked (red ×) on the price and
        the equity panels.
    """
    if log_equity is None:
        log_equity = log_scale_wanted(result.equity)
    if isinstance(ax, Axes):
        _price_panel(ax, result, log_price=log_price)
        _date_axis(ax)
        ax.set_title(title or _title(result), fontsize=9)
        return ax.figure
    if ax is None:
        fig = new_figure(figsize, layout="constrained")
        grid = fig.add_gridspec(3, 1, height_ratios=(3.0, 2.0, 1.0))
        top = fig.add_subplot(grid[0])
        axes = [top, fig.add_subplot(grid[1], sharex=top), fig.add_subplot(grid[2], sharex=top)]
    else:
        axes = list(ax)
        if len(axes) != 3:
            raise ValueError(f"plot_result: ax must be None, one Axes or three Axes (price, "
                             f"equity, funding); got {len(axes)}.")
        fig = axes[0].figure
    _price_panel(axes[0], result, log_price=log_price)
    _equity_panel(axes[1], result, log_equity=log_equity, quote_equity=quote_equity)
    _funding_panel(axes[2], result)
    for i, a in enumerate(axes):
        _date_axis(a, label=i == 2)
        if i < 2:
            a.tick_params(labelbottom=False)
    fig.suptitle(title or _title(result), fontsize=10)
    return fig


def plot_comparison(results: Mapping[str, Any], ax: Axes | None = None, *,
                    log: bool | None = None,
                    normalize: bool | None = None, title: str | None = None,
                    figsize: tuple[float, float] = (12.0, 5.5)) -> Figure:
    """Equity curves of several runs on one axis, liquidations marked with ×.

    Parameters
    ----------
    results : mapping of label -> Result
        Runs on any markets; the label names each curve in the legend.
    ax : Axes, optional
        Draw into this axis instead of a new figure.
    log : bool, optional
        Log-scale the equity axis (equity ≤ 0 is not drawn). Default: log when the curves'
        positive values together span more than 10× (the rule of every equity axis).
    normalize : bool, optional
        Plot equity / initial capital. Default: only when the runs differ in account
        currency or initial capital (otherwise equity in the account currency).
    title : str, optional
    figsize : (float, float)

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not results:
        raise ValueError("plot_comparison: results is empty; pass {label: Result, ...}.")
    if ax is None:
        fig = new_figure(figsize, layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    currencies = {_currencies(r)[0] for r in results.values()}
    capitals = {float(r.params["initial_capital"]) for r in results.values()}
    if normalize is None:
        normalize = len(currencies) > 1 or len(capitals) > 1
    if log is None:
        log = log_scale_wanted(np.concatenate(
            [np.asarray(r.equity, dtype=float) / float(r.params["initial_capital"])
             for r in results.values()]))
    any_liq = False
    for label, r in results.items():
        capital = float(r.params["initial_capital"])
        y = np.asarray(r.equity, dtype=float) / (capital if normalize else 1.0)
        if log:
            y = np.where(y > 0, y, np.nan)
        t = _times(r.market.index)
        s = r.stats
        (line,) = ax.plot(t, y, lw=0.9, label=(
            f"{label}: {s['total_return']:+.2%}, max DD {s['max_drawdown']:.2%}, "
            f"{s['n_liquidations']} liq."))
        trades = r.trades
        liq = trades[trades["exit_reason"] == "liquidation"]
        if len(liq):
            any_liq = True
            pos = r.market.index.get_indexer(liq["exit_time"])
            ax.scatter(t[pos], y[pos], marker="x", s=28, color=line.get_color(), zorder=4,
                       linewidths=1.0)
    ref = 1.0 if normalize else next(iter(capitals))
    ax.axhline(ref, color="0.45", lw=0.7, ls=":", label="initial capital")
    if any_liq:
        ax.scatter([], [], marker="x", color="0.2", label="liquidation (× on the curve)")
    if log:
        ax.set_yscale("log")
    unit = "equity / initial capital" if normalize else f"equity ({next(iter(currencies))})"
    ax.set_ylabel(unit + (" — log scale" if log else ""))
    _number_axis(ax)
    ax.grid(alpha=0.25, which="both" if log else "major")
    _date_axis(ax)
    _legend(ax, loc="best")
    ax.set_title(title or "Equity of each run", fontsize=10)
    return fig
