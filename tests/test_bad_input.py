"""SPEC §11 as one matrix: every bad input is refused at the boundary, clearly.

Each case builds a bad input from a valid one with a small corruption function, makes the
public call (``load_market``, ``run`` or the CLI's ``main``) and asserts

* the documented error type (``DataError`` for data, ``ValueError``/``TypeError`` for
  parameters; exit code 2 for the CLI),
* that the message names the culprit (file, column, row or parameter) and carries a fix,
* that it is one line, is raised by ``backtest`` itself (not from inside pandas, pyarrow or
  numpy) and never mentions Numba.

Decisions recorded here: funding events off the bar grid are *accepted* and settled at the
open of the bar containing them (SPEC §6) — see ``test_funding_off_the_bar_grid_...``; extra
columns are ignored; refused: times before 1990 (epoch s/ms/us read as ns), prices outside
[1e-12, 1e12] (units; money would overflow) and prices below the instrument's tick size.
Single cases with more detail live in ``test_market.py`` and ``test_engine.py``.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import backtest as bt
from backtest.cli.main import main as cli_main
from backtest.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore:no mark bars given")

N = 24
START = pd.Timestamp("2024-01-01", tz="UTC")
INSTRUMENT = bt.Instrument.simple(mmr=0.005)


# --------------------------------------------------------------------------- valid inputs


def good_bars(n: int = N) -> pd.DataFrame:
    """Hourly bars with a timestamp column; close inside [low, high], prices near 100."""
    i = np.arange(n)
    open_ = 100.0 + np.sin(i) * 3
    close = open_ + np.where(i % 2 == 0, 0.5, -0.5)
    return pd.DataFrame({"timestamp": pd.date_range(START, periods=n, freq="1h", unit="ns"),
                         "open": open_, "high": np.maximum(open_, close) + 1.0,
                         "low": np.minimum(open_, close) - 1.0, "close": close,
                         "volume": 5.0 + i})


def good_mark(n: int = N) -> pd.DataFrame:
    return good_bars(n).drop(columns="volume").assign(
        **{c: lambda d, c=c: d[c] + 0.1 for c in ("open", "high", "low", "close")})


def good_funding(times: tuple[str, ...] = ("00:00", "08:00", "16:00"),
                 rate: float = 1e-4) -> pd.DataFrame:
    ts = pd.DatetimeIndex([f"2024-01-01 {t}" for t in times], tz="UTC").as_unit("ns")
    return pd.DataFrame({"timestamp": ts, "rate": rate})


def load(bars: Any = None, **kw: Any) -> bt.Market:
    kw.setdefault("instrument", INSTRUMENT)
    kw.setdefault("funding", good_funding())
    return bt.load_market(good_bars() if bars is None else bars, **kw)


def good_market(**kw: Any) -> bt.Market:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(**kw)


def entries(n: int = N, *bars: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(bars or (1,))] = True
    return out


# --------------------------------------------------------------------------- corruptions


def drop(col: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda df: df.drop(columns=col)


def rename(old: str, new: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda df: df.rename(columns={old: new})


def repeat_column(col: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda df: pd.concat([df, df[[col]]], axis=1)


def set_cell(row: int, col: str, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def corrupt(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        if isinstance(value, str) and not pd.api.types.is_object_dtype(df[col]):
            df[col] = df[col].astype(object)
        df.loc[row, col] = value
        return df
    return corrupt


def as_type(col: str, convert: Callable[[pd.Series], Any]) -> Callable[[pd.DataFrame], Any]:
    return lambda df: df.assign(**{col: convert(df[col])})


def take_rows(rows: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda df: df.iloc[rows].reset_index(drop=True)


def on_index(corrupt: Callable[[pd.DatetimeIndex], Any]) -> Callable[[pd.DataFrame], Any]:
    def move(df: pd.DataFrame) -> pd.DataFrame:
        out = df.set_index("timestamp")
        out.index = corrupt(out.index)
        return out
    return move


def ns_ints(df_col: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(df_col).as_unit("ns").asi8


def epoch(unit: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Integer epoch times in another unit than ns."""
    div = {"s": 10**9, "ms": 10**6, "us": 10**3}[unit]
    return as_type("timestamp", lambda s: ns_ints(s) // div)


def ms_read_as_ns(df: pd.DataFrame) -> pd.DataFrame:
    """Epoch milliseconds passed through ``pd.to_datetime(..., unit='ns')`` by mistake."""
    return df.assign(timestamp=pd.to_datetime(ns_ints(df["timestamp"]) // 10**6, unit="ns",
                                              utc=True))


def swap_high_low(row: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def corrupt(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        high, low = float(df.loc[row, "high"]), float(df.loc[row, "low"])
        df.loc[row, "high"], df.loc[row, "low"] = low, high
        return df
    return corrupt


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    call: Callable[[Path], Any]    # makes the public call; gets a tmp_path
    error: type[Exception]
    culprit: tuple[str, ...]       # the file / column / row / parameter, as printed
    fix: tuple[str, ...]           # words of the fix hint


def bars_case(corrupt: Callable[[pd.DataFrame], Any], error: type = DataError,
              culprit: tuple[str, ...] = (), fix: tuple[str, ...] = ("Fix:",), **kw: Any
              ) -> Case:
    return Case(lambda tmp: load(corrupt(good_bars()), **kw), error,
                ("bars DataFrame", *culprit), fix)


def series_case(name: str, frame: Callable[[], Any], corrupt: Callable[[Any], Any],
                culprit: tuple[str, ...], fix: tuple[str, ...], error: type = DataError,
                **kw: Any) -> Case:
    """A corrupted mark/index/funding input beside good bars."""
    return Case(lambda tmp: load(**{name: corrupt(frame())}, **kw), error, culprit, fix)


def file_case(write: Callable[[Path], Path], culprit: tuple[str, ...], fix: tuple[str, ...],
              name: str = "bars.parquet") -> Case:
    """A bad file on disk; the culprit list is completed with the path."""
    def call(tmp: Path) -> Any:
        return load(write(tmp / name))
    return Case(call, DataError, (name, *culprit), fix)


def write_frame(df: pd.DataFrame) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
        return path
    return write


def write_bytes(data: bytes) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        path.write_bytes(data)
        return path
    return write


def write_truncated(path: Path) -> Path:
    """A valid Parquet file cut in half (an interrupted download or copy)."""
    write_frame(good_bars())(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def run_case(error: type, culprit: tuple[str, ...], fix: tuple[str, ...],
             market: Callable[[], Any] = good_market, **kw: Any) -> Case:
    return Case(lambda tmp: bt.run(market(), **kw), error, ("run()", *culprit), fix)


DATA_CASES = {
    # --- schema
    "columns-missing-close": bars_case(drop("close"), culprit=("['close']",),
                                       fix=("add the missing columns",)),
    "columns-wrong-case-Close": bars_case(rename("close", "Close"), culprit=("['close']",),
                                          fix=("df.rename(columns={'Close': 'close'})",)),
    "columns-misspelt-clsoe": bars_case(rename("close", "clsoe"), culprit=("['close']",),
                                        fix=("{'clsoe': 'close'}",)),
    "columns-time-alias-open_time": bars_case(rename("timestamp", "open_time"),
                                              culprit=("['timestamp']",),
                                              fix=("{'open_time': 'timestamp'}",)),
    "columns-duplicated-close": bars_case(repeat_column("close"),
                                          culprit=("['close']", "more than once"),
                                          fix=("duplicated()",)),
    "dtype-text-in-low": bars_case(set_cell(3, "low", "n/a"),
                                   culprit=("'low'", "row 3", "'n/a'"),
                                   fix=("pd.to_numeric(df['low'])",)),
    "dtype-bool-close": bars_case(as_type("close", lambda s: s > 100), culprit=("'close'",
                                                                                "bool")),
    "dtype-complex-high": bars_case(as_type("high", lambda s: s.astype(complex)),
                                    culprit=("'high'", "complex")),
    "dtype-timestamp-strings": bars_case(as_type("timestamp", lambda s: s.astype(str)),
                                         culprit=("'timestamp'",),
                                         fix=("pd.to_datetime(df['timestamp'], utc=True)",)),
    # --- time zones and units
    "time-naive": bars_case(as_type("timestamp", lambda s: s.dt.tz_localize(None)),
                            culprit=("'timestamp'", "naive"), fix=("tz_localize('UTC')",)),
    "time-naive-index": bars_case(on_index(lambda i: i.tz_localize(None)),
                                  culprit=("DatetimeIndex", "naive"),
                                  fix=("df.index = df.index.tz_localize('UTC')",)),
    "time-non-utc-zone": bars_case(as_type("timestamp",
                                           lambda s: s.dt.tz_convert("America/New_York")),
                                   culprit=("'timestamp'", "America/New_York"),
                                   fix=(".dt.tz_convert('UTC')",)),
    "time-epoch-milliseconds": bars_case(epoch("ms"), culprit=("'timestamp'", "milliseconds"),
                                         fix=("unit='ms'",)),
    "time-epoch-seconds": bars_case(epoch("s"), culprit=("'timestamp'", "seconds"),
                                    fix=("unit='s'",)),
    "time-epoch-microseconds": bars_case(epoch("us"), culprit=("'timestamp'", "microseconds"),
                                         fix=("unit='us'",)),
    "time-milliseconds-read-as-ns": bars_case(ms_read_as_ns,
                                              culprit=("'timestamp'", "before 1990", "row 0"),
                                              fix=("milliseconds", "unit='ms'",
                                                   "as_unit('ns')")),
    "time-float-nanoseconds": bars_case(as_type("timestamp", lambda s: ns_ints(s) * 1.0),
                                        culprit=("'timestamp'", "floats"),
                                        fix=("astype('int64')",)),
    "time-missing-NaT": bars_case(set_cell(4, "timestamp", pd.NaT),
                                  culprit=("'timestamp'", "NaT", "row 4"),
                                  fix=("drop those rows",)),
    "time-beyond-2262": bars_case(
        lambda df: df.assign(timestamp=pd.date_range("2300-01-01", periods=N, freq="1h",
                                                      tz="UTC", unit="s")),
        culprit=("'timestamp'", "1677-2262"), fix=("check the unit",)),
    # --- rows
    "rows-unsorted": bars_case(take_rows([0, 1, 2, 4, 3, *range(5, N)]),
                               culprit=("'timestamp'", "not sorted", "row 4"),
                               fix=("sort_values('timestamp')",)),
    "rows-duplicate-time": bars_case(take_rows([0, 1, 2, 2, *range(3, N)]),
                                     culprit=("duplicate", "row 3"), fix=("drop_duplicates",)),
    "rows-gap": bars_case(take_rows([*range(0, 10), *range(12, N)]),
                          culprit=("irregular step", "2024-01-01 09:00 -> 2024-01-01 12:00"),
                          fix=("gaps='warn'", "start=/end=")),
    "rows-single-bar": bars_case(take_rows([0]), culprit=("only 1 bar",),
                                 fix=("widen start=/end=",)),
    "rows-trimmed-away": bars_case(lambda df: df, culprit=("no bars with start <= t < end",),
                                   fix=("choose start=/end= inside",), start="2025-01-01"),
    "rows-empty-frame": bars_case(take_rows(slice(0, 0)), culprit=("empty (0 rows)",)),
    # --- prices
    **{f"price-{name}-low": bars_case(set_cell(5, "low", value),
                                      culprit=("'low'", "row 5", kind),
                                      fix=("finite prices > 0", "trim them away"))
       for name, value, kind in (("nan", np.nan, "NaN"), ("inf", np.inf, "inf"),
                                 ("zero", 0.0, "zero or negative"),
                                 ("negative", -100.0, "zero or negative"))},
    "price-high-below-low": bars_case(swap_high_low(7), culprit=("'high'", "'low'", "row 7"),
                                      fix=("column order/mapping",)),
    "price-close-outside-range": bars_case(set_cell(2, "close", 1e4),
                                           culprit=("'close'", "row 2"),
                                           fix=("column mapping",)),
    "price-absurdly-small": bars_case(
        lambda df: df.assign(**{c: df[c] * 1e-300 for c in ("open", "high", "low", "close")}),
        culprit=("'open'", "outside [1e-12, 1e+12]", "row 0"), fix=("units or scaling",)),
    "price-below-the-tick": bars_case(
        lambda df: df.assign(**{c: df[c] * 1e-6 for c in ("open", "high", "low", "close")}),
        culprit=("'low'", "tick size 0.5", "XBTUSD", "row 0"),
        fix=("price units", "Instrument.simple(tick_size=0.0)"),
        instrument="bitmex:XBTUSD"),
    "volume-negative": bars_case(set_cell(1, "volume", -3.0), culprit=("'volume'", "row 1")),
    # --- mark and index bars
    "mark-starts-late": series_case("mark", good_mark, take_rows(slice(3, N)),
                                    ("mark DataFrame", "before the mark starts"),
                                    ("start='2024-01-01 03:00'",)),
    "mark-ends-early": series_case("mark", good_mark, take_rows(slice(0, N - 2)),
                                   ("mark DataFrame", "after the mark ends"),
                                   ("end='2024-01-01 22:00'",)),
    "mark-hole": series_case("mark", good_mark, take_rows([*range(0, 6), *range(7, N)]),
                             ("mark DataFrame", "no mark row", "2024-01-01 06:00"),
                             ("fill the mark file",)),
    "mark-finer-interval": series_case(
        "mark", lambda: good_mark(2 * N).assign(timestamp=lambda d: pd.date_range(
            START, periods=2 * N, freq="30min", unit="ns")).assign(close=lambda d: d["open"]),
        lambda df: df, ("mark DataFrame", "not aligned", "2024-01-01 00:30"), ("resample",)),
    "mark-nan-close": series_case("mark", good_mark, set_cell(9, "close", np.nan),
                                  ("mark DataFrame", "'close'", "row 9"), ("Fix:",)),
    "index-not-covering": series_case("index", good_mark, take_rows(slice(2, N)),
                                      ("index DataFrame", "before the index starts"),
                                      ("start='2024-01-01 02:00'",)),
    # --- funding
    "funding-percent-median": series_case("funding", lambda: good_funding(rate=0.01),
                                          lambda f: f, ("funding DataFrame", "'rate'",
                                                        "median"),
                                          ("Percent passed as fractions?",
                                           "divide the rates by 100")),
    "funding-percent-spike": series_case("funding", good_funding, set_cell(1, "rate", 0.75),
                                         ("funding DataFrame", "'rate'", "row 1"),
                                         ("divide the rates by 100",)),
    "funding-missing-for-perpetual": series_case("funding", lambda: None, lambda f: f,
                                                 ("funding", "perpetual"), ("funding=0",)),
    "funding-not-covering": series_case("funding", lambda: good_funding(("00:00", "08:00")),
                                        lambda f: f, ("funding DataFrame",
                                                      "funding ends 2024-01-01 08:00"),
                                        ("end='2024-01-01 09:00'", "funding=0")),
    "funding-nan-rate": series_case("funding", good_funding, set_cell(2, "rate", np.nan),
                                    ("funding DataFrame", "'rate'", "row 2"),
                                    ("drop those rows",)),
    "funding-unsorted": series_case("funding", good_funding, take_rows([1, 0, 2]),
                                    ("funding DataFrame", "not sorted"), ("sort_values",)),
    "funding-single-event": series_case("funding", lambda: good_funding(("00:00",)),
                                        lambda f: f, ("funding DataFrame", "only 1"),
                                        ("funding=0",)),
    "funding-nonzero-number": series_case("funding", lambda: 0.0001, lambda f: f,
                                          ("funding", "0.0001"), ("Pass a funding file",),
                                          error=ValueError),
    "funding-naive-times": series_case("funding", good_funding,
                                       as_type("timestamp", lambda s: s.dt.tz_localize(None)),
                                       ("funding DataFrame", "naive"),
                                       ("tz_localize('UTC')",)),
    "funding-column-fundingRate": series_case("funding", good_funding,
                                              rename("rate", "fundingRate"),
                                              ("funding DataFrame", "['rate']"),
                                              ("{'fundingRate': 'rate'}",)),
    # --- files
    "file-missing": Case(lambda tmp: load(tmp / "nope.parquet"), DataError,
                         ("nope.parquet", "not found"), ("check the path",)),
    "file-zero-bytes": file_case(write_bytes(b""), ("cannot read as Parquet",),
                                 ("Fix:", "complete")),
    "file-csv-named-parquet": file_case(write_bytes(b"timestamp,open\n1,2\n"),
                                        ("cannot read as Parquet",),
                                        ("backtest data import",)),
    "file-truncated-parquet": file_case(write_truncated,
                                        ("cannot read as Parquet",), ("complete",)),
    "file-zero-rows": file_case(write_frame(good_bars().iloc[:0]), ("empty (0 rows)",),
                                ("Fix:",)),
    "file-naive-times": file_case(write_frame(good_bars().assign(
        timestamp=lambda d: d["timestamp"].dt.tz_localize(None))), ("naive",),
        ("tz_localize('UTC')",)),
    "file-ms-epoch-ints": file_case(write_frame(epoch("ms")(good_bars())),
                                    ("milliseconds",), ("unit='ms'",)),
    # --- other load_market arguments
    "source-wrong-type": Case(lambda tmp: load(good_bars().to_numpy()), TypeError,
                              ("bars", "ndarray"), ("Parquet path", "DataFrame")),
    "instrument-unknown-preset": Case(lambda tmp: load(instrument="binance:BTCUSTD"),
                                      ValueError, ("'binance:BTCUSTD'",),
                                      ("Did you mean 'binance:BTCUSDT'",)),
    "instrument-wrong-type": Case(lambda tmp: load(instrument=42), TypeError,
                                  ("instrument", "int"), ("preset name or an Instrument",)),
    "gaps-policy-typo": Case(lambda tmp: load(gaps="warning"), ValueError,
                             ("gaps", "'warning'"), ("one of ('error', 'warn')",)),
    "start-not-a-time": Case(lambda tmp: load(start="last tuesday"), ValueError,
                             ("start='last tuesday'",), ("'2020-01-01'",)),
    "start-NaT": Case(lambda tmp: load(start=pd.NaT), ValueError, ("start=NaT",),
                      ("start=None",)),
}


def stand_in_market() -> bt.Market:
    """A Market whose instrument is not an Instrument (only load_market's duck typing)."""
    from types import SimpleNamespace

    inst = SimpleNamespace(symbol="X", kind="perpetual", settlement="linear", expiry=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(instrument=inst, funding=0)


def binance_market() -> bt.Market:
    return good_market(instrument="binance:BTCUSDT", funding=0)


PARAM_CASES = {
    "leverage-zero": run_case(ValueError, ("leverage",), ("10 = 10x",), leverage=0),
    "leverage-negative": run_case(ValueError, ("leverage", "-5"), ("10 = 10x",), leverage=-5),
    "leverage-above-instrument-max": run_case(ValueError, ("leverage=150.0", "BTCUSDT"),
                                              ("Choose leverage <= 125",),
                                              market=binance_market, leverage=150),
    "leverage-text": run_case(TypeError, ("leverage", "'10x'"), ("leverage=10",),
                              leverage="10x"),
    "leverage-nan": run_case(ValueError, ("leverage", "nan"), ("leverage=10",),
                             leverage=float("nan")),
    "leverage-beyond-float": run_case(ValueError, ("leverage",), ("leverage=10",),
                                      leverage=10**400),
    "fees-basis-points": run_case(ValueError, ("fees=5.0",), ("Divide by 10,000",), fees=5),
    "fees-huge-rebate": run_case(ValueError, ("fees=-0.5",), ("Divide by 10,000",),
                                 fees=-0.5),
    "slippage-percent": run_case(ValueError, ("slippage=1.5",), ("basis points",),
                                 slippage=1.5),
    "slippage-negative": run_case(ValueError, ("slippage", "-0.1"), ("slippage=0.0005",),
                                  slippage=-0.1),
    "stop-loss-percent": run_case(ValueError, ("stop_loss", "5.0"), ("divide by 100",),
                                  stop_loss=5),
    "size-above-one-as-margin": run_case(ValueError, ("size=5.0", "'margin'"),
                                         ("size_type='notional'",), size=5),
    "size-zero": run_case(ValueError, ("size", "0.0"), ("size=0.5",), size=0),
    "size-type-risk-without-stop": run_case(ValueError, ("size_type='risk'",),
                                            ("pass stop_loss",), size_type="risk", size=0.01),
    "size-type-typo": run_case(ValueError, ("size_type='notionl'",),
                               ("Did you mean 'notional'",), size_type="notionl"),
    "parameter-unknown": run_case(TypeError, ("['levrage']",), ("Did you mean 'leverage'",),
                                  levrage=5),
    "margin-mode-typo": run_case(ValueError, ("margin_mode='isolate'",),
                                 ("Did you mean 'isolated'",), margin_mode="isolate"),
    "negative-equity-text": run_case(TypeError, ("negative_equity", "'no'"),
                                     ("True or False",), negative_equity="no"),
    "initial-capital-overflow": run_case(ValueError, ("initial_capital", "1e+308"),
                                         ("initial_capital=10_000.0",),
                                         initial_capital=1e308),
    "initial-capital-zero": run_case(ValueError, ("initial_capital",),
                                     ("initial_capital=10_000.0",), initial_capital=0),
    "limit-ttl-float": run_case(TypeError, ("limit_ttl", "2.5"), ("limit_ttl=3",),
                                limit_ttl=2.5),
    "signal-wrong-length": run_case(ValueError, ("entries", "(24)", "(10,)"),
                                    ("market.index",), entries=np.ones(10, dtype=bool)),
    "signal-series-wrong-index": run_case(
        ValueError, ("exits", "index", "position 0"), ("exits.reindex(market.index",),
        exits=pd.Series(True, index=pd.date_range("2023-01-01", periods=N, freq="1h",
                                                  tz="UTC"))),
    "signal-nan-floats": run_case(ValueError, ("short_entries", "bar 2"),
                                  ("short_entries.fillna(False).astype(bool)",),
                                  short_entries=np.r_[0.0, 1.0, np.nan, np.zeros(N - 3)]),
    "signal-text": run_case(ValueError, ("entries", "dtype <U3"), ("fast > slow",),
                            entries=np.array(["yes"] * N)),
    "signal-counts-not-bools": run_case(ValueError, ("short_exits", "int64"), ("fast > slow",),
                                        short_exits=np.arange(N)),
    "signal-dataframe": run_case(TypeError, ("entries", "DataFrame"), ("bt.sweep",),
                                 entries=pd.DataFrame({"a": entries()})),
    "signal-ragged-list": run_case(ValueError, ("entries",), ("1-D bool array",),
                                   entries=[[True], [False, True]]),
    "market-not-a-market": Case(lambda tmp: bt.run(good_bars(), entries=entries()), TypeError,
                                ("run()", "market", "DataFrame"), ("bt.load_market",)),
    "market-instrument-not-an-instrument": Case(
        lambda tmp: bt.run(stand_in_market(), entries=entries()), TypeError,
        ("run()", "market.instrument", "SimpleNamespace"), ("bt.Instrument.simple",)),
}


def check_message(exc: BaseException, culprit: tuple[str, ...], fix: tuple[str, ...]) -> None:
    msg = str(exc)
    assert msg.strip(), "empty message"
    assert "\n" not in msg, f"not one line: {msg!r}"
    assert "numba" not in msg.lower(), msg
    for word in (*culprit, *fix):
        assert word in msg, f"{word!r} not in: {msg}"
    origin = traceback.extract_tb(exc.__traceback__)[-1].filename
    assert f"{Path('backtest')}" in origin and "site-packages" not in origin, \
        f"raised from {origin}, not at the boundary: {msg}"


def _params(cases: dict[str, Case]) -> list[Any]:
    return [pytest.param(case, id=name) for name, case in cases.items()]


@pytest.mark.parametrize("case", _params(DATA_CASES))
def test_bad_data_is_refused_clearly(case: Case, tmp_path: Path) -> None:
    with pytest.raises(case.error) as info:
        case.call(tmp_path)
    assert type(info.value) is case.error
    check_message(info.value, case.culprit, case.fix)


@pytest.mark.parametrize("case", _params(PARAM_CASES))
def test_bad_parameters_are_refused_clearly(case: Case, tmp_path: Path) -> None:
    with pytest.raises(case.error) as info:
        case.call(tmp_path)
    check_message(info.value, case.culprit, case.fix)


def test_the_matrix_is_complete() -> None:
    assert len(DATA_CASES) >= 30 and len(PARAM_CASES) >= 20
    assert issubclass(DataError, ValueError)  # SPEC §11: a DataError is a ValueError


# --------------------------------------------------------------------------- warnings


def test_stop_beyond_liquidation_warns_and_names_both() -> None:
    with pytest.warns(UserWarning) as record:
        bt.run(good_market(), entries=entries(), leverage=20, stop_loss=0.2)
    (w,) = [w for w in record if "stop_loss" in str(w.message)]
    msg = str(w.message)
    assert "stop_loss=0.2" in msg and "liquidation distance" in msg and "20x" in msg
    assert "tighter stop or lower leverage" in msg and "numba" not in msg.lower()
    assert Path(w.filename).name == Path(__file__).name  # points at the user's line


# --------------------------------------------------------------------------- recorded, not raised


def test_leverage_above_the_tier_at_the_position_size_is_rejected_and_recorded() -> None:
    # binance:BTCUSDT allows 125x only below 50,000 USDT notional: 10,000 x 125 is above.
    r = bt.run(binance_market(), entries=entries(), leverage=125)
    assert r.stats["n_trades"] == 0 and r.trades.empty
    kinds = r.events["kind"].tolist()
    assert "leverage_above_tier" in kinds


def test_size_rounding_to_zero_is_rejected_and_recorded() -> None:
    r = bt.run(binance_market(), entries=entries(), size=0.0004, size_type="qty")  # lot 0.001
    assert r.stats["n_trades"] == 0 and "size_zero" in r.events["kind"].tolist()


# --------------------------------------------------------------------------- accepted on purpose


def test_extra_columns_are_ignored() -> None:
    plain = good_market()
    extra = good_market(bars=good_bars().assign(trades=7, note="x", Close=1.0))
    np.testing.assert_array_equal(plain.close, extra.close)


def test_funding_off_the_bar_grid_is_settled_at_the_bar_containing_it() -> None:
    """Decision (SPEC §6): accepted, not refused. 08:17 is settled at the 08:00 bar's open."""
    funding = good_funding(("00:17", "08:17", "16:17"), rate=1e-3)
    m = good_market(funding=funding, mark=good_mark())
    np.testing.assert_array_equal(np.flatnonzero(m.funding_count), [0, 8, 16])
    r = bt.run(m, entries=entries(N, 1), leverage=2, fill="close")  # long from bar 1's close
    paid = r.funding.to_numpy()
    assert np.flatnonzero(paid).tolist() == [8, 16]
    q = r.trades["size"].iloc[0]
    assert paid[8] == pytest.approx(q * m.mark_open[8] * 1e-3, rel=1e-12)


def test_millisecond_resolution_datetimes_and_integer_nanoseconds_are_accepted(tmp_path):
    bars = good_bars()
    path = tmp_path / "ms.parquet"
    table = pa.Table.from_pandas(bars.assign(timestamp=bars["timestamp"].dt.as_unit("ms")),
                                 preserve_index=False)
    assert table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    pq.write_table(table, path)
    a = good_market(bars=path)
    b = good_market(bars=bars.assign(timestamp=ns_ints(bars["timestamp"])))
    np.testing.assert_array_equal(a.index_ns, b.index_ns)


# --------------------------------------------------------------------------- command line


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout, stderr of ``backtest ARGV``; argparse's SystemExit counts as a code
    (``main`` lets argparse exit; see test_cli_argument_errors_return_instead_of_exiting)."""
    try:
        code = cli_main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {"csv": tmp_path / "prices.parquet", "nan": tmp_path / "nan.parquet",
             "naive": tmp_path / "naive.parquet", "missing": tmp_path / "missing.parquet"}
    files["csv"].write_text("timestamp,open\n1,2\n")
    write_frame(set_cell(5, "close", np.nan)(good_bars()))(files["nan"])
    write_frame(as_type("timestamp", lambda s: s.dt.tz_localize(None))(good_bars()))(
        files["naive"])
    return files


CLI_FILE_CASES = {  # backtest data check FILE: the report goes to stdout, exit code 2
    "data-check-missing-file": ("missing", ("not found",), ("check the path",)),
    "data-check-not-parquet": ("csv", ("cannot read as Parquet",), ("backtest data import",)),
    "data-check-nan-price": ("nan", ("'close'", "NaN", "row 5"), ("Fix:",)),
    "data-check-naive-times": ("naive", ("naive",), ("tz_localize('UTC')",)),
}


@pytest.mark.parametrize("key, culprit, fix", [pytest.param(*v, id=k)
                                                for k, v in CLI_FILE_CASES.items()])
def test_cli_data_check_reports_bad_files(key, culprit, fix, bad_files, capsys) -> None:
    path = bad_files[key]
    code, out, err = cli(["data", "check", str(path)], capsys)
    text = out + err
    assert code == 2
    assert "Traceback" not in text and "numba" not in text.lower()
    assert f"{path}: ERROR" in out and "0 of 1 file(s) OK" in out
    for word in (*culprit, *fix):
        assert word in text, f"{word!r} not in: {text}"


CLI_ARG_CASES = {  # library errors: one line on stderr, "backtest: <Type>: <message>"
    "calc-leverage-zero": (["calc", "liquidation", "--entry", "40000", "--leverage", "0"],
                           ("leverage", "0.0"), ("leverage=10",)),
    "calc-unknown-instrument": (["calc", "liquidation", "--entry", "40000", "--leverage", "10",
                                 "--instrument", "bitmex:XBTUS"], ("'bitmex:XBTUS'",),
                                ("Did you mean 'bitmex:XBTUSD'",)),
    "calc-mmr-in-percent": (["calc", "liquidation", "--entry", "40000", "--leverage", "10",
                             "--mmr", "5"], ("mmr=5.0",), ("basis points/percent",)),
    "calc-entry-negative": (["calc", "liquidation", "--entry", "-1", "--leverage", "10"],
                            ("entry", "-1.0"), ("quote currency",)),
    "calc-funding-in-percent": (["calc", "funding", "--rate", "1"], ("funding rate 1.0",),
                                ("0.0001",)),
}


@pytest.mark.parametrize("argv, culprit, fix", [pytest.param(*v, id=k)
                                                 for k, v in CLI_ARG_CASES.items()])
def test_cli_bad_arguments_give_one_line_and_exit_2(argv, culprit, fix, capsys) -> None:
    code, out, err = cli(argv, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("backtest: "), err
    assert "Traceback" not in err and "numba" not in err.lower()
    for word in (*culprit, *fix):
        assert word in err, f"{word!r} not in: {err}"


CLI_PARSE_CASES = {  # argparse: usage (the fix) then one "error:" line naming the argument
    "argument-not-a-number": (["calc", "liquidation", "--entry", "abc"],
                              ("--entry", "invalid float value: 'abc'")),
    "unknown-command": (["frobnicate"], ("invalid choice: 'frobnicate'",)),
    "data-check-without-files": (["data", "check"], ("files",)),
    "bad-choice": (["calc", "liquidation", "--entry", "1", "--side", "sideways"],
                   ("--side", "'sideways'")),
}


@pytest.mark.parametrize("argv, culprit", [pytest.param(*v, id=k)
                                            for k, v in CLI_PARSE_CASES.items()])
def test_cli_unparseable_arguments_exit_2_with_usage(argv, culprit, capsys) -> None:
    code, out, err = cli(argv, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.startswith("usage: backtest")
    last = err.strip().splitlines()[-1]
    assert "error:" in last
    for word in culprit:
        assert word in last, f"{word!r} not in: {last}"


def test_cli_argument_errors_return_instead_of_exiting(capsys) -> None:
    assert cli_main(["calc", "liquidation", "--entry", "abc"]) == 2
