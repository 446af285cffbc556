"""Leverage risk: the distribution of liquidation, ruin, drawdown and growth by leverage,
over every start date of the history (rolling origin) and over block-bootstrap paths.

Owns the window plan (``windows``), the joint block bootstrap of last/mark bars and funding
(``bootstrap``), running the windows/paths kernel (``engine``, over
``backtest.kernels.windows``), the summary table and survival curves (``summary``,
``result.RiskResult``), the public ``leverage_risk`` (``api``) and the calculator's pro tip
``safe_leverage`` (``safe``). Definitions: ``docs/leverage_risk.md``.

May import simulation, sweeps, results, presentation, data, kernels and the foundation; only
the command line (``backtest.cli``) and the public package import it.
"""

from backtest.risk.api import leverage_risk
from backtest.risk.result import RiskResult
from backtest.risk.safe import safe_leverage

__all__ = ["RiskResult", "leverage_risk", "safe_leverage"]
