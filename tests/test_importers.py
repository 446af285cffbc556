"""``backtest data import`` and :mod:`backtest.importers` (SPEC §2, §10, §11): every format
from small source files written here from the documented layouts, exact values, the schema,
that ``load_market`` and ``data check`` accept the output, atomic writes, and bad input."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import backtest as bt
from backtest.cli.main import main
from backtest.data.importers import FORMATS, import_files, write_parquet
from backtest.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore:no mark bars given")
SIMPLE_PERP = bt.Instrument.simple()
H = 3_600_000  # one hour in ms
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC in ms
KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                "taker_buy_volume,taker_buy_quote_volume,ignore")
# (open, high, low, close, volume) of consecutive hourly bars from T0
KLINES = [(42283.58, 42554.57, 42261.02, 42475.23, 1271.68108),
          (42475.23, 42775.0, 42431.65, 42613.56, 1196.37856),
          (42613.57, 42638.41, 42500.0, 42581.1, 685.21123),
          (42581.1, 42700.0, 42550.5, 42650.0, 500.5)]


def kline_rows(bars, start_ms=T0, factor=1, mark=False):
    """data.binance.vision kline lines; ``factor=1000`` writes microseconds."""
    out = []
    for i, (o, h, lo, c, vol) in enumerate(bars):
        t = (start_ms + i * H) * factor
        vol = 0 if mark else vol
        out.append(f"{t},{o},{h},{lo},{c},{vol},{t + (H - 1) * factor},{vol * c:.4f},"
                   f"{0 if mark else 100 + i},{vol / 2},{vol * c / 2:.4f},0")
    return out


def write(path: Path, lines, header: str | None = None) -> Path:
    path.write_text("\n".join(([header] if header else []) + list(lines)) + "\n")
    return path


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def check_ok(capsys, path: Path) -> str:
    code, out, err = cli(capsys, "data", "check", path)
    assert code == 0, out + err
    return out


def assert_bar_schema(path: Path) -> None:
    schema = pq.read_schema(path)
    assert schema.names == ["timestamp", "open", "high", "low", "close", "volume"]
    assert schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")
    assert all(schema.field(c).type == pa.float64() for c in schema.names[1:])


# --- Binance klines -----------------------------------------------------------------------


def test_binance_klines_with_and_without_header_give_the_same_bars(tmp_path, capsys):
    with_h = write(tmp_path / "BTCUSDT-1h-2024-01.csv", kline_rows(KLINES), KLINE_HEADER)
    without = write(tmp_path / "old.csv", kline_rows(KLINES))
    out = tmp_path / "bars.parquet"
    code, text, err = cli(capsys, "data", "import", "binance-klines", with_h, "--out", out)
    assert code == 0, err
    assert "4 bars, 2024-01-01 00:00 -> 2024-01-01 03:00 UTC" in text and "interval 1h" in text
    assert "milliseconds" in text and "a header row" in text
    assert_bar_schema(out)
    got = pd.read_parquet(out)
    assert got["timestamp"].iloc[1] == pd.Timestamp("2024-01-01 01:00", tz="UTC")  # open time
    assert got.iloc[0, 1:].tolist() == list(KLINES[0])
    assert got["volume"].tolist() == [b[4] for b in KLINES]
    frame = import_files("binance-klines", without)
    assert "no header row" in " ".join(frame.attrs["notes"])
    pd.testing.assert_frame_equal(frame, got)
    assert "OK  bars, 4 rows" in check_ok(capsys, out)
    market = bt.load_market(out, instrument=SIMPLE_PERP, funding=0)
    assert market.n_bars == 4 and market.close[2] == 42581.1


def test_binance_microsecond_klines_are_detected_and_said(tmp_path):
    ms = import_files("binance-klines", write(tmp_path / "ms.csv", kline_rows(KLINES)))
    us = import_files("binance-klines", write(tmp_path / "us.csv", kline_rows(KLINES, factor=1000)))
    pd.testing.assert_frame_equal(ms, us)
    assert any("microseconds" in n for n in us.attrs["notes"])
    assert us["timestamp"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_binance_zip_holds_one_csv(tmp_path):
    csv = "\n".join(kline_rows(KLINES)) + "\n"
    one = tmp_path / "BTCUSDT-1h-2024-01.zip"
    with zipfile.ZipFile(one, "w") as zf:
        zf.writestr("BTCUSDT-1h-2024-01.csv", csv)
    frame = import_files("binance-klines", one)
    assert frame["close"].tolist() == [b[3] for b in KLINES]
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.csv", csv)
        zf.writestr("b.csv", csv)
    with pytest.raises(DataError, match=r"two\.zip: zip archive holds 2 files"):
        import_files("binance-klines", two)


def test_monthly_files_are_merged_in_time_order_and_identical_overlap_kept_once(tmp_path):
    jan = write(tmp_path / "jan.csv", kline_rows(KLINES[:3]))
    feb = write(tmp_path / "feb.csv", kline_rows(KLINES[2:], start_ms=T0 + 2 * H))  # overlap
    frame = import_files("binance-klines", [feb, jan])  # given out of order
    assert frame["open"].tolist() == [b[0] for b in KLINES]
    assert frame["timestamp"].is_monotonic_increasing and len(frame) == 4
    assert any("1 row(s) repeated with identical values" in n for n in frame.attrs["notes"])


def test_conflicting_duplicates_across_files_name_both_files_and_the_time(tmp_path, capsys):
    jan = write(tmp_path / "jan.csv", kline_rows(KLINES[:3]))
    changed = [(b[0], b[1], b[2], b[3] + 1.0, b[4]) for b in KLINES[2:]]
    feb = write(tmp_path / "feb.csv", kline_rows(changed, start_ms=T0 + 2 * H), KLINE_HEADER)
    with pytest.raises(DataError) as info:
        import_files("binance-klines", [jan, feb])
    msg = str(info.value)
    assert "jan.csv line 3" in msg and "feb.csv line 2" in msg
    assert "2024-01-01 02:00" in msg and "close 42581.1 vs 42582.1" in msg
    code, _, err = cli(capsys, "data", "import", "binance-klines", jan, feb, "--out",
                       tmp_path / "x.parquet")
    assert code == 2 and "different values" in err
    assert not (tmp_path / "x.parquet").exists()


def test_binance_mark_klines_write_null_volume_and_load_as_mark(tmp_path, capsys):
    bars = write(tmp_path / "k.csv", kline_rows(KLINES))
    mark_src = write(tmp_path / "m.csv", kline_rows(KLINES, mark=True), KLINE_HEADER)
    mark_out, bars_out = tmp_path / "mark.parquet", tmp_path / "bars.parquet"
    code, text, err = cli(capsys, "data", "import", "binance-mark-klines", mark_src,
                          "--out", mark_out)
    assert code == 0, err and "volume: null" in text
    assert pq.read_table(mark_out).column("volume").null_count == 4
    assert_bar_schema(mark_out)
    write_parquet(import_files("binance-klines", bars), bars_out)
    market = bt.load_market(bars_out, mark=mark_out, instrument=SIMPLE_PERP, funding=0)
    assert market.mark_source == "mark" and market.mark_close[3] == 42650.0
    with pytest.raises(DataError, match="non-zero in 4 row.*binance-klines"):
        import_files("binance-mark-klines", bars)


# --- Binance funding ----------------------------------------------------------------------


def test_binance_funding_csv_and_rest_json_agree(tmp_path, capsys):
    rates = [0.0001, 0.00012345, -0.00005, 0.0001]
    csv = write(tmp_path / "BTCUSDT-fundingRate-2024-01.csv",
                [f"{T0 + 8 * H * i},8,{r}" for i, r in enumerate(rates)],
                "calc_time,funding_interval_hours,last_funding_rate")
    rest = tmp_path / "funding.json"
    rest.write_text(json.dumps([{"symbol": "BTCUSDT", "fundingTime": T0 + 8 * H * i,
                                 "fundingRate": f"{r:.8f}", "markPrice": "42000.0"}
                                for i, r in enumerate(rates)]))
    out = tmp_path / "funding.parquet"
    code, text, err = cli(capsys, "data", "import", "binance-funding", csv, "--out", out)
    assert code == 0, err
    assert "4 funding events" in text and "interval 8h" in text
    got = pd.read_parquet(out)
    assert got["rate"].tolist() == rates
    assert got["timestamp"].iloc[1] == pd.Timestamp("2024-01-01 08:00", tz="UTC")
    assert pq.read_schema(out).field("timestamp").type == pa.timestamp("ns", tz="UTC")
    pd.testing.assert_frame_equal(import_files("binance-funding", rest), got)
    assert "OK  funding, 4 rows" in check_ok(capsys, out)
    n = 25  # hourly bars spanning the funding
    bars = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="1h",
                                                     tz="UTC"),
                         "open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0,
                         "volume": 1.0})
    market = bt.load_market(bars, funding=out, instrument=SIMPLE_PERP)
    assert market.funding_rate[8] == pytest.approx(0.00012345)
    assert market.funding_count.sum() == 4


# --- BitMEX -------------------------------------------------------------------------------

TRADE_HEADER = ("timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,"
                "homeNotional,foreignNotional")


def trade(ts: str, symbol: str, size: int, price: float, tid: str) -> str:
    return (f"2019-10-01D{ts},{symbol},Buy,{size},{price},PlusTick,{tid},"
            f"{size * 12000},{size / price:.8f},{size}")


DAY1 = [trade("00:00:01.123456789", "XBTUSD", 100, 8300.5, "a1"),
        trade("00:00:02.000000000", "ETHUSD", 7, 180.05, "e1"),
        trade("00:00:10.500000000", "XBTUSD", 50, 8302.0, "a2"),
        trade("00:00:30.000000000", "XBTUSD", 25, 8299.0, "a3"),
        trade("00:00:59.999999999", "XBTUSD", 10, 8301.0, "a4"),
        # 00:01 has no trade: a gap, not an invented bar
        trade("00:02:00.000000000", "XBTUSD", 200, 8305.0, "a5"),
        trade("00:02:45.000000001", "XBTUSD", 300, 8304.5, "a6"),
        trade("00:03:00.000000000", "XBTUSD", 1, 8310.0, "a7"),
        trade("00:03:00.000000000", "XBTUSD", 2, 8311.0, "a8"),  # same time: file order
        trade("00:04:10.000000000", "XBTUSD", 5, 8309.5, "a9")]


def test_bitmex_trades_aggregate_into_bars_without_inventing_gaps(tmp_path, capsys):
    src = tmp_path / "20191001.csv.gz"
    src.write_bytes(gzip.compress(("\n".join([TRADE_HEADER, *DAY1]) + "\n").encode()))
    out = tmp_path / "xbt_1m.parquet"
    code, text, err = cli(capsys, "data", "import", "bitmex-trades", src, "--symbol", "XBTUSD",
                          "--interval", "1m", "--out", out)
    assert code == 0, err
    assert "9 trade(s) aggregated into 4 bar(s) of 1m" in text
    assert "1 interval(s) between the first and last bar had no trade" in text
    got = pd.read_parquet(out)
    assert got["timestamp"].tolist() == [pd.Timestamp(f"2019-10-01 00:0{m}", tz="UTC")
                                         for m in (0, 2, 3, 4)]
    assert got.iloc[0, 1:].tolist() == [8300.5, 8302.0, 8299.0, 8301.0, 185.0]
    assert got.iloc[1, 1:].tolist() == [8305.0, 8305.0, 8304.5, 8304.5, 500.0]
    assert got.iloc[2, 1:].tolist() == [8310.0, 8311.0, 8310.0, 8311.0, 3.0]
    assert got.iloc[3, 1:].tolist() == [8309.5] * 4 + [5.0]
    assert_bar_schema(out)
    assert "irregular step" in check_ok(capsys, out)
    with pytest.warns(UserWarning, match="1 irregular step"):  # the loader sees the gap too
        market = bt.load_market(out, instrument=SIMPLE_PERP, funding=0, gaps="warn")
    assert market.n_bars == 4
    two = import_files("bitmex-trades", src, symbol="XBTUSD", interval="2m")
    assert two.iloc[:, 1:].values.tolist() == [[8300.5, 8302.0, 8299.0, 8301.0, 185.0],
                                               [8305.0, 8311.0, 8304.5, 8311.0, 503.0],
                                               [8309.5, 8309.5, 8309.5, 8309.5, 5.0]]
    assert any("0 interval(s)" in n for n in two.attrs["notes"])
    with pytest.raises(DataError, match="only 1 bar"):  # the output must pass validation
        import_files("bitmex-trades", src, symbol="XBTUSD", interval="1h")


def test_bitmex_trades_need_symbol_and_interval(tmp_path, capsys):
    src = write(tmp_path / "t.csv", DAY1, TRADE_HEADER)
    with pytest.raises(DataError, match=r"holds 2 symbols \['XBTUSD', 'ETHUSD'\].*--symbol"):
        import_files("bitmex-trades", src, interval="1m")
    with pytest.raises(DataError, match="Did you mean 'XBTUSD'"):
        import_files("bitmex-trades", src, interval="1m", symbol="XBTUSDT")
    code, _, err = cli(capsys, "data", "import", "bitmex-trades", src, "--symbol", "XBTUSD",
                       "--out", tmp_path / "o.parquet")
    assert code == 2 and "--interval (interval=) is required" in err
    with pytest.raises(ValueError, match="m = minutes"):
        import_files("bitmex-trades", src, symbol="XBTUSD", interval="1 minute")


def test_bitmex_overlapping_trade_files_dedupe_by_match_id_or_fail(tmp_path):
    day = write(tmp_path / "a.csv", DAY1, TRADE_HEADER)
    again = write(tmp_path / "b.csv", DAY1[5:], TRADE_HEADER)
    frame = import_files("bitmex-trades", [day, again], symbol="XBTUSD", interval="1m")
    assert frame["volume"].tolist() == [185.0, 500.0, 3.0, 5.0]
    assert any("5 trade(s) repeated" in n for n in frame.attrs["notes"])
    bad = write(tmp_path / "c.csv", [DAY1[5].replace(",200,", ",201,")], TRADE_HEADER)
    with pytest.raises(DataError, match=r"a\.csv line 7 and .*c\.csv line 2: trade a5"):
        import_files("bitmex-trades", [day, bad], symbol="XBTUSD", interval="1m")


def test_bitmex_funding_csv_and_json_filtered_by_symbol(tmp_path, capsys):
    events = [("2016-05-14T12:00:00.000Z", 0.00375), ("2016-05-14T20:00:00.000Z", -0.0001),
              ("2016-05-15T04:00:00.000Z", 0.0001)]
    rows = [{"timestamp": t, "symbol": s, "fundingInterval": "2000-01-01T08:00:00.000Z",
             "fundingRate": r * k, "fundingRateDaily": 3 * r * k}
            for t, r in events for s, k in (("XBTUSD", 1), ("ETHUSD", 2))]
    js = tmp_path / "funding.json"
    js.write_text(json.dumps(rows))
    csv = tmp_path / "funding.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    out = tmp_path / "xbt_funding.parquet"
    code, text, err = cli(capsys, "data", "import", "bitmex-funding", csv, "--symbol", "XBTUSD",
                          "--out", out)
    assert code == 0, err and "interval 8h" in text
    got = pd.read_parquet(out)
    assert got["rate"].tolist() == [r for _, r in events]
    assert got["timestamp"].iloc[0] == pd.Timestamp("2016-05-14 12:00", tz="UTC")
    pd.testing.assert_frame_equal(import_files("bitmex-funding", js, symbol="XBTUSD"), got)
    eth = import_files("bitmex-funding", js, symbol="ETHUSD")
    assert eth["rate"].tolist() == [2 * r for _, r in events]
    with pytest.raises(DataError, match="holds 2 symbols"):
        import_files("bitmex-funding", js)


# --- freqtrade and generic CSV ------------------------------------------------------------


def test_freqtrade_json_and_feather_agree(tmp_path, capsys):
    rows = [[T0 + i * H, *b] for i, b in enumerate(KLINES)]
    js = tmp_path / "BTC_USDT-1h.json"
    js.write_text(json.dumps(rows))
    df = pd.DataFrame(rows, columns=["date", "open", "high", "low", "close", "volume"])
    df["date"] = pd.to_datetime(df["date"], unit="ms", utc=True)
    fe = tmp_path / "BTC_USDT-1h.feather"
    feather.write_feather(df, fe)
    out = tmp_path / "ft.parquet"
    code, _, err = cli(capsys, "data", "import", "freqtrade", fe, "--out", out)
    assert code == 0, err
    got = pd.read_parquet(out)
    assert got["close"].tolist() == [b[3] for b in KLINES]
    assert got["timestamp"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")
    pd.testing.assert_frame_equal(import_files("freqtrade", js), got)
    bt.load_market(out, instrument=SIMPLE_PERP, funding=0)


def generic(path: Path, times, header="Timestamp,Open,High,Low,Close,Volume,trades") -> Path:
    return write(path, [f"{t},{o},{h},{lo},{c},{v},3" for t, (o, h, lo, c, v)
                        in zip(times, KLINES, strict=True)], header)


def test_csv_units_iso_text_and_case_are_read_and_reported(tmp_path, capsys):
    secs = [T0 // 1000 + 3600 * i for i in range(4)]
    expected = import_files("csv", generic(tmp_path / "s.csv", secs))
    assert expected["open"].tolist() == [b[0] for b in KLINES]
    assert any("epoch seconds (detected" in n for n in expected.attrs["notes"])
    assert any("not imported: trades" in n for n in expected.attrs["notes"])
    iso = generic(tmp_path / "iso.csv", [f"2024-01-01 0{i}:00:00" for i in range(4)])
    got = import_files("csv", iso)
    pd.testing.assert_frame_equal(got, expected)
    assert any("without a zone, read as UTC" in n for n in got.attrs["notes"])
    zoned = generic(tmp_path / "z.csv", [f"2024-01-01T0{i + 1}:00:00+01:00" for i in range(4)])
    pd.testing.assert_frame_equal(import_files("csv", zoned), expected)
    ns = generic(tmp_path / "ns.csv", [s * 10**9 for s in secs], "time,open,high,low,close,"
                 "volume,n")
    out = tmp_path / "csv.parquet"
    code, text, err = cli(capsys, "data", "import", "csv", ns, "--timestamp-column", "time",
                          "--unit", "ns", "--out", out)
    assert code == 0, err and "given with --unit" in text
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)


def test_csv_close_times_are_shifted_by_one_interval_and_said(tmp_path):
    opens = import_files("csv", generic(tmp_path / "o.csv", [T0 + i * H for i in range(4)]))
    for name, closes, said in (("end.csv", [T0 + (i + 1) * H for i in range(4)], "(the median"),
                               ("last_ms.csv", [T0 + (i + 1) * H - 1 for i in range(4)],
                                "adding 1 millisecond")):
        got = import_files("csv", generic(tmp_path / name, closes), timestamp_is="close")
        pd.testing.assert_frame_equal(got, opens)
        note = " ".join(got.attrs["notes"])
        assert "shifted back by one bar interval 1h" in note and said in note


def test_csv_funding_and_missing_columns(tmp_path, capsys):
    fund = write(tmp_path / "f.csv", [f"{T0 + 8 * H * i},{r}" for i, r in
                                      enumerate([0.0001, 0.0002, 0.0001])], "timestamp,rate")
    assert import_files("csv", fund)["rate"].tolist() == [0.0001, 0.0002, 0.0001]
    nodate = generic(tmp_path / "d.csv", range(4), "Date,open,high,low,close,volume,n")
    code, _, err = cli(capsys, "data", "import", "csv", nodate, "--out", tmp_path / "o.parquet")
    assert code == 2 and "missing time column 'timestamp'" in err
    assert "--timestamp-column date" in err
    novol = write(tmp_path / "v.csv", ["2024-01-01 00:00,1,2,1,2,NaN", "2024-01-01 01:00,2,3,1,3,"],
                  "timestamp,open,high,low,close,volume")
    assert import_files("csv", novol)["volume"].isna().all()
    code, text, _ = cli(capsys, "data", "import", "csv", novol, "--out", tmp_path / "v.parquet")
    assert code == 0 and "volume: null" in text
    bad = generic(tmp_path / "c.csv", range(4), "timestamp,open,high,low,close_price,volume,n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['close'\].*'close_price'"):
        import_files("csv", bad)


# --- atomic writes and bad input ----------------------------------------------------------


def test_a_failed_import_leaves_the_existing_file_byte_for_byte(tmp_path, capsys, monkeypatch):
    out = tmp_path / "bars.parquet"
    good = write(tmp_path / "good.csv", kline_rows(KLINES))
    write_parquet(import_files("binance-klines", good), out)
    before = out.read_bytes()
    broken = write(tmp_path / "broken.csv", kline_rows(KLINES)[:2] + ["1704074400000,4"])
    code, _, err = cli(capsys, "data", "import", "binance-klines", good, broken, "--out", out)
    assert code == 2 and "broken.csv: column 'high' has 1 empty" in err
    assert out.read_bytes() == before

    def crash(fd):  # the disk fails after the temporary file was written
        raise OSError("disk full")

    monkeypatch.setattr("backtest.atomic.os.fsync", crash)
    other = write(tmp_path / "other.csv", kline_rows(KLINES[:2]))
    with pytest.raises(OSError, match="disk full"):
        write_parquet(import_files("binance-klines", other), out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_invalid_data_is_reported_not_repaired(tmp_path, capsys):
    rows = kline_rows([(100.0, 99.0, 101.0, 100.0, 1.0), *KLINES[1:]])  # high < low
    src = write(tmp_path / "k.csv", rows)
    code, _, err = cli(capsys, "data", "import", "binance-klines", src, "--out",
                       tmp_path / "o.parquet")
    assert code == 2 and "'high' is below 'low'" in err and "k.csv" in err
    back = write(tmp_path / "back.csv", [rows[1], rows[0], *rows[2:]])
    with pytest.raises(DataError, match=r"back\.csv line 2: column 'timestamp' goes back"):
        import_files("binance-klines", back)
    text = write(tmp_path / "t.csv", [kline_rows(KLINES)[0].replace("42554.57", "n/a"),
                                      *kline_rows(KLINES)[1:]])
    with pytest.raises(DataError, match=r"column 'high' .* line 1: 'n/a'"):
        import_files("binance-klines", text)


def test_bad_format_option_and_file_exit_2(tmp_path, capsys):
    src = write(tmp_path / "k.csv", kline_rows(KLINES))
    out = tmp_path / "o.parquet"
    code, _, err = cli(capsys, "data", "import", "binance-kline", src, "--out", out)
    assert code == 2 and "Did you mean 'binance-klines'?" in err
    code, _, err = cli(capsys, "data", "import", "binance-klines", src, "--interval", "1m",
                       "--out", out)
    assert code == 2 and "--interval (interval=) does not apply" in err
    code, _, err = cli(capsys, "data", "import", "binance-klines", tmp_path, "--out", out)
    assert code == 2 and "is a directory, not a regular file" in err
    code, _, err = cli(capsys, "data", "import", "binance-klines", src, "--out", src)
    assert code == 2 and "is also a source file" in err
    code, _, err = cli(capsys, "data", "import", "csv", src, "--unit", "minutes", "--out", out)
    assert code == 2 and "--unit 'minutes'" in err
    assert not out.exists()


def test_every_format_is_on_the_command_line(capsys):
    assert main(["data", "import", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in FORMATS)
    assert len(FORMATS) == 7


def test_shipped_binance_bars_round_trip_through_kline_csv_monthly_files(tmp_path, capsys):
    """Real data: the shipped Binance 1h bars written as data.binance.vision monthly kline
    CSVs (12 columns, ms, with a header), imported back, equal the original exactly."""
    repo = Path(__file__).parents[1]
    bars = pd.read_parquet(repo / "data" / "binance_btcusdt_perp_1h.parquet")
    bars = bars[(bars.timestamp >= "2024-01-01") & (bars.timestamp < "2024-03-01")]
    bars = bars.reset_index(drop=True)
    sources = []
    for month, part in bars.groupby(bars.timestamp.dt.strftime("%Y-%m")):
        open_ms = part.timestamp.astype("int64") // 10**6
        csv = pd.DataFrame({
            "open_time": open_ms, "open": part.open, "high": part.high, "low": part.low,
            "close": part.close, "volume": part.volume, "close_time": open_ms + 3_599_999,
            "quote_volume": part.volume * part.close, "count": 100, "taker_buy_volume": 0.0,
            "taker_buy_quote_volume": 0.0, "ignore": 0})
        path = tmp_path / f"BTCUSDT-1h-{month}.csv"
        csv.to_csv(path, index=False, float_format="%.17g")
        sources.append(path)
    out = tmp_path / "btc_1h.parquet"
    assert main(["data", "import", "binance-klines", *map(str, sources[::-1]),
                 "--out", str(out)]) == 0
    capsys.readouterr()
    got = pd.read_parquet(out)
    pd.testing.assert_frame_equal(got[["timestamp", "open", "high", "low", "close", "volume"]],
                                  bars[["timestamp", "open", "high", "low", "close", "volume"]],
                                  check_dtype=False)
    m = bt.load_market(out, funding=0, instrument="binance:BTCUSDT")
    assert m.n_bars == len(bars)
