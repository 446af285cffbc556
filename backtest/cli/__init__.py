"""The command line: ``backtest run|sweep|demo|calc|data ...``.

Owns argument parsing and the commands (``main``), the TOML run/sweep configuration
(``config``) and the demo on the shipped sample data (``demo``). The top layer: it may import
everything below and nothing imports it (except ``backtest.__main__``).
"""

from backtest.cli.main import main

__all__ = ["main"]
