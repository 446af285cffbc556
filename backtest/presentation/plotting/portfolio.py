"""Figures of portfolios: :func:`plot_portfolio` (several markets on one wallet, one colour
per market, panels picked from :data:`PORTFOLIO_PANELS`).

Reads only the public attributes of ``PortfolioResult``; computes no statistic (display
sums only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from backtest.presentation.plotting.common import (
    _date_axis,
    _number_axis,
    _set_limits,
    _times,
    log_scale_wanted,
    new_figure,
)

__all__ = ["PORTFOLIO_PANELS", "plot_portfolio"]

PORTFOLIO_PANELS = ("equity", "price", "pnl", "margin", "position", "funding")
# Market colours: none of the colours that mean something on their own (green long, purple
# short, red liquidation / drawdown, black equity).
_PALETTE = ("tab:blue", "tab:orange", "tab:cyan", "tab:olive", "tab:brown", "tab:pink",
            "tab:gray", "gold", "navy", "teal")
_PF_EXITS: tuple[tuple[str, tuple[str, ...], dict[str, Any]], ...] = (
    ("liquidation", ("liquidation",),
     {"marker": "X", "s": 70, "edgecolors": "black", "linewidths": 0.8, "zorder": 6}),
    ("expiry exit", ("expiry",),
     {"marker": "D", "s": 30, "edgecolors": "black", "linewidths": 0.5, "zorder": 5}),
    ("stop fill", ("stop_loss", "trailing_stop"),
     {"marker": "s", "s": 22, "edgecolors": "0.2", "linewidths": 0.4, "zorder": 5}),
)
_REJECTIONS = ("insufficient_margin", "size_zero", "leverage_above_tier")


def _side_legend(ax: Axes) -> None:
    """Legend to the right of the panel: with several markets it would hide the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7.5, framealpha=0.85, loc="upper left",
                  bbox_to_anchor=(1.005, 1.0), borderaxespad=0.0)


def _exit_bars(result: Any, market: str, reasons: tuple[str, ...]) -> tuple[np.ndarray,
                                                                             pd.DataFrame]:
    """Bar positions and rows of ``market``'s trades that ended for one of ``reasons``."""
    t = result.trades
    rows = t[(t["market"] == market) & t["exit_reason"].isin(reasons)]
    return result.index.get_indexer(rows["exit_time"]), rows


def _pf_equity(ax: Axes, result: Any, t: np.ndarray, colors: dict[str, str], account: str,
               log: bool) -> None:
    capital = float(result.params["initial_capital"])
    equity = result.equity.to_numpy(float)
    wallet = result.wallet.to_numpy(float)

    def shown(y: np.ndarray) -> np.ndarray:
        return np.where(y > 0, y, np.nan) if log else y

    peak = np.maximum.accumulate(np.maximum(equity, capital))
    ax.plot(t, shown(equity), lw=1.0, color="black", zorder=3,
            label=f"equity ({account}): wallet + Σ uPnL at mark")
    ax.plot(t, shown(wallet), lw=0.8, color="tab:blue", alpha=0.8, zorder=2,
            label="wallet (cash: realised PnL, fees, funding)")
    ax.fill_between(t, shown(equity), peak, where=equity < peak, color="tab:red", alpha=0.18,
                    lw=0, label=f"drawdown from peak (max {result.stats['max_drawdown']:.1%})")
    ax.axhline(capital, color="0.45", lw=0.7, ls=":",
               label=f"initial capital {capital:,.6g} {account}")
    for name, color in colors.items():
        bars, _ = _exit_bars(result, name, ("liquidation",))
        if len(bars):
            ax.scatter(t[bars], shown(equity)[bars], color=color, label=f"{name} liquidated "
                       f"({len(bars)})", **_PF_EXITS[0][2])
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(f"equity ({account}{', log scale' if log else ''})")


def _pf_price(ax: Axes, result: Any, t: np.ndarray, colors: dict[str, str], log: bool) -> None:
    values = []
    liq_shown = False
    for name, color in colors.items():
        market = result.markets[name]
        close = np.asarray(market.close, dtype=float)
        valid = close[np.isfinite(close) & (close > 0)]
        base = float(valid[0]) if len(valid) else 1.0
        scale = 100.0 / base
        ax.plot(t, close * scale, lw=0.8, color=color, zorder=2,
                label=f"{name} (first close {base:,.6g})")
        liq = result.liquidation_price[name].to_numpy(float) * scale
        if np.isfinite(liq).any():
            liq_shown = True
            ax.plot(t, liq, lw=0.7, ls="--", color=color, alpha=0.75, zorder=1)
        values += [np.asarray(market.low, float) * scale, np.asarray(market.high, float) * scale]
        for _, reasons, style in _PF_EXITS:
            bars, rows = _exit_bars(result, name, reasons)
            if len(bars):
                ax.scatter(t[bars], rows["exit_price"].to_numpy(float) * scale, color=color,
                           **style)
                values.append(rows["exit_price"].to_numpy(float) * scale)
    if liq_shown:
        ax.plot([], [], ls="--", color="0.4", lw=0.7, label="liquidation price (isolated)")
    for label, reasons, style in _PF_EXITS:
        if any(len(_exit_bars(result, n, reasons)[0]) for n in colors):
            ax.scatter([], [], color="0.6", label=f"{label} (at its fill)", **style)
    if log:
        ax.set_yscale("log")
    _set_limits(ax, np.concatenate(values), log)
    ax.set_ylabel("last price\n(first close = 100)")


def _pf_pnl(ax: Axes, result: Any, t: np.ndarray, colors: dict[str, str], account: str) -> None:
    trades = result.trades
    bars = result.index.get_indexer(trades["exit_time"])
    pnl = trades["pnl"].to_numpy(float)
    realised = np.zeros(len(t))
    for name, color in colors.items():
        mask = (trades["market"] == name).to_numpy()
        cum = np.cumsum(np.bincount(bars[mask], weights=pnl[mask], minlength=len(t)))
        realised += cum
        total = float(cum[-1]) if len(cum) else 0.0
        ax.step(t, cum, where="post", lw=0.9, color=color, label=f"{name}: {total:+,.2f}")
    capital = float(result.params["initial_capital"])
    ax.plot(t, result.equity.to_numpy(float) - capital - realised, lw=0.8, ls=":",
            color="0.35", label="open positions (equity − capital − realised)")
    ax.axhline(0.0, color="0.45", lw=0.6)
    ax.set_ylabel(f"realised PnL\nby market ({account})")


def _pf_margin(ax: Axes, result: Any, t: np.ndarray, colors: dict[str, str],
               mode: str) -> None:
    """Margin posted per market as a share of the combined equity, stacked: it rises when
    one market's loss shrinks the equity behind every position, not only when margin grows."""
    equity = result.equity.to_numpy(float)
    margin = np.abs(result.margin.fillna(0.0).to_numpy(float).T)
    share = np.where(equity > 0, margin / np.where(equity > 0, equity, 1.0), np.nan)
    ax.stackplot(t, np.nan_to_num(share), colors=list(colors.values()), alpha=0.6, lw=0,
                 step="post",
                 labels=[f"{n} (max {np.nanmax(s, initial=0.0):.1%})"
                         for n, s in zip(colors, share, strict=True)])
    ax.axhline(1.0, color="tab:red", lw=0.7, ls="--",
               label="all equity posted" + (" (one wallet backs all)" if mode == "cross"
                                            else ""))
    total = np.nansum(share, axis=0)
    top = float(np.nanmax(total, initial=0.0))
    ax.set_ylim(0.0, min(max(top * 1.15, 0.05), 1.5))
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0))
    ax.set_ylabel("margin posted\n/ equity (stacked)")


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (exclusive) positions of the True runs of ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _pf_position(ax: Axes, result: Any, t: np.ndarray, colors: dict[str, str]) -> None:
    from matplotlib.patches import Patch

    x = mdates.date2num(t)
    width = float(np.median(np.diff(x))) if len(x) > 1 else 1.0 / 24
    names = list(colors)
    events = result.events
    for j, name in enumerate(names):
        sign = np.sign(np.nan_to_num(result.position[name].to_numpy(float)))
        for side, color in ((1.0, "tab:green"), (-1.0, "tab:purple")):
            starts, stops = _runs(sign == side)
            if len(starts):
                ax.broken_barh([(x[a], x[b - 1] + width - x[a]) for a, b in
                                zip(starts, stops, strict=True)], (j - 0.32, 0.64),
                               facecolors=color, alpha=0.55)
        for _, reasons, style in _PF_EXITS:
            bars, _ = _exit_bars(result, name, reasons)
            color = "red" if reasons == ("liquidation",) else colors[name]
            if len(bars):
                ax.scatter(t[bars], np.full(len(bars), float(j)), color=color, **style)
        rejected = events[(events["market"] == name) & events["kind"].isin(_REJECTIONS)]
        if len(rejected):
            ax.scatter(_times(rejected["time"]), np.full(len(rejected), j + 0.42), marker="v",
                       s=14, color="black", zorder=5)
    handles = [Patch(color="tab:green", alpha=0.55, label="long"),
               Patch(color="tab:purple", alpha=0.55, label="short")]
    for label, reasons, style in _PF_EXITS:
        if any(len(_exit_bars(result, n, reasons)[0]) for n in names):
            color = "red" if reasons == ("liquidation",) else "0.6"
            handles.append(ax.scatter([], [], color=color, label=label, **style))
    if len(events) and events["kind"].isin(_REJECTIONS).any():
        handles.append(ax.scatter([], [], marker="v", s=14, color="black",
                                  label="entry rejected (margin/size)"))
    ax.legend(handles=handles, fontsize=7.5, framealpha=0.85, loc="upper left",
              bbox_to_anchor=(1.005, 1.0), borderaxespad=0.0)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.4, -0.6)   # first market on top
    ax.xaxis_date()
    ax.set_ylabel("position")


def _pf_funding(ax: Axes, result: Any, t: np.ndarray, colors: dict[str, str],
                account: str) -> None:
    for name, color in colors.items():
        cum = np.cumsum(result.funding[name].to_numpy(float))
        total = float(cum[-1]) if len(cum) else 0.0
        ax.plot(t, cum, lw=0.8, color=color, label=f"{name}: {total:+,.4g}")
    ax.axhline(0.0, color="0.45", lw=0.6)
    ax.set_ylabel(f"funding paid\n({account}, cum.)")


def _portfolio_title(result: Any) -> str:
    s = result.stats
    prm = result.params
    return (f"{' + '.join(result.names)} · one wallet · {prm['leverage']:g}× "
            f"{prm['margin_mode']} · total return {s['total_return']:+.2%} · max drawdown "
            f"{s['max_drawdown']:.2%} · {s['n_trades']} trades · {s['n_liquidations']} "
            f"liquidations")


def plot_portfolio(result: Any, ax: Axes | Sequence[Axes] | None = None, *,
                   panels: Sequence[str] = PORTFOLIO_PANELS, title: str | None = None,
                   figsize: tuple[float, float] | None = None, log_price: bool = False,
                   log_equity: bool | None = None) -> Figure:
    """Several markets on one wallet: where the money went, market by market.

    Panels (``panels`` picks and orders them), one colour per market throughout:

    - ``equity``: combined equity (black) and wallet, drawdown shaded, initial capital;
      each liquidation marked on the equity curve in its market's colour.
    - ``price``: every market's last close rebased to 100 at the first bar (so 2-6 markets
      share an axis), its liquidation price dashed (isolated mode; cross has none per
      market), liquidation / expiry / stop exits at their fill prices.
    - ``pnl``: realised PnL of each market's closed trades, cumulated at exit bars, and the
      open positions' part (equity − capital − realised) dotted: the lines sum to
      equity − capital.
    - ``margin``: margin posted per market as a share of the combined equity, stacked — it
      rises when one market's loss shrinks the equity behind every position (cross mode:
      one wallet backs all of them).
    - ``position``: one row per market, long (green) / short (purple) spans, exits by
      reason (red × liquidation) and rejected entries (▼).
    - ``funding``: cumulative funding paid per market (> 0 paid).

    Parameters
    ----------
    result : PortfolioResult
    ax : Axes or sequence of Axes, optional
        One Axes per entry of ``panels`` (drawn in that order); default a new figure.
    panels : sequence of str
        A subset of :data:`PORTFOLIO_PANELS`.
    title : str, optional
        Figure title; default: markets, leverage, margin mode and headline stats.
    figsize : (float, float), optional
        Inches, for a new figure; default grows with the panels and markets.
    log_price : bool
        Log-scale the rebased price axis.
    log_equity : bool, optional
        Log-scale the equity axis; default when the positive equity spans more than 10×
        (the rule of every equity axis).

    Returns
    -------
    matplotlib.figure.Figure
    """
    panels = tuple(panels)
    unknown = [p for p in panels if p not in PORTFOLIO_PANELS]
    if unknown or not panels:
        raise ValueError(f"plot_portfolio: panels must be a non-empty subset of "
                         f"{PORTFOLIO_PANELS}; got {panels!r}.")
    names = list(result.names)
    colors = {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(names)}
    account = result.markets[names[0]].instrument.account_currency
    t = _times(result.index)
    heights = {"equity": 2.4, "price": 2.4, "pnl": 1.7, "margin": 1.4,
               "position": 0.3 * len(names) + 0.5, "funding": 1.1}
    if ax is None:
        ratios = [heights[p] for p in panels]
        fig = new_figure(figsize or (12.0, 1.05 * sum(ratios) + 1.0), layout="constrained")
        grid = fig.add_gridspec(len(panels), 1, height_ratios=ratios)
        axes = [fig.add_subplot(grid[0])]
        axes += [fig.add_subplot(grid[i], sharex=axes[0]) for i in range(1, len(panels))]
    else:
        axes = [ax] if isinstance(ax, Axes) else list(ax)
        if len(axes) != len(panels):
            raise ValueError(f"plot_portfolio: {len(panels)} panels {panels} need as many "
                             f"Axes; got {len(axes)}.")
        fig = axes[0].figure
    mode = result.params["margin_mode"]
    if log_equity is None:
        log_equity = log_scale_wanted(result.equity)
    for a, panel in zip(axes, panels, strict=True):
        if panel == "equity":
            _pf_equity(a, result, t, colors, account, log_equity)
        elif panel == "price":
            _pf_price(a, result, t, colors, log_price)
        elif panel == "pnl":
            _pf_pnl(a, result, t, colors, account)
        elif panel == "margin":
            _pf_margin(a, result, t, colors, mode)
        elif panel == "position":
            _pf_position(a, result, t, colors)
        else:
            _pf_funding(a, result, t, colors, account)
        if panel not in ("position", "margin"):
            _number_axis(a)
        if panel != "position":
            _side_legend(a)
        a.grid(alpha=0.25)
    for i, a in enumerate(axes):
        _date_axis(a, label=i == len(axes) - 1)
        if i < len(axes) - 1:
            a.tick_params(labelbottom=False)
    fig.suptitle(title or _portfolio_title(result), fontsize=10)
    return fig
