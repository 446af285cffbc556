"""Figures of results: the only package that imports matplotlib.

Owns :func:`plot_result` (price with trades and the liquidation line, equity with drawdown,
cumulative funding) and :func:`plot_comparison` (equity curves of several runs) in
``result.py``, :func:`plot_portfolio` (several markets on one wallet) in ``portfolio.py``,
:func:`plot_sweep` (a sweep's heatmaps / leverage curves, drawn by ``SweepResult``'s methods
on Axes made here) in ``sweep.py``, and the shared plumbing (:func:`new_figure`,
:func:`figure_png`, axes and legends) in ``common.py``. Figures are made through
``pyplot`` (:func:`new_figure`): Jupyter displays them inline without ``%matplotlib inline``,
``plt.show()`` shows them from a script, and headless (CI) pyplot uses Agg. Rendering with
:func:`figure_png` closes them. :func:`plot_analysis` (``analysis.py``) draws monthly
returns, the trade PnL distribution and costs over time. Nothing here calls ``show()``.

Reads only the public attributes of ``Result`` / ``PortfolioResult`` / ``SweepResult`` /
``Market``; computes no statistic itself (display sums and means only). No other module of
``backtest`` may import matplotlib: they import from here, lazily.
"""

from __future__ import annotations

from backtest.presentation.plotting.analysis import plot_analysis
from backtest.presentation.plotting.common import figure_png, new_figure
from backtest.presentation.plotting.portfolio import PORTFOLIO_PANELS, plot_portfolio
from backtest.presentation.plotting.result import plot_comparison, plot_result
from backtest.presentation.plotting.sweep import SWEEP_METRICS, plot_sweep, sweep_figure_kind

__all__ = ["PORTFOLIO_PANELS", "SWEEP_METRICS", "figure_png", "new_figure", "plot_analysis",
           "plot_comparison", "plot_portfolio", "plot_result", "plot_sweep",
           "sweep_figure_kind"]
