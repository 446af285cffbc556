"""The kernels' record arrays as pandas: the trades table and the named stats vector.

Shared by every result kind (``single``, ``portfolio``, ``roll``) and by the sweeps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from backtest.kernels import records as R
from backtest.kernels.stats import STAT_NAMES

_INT_STATS = ("n_trades", "n_liquidations", "n_stops", "n_ambiguous")
TRADE_COLUMNS = ("entry_time", "exit_time", "side", "size", "leverage", "entry_price",
                 "exit_price", "margin", "gross_pnl", "fees", "funding", "interest", "pnl",
                 "exit_reason")


def trades_frame(rows: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The kernel's trade rows (``records.T_*`` columns) as the SPEC §8 trades table."""
    return pd.DataFrame({
        "entry_time": index[rows[:, R.T_ENTRY_BAR].astype(np.int64)],
        "exit_time": index[rows[:, R.T_EXIT_BAR].astype(np.int64)],
        "side": np.where(rows[:, R.T_SIDE] > 0, "long", "short"),
        "size": rows[:, R.T_SIZE],
        "leverage": rows[:, R.T_LEVERAGE],
        "entry_price": rows[:, R.T_ENTRY_PRICE],
        "exit_price": rows[:, R.T_EXIT_PRICE],
        "margin": rows[:, R.T_MARGIN],
        "gross_pnl": rows[:, R.T_GROSS_PNL],
        "fees": rows[:, R.T_FEES],
        "funding": rows[:, R.T_FUNDING],
        "interest": rows[:, R.T_INTEREST],
        "pnl": rows[:, R.T_PNL],
        "exit_reason": [R.REASONS[int(c)] for c in rows[:, R.T_REASON]],
    }, columns=list(TRADE_COLUMNS))


def stats_series(values: np.ndarray) -> pd.Series:
    """Name the kernel's stats vector (``STAT_NAMES``), with counts as ints."""
    out: dict[str, Any] = dict(zip(STAT_NAMES, (float(v) for v in values), strict=True))
    for key in _INT_STATS:
        out[key] = int(out[key])
    out["ruined"] = bool(out["ruined"])
    return pd.Series(out, dtype=object, name="stats")
