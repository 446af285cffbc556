"""Maintenance-margin tier tables (SPEC §3): rows ``(notional_floor, mmr, maint_amount,
max_leverage)`` with an effective date, because exchanges change them.

Imports numpy, ``backtest.kernels.contracts`` and the sibling ``fields`` module only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from backtest.instruments.fields import _finite, _rate, _text
from backtest.kernels import contracts as _k

# A zero maintenance rate would otherwise allow unbounded leverage; 1000x is beyond any venue.
_LEVERAGE_CAP = 1000.0


def _default_max_leverage(mmr: float) -> float:
    return _LEVERAGE_CAP if mmr <= 0.0 else min(1.0 / mmr, _LEVERAGE_CAP)


@dataclass(frozen=True, kw_only=True)
class TierTable:
    """Maintenance-margin tiers of one instrument, as published on one date.

    Row ``i`` applies to positions whose notional (account currency, e.g. USDT for
    Binance USDⓈ-M, BTC/XBT for COIN-M and BitMEX) is ``>= floor[i]`` and below
    ``floor[i+1]`` (floors are inclusive, as on Binance). Maintenance margin of a row:
    ``MM = notional * mmr - cum`` (SPEC §3).

    Parameters
    ----------
    effective_date : str
        ISO date (``YYYY-MM-DD``) from which the table applied; exchanges change tables.
    source : str
        Where the numbers come from (URL, snapshot, announcement).
    floor : sequence of float
        Notional floors, ascending, the first one 0.
    mmr : sequence of float
        Maintenance margin rates (fractions, 0.004 = 0.4 %).
    cum : sequence of float
        Maintenance amounts ("cum"), account currency; 0 for BitMEX risk-limit steps.
    max_leverage : sequence of float
        Maximum leverage allowed in each row (BitMEX: 1 / initial margin rate).
    """

    effective_date: str
    source: str
    floor: tuple[float, ...]
    mmr: tuple[float, ...]
    cum: tuple[float, ...]
    max_leverage: tuple[float, ...]
    _arrays: tuple[np.ndarray, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner = "TierTable"
        try:
            date.fromisoformat(str(self.effective_date))
        except ValueError:
            raise ValueError(f"{owner}: effective_date must be an ISO date 'YYYY-MM-DD'; "
                             f"got {self.effective_date!r}.") from None
        _text(owner, "source", self.source)
        columns = {}
        for name in ("floor", "mmr", "cum", "max_leverage"):
            raw = getattr(self, name)
            if isinstance(raw, (str, bytes)) or not isinstance(raw, (Sequence, np.ndarray)):
                raise TypeError(f"{owner}: {name} must be a sequence of numbers (one per row); "
                                f"got {raw!r}.")
            values = tuple(_finite(owner, f"{name}[{i}]", v) for i, v in enumerate(raw))
            object.__setattr__(self, name, values)
            columns[name] = values
        lengths = {name: len(v) for name, v in columns.items()}
        if len(set(lengths.values())) != 1 or lengths["floor"] == 0:
            raise ValueError(f"{owner}: floor, mmr, cum and max_leverage must have the same, "
                             f"non-zero length (one value per row); got lengths {lengths}.")
        self._check_rows(owner)
        arrays = tuple(np.ascontiguousarray(np.array(columns[n], dtype=np.float64))
                       for n in ("floor", "mmr", "cum", "max_leverage"))
        for a in arrays:
            a.setflags(write=False)  # cached and shared: nobody may edit a preset's table
        object.__setattr__(self, "_arrays", arrays)

    def _check_rows(self, owner: str) -> None:
        if self.floor[0] != 0.0:
            raise ValueError(f"{owner}: floor[0] must be 0 so that every notional has a row; "
                             f"got {self.floor[0]!r}.")
        for i in range(1, len(self.floor)):
            if not self.floor[i] > self.floor[i - 1]:
                raise ValueError(f"{owner}: floor must be strictly ascending; floor[{i}]="
                                 f"{self.floor[i]!r} <= floor[{i - 1}]={self.floor[i - 1]!r}.")
        for i, m in enumerate(self.mmr):  # all rates first: a percent typo is the likely cause
            _rate(owner, f"mmr[{i}]", m, what="a maintenance margin rate",
                  example="0.004 = 0.4 %")
        for i, (m, c, lev) in enumerate(zip(self.mmr, self.cum, self.max_leverage, strict=True)):
            if c < 0.0:
                raise ValueError(f"{owner}: cum[{i}] (maintenance amount) must be >= 0; "
                                 f"got {c!r}.")
            if lev <= 0.0:
                raise ValueError(f"{owner}: max_leverage[{i}] must be > 0 (a multiple, "
                                 f"125 = 125x); got {lev!r}.")
            if m * lev > 1.0 + 1e-12:
                raise ValueError(
                    f"{owner}: row {i} has mmr={m!r} and max_leverage={lev!r}: at that "
                    f"leverage a position is liquidated at entry. Fix: max_leverage <= 1/mmr "
                    f"= {1.0 / m:g}."
                )

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[float]], *, effective_date: str,
                  source: str) -> TierTable:
        """Build a table from ``(floor, mmr, cum, max_leverage)`` rows."""
        rows = [tuple(r) for r in rows]
        if any(len(r) != 4 for r in rows):
            raise ValueError("TierTable.from_rows: each row must be (floor, mmr, cum, "
                             "max_leverage).")
        columns = list(zip(*rows, strict=True)) if rows else [()] * 4
        floor, mmr, cum, lev = (tuple(col) for col in columns)
        return cls(effective_date=effective_date, source=source, floor=floor, mmr=mmr,
                   cum=cum, max_leverage=lev)

    @classmethod
    def single(cls, mmr: float, *, max_leverage: float | None = None,
               maint_amount: float = 0.0, effective_date: str = "1970-01-01",
               source: str = "one-row table (a modelling choice, not a venue snapshot)",
               ) -> TierTable:
        """One row for every notional: ``MM = notional * mmr - maint_amount``.

        ``max_leverage`` defaults to ``1/mmr`` capped at 1000 (1000 when ``mmr`` is 0).
        The default ``effective_date`` is a placeholder: the table is not a venue's.
        """
        mmr = _rate("TierTable.single", "mmr", mmr, what="a maintenance margin rate",
                    example="0.005 = 0.5 %")
        lev = _default_max_leverage(mmr) if max_leverage is None else max_leverage
        return cls(effective_date=effective_date, source=source, floor=(0.0,), mmr=(mmr,),
                   cum=(maint_amount,), max_leverage=(lev,))

    @classmethod
    def risk_limit_steps(cls, base_mm: float, base_im: float, base_limit: float, step: float,
                         n_steps: int, effective_date: str, source: str) -> TierTable:
        """BitMEX risk limits as a tier table.

        Row 0 covers ``[0, base_limit)``; row ``k`` (``1 <= k <= n_steps``) starts at
        ``base_limit + (k - 1) * step``. Each step adds ``base_mm`` to both the maintenance
        and the initial margin rate: ``mmr_k = base_mm * (1 + k)``,
        ``im_k = base_im + k * base_mm``, ``max_leverage_k = 1 / im_k``, ``cum = 0``.
        Limits and steps are in the settlement coin (XBT). BitMEX applies the row of the
        user's chosen risk limit; the table uses the position's notional, which is the
        smallest limit that admits the position.
        """
        owner = "TierTable.risk_limit_steps"
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) \
                or n_steps < 0:
            raise ValueError(f"{owner}: n_steps must be an int >= 0; got {n_steps!r}.")
        if not (_finite(owner, "base_limit", base_limit) > 0 and _finite(owner, "step", step) > 0):
            raise ValueError(f"{owner}: base_limit and step must be > 0; got "
                             f"{base_limit!r}, {step!r}.")
        base_mm = _rate(owner, "base_mm", base_mm, example="0.005 = 0.5 %")
        base_im = _rate(owner, "base_im", base_im, example="0.01 = 1 %")
        if not base_im > 0.0:
            raise ValueError(f"{owner}: base_im must be > 0; got {base_im!r}.")
        floors = [0.0] + [float(base_limit) + k * float(step) for k in range(n_steps)]
        mmr = [base_mm * (1 + k) for k in range(n_steps + 1)]
        lev = [1.0 / (base_im + k * base_mm) for k in range(n_steps + 1)]
        return cls(effective_date=effective_date, source=source, floor=tuple(floors),
                   mmr=tuple(mmr), cum=(0.0,) * (n_steps + 1), max_leverage=tuple(lev))

    # -- access -------------------------------------------------------------------------
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(floor, mmr, cum, max_leverage)`` as read-only contiguous float64 arrays."""
        return self._arrays  # type: ignore[return-value]

    def row(self, notional: float) -> int:
        """Index of the row for a position of ``notional`` (account currency)."""
        return int(_k.tier_row(self._arrays[0], float(notional)))

    def __len__(self) -> int:
        return len(self.floor)

    def initial_margin_rate(self, row: int) -> float:
        """``1 / max_leverage`` of a row (the minimum initial margin rate)."""
        return 1.0 / self.max_leverage[row]

    def is_continuous(self, rel_tol: float = 1e-9) -> bool:
        """Whether ``MM`` is continuous at every floor (Binance's definition of ``cum``:
        ``cum_n = cum_{n-1} + floor_n * (mmr_n - mmr_{n-1})``)."""
        for i in range(1, len(self.floor)):
            expected = self.cum[i - 1] + self.floor[i] * (self.mmr[i] - self.mmr[i - 1])
            if not math.isclose(self.cum[i], expected, rel_tol=rel_tol, abs_tol=1e-9):
                return False
        return True
