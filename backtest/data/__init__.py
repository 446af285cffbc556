"""Data: where market data enters.

Owns reading Parquet (and, through ``importers``, other venues' exports), every data check
of the simulation contract (``validation``), aligning mark, index and funding series onto
one bar index (``market``), and the content hash of a market (``fingerprint``). A
``Market`` is immutable and holds contiguous float64 arrays on an int64 ns index.

May import: ``backtest.errors``, ``backtest.checks``, ``backtest.atomic``,
``backtest.instruments`` (to resolve a preset name). Must not import the kernels, the
simulation, results, sweeps, presentation or the command line.
"""
