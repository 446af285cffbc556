"""The calculator's pro tip, measured: the highest leverage whose historical probability of
liquidation over a horizon stays below a threshold, for long and for short.

"If your liquidation price is within a range Bitcoin regularly wicks to ... you're
over-leveraged": instead of a rule of thumb, every start date of the history is tried
(``leverage_risk``, rolling windows holding one position) at each candidate leverage.
The answer is the highest candidate ``L`` such that every candidate up to ``L`` has
``p_liquidation < threshold`` (so a non-monotone blip above never counts as safe).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from backtest.risk.api import leverage_risk

CANDIDATES = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100, 125)


def safe_leverage(market: Any, horizon: Any = "30D", threshold: float = 0.05,
                  side: Any = ("long", "short"), leverage: Any = None,
                  **kwargs: Any) -> pd.DataFrame:
    """One row per side: ``safe_leverage`` (NaN when even the lowest candidate fails),
    its ``p_liquidation``, the next candidate (``next_leverage``) and its
    ``next_p_liquidation``, the horizon, threshold and number of windows. ``leverage``:
    the candidates (default ``CANDIDATES`` up to the instrument's maximum); ``kwargs`` go
    to :func:`leverage_risk` (starts, stop_loss, margin_mode, initial_capital, ...).
    The ``RiskResult`` is in ``frame.attrs["result"]``."""
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) \
            or not 0.0 < threshold < 1.0:
        raise ValueError(f"safe_leverage(): threshold is a probability in (0, 1), e.g. 0.05 "
                         f"for 5 %; got {threshold!r}.")
    if leverage is None:
        top = float(market.instrument.max_leverage)
        leverage = [x for x in CANDIDATES if x <= top]
    levels = sorted(float(x) for x in leverage)
    sides = [side] if isinstance(side, str) else list(side)
    result = leverage_risk(market, leverage=levels, horizon=horizon, side=sides, **kwargs)
    return safe_rows(result, threshold)


def safe_rows(result: Any, threshold: float) -> pd.DataFrame:
    """The ``safe_leverage`` frame from a holding-mode rolling ``RiskResult`` whose only
    listed parameters are side and leverage (one row per side)."""
    others = [n for n in result.table.index.names if n not in ("side", "leverage")]
    if others or not result.hold_mode:
        raise ValueError(f"safe_leverage: needs a result holding one position per window with "
                         f"only side and leverage listed; this one lists {others} "
                         f"{'' if result.hold_mode else 'and runs signals'}.")
    tab = result.table.reset_index()
    if "side" not in tab:
        tab["side"] = result.sides[0]
    rows = []
    for s in result.sides:
        part = tab[tab["side"] == s].sort_values("leverage")
        ok = (part["p_liquidation"] < threshold).to_numpy()
        n_ok = len(ok) if ok.all() else int(np.argmin(ok))
        best = part.iloc[n_ok - 1] if n_ok else None
        nxt = part.iloc[n_ok] if n_ok < len(part) else None
        rows.append({"side": s,
                     "safe_leverage": np.nan if best is None else best["leverage"],
                     "p_liquidation": np.nan if best is None else best["p_liquidation"],
                     "next_leverage": np.nan if nxt is None else nxt["leverage"],
                     "next_p_liquidation": np.nan if nxt is None else nxt["p_liquidation"],
                     "horizon": result.horizon, "threshold": threshold,
                     "n_windows": int(part.iloc[0, list(part.columns).index(
                         "n_windows" if "n_windows" in part else "n_paths")])})
    frame = pd.DataFrame(rows).set_index("side")
    frame.attrs["result"] = result
    return frame
