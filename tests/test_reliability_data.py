"""Issue 13, silently wrong results from the data: mark/index prices implausible against the
last prices, holes in the funding history, implausible bar spacing and funding intervals, a
long accepted gap, and the vague messages of the loader (directories, FIFOs, devices,
symlink loops, permissions, Decimal prices, pyarrow-backed timestamps, ``funding="0"``)."""

from __future__ import annotations

import decimal
import os
import warnings

import numpy as np
import pandas as pd
import pytest

import backtest as bt
from backtest.data.market import load_market

H = 3_600 * 10**9
LINEAR = bt.Instrument.simple()


def bars(n=400, start="2024-01-01", freq="1h", seed=1, price=30_000.0):
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC", unit="ns")
    close = price * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate(([price], close[:-1]))
    return pd.DataFrame({"timestamp": ts, "open": open_,
                         "high": np.maximum(open_, close) * 1.002,
                         "low": np.minimum(open_, close) * 0.998, "close": close,
                         "volume": 1.0})


def scaled(frame, factor, rows=None):
    out = frame.drop(columns="volume").copy()
    sel = slice(None) if rows is None else rows
    for c in ("open", "high", "low", "close"):
        out.loc[out.index[sel], c] = out[c].to_numpy()[sel] * factor
    return out


def quiet_load(*args, **kw):
    kw.setdefault("instrument", LINEAR)
    kw.setdefault("funding", 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = load_market(*args, **kw)
    return m, [str(w.message) for w in caught]


def funding(start="2024-01-01", periods=60, freq="8h", rate=0.0001, drop=None):
    ts = pd.date_range(start, periods=periods, freq=freq, tz="UTC", unit="ns")
    f = pd.DataFrame({"timestamp": ts, "rate": rate})
    return f if drop is None else f.drop(index=f.index[drop]).reset_index(drop=True)


# --- mark and index against last ---------------------------------------------------------

@pytest.mark.parametrize("factor", [100.0, 2.0, 0.5, 0.01])
@pytest.mark.parametrize("name", ["mark", "index"])
def test_reference_prices_at_another_scale_are_refused_with_the_numbers(factor, name):
    b = bars()
    with pytest.raises(bt.DataError, match=f"{name} prices are not plausible") as err:
        quiet_load(b, **{name: scaled(b, factor)})
    text = str(err.value)
    assert f"median {factor:.4g}" in text and f"a factor of {factor:.4g}" in text
    assert "Fix: check that the" in text and "same price units" in text


def test_a_partly_rescaled_mark_is_caught_by_the_extreme_quantiles():
    b = bars()
    with pytest.raises(bt.DataError, match="quantiles") as err:
        quiet_load(b, mark=scaled(b, 100.0, rows=slice(390, 400)))   # last 10 rows in cents
    assert "largest departure" in str(err.value) and "row 39" in str(err.value)


def test_a_real_mark_that_differs_by_basis_points_and_a_crash_wick_is_accepted():
    b = bars()
    mark = scaled(b, 1.0004)
    mark.loc[200, ["close", "low"]] = b.loc[200, "close"] * 0.8      # one 20 % dislocation
    m, _ = quiet_load(b, mark=mark)
    assert m.mark_source == "mark"


def test_another_symbols_mark_is_refused():
    b = bars()
    with pytest.raises(bt.DataError, match="mark prices are not plausible"):
        quiet_load(b, mark=scaled(bars(price=2_000.0, seed=2), 1.0))


# --- funding holes -------------------------------------------------------------------------

def test_a_hole_in_the_funding_history_is_an_error_by_default():
    b = bars(n=24 * 20)                                # 20 days of hourly bars
    f = funding(periods=60, drop=slice(20, 35))        # 5 days of events missing
    with pytest.raises(bt.DataError, match="hole") as err:
        quiet_load(b, funding=f)
    text = str(err.value)
    assert "funding DataFrame" in text and "2024-01-07 08:00 -> 2024-01-12 16:00" in text
    assert "about 15 events missing" in text
    assert "funding_gaps='zero'" in text and "start=/end=" in text and "supply" in text


def test_funding_gaps_zero_accepts_explicitly_and_records_an_event():
    b = bars(n=24 * 20)
    f = funding(periods=60, drop=slice(20, 35))
    m, warned = quiet_load(b, funding=f, funding_gaps="zero")
    (ev,) = [e for e in m.events if e["kind"] == "funding_gaps"]
    assert ev["count"] == 1 and "funding_gaps='zero'" in ev["message"]
    assert any("hole" in w for w in warned)
    assert m.funding_count.sum() == 45


def test_a_hole_outside_the_run_and_a_complete_history_are_fine():
    b = bars(n=24 * 5, start="2024-01-10")
    f = funding(periods=60, drop=slice(5, 15))         # hole before the run
    m, _ = quiet_load(b, funding=f)
    assert not [e for e in m.events if e["kind"] == "funding_gaps"]
    m, _ = quiet_load(b, funding=funding(periods=60))
    assert m.has_funding


def test_funding_gaps_policy_is_checked():
    with pytest.raises(ValueError, match="funding_gaps must be one of"):
        quiet_load(bars(), funding_gaps="ignore")


def test_a_monthly_funding_interval_warns():
    b = bars(n=24 * 100)
    f = funding(periods=5, freq="30D")
    m, warned = quiet_load(b, funding=f)
    assert any("funding interval inferred from the data" in w and "30d" in w for w in warned)
    assert [e for e in m.events if e["kind"] == "funding_interval"]


# --- spacing and gaps ----------------------------------------------------------------------

def test_bars_one_nanosecond_apart_warn():
    b = bars(n=50)
    b["timestamp"] = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(50),
                                                                              unit="ns")
    _, warned = quiet_load(b)
    assert any("1ns apart" in w and "wrong unit" in w for w in warned)


def test_a_year_long_gap_accepted_with_gaps_warn_says_what_it_does_to_the_stats():
    b = pd.concat([bars(n=100), bars(n=100, start="2025-01-10", seed=3)], ignore_index=True)
    b["open"] = np.concatenate(([b["close"][0]], b["close"][:-1]))
    b["high"] = np.maximum(b[["open", "close"]].max(axis=1), b["high"])
    b["low"] = np.minimum(b[["open", "close"]].min(axis=1), b["low"])
    _, warned = quiet_load(b, gaps="warn")
    (long_gap,) = [w for w in warned if "accepted gap of" in w]
    assert "CAGR" in long_gap and "start=/end=" in long_gap and "98%" in long_gap


# --- vague messages made precise ------------------------------------------------------------

def test_funding_zero_as_text_says_pass_the_number():
    for text in ("0", "0.0", " 0 "):
        with pytest.raises(ValueError, match="pass the number 0") as err:
            quiet_load(bars(), funding=text)
        assert "funding=0, not funding='0'" in str(err.value)


def test_a_directory_is_not_reported_as_not_found(tmp_path):
    with pytest.raises(bt.DataError, match="is a directory") as err:
        quiet_load(tmp_path)
    assert "Fix: pass the file inside it (a Parquet file)" in str(err.value)


def test_a_fifo_and_a_device_are_named(tmp_path):
    fifo = tmp_path / "pipe.parquet"
    os.mkfifo(fifo)
    with pytest.raises(bt.DataError, match="FIFO") as err:
        quiet_load(fifo)
    assert str(fifo) in str(err.value) and "regular file" in str(err.value)
    with pytest.raises(bt.DataError, match="device"):
        quiet_load("/dev/null")


def test_a_symlink_loop_and_a_dangling_link_are_named(tmp_path):
    loop = tmp_path / "loop.parquet"
    loop.symlink_to(loop)
    with pytest.raises(bt.DataError, match="symbolic link") as err:
        quiet_load(loop)
    assert "loop" in str(err.value)
    dangling = tmp_path / "dangling.parquet"
    dangling.symlink_to(tmp_path / "gone.parquet")
    with pytest.raises(bt.DataError, match="points to .*gone.parquet, which does not exist"):
        quiet_load(dangling)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_permission_denied_is_not_reported_as_not_parquet(tmp_path):
    path = tmp_path / "secret.parquet"
    bars().to_parquet(path)
    path.chmod(0)
    with pytest.raises(bt.DataError, match="permission denied") as err:
        quiet_load(path)
    assert "chmod" in str(err.value)


def test_permission_denied_message_without_root(tmp_path, monkeypatch):
    """Root ignores file modes, so the OSError is injected where pyarrow opens the file."""
    import pyarrow.parquet as pq

    path = tmp_path / "secret.parquet"
    bars().to_parquet(path)

    def deny(*a, **k):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(pq, "read_table", deny)
    with pytest.raises(bt.DataError, match="permission denied") as err:
        quiet_load(path)
    assert str(path) in str(err.value) and "chmod" in str(err.value)
    assert "cannot read as Parquet" not in str(err.value)


def test_decimal_prices_say_decimal_and_how_to_convert():
    b = bars(n=20)
    b["close"] = [decimal.Decimal(str(round(x, 2))) for x in b["close"]]
    with pytest.raises(bt.DataError, match="Decimal") as err:
        quiet_load(b)
    text = str(err.value)
    assert "column 'close'" in text and "astype(float)" in text
    assert "after cleaning" not in text


def test_decimal_prices_from_parquet_are_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    b = bars(n=20)
    table = pa.Table.from_pandas(b, preserve_index=False)
    table = table.set_column(table.schema.get_field_index("close"), "close",
                             pa.array([decimal.Decimal(str(round(x, 2))) for x in b["close"]],
                                      pa.decimal128(12, 2)))
    pq.write_table(table, tmp_path / "dec.parquet")
    with pytest.raises(bt.DataError, match="Decimal"):
        quiet_load(tmp_path / "dec.parquet")


def test_pyarrow_backed_utc_timestamps_are_accepted():
    b = bars(n=30)
    b["timestamp"] = b["timestamp"].astype("timestamp[ns, tz=UTC][pyarrow]")
    m, _ = quiet_load(b)
    assert m.n_bars == 30


def test_pyarrow_backed_naive_timestamps_get_a_fix_that_works():
    b = bars(n=30)
    b["timestamp"] = b["timestamp"].dt.tz_localize(None).astype("timestamp[ns][pyarrow]")
    with pytest.raises(bt.DataError, match="naive") as err:
        quiet_load(b)
    fix = str(err.value).split("Fix: ")[1].split(" if the times")[0]
    assert fix.startswith("df['timestamp'] = ")
    df = b  # the fix, executed as written, makes the frame loadable
    exec(fix, {"df": df, "pd": pd})
    m, _ = quiet_load(df)
    assert m.n_bars == 30


# --- bounded decompression in `data import` ---------------------------------------------------

def test_a_gzip_bomb_is_refused_before_it_fills_the_memory(tmp_path, monkeypatch):
    import gzip

    from backtest.data.importers import _common

    bomb = tmp_path / "klines.csv.gz"
    with gzip.open(bomb, "wb") as fh:          # ~200 MiB of zeros in a few hundred kB
        block = b"0" * 2**20
        for _ in range(200):
            fh.write(block)
    monkeypatch.setattr(_common, "RATIO_FLOOR", 2**20)
    with pytest.raises(bt.DataError, match="decompresses to more than") as err:
        _common.read_bytes(bomb)
    text = str(err.value)
    assert str(bomb) in text and "refused before it fills the memory" in text
    assert "split" in text


def test_a_zip_member_is_streamed_and_bounded(tmp_path):
    import zipfile

    from backtest.data.importers import _common

    z = tmp_path / "k.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("k.csv", "1,2,3\n" * 1000)
    raw, label = _common.read_bytes(z)
    assert raw.count(b"\n") == 1000 and label.endswith("k.zip:k.csv")
    with pytest.raises(bt.DataError, match="decompresses to more than"):
        _common.read_bytes(z, max_expanded=100)


def test_import_cli_on_a_bomb_exits_2(tmp_path, capsys, monkeypatch):
    import gzip

    from backtest.cli.main import main
    from backtest.data.importers import _common

    bomb = tmp_path / "k.csv.gz"
    with gzip.open(bomb, "wb") as fh:
        fh.write(b"1" * 8 * 2**20)
    monkeypatch.setattr(_common, "MAX_EXPANDED_BYTES", 2**20)
    monkeypatch.setattr(_common.read_bytes, "__defaults__", (2**20,))
    code = main(["data", "import", "binance-klines", str(bomb), "--out",
                 str(tmp_path / "o.parquet")])
    err = capsys.readouterr().err
    assert code == 2 and "decompresses to more than" in err and "Traceback" not in err
    assert not (tmp_path / "o.parquet").exists()
