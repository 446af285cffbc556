"""Tests of backtest.market / backtest.validation: the Market contract, every SPEC §11 data
check (error type and message), funding alignment (SPEC §6), the BitMEX open convention and
the real sample files."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import (
    BAR_CLOSE,
    BAR_OPEN,
    REPO_DATA,
    SHARED_DATA,
    requires_shared_data,
    stand_in_instrument,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.data.check import check_files
from backtest.data.funding import align_funding
from backtest.data.market import Market, load_market
from backtest.errors import DataError

# The mark := last warning is asserted once (test_dataframe_loads_...); elsewhere it is noise.
pytestmark = pytest.mark.filterwarnings("ignore:no mark bars given")
PERP = stand_in_instrument("perpetual")
FUTURE = stand_in_instrument("future")
H = 3_600 * 10**9


def load(bars, **kw) -> Market:
    """load_market with a stand-in perpetual and explicitly no funding unless overridden."""
    kw.setdefault("instrument", PERP)
    kw.setdefault("funding", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_market(bars, **kw)


def raises(match: str, bars, **kw) -> str:
    """Assert load() raises DataError whose message contains every ``|``-separated part."""
    with pytest.raises(DataError) as info:
        load(bars, **kw)
    msg = str(info.value)
    for part in match.split("|"):
        assert part in msg, f"{part!r} not in: {msg}"
    return msg


def funding_frame(times, rates) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.to_datetime(times, utc=True).as_unit("ns"),
                         "rate": rates})


# ---------------------------------------------------------------------------- contract


def test_dataframe_loads_into_contiguous_arrays(make_bars):
    with pytest.warns(UserWarning, match="last-price wicks"):
        m = load_market(make_bars(), instrument=PERP, funding=0)
    assert m.n_bars == 6 and m.bar_ns == H and m.n_gaps == 0
    assert m.index_ns.dtype == np.int64 and np.all(np.diff(m.index_ns) == H)
    for name in ("open", "high", "low", "close", "volume", "mark_open", "mark_high",
                 "mark_low", "mark_close", "funding_rate", "next_funding_rate"):
        arr = getattr(m, name)
        assert arr.dtype == np.float64 and arr.flags.c_contiguous and len(arr) == 6, name
    np.testing.assert_array_equal(m.open, BAR_OPEN)
    np.testing.assert_array_equal(m.close, BAR_CLOSE)
    np.testing.assert_array_equal(m.high, np.maximum(BAR_OPEN, BAR_CLOSE) + 1)
    np.testing.assert_array_equal(m.mark_low, m.low)
    assert m.funding_count.dtype == np.int64 and m.funding_count.sum() == 0
    assert m.mark_source == "last" and m.mark is None and not m.has_funding
    assert m.index_close is None
    assert m.sources == {"bars": "bars DataFrame", "funding": "0 (explicitly none)"}
    assert m.repairs == {"open_outside_range": 0, "mark_open_outside_range": 0}
    assert [e["kind"] for e in m.events] == ["mark_from_last"]


def test_pandas_views_and_repr(make_bars):
    m = load(make_bars())
    assert str(m.index.tz) == "UTC" and m.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert list(m.bars.columns) == ["open", "high", "low", "close", "volume"]
    assert m.bars.index.equals(m.index) and m.funding.index.equals(m.index)
    r = repr(m)
    assert "TEST" in r and "6 bars" in r and "2024-01-01 00:00" in r and "1h" in r
    assert "mark=last" in r and "funding events=0" in r


def test_datetimeindex_and_parquet_inputs(make_bars, write_parquet):
    a = load(make_bars(as_index=True))
    path = write_parquet(make_bars())
    b = load(str(path))
    np.testing.assert_array_equal(a.index_ns, b.index_ns)
    np.testing.assert_array_equal(a.close, b.close)
    assert b.sources["bars"] == str(path)


def test_integer_nanosecond_timestamps_are_accepted(make_bars):
    df = make_bars()
    df["timestamp"] = df["timestamp"].astype("int64")
    assert load(df).bar_ns == H


def test_start_end_trim_is_half_open(make_bars):
    m = load(make_bars(), start="2024-01-01 01:00", end=pd.Timestamp("2024-01-01 04:00", tz="UTC"))
    assert m.n_bars == 3 and m.open[0] == 102.0 and m.close[-1] == 105.0


def test_start_end_leaving_no_bars(make_bars):
    raises("bars DataFrame|no bars with start <= t < end|2024-01-01 00:00 -> 2024-01-01 05:00|"
           "Fix:", make_bars(), start="2025-01-01")


def test_start_after_end_and_bad_gap_policy(make_bars):
    with pytest.raises(ValueError, match="not before end"):
        load(make_bars(), start="2024-01-02", end="2024-01-01")
    with pytest.raises(ValueError, match="gaps must be one of"):
        load(make_bars(), gaps="ignore")


# ---------------------------------------------------------------------------- schema (§11)


def test_missing_column_suggests_rename(make_bars):
    df = make_bars().rename(columns={"close": "Close"})
    raises("bars DataFrame|missing column(s) ['close']|'Close': 'close'|df.rename", df)


def test_misspelt_column_suggests_close_match(make_bars):
    df = make_bars().rename(columns={"close": "clsoe"})
    raises("['close']|{'clsoe': 'close'}", df)


def test_missing_timestamp_suggests_alias(make_bars):
    df = make_bars().rename(columns={"timestamp": "date"})
    raises("missing column(s) ['timestamp']|{'date': 'timestamp'}|DatetimeIndex", df)


def test_non_numeric_column(make_bars):
    df = make_bars()
    df["low"] = df["low"].astype(str)
    df.loc[2, "low"] = "n/a"
    raises("column 'low'|expected numbers|row 2: 'n/a'|pd.to_numeric", df)


def test_naive_timestamps(make_bars):
    df = make_bars()
    df["timestamp"] = df["timestamp"].dt.tz_localize(None)
    raises("column 'timestamp' is naive|tz_localize('UTC')", df)


def test_naive_datetimeindex(make_bars):
    df = make_bars(as_index=True).tz_localize(None)
    raises("the DatetimeIndex is naive|df.index = df.index.tz_localize('UTC')", df)


def test_non_utc_timestamps(make_bars):
    df = make_bars()
    df["timestamp"] = df["timestamp"].dt.tz_convert("Europe/London")
    raises("time zone Europe/London|expected UTC|.dt.tz_convert('UTC')", df)


@pytest.mark.parametrize("unit,words", [("ms", "milliseconds"), ("s", "seconds"),
                                        ("us", "microseconds")])
def test_integer_timestamps_in_other_units(make_bars, unit, words):
    df = make_bars()
    df["timestamp"] = df["timestamp"].astype("int64") // {"ms": 10**6, "s": 10**9,
                                                          "us": 10**3}[unit]
    raises(f"look like {words} since the epoch|unit='{unit}'|pd.to_datetime", df)


def test_string_timestamps(make_bars):
    df = make_bars()
    df["timestamp"] = df["timestamp"].astype(str)
    raises("column 'timestamp' has dtype|pd.to_datetime(df['timestamp'], utc=True)", df)


def test_unsorted_timestamps(make_bars):
    df = make_bars().iloc[[0, 1, 3, 2, 4, 5]].reset_index(drop=True)
    raises("column 'timestamp' is not sorted|row 3 (2024-01-01 02:00) comes after row 2|"
           "1 backward step|sort_values('timestamp')", df)


def test_duplicate_timestamps(make_bars):
    df = make_bars()
    df.loc[3, "timestamp"] = df.loc[2, "timestamp"]
    raises("1 duplicate time(s)|row 3 (2024-01-01 02:00)|drop_duplicates", df)


@pytest.mark.parametrize("value,kind", [(np.nan, "1 NaN"), (np.inf, "1 inf"),
                                        (0.0, "1 zero or negative"),
                                        (-5.0, "1 zero or negative")])
def test_invalid_prices(make_bars, value, kind):
    df = make_bars()
    df.loc[4, "low"] = value
    raises(f"column 'low' has 1 invalid price(s) ({kind})|row 4 (2024-01-01 04:00)|"
           "finite prices > 0|Fix:", df)


def test_high_below_low(make_bars):
    df = make_bars()
    df.loc[1, ["high", "low"]] = [99.0, 104.0]
    raises("column 'high' is below 'low' in 1 row(s)|row 1|high=99.0, low=104.0|"
           "Expected high >= low|Fix:", df)


def test_close_outside_range_is_an_error(make_bars):
    df = make_bars()
    df.loc[2, "close"] = 500.0
    raises("column 'close' lies outside [low, high]|row 2|close=500.0|Fix:", df)


def test_negative_volume(make_bars):
    df = make_bars()
    df.loc[0, "volume"] = -1.0
    raises("column 'volume'|negative|row 0", df)


def test_nan_volume_is_allowed(make_bars):
    df = make_bars()
    df["volume"] = np.nan
    assert np.isnan(load(df).volume).all()


def test_volume_column_is_optional(make_bars):
    m = load(make_bars().drop(columns="volume"))
    assert np.isnan(m.volume).all() and m.volume.dtype == np.float64


def test_empty_frame(make_bars):
    raises("bars DataFrame: empty (0 rows)|Fix:", make_bars().iloc[:0])


def test_unreadable_and_missing_files(tmp_path):
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.parquet"
    junk.write_text("timestamp,open\n1,2\n")
    for path in (empty, junk):
        raises(f"{path}: cannot read as Parquet|Fix:", path)
    raises(f"{tmp_path / 'nope.parquet'}: bars file not found", tmp_path / "nope.parquet")


def test_empty_parquet_file(make_bars, write_parquet):
    path = write_parquet(make_bars().iloc[:0], "empty_rows.parquet")
    raises(f"{path}: empty (0 rows)", path)


# ---------------------------------------------------------------------------- spacing


def test_gaps_error_lists_first_gaps(make_bars):
    df = make_bars(n=10).drop(index=[2, 5, 6]).reset_index(drop=True)
    raises("2 irregular step(s)|expected every 1h|2024-01-01 01:00 -> 2024-01-01 03:00 (2h), "
           "2024-01-01 04:00 -> 2024-01-01 07:00 (3h)|"
           "gaps='warn'", df)


def test_gaps_warn_counts(make_bars):
    df = make_bars(n=10).drop(index=[3]).reset_index(drop=True)
    with pytest.warns(UserWarning, match="1 irregular step"):
        m = load_market(df, instrument=PERP, funding=0, gaps="warn")
    assert m.n_gaps == 1 and m.bar_ns == H
    assert {"kind": "gaps", "count": 1}.items() <= m.events[0].items()


def test_single_bar_is_an_error(make_bars):
    raises("only 1 bar(s)|at least 2", make_bars(n=1))


# ---------------------------------------------------------------------------- BitMEX convention


def test_open_outside_range_repaired_counted_and_warned(make_bars):
    df = make_bars()
    df.loc[1, "open"] = 110.0  # above high 103
    df.loc[3, "open"] = 95.0   # below low 102
    with pytest.warns(UserWarning, match="2 bar.s. with open outside") as rec:
        m = load_market(df, instrument=PERP, funding=0)
    assert sum("open outside" in str(w.message) for w in rec) == 1  # warned once
    assert m.repairs["open_outside_range"] == 2
    assert m.high[1] == 110.0 and m.low[1] == df.loc[1, "low"]
    assert m.low[3] == 95.0 and m.high[3] == df.loc[3, "high"]
    assert m.open[1] == 110.0  # open itself is kept
    assert any(e["kind"] == "open_outside_range" and e["count"] == 2 for e in m.events)


# ---------------------------------------------------------------------------- mark and index


def shifted(df: pd.DataFrame, by: float = 0.5) -> pd.DataFrame:
    out = df.copy()
    out[["open", "high", "low", "close"]] += by
    out["volume"] = np.nan
    return out


def test_mark_bars_are_used(make_bars):
    bars = make_bars()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mark := last warning when mark is given
        m = load_market(bars, mark=shifted(bars), instrument=PERP, funding=0)
    assert m.mark_source == "mark" and m.sources["mark"] == "mark DataFrame"
    np.testing.assert_array_equal(m.mark_close, np.array(BAR_CLOSE) + 0.5)
    assert list(m.mark.columns) == ["open", "high", "low", "close"]


def test_mark_extra_rows_outside_bars_are_dropped(make_bars):
    bars = make_bars(n=10).iloc[2:8].reset_index(drop=True)
    m = load(bars, mark=shifted(make_bars(n=10)))
    assert m.n_bars == 6 and m.mark_close[0] == bars["close"][0] + 0.5


def test_mark_not_covering_start(make_bars):
    bars = make_bars()
    msg = raises("mark DataFrame: mark bars do not cover the bars|"
                 "2 bars from 2024-01-01 00:00 to 2024-01-01 01:00 before the mark starts|"
                 "start='2024-01-01 02:00'", bars, mark=shifted(bars.iloc[2:]))
    assert "end=" not in msg


def test_mark_not_covering_end(make_bars):
    bars = make_bars()
    raises("1 bar at 2024-01-01 05:00 after the mark ends|end='2024-01-01 05:00'", bars,
           mark=shifted(bars.iloc[:5]))


def test_mark_hole_inside_span(make_bars):
    bars = make_bars()
    raises("1 bar time(s) inside the mark span with no mark row, first 2024-01-01 03:00|"
           "fill the mark file", bars, mark=shifted(bars.drop(index=3)))


def test_mark_not_aligned(make_bars):
    bars = make_bars()
    fine = shifted(make_bars(n=12, freq="30min"))
    fine["close"] = fine["open"]  # keep close inside the range
    raises("not aligned with the bars|5 mark row(s) between bar times|"
           "first at 2024-01-01 00:30|resample", bars, mark=fine)


def test_mark_invalid_prices_in_used_rows(make_bars):
    bars, mark = make_bars(), shifted(make_bars())
    mark.loc[2, "high"] = np.nan
    raises("mark DataFrame: column 'high' has 1 invalid price|row 2", bars, mark=mark)


def test_mark_open_outside_counted_separately(make_bars):
    bars, mark = make_bars(), shifted(make_bars())
    mark.loc[2, "open"] = 200.0
    m = load(bars, mark=mark)
    assert m.repairs == {"open_outside_range": 0, "mark_open_outside_range": 1}
    assert m.mark_high[2] == 200.0


def test_index_bars(make_bars):
    bars = make_bars()
    m = load(bars, index=shifted(bars, -0.25))
    np.testing.assert_array_equal(m.index_close, np.array(BAR_CLOSE) - 0.25)
    assert m.repairs["index_open_outside_range"] == 0 and m.mark_source == "last"
    raises("index DataFrame: index bars do not cover", bars, index=shifted(bars.iloc[1:]))


# ---------------------------------------------------------------------------- funding (§6, §11)


FUND_TIMES = ["2024-01-01 01:00", "2024-01-01 02:30", "2024-01-01 03:10",
              "2024-01-01 03:50", "2024-01-01 09:00"]
FUND_RATES = [0.001, 0.002, 0.0005, 0.0007, 0.003]


def test_funding_alignment(make_bars):
    m = load(make_bars(), funding=funding_frame(FUND_TIMES, FUND_RATES))
    # 01:00 at bar 1's open; 02:30 inside bar 2; 03:10 and 03:50 both in bar 3; 09:00 after.
    np.testing.assert_allclose(m.funding_rate, [0, 0.001, 0.002, 0.0012, 0, 0], rtol=0,
                               atol=1e-15)
    np.testing.assert_array_equal(m.funding_count, [0, 1, 1, 2, 0, 0])
    # first event at or after the bar's end (t + 1h)
    np.testing.assert_array_equal(m.next_funding_rate,
                                  [0.001, 0.002, 0.0005, 0.003, 0.003, 0.003])
    assert m.has_funding and m.funding_interval_ns == 65 * 60 * 10**9  # median step
    (ev,) = [e for e in m.events if e["kind"] == "funding_outside_range"]
    assert ev["count"] == 1 and "1 at/after the end of the last bar" in ev["message"]
    assert "funding events=4" in repr(m)


def test_funding_series_input(make_bars):
    f = funding_frame(FUND_TIMES, FUND_RATES).set_index("timestamp")["rate"]
    m = load(make_bars(), funding=f)
    assert m.funding_count.sum() == 4 and m.sources["funding"] == "funding Series"


def test_funding_frame_with_datetimeindex(make_bars):
    f = funding_frame(FUND_TIMES, FUND_RATES).set_index("timestamp")
    assert load(make_bars(), funding=f).funding_count.sum() == 4


@settings(max_examples=200, deadline=None)
@given(n_bars=st.integers(1, 30), offsets=st.lists(st.integers(-3 * H, 40 * H), max_size=20,
                                                   unique=True))
def test_align_funding_has_no_look_ahead(n_bars, offsets):
    """Each used event is settled at the open of the bar containing it; none is lost."""
    idx = np.arange(n_bars, dtype=np.int64) * H
    ev = np.sort(np.array(offsets, dtype=np.int64))
    rate = (np.arange(len(ev)) + 1) * 1e-5
    out = align_funding(ev, rate, idx, H)
    inside = (ev >= 0) & (ev < n_bars * H)
    assert out["funding_count"].sum() == inside.sum()
    np.testing.assert_allclose(out["funding_rate"].sum(), rate[inside].sum(), atol=1e-15)
    bar = ev[inside] // H  # the bar containing the event
    np.testing.assert_array_equal(out["funding_count"], np.bincount(bar, minlength=n_bars))
    np.testing.assert_allclose(out["funding_rate"],
                               np.bincount(bar, weights=rate[inside], minlength=n_bars),
                               rtol=0, atol=1e-15)
    later = [rate[ev >= t + H][0] if (ev >= t + H).any() else 0.0 for t in idx]
    np.testing.assert_array_equal(out["next_funding_rate"], later)


def test_funding_in_a_bar_gap_settles_at_next_open():
    idx = np.array([0, 1, 3, 4], dtype=np.int64) * H
    ev = np.array([int(1.5 * H), int(2.5 * H)])
    out = align_funding(ev, np.array([0.001, 0.002]), idx, H, events := [])
    np.testing.assert_array_equal(out["funding_count"], [0, 1, 1, 0])
    assert events[0]["kind"] == "funding_in_gap" and events[0]["count"] == 1


def test_funding_event_before_first_bar_is_counted_not_used():
    idx = np.arange(4, dtype=np.int64) * H + H
    out = align_funding(np.array([0, H]), np.array([0.01, 0.02]), idx, H, events := [])
    np.testing.assert_array_equal(out["funding_rate"], [0.02, 0, 0, 0])
    assert "1 funding event(s) before the first bar" in events[0]["message"]


def test_funding_nan_rate(make_bars):
    raises("funding DataFrame: column 'rate' has 1 NaN/inf|row 2|Fix:", make_bars(),
           funding=funding_frame(FUND_TIMES, [0.001, 0.002, np.nan, 0.0007, 0.003]))


def test_funding_percent_instead_of_fraction(make_bars):
    raises("|rate| > 0.05|row 1|Percent passed as fractions?|divide the rates by 100",
           make_bars(), funding=funding_frame(FUND_TIMES, [0.01, 0.06, 0.01, 0.01, 0.01]))
    raises("median |rate| 0.01 > 0.005|divide the rates by 100", make_bars(),
           funding=funding_frame(FUND_TIMES, [0.01] * 5))


def test_funding_unsorted(make_bars):
    times = [FUND_TIMES[i] for i in (0, 2, 1, 3, 4)]
    raises("funding DataFrame: column 'timestamp' is not sorted|row 2 (2024-01-01 02:30)",
           make_bars(), funding=funding_frame(times, FUND_RATES))


def test_funding_missing_columns(make_bars):
    f = funding_frame(FUND_TIMES, FUND_RATES).rename(columns={"rate": "fundingRate"})
    raises("funding DataFrame: missing column(s) ['rate']|{'fundingRate': 'rate'}", make_bars(),
           funding=f)


def test_funding_not_covering_the_bars(make_bars):
    bars = make_bars(n=48)  # two days; funding only on the first day, every 8 h
    f = funding_frame(["2024-01-01 00:00", "2024-01-01 08:00", "2024-01-01 16:00"],
                      [1e-4] * 3)
    raises("funding ends 2024-01-01 16:00, more than one interval before the last bar "
           "2024-01-02 23:00|funding interval 8h|end='2024-01-01 17:00'|funding=0", bars,
           funding=f)
    late = funding_frame(["2024-01-01 12:00", "2024-01-01 20:00", "2024-01-02 04:00",
                          "2024-01-02 12:00", "2024-01-02 20:00"], [1e-4] * 5)
    raises("funding starts 2024-01-01 12:00, more than one interval after the first bar|"
           "start='2024-01-01 12:00'", bars, funding=late)
    # one interval of slack at both ends is accepted
    ok = funding_frame(["2024-01-01 08:00", "2024-01-01 16:00", "2024-01-02 00:00",
                        "2024-01-02 08:00", "2024-01-02 16:00"], [1e-4] * 5)
    assert load(bars, funding=ok).funding_count.sum() == 5


def test_funding_required_for_perpetual(make_bars):
    raises("TEST is a perpetual and no funding was given|funding=0", make_bars(), funding=None)


def test_funding_number_must_be_zero(make_bars):
    with pytest.raises(ValueError, match="must be 0"):
        load(make_bars(), funding=0.0001)
    assert not load(make_bars(), funding=0.0).has_funding


def test_future_needs_no_funding_and_ignores_it(make_bars):
    assert not load(make_bars(), instrument=FUTURE, funding=None).has_funding
    with pytest.warns(UserWarning, match="ignored, TEST is a future"):
        m = load_market(make_bars(), instrument=FUTURE,
                        funding=funding_frame(FUND_TIMES, FUND_RATES))
    assert not m.has_funding and m.funding_count.sum() == 0


def test_instrument_must_look_like_one(make_bars):
    with pytest.raises(TypeError, match="preset name or an Instrument"):
        load(make_bars(), instrument=42)
    with pytest.raises(ValueError, match="perpetual, future or spot_margin"):
        load(make_bars(), instrument=stand_in_instrument("option"))


# ---------------------------------------------------------------------------- check_files


def test_check_files_good_and_bad(make_bars, write_parquet):
    good = write_parquet(make_bars(), "good.parquet")
    bad_df = make_bars()
    bad_df.loc[2, "close"] = -1.0
    bad = write_parquet(bad_df, "bad.parquet")
    fund = write_parquet(funding_frame(FUND_TIMES, FUND_RATES), "funding.parquet")
    other = write_parquet(pd.DataFrame({"a": [1]}), "other.parquet")
    text, ok = check_files([good, fund])
    assert ok and f"{good}: OK  bars, 6 rows, 2024-01-01 00:00 -> 2024-01-01 05:00" in text
    assert f"{fund}: OK  funding, 5 rows" in text and "2 of 2 file(s) OK" in text
    text, ok = check_files([good, bad, other])
    assert not ok and "1 of 3 file(s) OK" in text
    assert re.search(rf"{re.escape(str(bad))}: ERROR\n  column 'close' has 1 invalid", text)
    assert "cannot tell what this file holds" in text


def test_check_files_gap_policy(make_bars, write_parquet):
    path = write_parquet(make_bars().drop(index=[2]), "gappy.parquet")
    text, ok = check_files([path], gaps="warn")
    assert ok and "note: column 'timestamp' has 1 irregular step" in text
    text, ok = check_files([path], gaps="error")
    assert not ok and "gaps='warn'" in text


# ---------------------------------------------------------------------------- shipped data/


BINANCE = {"bars": REPO_DATA / "binance_btcusdt_perp_1h.parquet",
           "mark": REPO_DATA / "binance_btcusdt_perp_1h_mark.parquet",
           "funding": REPO_DATA / "binance_btcusdt_perp_funding.parquet"}
BITMEX = {"bars": REPO_DATA / "bitmex_xbtusd_1h.parquet",
          "funding": REPO_DATA / "bitmex_xbtusd_funding.parquet"}


def test_binance_sample_from_2020():
    # The mark file ends one hour before the last-price file, hence end=.
    m = load_market(**BINANCE, instrument="binance:BTCUSDT", start="2020-01-01",
                    end="2026-05-17 07:00")
    assert m.mark_source == "mark" and m.has_funding and m.bar_ns == H
    assert m.index[0] == pd.Timestamp("2020-01-01", tz="UTC")
    assert m.funding_interval_ns == 8 * H and m.repairs["open_outside_range"] == 0
    # Binance events are on the hour: each one is settled at the open of the bar it labels.
    f = pd.read_parquet(BINANCE["funding"]).set_index("timestamp")["rate"]
    f = f[(f.index >= m.index[0]) & (f.index <= m.index[-1])]
    assert m.funding_count.sum() == len(f)
    np.testing.assert_array_equal(m.funding.loc[f.index].to_numpy(), f.to_numpy())


def test_binance_sample_without_start_names_the_mark_gap():
    with pytest.raises(DataError) as info:
        load_market(**BINANCE, instrument="binance:BTCUSDT")
    msg = str(info.value)
    assert "binance_btcusdt_perp_1h_mark.parquet" in msg and "before the mark starts" in msg
    assert "2019-09-08 17:00" in msg and "start='2019-12-23 11:00'" in msg


def test_bitmex_sample_funding_ends_2020():
    with pytest.raises(DataError) as info:
        load_market(**BITMEX, instrument="bitmex:XBTUSD")
    msg = str(info.value)
    assert "funding ends 2020-11-05 04:00" in msg and "end='2020-11-05 05:00'" in msg
    assert "start='2016-05-14 12:00'" in msg
    with pytest.warns(UserWarning, match="open outside"):
        m = load_market(**BITMEX, instrument="bitmex:XBTUSD", start="2016-05-14 12:00",
                        end="2020-11-05")
    assert m.has_funding and m.funding_count.max() == 1
    assert m.funding_count.sum() == 4865  # every event but the last (2020-11-05 04:00)
    assert 0 < m.repairs["open_outside_range"] < 3046


def test_bitmex_sample_full_file_repairs():
    with pytest.warns(UserWarning, match="3,046 bar.s. with open outside"):
        m = load_market(BITMEX["bars"], instrument="bitmex:XBTUSD", funding=0)
    assert m.repairs["open_outside_range"] == 3046 and m.n_bars == 62_671
    assert np.all(m.high >= np.maximum(m.open, m.close))
    assert np.all(m.low <= np.minimum(m.open, m.close))


def test_check_files_on_shipped_data():
    text, ok = check_files(sorted(REPO_DATA.glob("*.parquet")))
    assert ok, text
    assert "3,046 bar(s) with open outside" in text and "5 of 5 file(s) OK" in text


# ---------------------------------------------------------------------------- ../shared/data

SHARED_BARS = {  # file -> (expected error text or None, open-outside-range count)
    "binance_btcusdt_perp/binance_btcusdt_perp_1h.parquet": (None, 0),
    "binance_btcusdt_perp/binance_btcusdt_perp_1h_mark.parquet": (None, 0),
    "binance_btcusdt_perp/binance_btcusdt_perp_5m.parquet": (None, 0),
    "binance_btcusdt_perp/binance_btcusdt_perp_1m_20230718-20230817.parquet": (None, 0),
    "binance_btcusdt_perp/binance_btcusdt_perp_1m_20250504-20250624.parquet": (None, 0),
    "bitmex_xbtusd/bitmex_xbtusd_1h.parquet": (None, 3046),
    "bitmex_xbtusd/bitmex_xbtusd_1h_prelaunch_2015-2016.parquet": (
        "2 irregular step(s) between bars (expected every 1h, the median step): "
        "2015-10-04 22:00 -> 2015-10-05 00:00 (2h), 2015-10-11 22:00 -> 2015-10-12 00:00", 2140),
    "bitmex_xbtusd/bitmex_xbtusd_1m_2017-2019.parquet": (None, 166_680),
    "bitmex_xbtusd/bitmex_xbtusd_1m_2020-2023.parquet": (None, 363_808),
}


@requires_shared_data
@pytest.mark.parametrize("name", list(SHARED_BARS))
def test_shared_bar_files(name):
    error, n_repairs = SHARED_BARS[name]
    path = SHARED_DATA / name
    if error:
        raises(error, path)
        m = load(path, gaps="warn")
        assert m.n_gaps == 2
    else:
        m = load(path)
    assert m.repairs["open_outside_range"] == n_repairs


@requires_shared_data
def test_shared_funding_files():
    bars = SHARED_DATA / "binance_btcusdt_perp/binance_btcusdt_perp_1h.parquet"
    for name, kw in [("binance_btcusdt_perp/binance_btcusdt_perp_funding.parquet",
                      {"start": "2019-09-10"}),
                     ("bitmex_xbtusd/bitmex_xbtusd_funding.parquet",
                      {"start": "2019-09-10", "end": "2020-11-05"})]:
        m = load(bars, funding=SHARED_DATA / name, **kw)
        assert m.has_funding and m.funding_interval_ns == 8 * H
    deribit = SHARED_DATA / "deribit_btc_perpetual/deribit_btc_perpetual_funding_1h.parquet"
    raises(f"{deribit}: column 'timestamp' is not sorted: row 4311 (2019-10-27 00:00) comes "
           "after row 4310 (2019-10-27 01:00)|sort_values", bars, funding=deribit,
           start="2019-09-10", end="2021-02-25")
    text, ok = check_files([deribit])
    assert not ok and "not sorted" in text
