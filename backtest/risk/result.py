"""``RiskResult``: what ``leverage_risk`` returns.

Holds the kernel's per-column rows (one per window or path and combination: every stat
of ``run()``, the bar of the first liquidation and of the first stop, the length) and
presents them: ``table`` (one row per combination), ``survival()`` (Kaplan-Meier curves),
``windows`` (the per-column rows as a DataFrame), ``run(i)`` (one column re-simulated with
its curves), ``plot()``, ``report(path)`` and ``_repr_html_``. Definitions:
``risk/summary.py`` and ``docs/leverage_risk.md``.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.risk import summary


class RiskResult:
    """The leverage-risk distribution of one market (see the module doc).

    Attributes
    ----------
    market : Market
    method : ``"rolling"`` or ``"bootstrap"``
    horizon : pd.Timedelta
    levels : list of (name, values)
        The list-valued parameters (``side`` first when a list was given).
    scalars : dict
        The parameters passed as single values.
    starts, ends, complete : np.ndarray
        Rolling: each window's first and last bar and whether the whole horizon is inside
        the data. Bootstrap: 0, horizon - 1 and True for every path.
    bootstrap : dict or None
        ``n_paths``, ``block_bars``, ``method``, ``seed`` and the path arrays ``src`` (the
        historical bar behind each path bar) and ``scale`` (its price factor).
    """

    def __init__(self, *, market: Any, method: str, out: np.ndarray, horizon_ns: int,
                 starts: np.ndarray, ends: np.ndarray, complete: np.ndarray,
                 levels: list[tuple[str, list]], level_codes: np.ndarray,
                 scalars: dict[str, Any], params: np.ndarray, hold: np.ndarray,
                 sides: list[str], hold_mode: bool, signals: Any,
                 bootstrap: dict[str, Any] | None = None) -> None:
        self.market = market
        self.method = method
        self.out = out
        self.horizon = pd.Timedelta(horizon_ns, "ns")
        self.starts, self.ends, self.complete = starts, ends, complete
        self.levels = levels
        self.level_codes = np.asarray(level_codes)
        self.scalars = scalars
        self.params = params
        self.hold = hold
        self.sides = sides
        self.hold_mode = hold_mode
        self.signals = signals
        self.bootstrap = bootstrap

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per combination: ``n_windows``/``n_paths``, ``n_censored``,
        ``p_liquidation``, ``p_ruin``, ``p_stopped``, ``p_drawdown_50``, ``p_no_entry``
        (holding mode), quantiles ``*_q05..q95`` of ``total_return`` and ``max_drawdown``,
        ``median_time_to_liquidation``, ``growth_rate`` (median log growth per year) with
        ``growth_rate_q05``/``q95``, and the median ``funding_paid`` (account currency)."""
        return summary.table(self)

    def survival(self) -> pd.DataFrame:
        """Kaplan-Meier fraction not yet liquidated vs time held (rows), per combination
        (columns, labelled as the table's rows); windows cut by the end of the data are
        censored."""
        return summary.survival(self)

    @cached_property
    def windows(self) -> pd.DataFrame:
        """One row per (window or path, combination) with every ``run()`` stat."""
        return summary.windows(self)

    @property
    def n_groups(self) -> int:
        return len(self.starts)

    def column(self, group: int, combo: int) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """``(market, signals, params)`` that ``run()`` takes to recompute one column:
        the window's ``market.take(start, end)`` (or the path's Market), its signals and
        the combination's parameters."""
        from backtest.risk.bootstrap import path_market
        from backtest.simulation.signals import buy_and_hold

        if self.method == "rolling":
            sub = self.market.take(int(self.starts[group]), int(self.ends[group]))
        else:
            sub = path_market(self.market, self.bootstrap["src"][group],
                              self.bootstrap["scale"][group])
        params = dict(self.scalars)
        for j, (name, values) in enumerate(self.levels):
            params[name] = values[self.level_codes[combo, j]]
        side = params.pop("side", self.sides[0])
        signals: dict[str, Any] = {}
        if self.hold_mode:
            signals["entries" if side == "long" else "short_entries"] = buy_and_hold(sub.index)
        elif callable(self.signals):
            signals = dict(self.signals(sub if self.method == "bootstrap" else self.market))
        else:
            signals = dict(zip(("entries", "exits", "short_entries", "short_exits"),
                               self.signals, strict=True))
        if self.method == "rolling" and not self.hold_mode:
            lo, hi = int(self.starts[group]), int(self.ends[group]) + 1
            signals = {k: _slice(v, lo, hi) for k, v in signals.items() if v is not None}
        return sub, signals, params

    def run(self, group: int, combo: int = 0) -> Any:
        """``run()`` on one window or path for one combination (its full curves)."""
        from backtest.simulation.run import run

        sub, signals, params = self.column(group, combo)
        return run(sub, **signals, **params)

    def plot(self, **kwargs: Any) -> Any:
        """Survival curves, P(liquidation) and growth vs leverage with 5-95 % bands."""
        from backtest.presentation.plotting.risk import plot_risk

        return plot_risk(self, **kwargs)

    def report(self, path: str | os.PathLike[str], title: str | None = None) -> Path:
        """A self-contained HTML report (the shared page family)."""
        from backtest.presentation.reports.risk import write_risk_report

        return write_risk_report(self, path, title=title)

    def describe(self) -> str:
        """One line: market, method, horizon, counts."""
        what = (f"{self.n_groups:,} windows ({int(self.complete.sum()):,} complete)"
                if self.method == "rolling" else
                f"{self.n_groups:,} bootstrap paths (block {self.bootstrap['block_bars']} bars, "
                f"{self.bootstrap['method']}, seed {self.bootstrap['seed']})")
        mode = "holding one position from each start" if self.hold_mode else "signals"
        return (f"{self.market.instrument.symbol}, horizon {self.horizon}, {what}, {mode}, "
                f"mark={self.market.mark_source}")

    def __repr__(self) -> str:
        return f"RiskResult({self.describe()})\n{self.table.to_string()}"

    def _repr_html_(self) -> str:
        from backtest.presentation.reports.risk import risk_table_html

        return f"<p>RiskResult: {self.describe()}</p>" + risk_table_html(self)


def _slice(signal: Any, lo: int, hi: int) -> Any:
    if isinstance(signal, pd.Series):
        return signal.iloc[lo:hi]
    return np.asarray(signal)[lo:hi]
