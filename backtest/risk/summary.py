"""From the kernel's per-column rows to the risk table and the survival curves.

Definitions (``docs/leverage_risk.md``): every probability is a fraction of the complete
windows (or of the paths); quantiles are empirical (``numpy.quantile(...,
method="inverted_cdf")``: an observed value, the smallest ``x`` with ``F(x) >= q``, so
infinities are kept and nothing is interpolated); ``growth_rate`` is
``log(final_equity / initial_capital) / years`` of a window, ``-inf`` for a ruined one;
``time_to_liquidation`` counts the bars held up to and including the liquidation bar
(entries fill at the second bar's open by default, so holding starts there). The survival
curve is the Kaplan-Meier estimate over all windows: a window cut by the end of the data
without a liquidation is censored at the bars it held.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from backtest.kernels import records as R
from backtest.kernels.stats import NS_PER_YEAR, STAT_NAMES
from backtest.kernels.windows import N_OUT, O_LIQ_BAR, O_N_BARS, O_STOP_BAR

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_S = {name: i for i, name in enumerate(STAT_NAMES)}


def empirical_quantile(x: np.ndarray, q: float) -> float:
    """The empirical ``q`` quantile (an observed value); NaN for no values."""
    return float(np.quantile(x, q, method="inverted_cdf")) if len(x) else np.nan


def cube(result: Any) -> np.ndarray:
    """float64[n_groups, n_combos, N_OUT]: the kernel rows by (window or path, combo)."""
    return result.out.reshape(-1, result.params.shape[0], N_OUT)


def entry_bars(result: Any) -> np.ndarray:
    """Per combo, the window bar on which the held position is entered (0 with signals)."""
    if not result.hold_mode:
        return np.zeros(result.params.shape[0], dtype=np.int64)
    return np.where(result.params[:, R.P_FILL] == R.FILLS.index("close"), 0, 1)


def growth(rows: np.ndarray, capital: np.ndarray, bar_ns: float) -> np.ndarray:
    """Log growth per year of each row (``-inf`` when ruined)."""
    years = rows[..., O_N_BARS] * bar_ns / NS_PER_YEAR
    final = rows[..., _S["final_equity"]]
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.log(final / capital) / years
    return np.where((rows[..., _S["ruined"]] != 0.0) | (final <= 0.0), -np.inf, g)


def table(result: Any) -> pd.DataFrame:
    """One row per combination (see the module doc and ``docs/leverage_risk.md``)."""
    data = cube(result)
    done = data[result.complete]
    capital = result.params[:, R.P_INITIAL_CAPITAL]
    entry = entry_bars(result)
    bar_ns = float(result.market.bar_ns)
    g_all = growth(done, capital[None, :], bar_ns)
    rows = []
    for c in range(data.shape[1]):
        x = done[:, c]
        n = len(x)
        liq = x[:, O_LIQ_BAR] >= 0.0
        row: dict[str, Any] = {"n_windows" if result.method == "rolling" else "n_paths": n}
        if result.method == "rolling":
            row["n_censored"] = int((~result.complete).sum())
        row["p_liquidation"] = liq.sum() / n
        row["p_ruin"] = (x[:, _S["ruined"]] != 0.0).sum() / n
        row["p_stopped"] = (x[:, O_STOP_BAR] >= 0.0).sum() / n
        row["p_drawdown_50"] = (x[:, _S["max_drawdown"]] >= 0.5).sum() / n
        if result.hold_mode:
            row["p_no_entry"] = (x[:, _S["n_trades"]] == 0.0).sum() / n
        for name in ("total_return", "max_drawdown"):
            for q in QUANTILES:
                row[f"{name}_q{round(q * 100):02d}"] = empirical_quantile(x[:, _S[name]], q)
        held = x[liq, O_LIQ_BAR] + 1.0 - entry[c]
        row["median_time_to_liquidation"] = (
            pd.Timedelta(int(empirical_quantile(held, 0.5) * bar_ns), "ns") if liq.any()
            else pd.NaT)
        g = g_all[:, c]
        row["growth_rate"] = empirical_quantile(g, 0.5)
        row["growth_rate_q05"] = empirical_quantile(g, 0.05)
        row["growth_rate_q95"] = empirical_quantile(g, 0.95)
        row["funding_paid"] = empirical_quantile(x[:, _S["funding_paid"]], 0.5)
        rows.append(row)
    return pd.DataFrame(rows, index=combo_index(result))


def combo_index(result: Any) -> pd.Index:
    """The table's index: one level per list-valued parameter (side first when listed)."""
    arrays = [[values[i] for i in result.level_codes[:, j]]
              for j, (_, values) in enumerate(result.levels)]
    names = [name for name, _ in result.levels]
    if len(arrays) == 1:
        return pd.Index(arrays[0], name=names[0])
    return pd.MultiIndex.from_arrays(arrays, names=names)


def kaplan_meier(times: np.ndarray, events: np.ndarray, last: int) -> np.ndarray:
    """Survival ``S(k)`` for ``k = 0..last`` bars held: the product over event times
    ``j <= k`` of ``1 - d_j / n_j`` (``n_j`` windows still observed at ``j``)."""
    times = np.clip(times.astype(np.int64), 0, last)
    deaths = np.bincount(times[events], minlength=last + 1)
    leaving = np.bincount(times, minlength=last + 1)
    at_risk = len(times) - np.concatenate([[0], np.cumsum(leaving)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(at_risk > 0, 1.0 - deaths / at_risk, 1.0)
    return np.cumprod(factor)


def survival(result: Any) -> pd.DataFrame:
    """Rows: time held (a Timedelta, 0 to the horizon); columns: the table's index; values:
    the Kaplan-Meier fraction not yet liquidated (all windows; those cut by the end of the
    data censored)."""
    data = cube(result)
    entry = entry_bars(result)
    last = int(data[:, :, O_N_BARS].max() - entry.min())
    curves = {}
    for c in range(data.shape[1]):
        x = data[:, c]
        liq = x[:, O_LIQ_BAR] >= 0.0
        times = np.where(liq, x[:, O_LIQ_BAR] + 1.0 - entry[c], x[:, O_N_BARS] - entry[c])
        curves[c] = kaplan_meier(times, liq, last)
    frame = pd.DataFrame(curves)
    frame.columns = combo_index(result)
    frame.index = pd.to_timedelta(np.arange(last + 1) * int(result.market.bar_ns), "ns")
    frame.index.name = "time_held"
    return frame


def windows(result: Any) -> pd.DataFrame:
    """One row per (window or path, combination): its place, its parameters and every
    stat of ``run()`` on it, plus ``liquidated``, ``time_to_liquidation`` and ``stopped``."""
    data = cube(result)
    n_g, n_c = data.shape[:2]
    idx = result.market.index
    frame = pd.DataFrame(data.reshape(n_g * n_c, N_OUT)[:, :len(STAT_NAMES)],
                         columns=list(STAT_NAMES))
    group = np.repeat(np.arange(n_g), n_c)
    combo = np.tile(np.arange(n_c), n_g)
    if result.method == "rolling":
        frame.insert(0, "start", idx[result.starts[group]])
        frame.insert(1, "end", idx[result.ends[group]])
        frame.insert(2, "complete", result.complete[group])
    else:
        frame.insert(0, "path", group)
    labels = combo_index(result)
    for j, name in enumerate(labels.names):
        frame.insert(j + (3 if result.method == "rolling" else 1), name,
                     labels.get_level_values(j)[combo])
    flat = data.reshape(n_g * n_c, N_OUT)
    liq = flat[:, O_LIQ_BAR] >= 0.0
    frame["liquidated"] = liq
    held = np.where(liq, flat[:, O_LIQ_BAR] + 1.0 - entry_bars(result)[combo], np.nan)
    frame["time_to_liquidation"] = pd.to_timedelta(held * float(result.market.bar_ns), "ns")
    frame["stopped"] = flat[:, O_STOP_BAR] >= 0.0
    frame["n_bars"] = flat[:, O_N_BARS].astype(np.int64)
    return frame
