"""backtest: a vectorised historical backtester for leveraged crypto derivatives.

Public names only; see SPEC §10 and README.md.
"""

from backtest import calc
from backtest.engine import run
from backtest.errors import DataError
from backtest.instruments import Instrument, get_instrument, list_instruments
from backtest.market import Market, load_market

__version__ = "0.1.0"

__all__ = ["DataError", "Instrument", "Market", "calc", "get_instrument", "list_instruments",
           "load_market", "run", "__version__"]
