"""``RollResult``: the legs of a roll (``rolls.run_roll``) joined into one account.

Continuous series on the roll's index, trades and events with a ``leg`` column, and the
SPEC §8 stats of the continuous equity from ``metrics.compute_stats``. Must not import the
kernels' step logic.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from backtest.kernels.stats import STAT_NAMES
from backtest.results.base import RunResult
from backtest.results.frames import stats_series
from backtest.results.metrics import compute_stats
from backtest.results.single import Result

RUIN_FRACTION = 1e-9  # equity at or below this share of the initial capital is ruin (step.py)


class RollResult(RunResult):
    """A rolled position: continuous series on ``roll.index``, ``trades`` and ``events``
    with a ``leg`` column, the per-leg :class:`Result` s in ``legs``, and the SPEC §8
    ``stats`` of the continuous equity (account currency, like ``Result``).

    On a roll bar the series show the account at that bar's close, after the settlement
    (the next leg's first bar: flat with ``fill="next_open"``, the reopened position with
    ``fill="close"``). Bars of legs not simulated after a ruin stay flat.
    """

    kind = "roll"

    def __init__(self, *, roll: Any, params: dict[str, Any], legs: list[Result],
                 signals: list[np.ndarray]) -> None:
        self.roll = roll
        self.params = params
        self.legs = legs
        self.index = roll.index
        self.account_currency = roll.account_currency
        self._signals = signals
        series = np.empty((6, roll.n_bars))
        for leg, r in zip(roll.legs, legs, strict=False):
            series[:, leg.first:leg.last + 1] = r._series  # a later leg owns the roll bar
        done = roll.legs[len(legs) - 1].last + 1
        series[:, done:] = series[:, done - 1:done]  # after a ruin: flat, equity kept
        series[5, done:] = 0.0
        self._series = series

    def _line(row: int, name: str, doc: str) -> property:
        return property(lambda self: pd.Series(self._series[row], index=self.index, name=name),
                        doc=doc)

    equity = _line(0, "equity", "Wallet plus uPnL at the active contract's mark close.")
    wallet = _line(1, "wallet", "Cash balance after fees and realised PnL, carried over.")
    position = _line(2, "position", "Signed size in the active contract at the bar's close.")
    margin = _line(3, "margin", "Isolated: the position's margin; cross: initial margin.")
    liquidation_price = _line(4, "liquidation_price", "Liquidating mark price (NaN flat).")
    funding = _line(5, "funding", "Funding per bar: 0 (futures pay none; as in Result).")
    del _line

    @cached_property
    def trades(self) -> pd.DataFrame:
        """SPEC §8 trades of every leg, in order, with a ``leg`` column; each roll shows
        as an ``expiry`` exit followed by the reopened trade."""
        frames = [r.trades.assign(leg=leg.name) for leg, r in
                  zip(self.roll.legs, self.legs, strict=False)]
        out = pd.concat(frames, ignore_index=True)
        return out[["leg", *out.columns[:-1]]]

    @cached_property
    def events(self) -> pd.DataFrame:
        """Every leg's events (its data repairs included) with a ``leg`` column, then
        ``signal_after_ruin`` once per bar with signals in legs not run after a ruin."""
        frames = [r.events.assign(leg=leg.name) for leg, r in
                  zip(self.roll.legs, self.legs, strict=False)]
        # After a ruin: the signals from the last run leg's expiry bar on, at the bar they
        # would have executed (next open or close), with the leg that would have run them.
        start = self.roll.legs[len(self.legs) - 1].last
        when = np.flatnonzero(np.any(self._signals, axis=0)[start:]) + start
        when = when + (self.params["fill"] != "close")
        when = when[(when < self.roll.n_bars) & (start < self.roll.n_bars - 1)]
        if len(when):
            firsts = [leg.first for leg in self.roll.legs]
            owner = np.searchsorted(firsts, when, side="right") - 1
            frames.append(pd.DataFrame({"time": self.index[when], "kind": "signal_after_ruin",
                                        "value": 0.0, "detail": "",
                                        "leg": [self.roll.legs[j].name for j in owner]}))
        out = pd.concat(frames, ignore_index=True)
        return out[["leg", *out.columns[:-1]]]

    @cached_property
    def pnl_by_leg(self) -> pd.DataFrame:
        """What each contract made or lost: pnl, fees, trades, liquidations."""
        g = self.trades.assign(liq=self.trades["exit_reason"] == "liquidation").groupby("leg")
        out = pd.DataFrame({"pnl": g["pnl"].sum(), "fees": g["fees"].sum(), "n_trades": g.size(),
                            "n_liquidations": g["liq"].sum()})
        out = out.reindex([leg.name for leg in self.roll.legs])
        return out.fillna(0).astype({"n_trades": int, "n_liquidations": int})

    def _fingerprint_inputs(self) -> tuple[Any, Any, Any]:
        markets = {f"{k}:{leg.name}": leg.market for k, leg in enumerate(self.roll.legs)}
        return markets, self.params, self._signals

    def _describe(self) -> str:
        legs = self.roll.legs
        return (f"{' -> '.join(leg.name for leg in legs)} {self.params['leverage']:g}x "
                f"{self.params['margin_mode']}, {self.roll.n_bars} bars, "
                f"{len(self.legs)}/{len(legs)} legs run")

    def _equity_values(self) -> np.ndarray:
        return self._series[0]

    def _raw_stats(self) -> pd.Series:
        """SPEC §8 stats of the continuous equity (``metrics.compute_stats``)."""
        leg_stats = [r.stats for r in self.legs]
        distance = [s["min_liq_distance"] for s in leg_stats
                    if not np.isnan(s["min_liq_distance"])]
        eq = self._series[0]
        raw = compute_stats(
            eq, self.trades, self.params["initial_capital"], float(self.roll.bar_ns),
            exposed_bars=int((self._series[2] != 0).sum()),
            n_ambiguous=sum(int(s["n_ambiguous"]) for s in leg_stats),
            funding_paid=float(self._series[5].sum()),
            min_liq_distance=min(distance) if distance else np.nan,
            ruined=any(bool(s["ruined"]) for s in leg_stats)
            or bool(eq[-1] <= RUIN_FRACTION * self.params["initial_capital"]))
        return stats_series(np.array([float(raw[key]) for key in STAT_NAMES]))

