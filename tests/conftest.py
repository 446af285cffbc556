"""Shared fixtures: tiny hand-computable bar frames, a Parquet writer, a seeded RNG and the
location of the real sample data (``../shared/data``, skipped when absent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import hypothesis_profiles  # noqa: F401  (registers the 'ci' and 'thorough' profiles)
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).parents[1]
REPO_DATA = REPO / "data"
SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"
requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"real sample data folder {SHARED_DATA} is absent (it sits beside the repository)",
)

# Six hourly bars from 2024-01-01 00:00 UTC; high/low = max/min(open, close) +/- 1.
BAR_OPEN = [100.0, 102.0, 101.0, 103.0, 105.0, 104.0]
BAR_CLOSE = [102.0, 101.0, 103.0, 105.0, 104.0, 106.0]


def stand_in_instrument(kind: str = "perpetual", symbol: str = "TEST") -> SimpleNamespace:
    """An object with the Instrument attributes the loader reads (no registry needed)."""
    return SimpleNamespace(symbol=symbol, kind=kind, settlement="linear", expiry=None)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: tests are reproducible."""
    return np.random.default_rng(20240101)


@pytest.fixture
def make_bars() -> Callable[..., pd.DataFrame]:
    """Factory of small bar frames.

    ``make_bars(n=6, start="2024-01-01", freq="1h", as_index=False)``: for ``n == 6`` the
    prices are :data:`BAR_OPEN` / :data:`BAR_CLOSE`; otherwise open = 100 + i % 7 and
    close = open +/- 1 alternately. ``as_index=True`` puts the times on a UTC DatetimeIndex
    instead of a ``timestamp`` column.
    """

    def make(n: int = 6, start: str = "2024-01-01", freq: str = "1h",
             as_index: bool = False) -> pd.DataFrame:
        if n == 6:
            o, c = np.array(BAR_OPEN), np.array(BAR_CLOSE)
        else:
            o = 100.0 + np.arange(n) % 7
            c = o + np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        ts = pd.date_range(start, periods=n, freq=freq, tz="UTC", unit="ns")
        df = pd.DataFrame({"timestamp": ts, "open": o, "high": np.maximum(o, c) + 1.0,
                           "low": np.minimum(o, c) - 1.0, "close": c,
                           "volume": 10.0 + np.arange(n)})
        return df.set_index("timestamp") if as_index else df

    return make


@pytest.fixture
def write_parquet(tmp_path: Path) -> Callable[[pd.DataFrame, str], Path]:
    """Factory writing a frame to ``tmp_path/name`` with pyarrow (no pandas index)."""

    def write(df: pd.DataFrame, name: str = "bars.parquet") -> Path:
        path = tmp_path / name
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
        return path

    return write
