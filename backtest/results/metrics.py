"""Stats definitions computed from a run's series (docs/semantics.md, "Trades and stats").

The kernels compute the same statistics in streaming form (``kernels/stats.py``); this module
is the plain statement of what they mean, used to check the kernels and for series that did
not come from a kernel. Must not import the kernels' step logic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NS_PER_YEAR = 365 * 86400 * 1e9
RETURN_FLOOR = 1e-9  # of the initial capital: the ruin threshold (kernels/stats.py)


def bar_returns(equity: np.ndarray, initial_capital: float) -> np.ndarray:
    """Per-bar log returns ``ln(x_t / x_{t-1})`` of the equity floored at the ruin threshold,
    ``x_t = max(equity_t, 1e-9 · initial)``, with ``x_{-1} = initial_capital``.

    A bar that ruins the account contributes ``ln(1e-9 · initial / x_{t-1})`` (about -20.7
    or less), after which the returns are 0; their sum is ``ln(x_last / initial)``, so the
    mean (and the Sharpe and Sortino ratios) of a ruined run are always negative.
    """
    floor = RETURN_FLOOR * initial_capital
    x = np.maximum(np.asarray(equity, dtype=float), floor)
    prev = np.concatenate(([max(initial_capital, floor)], x[:-1]))
    return np.log(x / prev)


def max_drawdown(equity: np.ndarray, initial_capital: float) -> float:
    """Largest fractional fall from a running peak (initial capital counts as a peak)."""
    peak = np.maximum.accumulate(np.maximum(equity, initial_capital))
    return float(np.max(1.0 - equity / peak)) if len(equity) else 0.0


def compute_stats(equity: pd.Series | np.ndarray, trades: pd.DataFrame,
                  initial_capital: float, bar_ns: float, *, exposed_bars: int,
                  n_ambiguous: int, funding_paid: float, min_liq_distance: float,
                  ruined: bool) -> pd.Series:
    """SPEC §8 stats from the equity curve and the trade list.

    ``exposed_bars``, ``n_ambiguous``, ``funding_paid``, ``min_liq_distance`` and ``ruined``
    are counts the series alone cannot give; pass them from the result.
    """
    eq = np.asarray(equity, dtype=float)
    n = len(eq)
    final = float(eq[-1])
    r = bar_returns(eq, initial_capital)
    bars_per_year = NS_PER_YEAR / bar_ns
    years = n * bar_ns / NS_PER_YEAR
    with np.errstate(over="ignore"):  # a few bars of a big move annualise to inf
        cagr = -1.0 if final <= 0 else float(np.power(final / initial_capital,
                                                      1.0 / years)) - 1.0
    mdd = max_drawdown(eq, initial_capital)
    std = float(np.std(r, ddof=1)) if n > 1 else np.nan
    sharpe = float(np.mean(r)) / std * np.sqrt(bars_per_year) if std and std > 0 else np.nan
    down = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    sortino = float(np.mean(r)) / down * np.sqrt(bars_per_year) if down > 0 else np.nan
    pnl = trades["pnl"].to_numpy(float)
    profit = profit_factor(pnl[pnl > 0].sum(), -pnl[pnl < 0].sum(), len(pnl))
    reasons = trades["exit_reason"]
    return pd.Series({
        "final_equity": final,
        "total_return": final / initial_capital - 1.0,
        "cagr": cagr,
        "max_drawdown": mdd,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": cagr / mdd if mdd > 0 else np.nan,
        "n_trades": len(pnl),
        "win_rate": float((pnl > 0).mean()) if len(pnl) else np.nan,
        "profit_factor": profit,
        "exposure": exposed_bars / n,
        "n_liquidations": int((reasons == "liquidation").sum()),
        "n_stops": int(reasons.isin(["stop_loss", "trailing_stop"]).sum()),
        "funding_paid": funding_paid,
        "fees_paid": float(trades["fees"].sum()),
        "n_ambiguous": n_ambiguous,
        "min_liq_distance": min_liq_distance,
        "ruined": ruined,
        "interest_paid": float(trades["interest"].sum()),
    }, dtype=object)


def stats_from_result(result) -> pd.Series:  # noqa: ANN001 - Result imports this module's users
    """Recompute a Result's stats from its series and trades (the check of the kernel)."""
    exposed = int((result.position != 0).sum())
    return compute_stats(result.equity, result.trades, result.params["initial_capital"],
                         float(result.market.bar_ns), exposed_bars=exposed,
                         n_ambiguous=int((result.events["kind"] == "ambiguous_bar").sum()),
                         funding_paid=float(result.funding.sum()),
                         min_liq_distance=result.stats["min_liq_distance"],
                         ruined=bool(result.stats["ruined"]))


def profit_factor(wins: float, losses: float, n_trades: int) -> float:
    """Gross wins / gross losses (both >= 0, account currency): NaN without trades or
    without either, inf with wins and no losses."""
    if n_trades == 0:
        return np.nan
    if losses > 0:
        return float(wins / losses)
    return np.inf if wins > 0 else np.nan
