"""Figures of results: the only module that imports matplotlib.

Owns :func:`plot_result` (price with trades and the liquidation line, equity with drawdown,
cumulative funding), :func:`plot_comparison` (equity curves of several runs),
:func:`plot_portfolio` (several markets on one wallet), :func:`plot_sweep` (a sweep's
heatmaps / leverage curves, drawn by ``SweepResult``'s methods on Axes made here) and
:func:`figure_png`. Figures are built as :class:`matplotlib.figure.Figure` objects directly —
never through ``pyplot`` — so nothing touches global state: it works headless, in threads
and in notebooks (a returned Figure displays itself). Nothing here calls ``show()``.

Reads only the public attributes of ``Result`` / ``PortfolioResult`` / ``SweepResult`` /
``Market``; computes no statistic itself (display sums and means only).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["PORTFOLIO_PANELS", "figure_png", "new_figure", "plot_comparison", "plot_portfolio",
           "plot_result", "plot_sweep", "sweep_figure_kind"]

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


def _times(index: Any) -> np.ndarray:
    """UTC bar times as naive ``datetime64[ns]`` (fast for matplotlib; axes say UTC)."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy(dtype="datetime64[ns]")


def _date_axis(ax: Axes, label: bool = True) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if label:
        ax.set_xlabel("time (UTC)")


def _number_axis(ax: Axes) -> None:
    """Readable y ticks: ``120,000`` rather than ``1.2e5``; small values keep 6 digits."""

    def fmt(x: float, _pos: int) -> str:
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.6g}"

    ax.yaxis.set_major_formatter(ticker.FuncFormatter(fmt))


def _currencies(result: Any) -> tuple[str, str]:
    """(account currency, quote currency) of a result's instrument."""
    inst = result.market.instrument
    account = getattr(result, "account_currency", None) or inst.account_currency
    return account, getattr(inst, "quote_currency", "quote")


def _legend(ax: Axes, **kwargs: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7.5, framealpha=0.85, **kwargs)


def _price_limits(ax: Axes, market: Any, trades: pd.DataFrame, log: bool) -> None:
    """Y range of the traded prices, so that a far liquidation level (e.g. a 1x long's,
    near zero) runs off the chart instead of squashing the price."""
    prices = [np.asarray(market.low, dtype=float), np.asarray(market.high, dtype=float),
              trades["entry_price"].to_numpy(float), trades["exit_price"].to_numpy(float)]
    _set_limits(ax, np.concatenate(prices), log)


def _set_limits(ax: Axes, values: np.ndarray, log: bool) -> None:
    """Y range of ``values`` with a 5 % margin (finite values; positive ones on a log axis)."""
    values = values[np.isfinite(values) & (values > 0 if log else True)]
    if not len(values):
        return
    lo, hi = float(values.min()), float(values.max())
    if log:
        pad = (hi / lo) ** 0.05
        ax.set_ylim(lo / pad, hi * pad)
    else:
        pad = 0.05 * (hi - lo) or 0.05 * abs(hi) or 1.0
        ax.set_ylim(lo - pad, hi + pad)


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
    _legend(ax, loc="upper left", ncol=2)


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
        _legend(ax, loc="upper left")


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
    _legend(ax, loc="upper left")


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
                log_price: bool = False, log_equity: bool = False,
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
    log_price, log_equity : bool
        Log-scale the price / equity axis (non-positive equity is then not drawn).
    quote_equity : bool, optional
        Draw the quote-valued equity (inverse/quanto only); default True for those.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown; save with ``fig.savefig(path)`` or display it in a notebook.
    """
    if isinstance(ax, Axes):
        _price_panel(ax, result, log_price=log_price)
        _date_axis(ax)
        ax.set_title(title or _title(result), fontsize=9)
        return ax.figure
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
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


def plot_comparison(results: Mapping[str, Any], ax: Axes | None = None, *, log: bool = False,
                    normalize: bool | None = None, title: str | None = None,
                    figsize: tuple[float, float] = (12.0, 5.5)) -> Figure:
    """Equity curves of several runs on one axis, liquidations marked with ×.

    Parameters
    ----------
    results : mapping of label -> Result
        Runs on any markets; the label names each curve in the legend.
    ax : Axes, optional
        Draw into this axis instead of a new figure.
    log : bool
        Log-scale the equity axis (equity ≤ 0 is not drawn).
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
        fig = Figure(figsize=figsize, layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    currencies = {_currencies(r)[0] for r in results.values()}
    capitals = {float(r.params["initial_capital"]) for r in results.values()}
    if normalize is None:
        normalize = len(currencies) > 1 or len(capitals) > 1
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


# --- portfolios ---------------------------------------------------------------------------

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
    ax.set_ylabel(f"equity ({account})")


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
                   log_equity: bool = False) -> Figure:
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
    log_price, log_equity : bool
        Log-scale the rebased price / equity axis.

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
        fig = Figure(figsize=figsize or (12.0, 1.05 * sum(ratios) + 1.0), layout="constrained")
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


# --- sweeps -------------------------------------------------------------------------------

SWEEP_METRICS = ("total_return", "max_drawdown", "sharpe")


def _numeric_levels(sweep: Any) -> list[str]:
    """Swept levels whose values are numbers (None allowed, booleans not)."""
    out = []
    for name in sweep.names:
        values = sweep.index.get_level_values(name)
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            out.append(name)
    return out


def sweep_figure_kind(sweep: Any) -> tuple[str | None, list[str]]:
    """What :func:`plot_sweep` draws by default and over which levels.

    ``("heatmap", [x, y])`` with two numeric levels (leverage as x when swept), else
    ``("leverage", ["leverage"])`` when leverage was swept, else ``("bar", [first level])``,
    else ``(None, [])`` when nothing was swept.
    """
    numeric = _numeric_levels(sweep)
    if len(numeric) >= 2:
        x = "leverage" if "leverage" in numeric else numeric[0]
        return "heatmap", [x, next(n for n in numeric if n != x)]
    if "leverage" in sweep.names:
        return "leverage", ["leverage"]
    if sweep.names:
        return "bar", [sweep.names[0]]
    return None, []


def _sweep_bars(ax: Axes, sweep: Any, metric: str, level: str) -> None:
    frame = sweep.stats[[metric]].astype(float).reset_index()
    labels = [("None" if v is None or (isinstance(v, float) and np.isnan(v)) else
               f"{v:g}" if isinstance(v, float) else str(v)) for v in frame[level]]
    table = frame.assign(**{level: labels}).groupby(level, sort=False)[metric].mean()
    ax.bar(range(len(table)), table.to_numpy(float), color="tab:blue", alpha=0.75)
    ax.set_xticks(range(len(table)), [str(v) for v in table.index],
                  rotation=45 if len(table) > 8 else 0, ha="right" if len(table) > 8 else "center")
    ax.axhline(0.0, color="0.45", lw=0.6)
    ax.set_xlabel(level)
    ax.set_ylabel(metric)
    others = len(sweep.names) > 1
    ax.set_title(f"{metric}{' (mean over other levels)' if others else ''}", fontsize=9)


def plot_sweep(sweep: Any, metrics: Sequence[str] = SWEEP_METRICS, *, kind: str | None = None,
               figsize: tuple[float, float] | None = None) -> Figure:
    """One panel per metric: a heatmap over two numeric levels, the leverage curve, or bars.

    Parameters
    ----------
    sweep : SweepResult
    metrics : sequence of str
        Stats columns, one panel each.
    kind : {"heatmap", "leverage", "bar"}, optional
        Default :func:`sweep_figure_kind`: a heatmap (``SweepResult.heatmap``, mean over the
        other levels) when two levels are numeric, else ``SweepResult.leverage_curve`` when
        leverage was swept, else the mean of each metric per value of the first level.

    Returns
    -------
    matplotlib.figure.Figure
    """
    auto, levels = sweep_figure_kind(sweep)
    kind = kind or auto
    if kind is None:
        raise ValueError("plot_sweep: nothing was swept (one combination); use "
                         "sweep.run(0).plot() for its curves.")
    if kind not in ("heatmap", "leverage", "bar"):
        raise ValueError(f"plot_sweep: kind must be 'heatmap', 'leverage' or 'bar'; got "
                         f"{kind!r}.")
    if kind == "heatmap" and auto != "heatmap":
        raise ValueError(f"plot_sweep: a heatmap needs two numeric levels; this sweep's "
                         f"levels are {sweep.names}. Use kind='leverage' or 'bar'.")
    if kind != auto:
        levels = ["leverage"] if kind == "leverage" else sweep.names[:1]
    metrics = list(metrics)
    fig = new_figure(figsize or (4.6 * len(metrics), 4.0), layout="constrained")
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        if kind == "heatmap":
            sweep.heatmap(metric, x=levels[0], y=levels[1], ax=ax)
        elif kind == "leverage":
            sweep.leverage_curve(metric, ax=ax)
            values = sorted({float(v) for v in sweep.index.get_level_values("leverage")})
            ax.set_xticks(values, [f"{v:g}×" for v in values])
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        else:
            _sweep_bars(ax, sweep, metric, levels[0])
        ax.title.set_fontsize(9)
    return fig


def new_figure(figsize: tuple[float, float] = (7.0, 4.5), layout: str | None = None
               ) -> Figure:
    """An empty Figure without pyplot's global state (for other modules' charts)."""
    return Figure(figsize=figsize, layout=layout)


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure rendered as PNG bytes (Agg, no display needed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
