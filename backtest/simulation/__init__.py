"""Simulation: one run of parameters over markets.

Owns the run parameters (``params``: validation, defaults, encoding into the kernels'
vectors), signal helpers (``signals``), the translation of markets and instruments into
kernel arrays (``arrays``), and the three runners: one market (``single``), several
markets on one wallet (``portfolio``) and consecutive dated futures (``rolls``), with
``run`` choosing between them. Each runner validates, calls a kernel and wraps the arrays
in a result from ``backtest.results``.

May import: kernels, instruments, data, results and the foundation modules. Must not
import sweeps, risk, presentation (results do that) or the command line.
"""
