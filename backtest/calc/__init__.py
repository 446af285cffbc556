"""The calculator: the seed article's position arithmetic for people (``bt.calc``).

Exposure, PnL, liquidation and bankruptcy prices, liquidation distance (``position``);
funding payments, borrow interest and risk-based sizing (``carry``); the text tables of
``backtest calc`` (``tables``) — all through the same contract maths as the kernels
(``backtest.kernels.contracts``); inputs are checked in ``inputs``.

May import: instruments, kernels and the foundation modules. Must not import data,
simulation or anything above.
"""

from backtest.calc.carry import annualised_funding, borrow_interest, funding_payment, risk_size
from backtest.calc.position import (
    bankruptcy_price,
    exposure,
    liquidation_distance,
    liquidation_price,
    pnl,
)
from backtest.calc.tables import funding_table, liquidation_table

__all__ = [
    "annualised_funding", "bankruptcy_price", "borrow_interest", "exposure", "funding_payment",
    "funding_table", "liquidation_distance", "liquidation_price", "liquidation_table", "pnl",
    "risk_size",
]
