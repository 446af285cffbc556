"""``backtest data check``: the load-time checks run on files, one summary block each.

Imports numpy, ``backtest.errors``, :mod:`backtest.data.validation` and the gap policies of
:mod:`backtest.data.market` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from backtest.data import validation as v
from backtest.data.market import GAP_POLICIES
from backtest.errors import DataError


def check_files(files: Iterable[str | Path], gaps: str = "warn") -> tuple[str, bool]:
    """Validate Parquet files for ``backtest data check``; returns ``(text, all_ok)``.

    The kind is detected from the columns (``rate`` -> funding; open/high/low/close ->
    bars) and the same checks as :func:`load_market` run. One block per file: kind, rows,
    first -> last time, median interval, then counted conventions and gaps, or the error.
    """
    if gaps not in GAP_POLICIES:
        raise ValueError(f"check_files: gaps must be one of {GAP_POLICIES}; got {gaps!r}.")
    lines, n_ok, files = [], 0, list(files)
    for f in files:
        try:
            head, notes = _check_one(f, gaps)
        except DataError as exc:
            # Messages start with the file name, which the block header already shows.
            lines.append(f"{f}: ERROR\n  {str(exc).removeprefix(f'{Path(f)}: ')}")
            continue
        n_ok += 1
        lines.append(f"{f}: OK  {head}" + "".join(f"\n  note: {n}" for n in notes))
    lines.append(f"{n_ok} of {len(files)} file(s) OK")
    return "\n".join(lines), n_ok == len(files)


def _check_one(path: str | Path, gaps: str) -> tuple[str, list[str]]:
    """Summary line and notes for one file; raises DataError on the first problem."""
    df, label = v.read_frame(path, "data")
    if "rate" in df.columns:
        t = v.to_table(df, label, ("rate",))
        step = v.validate_funding(t)
        irregular = v.spacing(t.ts)[1]
        notes = [v.gaps_message(t, step, irregular, "events")] if irregular.size else []
        notes = [n.removeprefix(f"{label}: ") for n in notes]
        kind = "funding"
    elif all(c in df.columns for c in v.PRICE_COLUMNS):
        t = v.to_table(df, label, v.PRICE_COLUMNS, ("volume",))
        events: list[dict] = []
        step = v.validate_bars(t, gaps, events)[0]
        notes = [e["message"].removeprefix(f"{label}: ") for e in events]
        no_volume = "volume" not in t.cols or bool(np.isnan(t.cols["volume"]).all())
        kind = "bars (no volume: mark or index?)" if no_volume else "bars"
    else:
        raise DataError(f"{label}: cannot tell what this file holds; found columns "
                        f"{[str(c) for c in df.columns]}. Expected timestamp, open, high, low, "
                        "close[, volume] (bars) or timestamp, rate (funding).")
    head = (f"{kind}, {len(t.ts):,} rows, {v.fmt_ts(t.ts[0])} -> {v.fmt_ts(t.ts[-1])} UTC, "
            f"interval {v.fmt_interval(step)}")
    return head, notes
