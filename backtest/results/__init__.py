"""Results: what a run returns, as pandas.

Owns the result family (``base.RunResult``; ``single.Result``, ``portfolio.PortfolioResult``,
``roll.RollResult``): per-bar series, trades, events and SPEC stats with the same stats
access, repr/_repr_html_ and plot/report dispatch; and ``metrics``, the stats definitions the
kernels' streaming stats must equal.

May import: kernels (record layouts and stat names), data (fingerprint), presentation (the
figures and reports a result dispatches to) and the foundation modules. Must not import
simulation, sweeps, risk or the command line: a result never runs anything.
"""
