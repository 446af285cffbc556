"""Fuzzing the public boundary: corrupted market frames and random run() parameters.

Hypothesis builds small valid markets, then corrupts them (drops, renames or duplicates
columns, injects NaN/inf/zero/negative/huge values, shuffles, duplicates or drops rows,
changes dtypes, shifts time zones, rescales timestamps) and draws every ``run()`` parameter
from valid values mixed with garbage of every type. The contract (SPEC §11):

* ``load_market`` returns a Market whose arrays satisfy the loader's promises, or raises
  ``DataError``/``ValueError``/``TypeError`` with a non-empty one-line message;
* ``run`` returns a Result with finite equity and wallet on every bar, or raises one of the
  same types; never anything else (no KeyError, IndexError, OverflowError, Numba error...),
  never a hang (the profile's ``deadline``).

Profiles (``tests/hypothesis_profiles.py``): ``ci`` by default, ``thorough`` with
``HYPOTHESIS_PROFILE=thorough`` (or ``-p tests.hypothesis_profiles --hypothesis-profile=...``).
"""

from __future__ import annotations

import math
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis_profiles  # noqa: F401  (registers and loads the profile first)
import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, reject, settings
from hypothesis import strategies as st

import backtest as bt
from backtest.errors import DataError
from backtest.simulation.params import RUN_DEFAULTS

DOCUMENTED = (DataError, ValueError, TypeError)
BACKTEST_DIR = str(Path(bt.__file__).parent)
START = pd.Timestamp("2024-01-01", tz="UTC")
H = pd.Timedelta("1h")
PRICE_COLUMNS = ("open", "high", "low", "close")

# User warnings are part of the contract elsewhere (test_bad_input, test_market): noise here.
# A RuntimeWarning (overflow, invalid value) from the code under test is a failure.
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("error::RuntimeWarning")]


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    """Load/compile the kernels before the deadline-bound examples run."""
    m = make_market(frame(8, 0, 100.0), None, 0, bt.Instrument.simple())
    bt.run(m, entries=np.r_[True, np.zeros(7, dtype=bool)])


# --------------------------------------------------------------------------- valid material


def frame(n: int, seed: int, scale: float, volume: bool = True) -> pd.DataFrame:
    """``n`` hourly bars, a random walk around ``scale``; valid by construction."""
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    open_ = np.r_[close[0], close[:-1]]
    out = pd.DataFrame({
        "timestamp": pd.date_range(START, periods=n, freq="1h", unit="ns"),
        "open": open_,
        "high": np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n)),
        "low": np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n)),
        "close": close})
    if volume:
        out["volume"] = rng.uniform(0, 10, n)
    return out


def funding_frame(n_bars: int, seed: int, every_h: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    times = pd.date_range(START, START + (n_bars + every_h) * H, freq=f"{every_h}h",
                          unit="ns")
    return pd.DataFrame({"timestamp": times,
                         "rate": np.clip(rng.normal(1e-4, 3e-4, len(times)), -0.01, 0.01)})


def mark_from(bars: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 2)
    k = 1 + rng.uniform(-0.002, 0.002, len(bars))
    out = bars[["timestamp", *PRICE_COLUMNS]].copy()
    for c in PRICE_COLUMNS:
        out[c] = out[c] * k
    return out


def make_market(bars: Any, mark: Any, funding: Any, instrument: Any, **kw: Any) -> bt.Market:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.load_market(bars, mark=mark, funding=funding, instrument=instrument, **kw)


def valid_market(bars: pd.DataFrame, mark: Any, funding: Any, instrument: Any) -> bt.Market:
    """A market from valid frames; prices below the instrument's tick are refused by the
    loader (test_bad_input), so such draws are skipped here."""
    try:
        return make_market(bars, mark, funding, instrument)
    except DataError as exc:
        if "tick size" not in str(exc):
            raise
        reject()


# --------------------------------------------------------------------------- corruptions

BAD_NUMBERS = (np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e308, 5e-324, 1e-300)
ZONES = ("Europe/London", "America/New_York", "Asia/Tokyo", "+00:00", "Etc/GMT+2", "UTC")


def _col(df: pd.DataFrame, data: st.DataObject, numeric: bool = False) -> Any:
    cols = [c for c in df.columns if not numeric or c != "timestamp"]
    return data.draw(st.sampled_from(cols)) if cols else None


def c_drop_column(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    col = _col(df, data)
    return df if col is None else df.drop(columns=col)


def c_rename_column(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    col = _col(df, data)
    if col is None:
        return df
    new = data.draw(st.sampled_from([str(col).upper(), str(col).title(), f"{col}_", "x",
                                     "timestamp", "close", "rate", "date", 0]))
    return df.rename(columns={col: new})


def c_duplicate_column(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    col = _col(df, data)
    return df if col is None else pd.concat([df, df[[col]]], axis=1)


def c_inject_value(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    col = _col(df, data, numeric=True)
    if col is None or len(df) == 0:
        return df
    row = data.draw(st.integers(0, len(df) - 1))
    value = data.draw(st.sampled_from(BAD_NUMBERS))
    out = df.copy()
    out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    out.iloc[row, out.columns.get_loc(col)] = value
    return out


def c_scale_column(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    col = _col(df, data, numeric=True)
    if col is None:
        return df
    k = data.draw(st.sampled_from([-1.0, 0.0, 100.0, 1e-9, 1e9, 1e300]))
    out = df.copy()
    out[col] = pd.to_numeric(out[col], errors="coerce") * k
    return out


def c_shuffle_rows(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    order = data.draw(st.permutations(range(len(df))))
    return df.iloc[list(order)].reset_index(drop=True)


def c_duplicate_rows(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    if len(df) == 0:
        return df
    rows = data.draw(st.lists(st.integers(0, len(df) - 1), min_size=1, max_size=3))
    return pd.concat([df, df.iloc[rows]]).sort_index(kind="stable").reset_index(drop=True)


def c_drop_rows(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    keep = data.draw(st.lists(st.booleans(), min_size=len(df), max_size=len(df)))
    return df[np.array(keep, dtype=bool)].reset_index(drop=True)


def c_change_dtype(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    col = _col(df, data)
    if col is None:
        return df
    kind = data.draw(st.sampled_from(["str", "object", "int64", "float32", "bool", "complex",
                                      "category", "Float64", "uint8"]))
    return df.assign(**{str(col): df[col].astype(kind)})


def c_shift_timezone(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    if "timestamp" not in df.columns:
        return df
    ts = pd.to_datetime(df["timestamp"], utc=True)
    zone = data.draw(st.sampled_from((None, *ZONES)))
    return df.assign(timestamp=ts.dt.tz_localize(None) if zone is None else ts.dt.tz_convert(zone))


def c_rescale_time(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    if "timestamp" not in df.columns:
        return df
    ns = pd.DatetimeIndex(pd.to_datetime(df["timestamp"], utc=True)).as_unit("ns").asi8
    how = data.draw(st.sampled_from(["ns", "us", "ms", "s", "ms_as_ns", "float", "x1000",
                                     "negative", "str"]))
    new: Any = {"ns": ns, "us": ns // 10**3, "ms": ns // 10**6, "s": ns // 10**9,
                "ms_as_ns": pd.to_datetime(ns // 10**6, unit="ns", utc=True),
                "float": ns.astype(float), "x1000": ns.astype(float) * 1000,
                "negative": -ns, "str": pd.Series(ns).astype(str)}[how]
    return df.assign(timestamp=np.asarray(new) if how != "ms_as_ns" else new)


def c_time_to_index(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    return df.set_index("timestamp") if "timestamp" in df.columns else df


def c_swap_columns(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    a, b = _col(df, data), _col(df, data)
    if a is None or a == b:
        return df
    return df.rename(columns={a: b, b: a})


def c_truncate(df: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    return df.iloc[: data.draw(st.integers(0, min(len(df), 2)))]


CORRUPTIONS: tuple[Callable[[pd.DataFrame, st.DataObject], pd.DataFrame], ...] = (
    c_drop_column, c_rename_column, c_duplicate_column, c_inject_value, c_scale_column,
    c_shuffle_rows, c_duplicate_rows, c_drop_rows, c_change_dtype, c_shift_timezone,
    c_rescale_time, c_time_to_index, c_swap_columns, c_truncate)


def corrupt(df: pd.DataFrame, data: st.DataObject, label: str) -> pd.DataFrame:
    """Apply 0-3 corruptions; one that cannot apply to this frame leaves it unchanged."""
    ops = data.draw(st.lists(st.sampled_from(CORRUPTIONS), max_size=3), label=label)
    for op in ops:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = op(df, data)
        except (ValueError, TypeError, OverflowError, KeyError):
            continue  # pandas refused to build this corruption: not the code under test
    return df


# --------------------------------------------------------------------------- checks


def check_refusal(exc: BaseException) -> None:
    assert isinstance(exc, DOCUMENTED), f"undocumented {type(exc).__name__}: {exc}"
    event(f"refused: {type(exc).__name__}")
    msg = str(exc)
    assert msg.strip() and "\n" not in msg, repr(msg)
    assert "numba" not in msg.lower() and "Traceback" not in msg, msg
    origin = traceback.extract_tb(exc.__traceback__)[-1].filename
    assert BACKTEST_DIR in origin, f"{type(exc).__name__} raised in {origin}, not by " \
                                   f"backtest's own checks: {msg}"


def check_market(m: bt.Market) -> None:
    n = m.n_bars
    assert n >= 2 and m.index_ns.dtype == np.int64 and np.all(np.diff(m.index_ns) > 0)
    for name in ("open", "high", "low", "close", "mark_open", "mark_high", "mark_low",
                 "mark_close"):
        a = getattr(m, name)
        assert a.dtype == np.float64 and a.shape == (n,) and a.flags.c_contiguous, name
        assert np.isfinite(a).all() and (a > 0).all(), name
    for prefix in ("", "mark_"):
        o, h, lo, c = (getattr(m, prefix + k) for k in PRICE_COLUMNS)
        assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()
    assert np.isfinite(m.funding_rate).all() and np.isfinite(m.next_funding_rate).all()
    assert (np.abs(m.funding_rate) <= 0.05 * np.maximum(m.funding_count, 1)).all()
    assert m.funding_count.dtype == np.int64 and (m.funding_count >= 0).all()


def check_result(r: Any, m: bt.Market) -> None:
    for name in ("equity", "wallet", "margin", "funding", "position"):
        s = getattr(r, name)
        assert len(s) == m.n_bars and np.isfinite(s.to_numpy()).all(), name
    assert np.isfinite(float(r.stats["final_equity"]))
    assert r.stats["final_equity"] == r.equity.iloc[-1]
    t = r.trades
    for col in ("size", "entry_price", "exit_price", "gross_pnl", "fees", "funding", "pnl"):
        assert np.isfinite(t[col].to_numpy(dtype=float)).all(), col
    assert isinstance(r.stats["fingerprint"], str)


# --------------------------------------------------------------------------- load_market


INSTRUMENTS = (bt.Instrument.simple(), "binance:BTCUSDT", "bitmex:XBTUSD",
               bt.Instrument.simple(kind="future", expiry="2024-01-03 00:00+00:00"))
SCALES = (1e-6, 0.5, 0.75, 3.0, 100.0, 40_000.0, 1e7)
LOAD_SCALES = (*SCALES, 1e-300, 1e300)


@settings(deadline=settings.default.deadline)
@given(data=st.data(), n=st.integers(2, 30), seed=st.integers(0, 2**16),
       scale=st.sampled_from(LOAD_SCALES), with_mark=st.booleans(),
       funding_kind=st.sampled_from(["frame", "zero", "none", "series"]),
       instrument=st.sampled_from(INSTRUMENTS),
       gaps=st.sampled_from(["error", "warn"] * 9 + ["ignore", None]),
       start=st.sampled_from([None] * 8 + ["2024-01-01 02:00", "2030-01-01", "nonsense", 5,
                                           pd.NaT]))
def test_load_market_returns_a_valid_market_or_refuses(data, n, seed, scale, with_mark,
                                                      funding_kind, instrument, gaps, start):
    bars = corrupt(frame(n, seed, scale), data, "bars")
    mark = corrupt(mark_from(frame(n, seed, scale), seed), data, "mark") if with_mark else None
    funding: Any = {"zero": 0, "none": None}.get(funding_kind)
    if funding_kind in ("frame", "series"):
        funding = corrupt(funding_frame(n, seed), data, "funding")
        if funding_kind == "series" and list(funding.columns) == ["timestamp", "rate"]:
            funding = funding.set_index("timestamp")["rate"]
    try:
        m = make_market(bars, mark, funding, instrument, gaps=gaps, start=start)
    except Exception as exc:  # noqa: BLE001 - the type is what is checked
        check_refusal(exc)
        return
    event("accepted")
    check_market(m)


# --------------------------------------------------------------------------- run()


GARBAGE = st.sampled_from([None, "10", "", "isolated", True, False, float("nan"), float("inf"),
                           -float("inf"), -1, 0, 0.0, 1, 2.5, 1e308, -1e308, 10**400, [1, 2],
                           {"a": 1}, (), np.float32(0.01), np.int64(3), np.nan, object(),
                           np.array([1.0]), pd.Timestamp("2024-01-01"), b"x", 1j])

VALID: dict[str, st.SearchStrategy[Any]] = {
    "leverage": st.one_of(st.sampled_from([1, 2, 10, 50, 100, 125, 200]),
                          st.floats(0.01, 300, allow_nan=False)),
    "margin_mode": st.sampled_from(["isolated", "cross"]),
    "size": st.one_of(st.floats(1e-6, 1.0), st.sampled_from([0.5, 1.0, 1e4, 1e12])),
    "size_type": st.sampled_from(["margin", "notional", "risk", "qty"]),
    "stop_loss": st.one_of(st.none(), st.floats(1e-4, 0.99)),
    "take_profit": st.one_of(st.none(), st.floats(1e-4, 0.99)),
    "trailing_stop": st.one_of(st.none(), st.floats(1e-4, 0.99)),
    "stop_trigger": st.sampled_from(["last", "mark"]),
    "stop_order": st.sampled_from(["market", "limit"]),
    "stop_limit_offset": st.floats(0, 0.5),
    "entry_order": st.sampled_from(["market", "limit"]),
    "limit_offset": st.floats(0, 0.5),
    "limit_ttl": st.integers(1, 50),
    "fill": st.sampled_from(["next_open", "close"]),
    "path": st.sampled_from(["pessimistic", "ohlc"]),
    "liquidation": st.sampled_from(["bankruptcy", "liquidation_price"]),
    "liquidation_fee": st.floats(0, 0.05),
    "negative_equity": st.booleans(),
    "fees": st.one_of(st.none(), st.floats(-0.001, 0.01)),
    "slippage": st.floats(0, 0.05),
    "initial_capital": st.one_of(st.floats(1e-3, 1e12), st.sampled_from([1.0, 10_000.0])),
    "borrow_rate": st.one_of(st.none(), st.floats(0, 0.001)),
    "settlement_price": st.one_of(st.none(), st.floats(1, 1e5)),
}
assert set(VALID) == set(RUN_DEFAULTS), set(RUN_DEFAULTS) ^ set(VALID)


@st.composite
def run_params(draw: Any) -> dict[str, Any]:
    """A subset of run()'s parameters, each valid (mostly) or garbage."""
    out = {}
    for name in draw(st.lists(st.sampled_from(sorted(VALID)), max_size=8, unique=True)):
        valid = draw(st.integers(0, 9)) > 0
        out[name] = draw(VALID[name] if valid else GARBAGE)
    if draw(st.integers(0, 20)) == 0:
        out[draw(st.sampled_from(["levarage", "stoploss", "size_typ"]))] = 1
    return out


@st.composite
def signal(draw: Any, n: int, index: pd.DatetimeIndex) -> Any:
    fine = ["none", "bools", "series", "ints", "list"]
    bad = ["floats_nan", "short", "strings", "wrong_index", "scalar", "2d"]
    kind = draw(st.sampled_from(bad if draw(st.integers(0, 9)) == 0 else fine))
    bits = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return {"none": None, "bools": bits, "series": pd.Series(bits, index=index),
            "ints": bits.astype(int) * draw(st.sampled_from([1, 1, 1, 2])),
            "floats_nan": np.where(bits, np.nan, 0.0), "short": bits[:-1],
            "strings": bits.astype(str), "wrong_index": pd.Series(bits, index=index + H),
            "scalar": True, "list": bits.tolist(), "2d": bits.reshape(-1, 1)}[kind]


MARKET_INSTRUMENTS = (bt.Instrument.simple(), bt.Instrument.simple(mmr=0.001, max_leverage=500),
                      bt.Instrument.simple(settlement="inverse", contract_size=1.0),
                      "binance:BTCUSDT", "bitmex:XBTUSD", "bitmex:ETHUSD",
                      bt.Instrument.simple(kind="future", expiry="2024-01-01 12:00+00:00"),
                      "binance-margin:BTCUSDT")


@settings(deadline=settings.default.deadline)
@given(data=st.data(), n=st.integers(2, 40), seed=st.integers(0, 2**16),
       scale=st.sampled_from(SCALES), with_mark=st.booleans(), with_funding=st.booleans(),
       instrument=st.sampled_from(MARKET_INSTRUMENTS))
def test_run_returns_a_finite_result_or_refuses(data, n, seed, scale, with_mark, with_funding,
                                               instrument):
    bars = frame(n, seed, scale)
    m = valid_market(bars, mark_from(bars, seed) if with_mark else None,
                     funding_frame(n, seed) if with_funding else 0, instrument)
    params = data.draw(run_params(), label="params")
    sigs = {name: data.draw(signal(n, m.index), label=name)
            for name in ("entries", "exits", "short_entries", "short_exits")}
    try:
        r = bt.run(m, **sigs, **params)
    except Exception as exc:  # noqa: BLE001 - the type is what is checked
        check_refusal(exc)
        return
    event("accepted")
    check_result(r, m)


@settings(deadline=settings.default.deadline)
@given(data=st.data(), n=st.integers(2, 40), seed=st.integers(0, 2**16),
       scale=st.sampled_from(SCALES), instrument=st.sampled_from(MARKET_INSTRUMENTS[:6]))
def test_valid_parameters_always_give_a_finite_result(data, n, seed, scale, instrument):
    """Only valid values: run() must succeed (no refusal) and stay finite."""
    bars = frame(n, seed, scale)
    m = valid_market(bars, mark_from(bars, seed), funding_frame(n, seed), instrument)
    params = {k: data.draw(VALID[k], label=k) for k in
              data.draw(st.lists(st.sampled_from(sorted(set(VALID) - {"borrow_rate",
                                                                      "settlement_price"})),
                                 max_size=10, unique=True), label="names")}
    inst = m.instrument
    params["leverage"] = min(float(params.get("leverage", 10)), inst.max_leverage)
    if params.get("size_type") in ("margin", "risk", None):
        params["size"] = min(float(params.get("size", 1.0)), 1.0)
    if params.get("size_type") == "risk" and params.get("stop_loss") is None:
        params["stop_loss"] = 0.02
    bits = {name: np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
            for name in ("entries", "exits", "short_entries", "short_exits")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = bt.run(m, **bits, **params)
    check_result(r, m)
    assert math.isfinite(r.stats["fees_paid"]) and math.isfinite(r.stats["funding_paid"])
