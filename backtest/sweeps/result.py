"""``SweepResult``: the pandas face of a sweep (SPEC §9).

Wraps the kernel's stats matrix with a MultiIndex named after the swept parameters (and
``signals`` for named signal sets), re-simulates one combination with ``engine.run`` for its
curves, and draws heatmaps / leverage curves (matplotlib imported lazily, inside the
methods). Computes no statistic itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from backtest.kernels.stats import STAT_NAMES
from backtest.presentation.tables import StatsFrame, axis_label, text_table
from backtest.simulation.params import RUN_DEFAULTS
from backtest.simulation.run import run

_INT_STATS = tuple(name for name in STAT_NAMES if name.startswith("n_"))
# best(): these metrics are better when lower; every other one when higher.
LOWER_IS_BETTER = ("max_drawdown", "n_liquidations", "fees_paid", "funding_paid",
                   "interest_paid", "n_ambiguous")
# Every ranking shows these beside the metric it ranks by: ruin and liquidation never hide.
RANKING_COLUMNS = ("ruined", "n_liquidations", "total_return", "max_drawdown", "sharpe",
                   "final_equity", "n_trades")


def _same(a: Any, b: Any) -> bool:
    """Level values compare equal, with None and NaN equal to each other."""
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return bool(a == b)


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


class SweepResult:
    """Stats of every combination of a sweep, one row each.

    Attributes
    ----------
    stats : DataFrame
        Index: one level per swept parameter (``signals`` first when signal sets were
        given), in the order given; columns ``kernels.stats.STAT_NAMES`` (counts as int,
        ``ruined`` as bool). ``None`` values (e.g. ``stop_loss=None``) appear as NaN.
    params : DataFrame
        The full ``run()`` keyword parameters of every combination (same index).
    names : list of str
        The index level names.
    market : Market or dict of name -> Market
        What was swept (a dict for a portfolio sweep; ``run(i)`` then returns a
        ``PortfolioResult``).
    elapsed : float
        Seconds spent in the kernel (all chunks).
    """

    def __init__(self, *, market: Any, stats: np.ndarray, levels: list[tuple[str, list]],
                 codes: np.ndarray, scalars: dict[str, Any], signals: tuple[np.ndarray, ...] | dict,
                 elapsed: float = float("nan")) -> None:
        self.market = market
        self._values = stats
        self._levels = levels
        self._codes = codes
        self._scalars = scalars
        self._signals = signals
        self.elapsed = elapsed
        self.names = [name for name, _ in levels]

    def __len__(self) -> int:
        return self._values.shape[0]

    @cached_property
    def index(self) -> pd.Index:
        """The combinations' labels (MultiIndex; a RangeIndex when nothing was swept)."""
        if not self._levels:
            return pd.RangeIndex(len(self), name="combination")
        levels, codes = [], []
        for j, (_, values) in enumerate(self._levels):
            level, remap = _factorize(values)
            levels.append(level)
            codes.append(remap[self._codes[:, j]])
        return pd.MultiIndex(levels=levels, codes=codes, names=self.names,
                             verify_integrity=False)

    @cached_property
    def stats(self) -> pd.DataFrame:
        """One row per combination, SPEC §8 columns."""
        frame = StatsFrame(self._values, index=self.index, columns=list(STAT_NAMES),
                           copy=False)
        for key in _INT_STATS:
            frame[key] = frame[key].astype(np.int64)
        frame["ruined"] = frame["ruined"].astype(bool)
        return frame

    def params_at(self, i: int) -> dict[str, Any]:
        """The ``run()`` keyword parameters of combination ``i`` (plus ``signals`` when sets
        were given), as passed to ``sweep()``."""
        i = self._position(i)
        out = {**self._scalars}
        for j, (name, values) in enumerate(self._levels):
            out[name] = values[self._codes[i, j]]
        return out

    @property
    def defaults(self) -> dict[str, Any]:
        """The run parameters' defaults (``RUN_DEFAULTS``): what a report calls "default"."""
        return dict(RUN_DEFAULTS)

    @cached_property
    def params(self) -> pd.DataFrame:
        """Every combination's full parameters: ``RUN_DEFAULTS`` keys (+ ``signals``)."""
        cols: dict[str, Any] = {}
        levels = dict(self._levels)
        if "signals" in levels:
            cols["signals"] = self._level_column("signals")
        for key, default in RUN_DEFAULTS.items():
            if key in levels:
                cols[key] = self._level_column(key)
            else:
                cols[key] = [self._scalars.get(key, default)] * len(self)
        return pd.DataFrame(cols, index=self.index)

    def _level_column(self, name: str) -> np.ndarray:
        j = self.names.index(name)
        values = np.empty(len(self._levels[j][1]), dtype=object)
        values[:] = self._levels[j][1]
        return values[self._codes[:, j]]

    # --- selection --------------------------------------------------------------------

    def best(self, metric: str = "sharpe", n: int = 1, ascending: bool | None = None,
             include_ruined: bool = False) -> pd.DataFrame:
        """The ``n`` best combinations by ``metric``: ruined rows last, then NaN last.

        Descending, except for ``LOWER_IS_BETTER`` metrics (``max_drawdown``,
        ``n_liquidations``, ``fees_paid``, ``funding_paid``, ``interest_paid``,
        ``n_ambiguous``); ``ascending`` overrides. A ruined account (equity at or below
        1e-9 of the initial capital at some bar) is never "best": ruined rows rank after
        every surviving row unless ``include_ruined=True`` (they are still listed when
        fewer than ``n`` rows survived, with ``ruined`` = yes). The columns start with
        ``metric``, ``ruined`` and ``n_liquidations``, then the headline stats, then the
        rest; the frame prints with the package's table formatter (percentages, ``none``
        for "no stop").
        """
        self._check_metric(metric, "best")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"best(): n is how many rows to return, a whole number >= 1; got "
                             f"{n!r}. Fix: e.g. best({metric!r}, n=5); for every row in "
                             f"ranked order use best({metric!r}, n=len(sweep)).")
        pos = self._ranking(metric, ascending, include_ruined)[: int(n)]
        first = [metric] + [c for c in RANKING_COLUMNS if c != metric]
        columns = first + [c for c in STAT_NAMES if c not in first]
        return self.stats.iloc[pos][columns]

    def _ranking(self, metric: str, ascending: bool | None = None,
                 include_ruined: bool = False) -> np.ndarray:
        """Row positions from best to worst (surviving rows, then ruined, NaN last)."""
        if ascending is None:
            ascending = metric in LOWER_IS_BETTER
        order = self._values[:, STAT_NAMES.index(metric)].astype(float)
        key = np.where(np.isnan(order), np.inf, order if ascending else -order)
        tier = np.isnan(order).astype(np.int8)
        if not include_ruined:
            tier = tier + 2 * (self._values[:, STAT_NAMES.index("ruined")] != 0)
        return np.lexsort((key, tier))

    def position(self, which: int | Mapping[str, Any] | tuple) -> int:
        """Integer position of a combination given by position, level values or label."""
        return self._position(which)

    def _position(self, which: Any) -> int:
        n = len(self)
        if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
            i = int(which)
            if not -n <= i < n:
                raise IndexError(f"SweepResult: combination {i} is out of range (0..{n - 1}).")
            return i % n
        if isinstance(which, tuple):
            if len(which) != len(self.names):
                raise ValueError(f"SweepResult: a label needs {len(self.names)} values "
                                 f"({self.names}), got {which!r}.")
            which = dict(zip(self.names, which, strict=True))
        if not isinstance(which, Mapping):
            raise TypeError("SweepResult: pass an integer position or a dict of level values, "
                            f"e.g. {{{self.names[0]!r}: ...}}, got {which!r}." if self.names
                            else f"SweepResult: pass an integer position, got {which!r}.")
        unknown = [k for k in which if k not in self.names]
        if unknown:
            raise KeyError(f"SweepResult: {unknown} are not levels of this sweep; levels: "
                           f"{self.names}.")
        mask = np.ones(n, dtype=bool)
        for name, value in which.items():
            j = self.names.index(name)
            matches = [c for c, v in enumerate(self._levels[j][1]) if _same(v, value)]
            if not matches:
                raise KeyError(f"SweepResult: {name}={value!r} is not in the sweep; values: "
                               f"{self._levels[j][1]}.")
            mask &= np.isin(self._codes[:, j], matches)
        hits = np.flatnonzero(mask)
        if len(hits) != 1:
            missing = [k for k in self.names if k not in which]
            raise ValueError(f"SweepResult: {dict(which)} matches {len(hits)} combinations; "
                             f"also give {missing}.")
        return int(hits[0])

    def run(self, which: int | Mapping[str, Any] | tuple = 0) -> Any:
        """Re-simulate one combination with ``backtest.run``; returns its ``Result``.

        ``which``: integer position in ``stats``, a dict of level values (e.g.
        ``{"leverage": 10, "stop_loss": None}``) or a full index label (tuple).
        """
        i = self._position(which)
        params = self.params_at(i)
        k = 0
        if "signals" in params:
            k = self._codes[i, self.names.index("signals")]
            del params["signals"]
        if isinstance(self._signals, Mapping):   # a portfolio: the signal dicts as given
            return run(self.market, **self._signals, **params)
        sig = {name: self._signals[s][:, k] for s, name in
               enumerate(("entries", "exits", "short_entries", "short_exits"))}
        return run(self.market, **sig, **params)

    # --- figures ----------------------------------------------------------------------

    def heatmap(self, metric: str = "sharpe", x: str | None = None, y: str | None = None,
                where: Mapping[str, Any] | None = None, agg: str = "mean",
                ax: Any = None) -> Any:
        """A matplotlib Figure: ``metric`` over two levels (other levels fixed by ``where``
        and/or reduced with ``agg``, e.g. "mean", "max", "median")."""
        self._check_metric(metric, "heatmap")
        x = x if x is not None else ("leverage" if "leverage" in self.names else None)
        others = [n for n in self.names if n != x]
        y = y if y is not None else (others[0] if others else None)
        for name, label in ((x, "x"), (y, "y")):
            if name not in self.names:
                raise ValueError(f"SweepResult.heatmap: {label}={name!r} is not a level; "
                                 f"levels: {self.names}.")
        if x == y:
            raise ValueError("SweepResult.heatmap: x and y must be different levels.")
        table = self._table(metric, [y, x], where, agg).unstack(x)
        from backtest.presentation.plotting import new_figure

        fig = ax.figure if ax is not None else new_figure((7, 4.5))
        ax = ax if ax is not None else fig.add_subplot(111)
        data = table.to_numpy(dtype=float)
        image = ax.imshow(data, aspect="auto", origin="lower", cmap="viridis")
        ax.set_xticks(range(data.shape[1]), [_label(v) for v in table.columns])
        ax.set_yticks(range(data.shape[0]), [_label(v) for v in table.index])
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel(axis_label(y))
        ax.set_title(f"{metric} ({agg} over other levels)" if len(self.names) > 2 else metric)
        fig.colorbar(image, ax=ax, label=axis_label(metric))
        return fig

    def leverage_curve(self, metric: str = "total_return", where: Mapping[str, Any] | None
                       = None, max_lines: int = 12, ax: Any = None) -> Any:
        """A matplotlib Figure: ``metric`` against leverage, one line per combination of the
        other levels (beyond ``max_lines`` lines: their median and 10-90 % band)."""
        self._check_metric(metric, "leverage_curve")
        if "leverage" not in self.names:
            raise ValueError("SweepResult.leverage_curve: leverage was not swept; pass a list, "
                             "e.g. sweep(..., leverage=[1, 2, 5, 10]).")
        others = [n for n in self.names if n != "leverage" and not (where and n in where)]
        table = self._table(metric, others + ["leverage"], where, "mean")
        from backtest.presentation.plotting import new_figure

        fig = ax.figure if ax is not None else new_figure((7, 4.5))
        ax = ax if ax is not None else fig.add_subplot(111)
        wide = table.unstack("leverage") if others else table.to_frame().T
        lev = np.array([float(v) for v in wide.columns])
        order = np.argsort(lev)
        if len(wide) <= max_lines:
            for label, row in wide.iterrows():
                name = ", ".join(f"{k}={_label(v)}" for k, v in
                                 zip(others, label if isinstance(label, tuple) else (label,),
                                     strict=False))
                ax.plot(lev[order], row.to_numpy(dtype=float)[order], marker="o",
                        label=name or metric)
            if others:
                ax.legend(fontsize="small")
        else:
            values = wide.to_numpy(dtype=float)[:, order]
            ax.plot(lev[order], np.nanmedian(values, axis=0), marker="o", label="median")
            ax.fill_between(lev[order], np.nanpercentile(values, 10, axis=0),
                            np.nanpercentile(values, 90, axis=0), alpha=0.3, label="10-90 %")
            ax.legend(fontsize="small")
        ax.set_xscale("log")
        ax.set_xlabel(axis_label("leverage") + ", log scale")
        ax.set_ylabel(axis_label(metric))
        ax.set_title(f"{metric} by leverage")
        return fig

    def _table(self, metric: str, keep: list[str], where: Mapping[str, Any] | None,
               agg: str) -> pd.Series:
        """``metric`` grouped by the ``keep`` levels after filtering by ``where``."""
        frame = self.stats[[metric]].astype(float).reset_index()
        for name, value in (where or {}).items():
            if name not in self.names:
                raise KeyError(f"SweepResult: {name!r} is not a level; levels: {self.names}.")
            frame = frame[[_same(v, value) for v in frame[name]]]
        for name in keep:
            frame[name] = frame[name].map(lambda v: "None" if _missing(v) else v)
        return frame.groupby(keep, sort=False)[metric].agg(agg)

    def _check_metric(self, metric: str, owner: str) -> None:
        if metric not in STAT_NAMES:
            raise ValueError(f"SweepResult.{owner}: metric={metric!r} is not a stat; choose one "
                             f"of {list(STAT_NAMES)}.")

    def plot(self, metrics: Any = ("total_return", "max_drawdown", "sharpe"),
             **kwargs: Any) -> Any:
        """A heatmap of two numeric levels, else the leverage curve, else bars (a Figure;
        ``backtest.plotting.plot_sweep``)."""
        from backtest.presentation.plotting import plot_sweep

        return plot_sweep(self, metrics, **kwargs)

    def report(self, path: str) -> SweepResult:
        """Write a self-contained HTML report (best rows, figure, full stats) to ``path``
        and return self."""
        from backtest.presentation.reports.sweep import write_sweep_report

        write_sweep_report(self, path)
        return self

    def __repr__(self) -> str:
        if isinstance(self.market, Mapping):
            inst = "+".join(self.market)
            n_bars = next(iter(self.market.values())).n_bars
        else:
            inst = getattr(self.market.instrument, "symbol", "?")
            n_bars = self.market.n_bars
        levels = " × ".join(f"{name}[{len(values)}]" for name, values in self._levels) or "-"
        text = (f"<SweepResult {inst}: {len(self):,} combinations ({levels}) over "
                f"{n_bars:,} bars")
        sharpe = self._values[:, STAT_NAMES.index("sharpe")]
        if len(self) and not np.isnan(sharpe).all():
            i = int(self._ranking("sharpe")[0])
            label = ", ".join(f"{k}={_label(v)}" for k, v in self.params_at(i).items()
                              if k in self.names)
            text += f"; best sharpe {sharpe[i]:.3f} ({label or 'the only combination'})"
        ruined = int(self._values[:, STAT_NAMES.index("ruined")].sum())
        liq = int((self._values[:, STAT_NAMES.index("n_liquidations")] > 0).sum())
        return text + f"; {liq:,} with liquidations, {ruined:,} ruined>"

    def summary(self, metric: str = "sharpe", n: int = 5) -> str:
        """The repr line and the ``n`` best rows by ``metric`` as terminal text."""
        return f"{self!r}\n{text_table(self.best(metric, n=n)[list(_headline(metric))])}"

    def _repr_html_(self) -> str:
        import html

        best = self.best("sharpe", n=min(10, len(self)))
        return (f"<p>{html.escape(self.__repr__()[1:-1])}</p><p>best by sharpe (ruined rows "
                f"last):</p>{best._repr_html_()}")


def _headline(metric: str) -> tuple[str, ...]:
    return (metric,) + tuple(c for c in RANKING_COLUMNS if c != metric)


def _factorize(values: list) -> tuple[pd.Index, np.ndarray]:
    """Distinct level values (first-seen order; None/NaN left out, pandas marks them with
    code -1) and the level code of each given value."""
    uniques: list = []
    remap = np.empty(len(values), dtype=np.int32)
    for i, v in enumerate(values):
        if _missing(v):
            remap[i] = -1
            continue
        for j, u in enumerate(uniques):
            if _same(u, v):
                remap[i] = j
                break
        else:
            remap[i] = len(uniques)
            uniques.append(v)
    return pd.Index(uniques), remap


def _label(value: Any) -> str:
    if _missing(value) or value == "None":
        return "None"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
