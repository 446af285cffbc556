"""backtest: a vectorised historical backtester for leveraged crypto derivatives.

Public names only; see SPEC §10 and README.md.
"""

from backtest import calc
from backtest.engine import run
from backtest.errors import DataError
from backtest.instruments import Instrument
from backtest.market import Market, load_market
from backtest.presets import get_instrument, list_instruments
from backtest.roll_result import RollResult
from backtest.rolls import Roll, roll
from backtest.sweep_result import SweepResult
from backtest.sweeps import sweep

__version__ = "0.1.0"

__all__ = ["DataError", "Instrument", "Market", "SweepResult", "calc", "get_instrument",
           "list_instruments", "load_market", "roll", "Roll", "RollResult", "run", "sweep",
           "__version__"]
