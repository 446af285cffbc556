"""Shared figure plumbing of :mod:`backtest.plotting`: time and number axes, legends, y
limits, :func:`new_figure` and :func:`figure_png`.

Figures are made by :func:`new_figure` through ``pyplot`` (so ``plt.show()`` shows them in a
script and Jupyter's inline backend displays them without ``%matplotlib inline``), as
:class:`ShownFigure`, which displays itself once in Jupyter. Headless (no display, CI) pyplot
picks the Agg backend by itself. :func:`figure_png` closes the figure it renders, so loops
that write reports do not accumulate open figures. Imports numpy, pandas and matplotlib only;
nothing from ``backtest``.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["ShownFigure", "figure_png", "log_scale_wanted", "new_figure"]

LOG_SPAN = 10.0  # equity axes turn logarithmic when the positive equity spans more than this


class ShownFigure(Figure):
    """A matplotlib Figure that displays itself once in Jupyter.

    Returned as a cell's value it is shown as a PNG; it is also closed in pyplot, because
    pyplot-managed figures are displayed again by the inline backend at the end of the cell.
    """

    def _ipython_display_(self) -> None:
        from IPython.display import display
        from matplotlib import pyplot as plt

        plt.close(self)
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        display({"image/png": buf.getvalue(), "text/plain": repr(self)}, raw=True)


def log_scale_wanted(values: Any) -> bool:
    """The one rule of every equity axis: log scale when the positive values span more than
    :data:`LOG_SPAN` (10×), e.g. a run that grew 50-fold or was nearly wiped out."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return bool(len(v) and v.max() / v.min() > LOG_SPAN)


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
    """The axes' legend in the package's style; ``loc="quiet"`` puts it in the corner that
    covers the fewest plotted points (:func:`quiet_corner`)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        if kwargs.get("loc") == "quiet":
            rows = -(-len(handles) // int(kwargs.get("ncol", 1)))
            kwargs["loc"] = quiet_corner(ax, rows, wide=kwargs.get("ncol", 1) > 1)
        ax.legend(handles, labels, fontsize=7.5, framealpha=0.85, **kwargs)


CORNERS = ("upper left", "upper right", "lower left", "lower right")  # in order of preference
_SAMPLE = 4000        # points per line/scatter looked at (evenly spaced): enough to see a crowd


def quiet_corner(ax: Axes, rows: int, wide: bool = False) -> str:
    """The corner of ``ax`` whose legend box (``rows`` lines; half the width if ``wide``,
    else a third) would cover the fewest points of its lines and scatters (markers count
    10x: they carry the events). matplotlib's ``loc="best"`` does this exactly but takes
    seconds on 50,000-point lines; this looks at a sample and at the box's estimated size."""
    width = 0.5 if wide else 0.36
    height = min(0.9, 0.05 + 0.065 * rows)
    ax.get_xlim(), ax.get_ylim()           # settle autoscaled limits before transforming
    to_axes = ax.transData + ax.transAxes.inverted()
    counts = np.zeros(len(CORNERS))
    # lines in data coordinates only (an axhline's x runs in axes coordinates)
    sources = [(line.get_xydata(), 1.0) for line in ax.get_lines()
               if line.get_transform() == ax.transData]
    sources += [(c.get_offsets(), 10.0) for c in ax.collections
                if hasattr(c, "get_sizes") and len(c.get_sizes())]
    for xy, weight in sources:
        xy = np.asarray(xy, dtype=float)
        if xy.ndim != 2 or not len(xy):
            continue
        xy = xy[:: max(1, len(xy) // _SAMPLE)]
        xy = xy[np.isfinite(xy).all(axis=1)]
        if not len(xy):
            continue
        with np.errstate(all="ignore"):
            fx, fy = to_axes.transform(xy).T
        left, right = fx < width, fx > 1.0 - width
        top, bottom = fy > 1.0 - height, fy < height
        for i, hit in enumerate((top & left, top & right, bottom & left, bottom & right)):
            counts[i] += weight * np.count_nonzero(hit) / len(xy)
    return CORNERS[int(np.argmin(counts))]    # ties: the first, upper left


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


def new_figure(figsize: tuple[float, float] = (7.0, 4.5), layout: str | None = None
               ) -> Figure:
    """An empty pyplot-managed :class:`ShownFigure` (``plt.show()`` shows it; Jupyter displays
    it inline; close it with ``plt.close(fig)`` or render it with :func:`figure_png`)."""
    from matplotlib import pyplot as plt

    return plt.figure(figsize=figsize, layout=layout, FigureClass=ShownFigure)


def figure_png(fig: Figure, dpi: int = 110, close: bool = True) -> bytes:
    """The figure rendered as PNG bytes (Agg, no display needed); ``close`` (default) also
    closes it in pyplot, so report loops leave no figure open."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if close:
        from matplotlib import pyplot as plt

        plt.close(fig)
    return buf.getvalue()
