"""What a quant reads after the headline stats: monthly returns, drawdown periods, exits by
reason, funding and fees month by month, and a buy-and-hold benchmark.

Plain pandas over a run's equity, trades and funding (any result kind: the portfolio's
``funding`` is a frame with one column per market and is summed). ``RunResult`` exposes
each as a method; the reports only display them. Must not import the kernels' step logic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["buy_and_hold", "costs_by_month", "drawdown_periods", "exit_breakdown",
           "monthly_returns"]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _naive(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index


def monthly_returns(equity: pd.Series, initial_capital: float) -> pd.DataFrame:
    """Calendar-month returns (fractions): one row per year, columns ``Jan``..``Dec`` and
    ``Year``; a month's return is its last equity over the previous month's last equity
    (the initial capital before the first) minus 1, NaN where there is no bar or the
    previous equity was not positive (a ruined account)."""
    eq = pd.Series(equity.to_numpy(float), index=_naive(equity.index))
    month_end = eq.groupby(eq.index.to_period("M")).last()
    year_end = eq.groupby(eq.index.to_period("Y")).last()

    def change(ends: pd.Series) -> pd.Series:
        prev = ends.shift(1, fill_value=float(initial_capital))
        with np.errstate(divide="ignore", invalid="ignore"):
            return (ends / prev - 1.0).where(prev > 0)

    by_month = change(month_end)
    frame = pd.DataFrame({"year": by_month.index.year, "month": by_month.index.month,
                          "r": by_month.to_numpy()})
    table = frame.pivot(index="year", columns="month", values="r")
    table = table.reindex(columns=range(1, 13))
    table.columns = list(MONTHS)
    table["Year"] = change(year_end).to_numpy()
    table.index.name = "year"
    return table


def drawdown_periods(equity: pd.Series, initial_capital: float, n: int = 5) -> pd.DataFrame:
    """The ``n`` deepest drawdowns: ``peak`` (last bar at the running maximum before it),
    ``trough``, ``recovery`` (first bar back at or above the peak; NaT if never),
    ``depth`` (fraction below the peak at the trough), ``days_to_trough``,
    ``days_to_recovery`` (NaN if not recovered) and ``length_days`` (peak to recovery, or
    to the last bar when not recovered). Days are calendar days (bar times)."""
    eq = equity.to_numpy(float)
    times = equity.index
    peak_value = np.maximum.accumulate(np.maximum(eq, float(initial_capital)))
    under = eq < peak_value
    rows = []
    i, n_bars = 0, len(eq)
    while i < n_bars:
        if not under[i]:
            i += 1
            continue
        start = i
        while i < n_bars and under[i]:
            i += 1
        end = i  # first bar at/above the peak again, or n_bars
        trough = start + int(np.argmin(eq[start:end]))
        peak_at = times[start - 1] if start > 0 else pd.NaT
        recovered = end < n_bars
        last = times[end] if recovered else times[-1]
        origin = peak_at if start > 0 else times[0]
        rows.append({
            "peak": peak_at, "trough": times[trough],
            "recovery": times[end] if recovered else pd.NaT,
            "depth": 1.0 - eq[trough] / peak_value[trough],
            "days_to_trough": (times[trough] - origin) / pd.Timedelta(days=1),
            "days_to_recovery": ((times[end] - times[trough]) / pd.Timedelta(days=1)
                                 if recovered else np.nan),
            "length_days": (last - origin) / pd.Timedelta(days=1),
        })
    columns = ["peak", "trough", "recovery", "depth", "days_to_trough", "days_to_recovery",
               "length_days"]
    out = pd.DataFrame(rows, columns=columns)
    out = out.sort_values("depth", ascending=False, kind="stable").head(int(n))
    return out.reset_index(drop=True)


def exit_breakdown(trades: pd.DataFrame) -> pd.DataFrame:
    """Trades by exit reason: ``n_trades``, ``share`` of all trades, total and mean ``pnl``
    (net, account currency), ``win_rate``, and the ``fees`` and ``funding`` they paid;
    liquidations are one row like any reason. Sorted by count."""
    if trades.empty:
        return pd.DataFrame(columns=["n_trades", "share", "pnl", "mean_pnl", "win_rate",
                                     "fees", "funding"]).rename_axis("exit_reason")
    g = trades.groupby("exit_reason")
    out = pd.DataFrame({
        "n_trades": g.size(),
        "share": g.size() / len(trades),
        "pnl": g["pnl"].sum(),
        "mean_pnl": g["pnl"].mean(),
        "win_rate": g["pnl"].apply(lambda p: float((p > 0).mean())),
        "fees": g["fees"].sum(),
        "funding": g["funding"].sum(),
    })
    return out.sort_values("n_trades", ascending=False, kind="stable")


def costs_by_month(funding: pd.Series | pd.DataFrame, trades: pd.DataFrame,
                   equity: pd.Series) -> pd.DataFrame:
    """Funding (per bar, > 0 paid) and fees (at each trade's exit) summed per calendar
    month, with ``drag`` = (funding + fees) / the month's mean equity (a fraction)."""
    if isinstance(funding, pd.DataFrame):
        funding = funding.sum(axis=1)
    f = pd.Series(funding.to_numpy(float), index=_naive(funding.index))
    months = f.index.to_period("M")
    paid = f.groupby(months).sum()
    fees = pd.Series(0.0, index=paid.index)
    if len(trades):
        exits = _naive(pd.DatetimeIndex(trades["exit_time"])).to_period("M")
        fees = fees.add(trades["fees"].groupby(exits).sum(), fill_value=0.0)
    eq = pd.Series(equity.to_numpy(float), index=_naive(equity.index))
    mean_equity = eq.groupby(eq.index.to_period("M")).mean()
    out = pd.DataFrame({"funding": paid, "fees": fees.reindex(paid.index, fill_value=0.0)})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["drag"] = ((out["funding"] + out["fees"]) / mean_equity.reindex(out.index)
                       ).where(mean_equity.reindex(out.index) > 0)
    out.index = out.index.to_timestamp()
    out.index.name = "month"
    return out


def buy_and_hold(close: pd.Series | np.ndarray, index: pd.DatetimeIndex,
                 initial_capital: float) -> pd.Series:
    """The benchmark: the initial capital in the underlying at the first close, held 1×
    with no fee or funding (``capital · close / close[0]``), in the quote currency."""
    c = np.asarray(close, dtype=float)
    return pd.Series(float(initial_capital) * c / c[0], index=index, name="buy_and_hold")
