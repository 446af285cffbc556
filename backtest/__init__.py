"""backtest: a vectorised historical backtester for leveraged crypto derivatives.

Public names only (the layers are described in docs/architecture.md): data enters through
``load_market`` (``backtest.data``), instruments come from ``backtest.instruments``, one
run is ``run`` (``backtest.simulation``), many are ``sweep`` (``backtest.sweeps``), the
distribution over every start date or resampled path is ``leverage_risk``
(``backtest.risk``), and results present themselves (``.plot()``, ``.report()``).
"""

from backtest import calc
from backtest.data.market import Market, load_market
from backtest.data.samples import list_samples, sample_market, sample_path
from backtest.errors import DataError
from backtest.instruments.instrument import Instrument
from backtest.instruments.presets import get_instrument, list_instruments
from backtest.results.portfolio import PortfolioResult
from backtest.results.roll import RollResult
from backtest.results.single import Result
from backtest.risk import RiskResult, leverage_risk, safe_leverage
from backtest.simulation import signals
from backtest.simulation.rolls import Roll, roll
from backtest.simulation.run import run
from backtest.sweeps.api import sweep
from backtest.sweeps.result import SweepResult
from backtest.version import __version__

__all__ = ["DataError", "Instrument", "Market", "PortfolioResult", "Result", "RiskResult",
           "Roll", "RollResult", "SweepResult", "__version__", "calc", "get_instrument",
           "leverage_risk", "list_instruments", "list_samples", "load_market", "roll", "run",
           "safe_leverage", "sample_market", "sample_path", "signals", "sweep"]
