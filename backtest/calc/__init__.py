"""The calculator: the seed article's position arithmetic for people (``bt.calc``).

Exposure, PnL, liquidation and bankruptcy prices, liquidation distance, funding payments,
borrow interest and risk-based sizing, through the same contract maths as the kernels
(``backtest.kernels.contracts``), plus the text tables of ``backtest calc``.

May import: instruments, kernels and the foundation modules. Must not import data,
simulation or anything above.
"""

from backtest.calc.calculator import *  # noqa: F403
from backtest.calc.calculator import __all__  # noqa: F401
