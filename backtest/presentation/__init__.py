"""Presentation: figures, HTML reports and text tables.

Owns every use of matplotlib (``plotting``) and the self-contained HTML reports
(``reports``). Functions take a result object (duck-typed: series, trades, stats, params)
and return a Figure, bytes or text; they never run a simulation.

May import: data (formatting of intervals), the foundation modules and
``backtest.version``. Must not import simulation, results, sweeps, risk or the command line.
"""
