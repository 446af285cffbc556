"""The package version, in one place (results stamp it into their stats; reports print it).

Imports nothing of ``backtest``, so every layer may import it.
"""

__version__ = "0.1.0"
