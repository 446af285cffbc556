"""Issue 13, the command line and its files: every OSError exits 2 with one line naming the
path and the fix, Ctrl-C exits 130 with one line, a closed pipe is one line too, and
``backtest run``/``sweep`` write their outputs as a set (all new or all old, no leftovers).
Plus the config's BOM, unreadable file, ``[sweep].max_memory`` and long-window warning."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from test_cli_config import MARKET, cli, write

from backtest.atomic import COMPLETE, write_set
from backtest.cli.failures import describe_os_error

cli_main = sys.modules["backtest.cli.main"]

RUN = MARKET + """
[signals]
rule = "ma_cross"
fast = 12
slow = 48
"""
SWEEP = RUN + """
[params]
leverage = [2, 5]
"""
RUN_FILES = {"stats.csv", "trades.csv", "equity.csv", "equity.png", "report.html"}


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- outputs as a set -----------------------------------------------------------------------

def test_run_writes_its_five_files_as_a_set_and_replaces_an_old_set(tmp_path, capsys):
    cfg = write(tmp_path, RUN)
    out = tmp_path / "out"
    code, _, err = cli(capsys, "run", cfg, "--out", out)
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == RUN_FILES
    first = (out / "stats.csv").read_bytes()
    # leftovers of an interrupted earlier write are cleaned on the next one
    (tmp_path / ".out.backtest-new-zz").mkdir()
    (out / ".trades.csv.abc.tmp").write_text("half")
    code, _, _ = cli(capsys, "run", cfg, "--out", out)
    assert code == 0
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    assert (out / "stats.csv").read_bytes() == first


def test_an_interrupted_set_leaves_the_old_set_whole(tmp_path, monkeypatch):
    out = tmp_path / "set"
    write_set(out, {"a.csv": "old a", "b.csv": "old b"})
    real = os.replace
    calls = []

    def flaky(src, dst):
        if Path(dst) == out and not calls:   # the swap into place: interrupted once, here
            calls.append(dst)
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_set(out, {"a.csv": "new a", "b.csv": "new b"})
    monkeypatch.setattr(os, "replace", real)
    # the old set is back in place, whole: no new file beside an old one
    assert {p.read_text() for p in out.glob("*.csv")} == {"old a", "old b"}
    write_set(out, {"a.csv": "new a", "b.csv": "new b"})
    assert (out / "a.csv").read_text() == "new a" and (out / "b.csv").read_text() == "new b"
    assert not [p for p in tmp_path.rglob("*") if (".backtest-" in p.name and
                p.name != COMPLETE) or p.name.endswith(".tmp")]


def test_a_folder_with_other_files_is_written_file_by_file_with_a_marker(tmp_path):
    out = tmp_path / "mixed"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    write_set(out, {"a.csv": "1", "b.csv": "2"})
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / COMPLETE).read_text().split() == ["a.csv", "b.csv"]
    assert not [p for p in out.iterdir() if p.name.startswith(".backtest-new")]


def test_sweep_writes_stats_and_report_as_a_set(tmp_path, capsys):
    cfg = write(tmp_path, SWEEP)
    out = tmp_path / "sw"
    code, _, err = cli(capsys, "sweep", cfg, "--out", out, "--no-progress")
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"sweep_stats.csv", "report.html"}


# --- OSError, Ctrl-C and pipes ---------------------------------------------------------------

def test_a_read_only_out_folder_exits_2_naming_it(tmp_path, capsys, monkeypatch):
    cfg = write(tmp_path, RUN)
    out = tmp_path / "ro" / "out"

    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(out.parent))

    monkeypatch.setattr("backtest.atomic.tempfile.mkdtemp", refuse)
    code, _, err = cli(capsys, "run", cfg, "--out", out)
    line = one_line(err)
    assert code == 2 and "read-only file system" in line and str(out.parent) in line
    assert "Fix: pass --out on a writable disk" in line


@pytest.mark.parametrize("code_, words", [(errno.ENOSPC, "no space left"),
                                          (errno.EACCES, "permission denied"),
                                          (errno.EDQUOT, "disk quota")])
def test_full_disk_and_permission_errors_while_writing_exit_2(tmp_path, capsys, monkeypatch,
                                                              code_, words):
    cfg = write(tmp_path, RUN)
    out = tmp_path / "full"

    def fail(path, data):
        raise OSError(code_, os.strerror(code_), str(path))

    monkeypatch.setattr("backtest.atomic.write_atomic", fail)
    code, _, err = cli(capsys, "run", cfg, "--out", out)
    line = one_line(err)
    assert code == 2 and words in line and str(out) in line and "Fix:" in line
    assert not out.exists()   # nothing half-written
    assert not [p for p in tmp_path.iterdir() if ".backtest-" in p.name]


def test_out_that_is_a_file_and_import_out_that_is_a_directory_exit_2(tmp_path, capsys):
    cfg = write(tmp_path, RUN)
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = cli(capsys, "run", cfg, "--out", afile)
    assert code == 2 and "is a file" in one_line(err) and "Fix:" in err
    src = tmp_path / "k.csv"
    src.write_text("open_time,open,high,low,close,volume\n")
    code, _, err = cli(capsys, "data", "import", "binance-klines", src, "--out", tmp_path)
    assert code == 2 and "Traceback" not in err


def test_an_unreadable_config_exits_2_with_the_fix(tmp_path, capsys, monkeypatch):
    cfg = write(tmp_path, RUN)
    real = Path.read_bytes

    def deny(self):
        if self == cfg:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    code, _, err = cli(capsys, "run", cfg)
    line = one_line(err)
    assert code == 2 and str(cfg) in line and "cannot read the config" in line
    assert "chmod" in line


def test_any_os_error_from_a_command_is_one_line_exit_2(capsys, monkeypatch):
    def boom(args):
        raise OSError(errno.EIO, "Input/output error", "/mnt/disk/x.parquet")

    monkeypatch.setattr(cli_main, "_cmd_demo", boom)
    code, _, err = cli(capsys, "demo")
    line = one_line(err)
    assert code == 2 and "/mnt/disk/x.parquet" in line and "Fix:" in line


def test_ctrl_c_exits_130_with_one_line(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "_cmd_demo", interrupted)
    code, _, err = cli(capsys, "demo")
    assert code == 130 and "interrupted" in one_line(err)


def test_a_closed_pipe_is_one_line_not_a_traceback(tmp_path):
    """``backtest calc ... | head -c 10``: the reader goes away before the output ends."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = (f"{sys.executable} -c 'import sys; from backtest.cli.main import main; "
           "[main([\"calc\", \"funding\", \"--rate\", \"0.0001\"]) for _ in range(3000)]' "
           "| head -c 10 >/dev/null")
    done = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True,
                          timeout=120)
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr or "pipe closed" in done.stderr


def test_describe_os_error_names_path_and_fix():
    text = describe_os_error(OSError(errno.ENOTDIR, "Not a directory", "/a/file/x"))
    assert "/a/file/x" in text and "Fix: choose another path" in text
    text = describe_os_error(OSError(12345, "Strange"))
    assert "Strange" in text and "Fix:" in text


# --- the config file ------------------------------------------------------------------------

def test_an_out_folder_the_os_will_not_create_is_not_called_missing(tmp_path, monkeypatch):
    import argparse
    # mkdir under /proc (or any folder that takes no new entries) fails with ENOENT although
    # the parent exists: say that, not "not found"
    args = argparse.Namespace(out="/proc/backtest-out")
    msg = describe_os_error(FileNotFoundError(errno.ENOENT, "x", "/proc/backtest-out"), args)
    assert "cannot be created" in msg and "/proc/backtest-out" in msg and "Fix:" in msg
    # a file being read that is missing stays "not found", with the folder reads start in
    monkeypatch.chdir(tmp_path)
    missing = str(tmp_path / "missing.parquet")
    msg = describe_os_error(FileNotFoundError(errno.ENOENT, "x", missing), args)
    assert f"not found: {missing}" in msg and str(tmp_path) in msg


def test_a_utf8_bom_in_the_config_is_accepted(tmp_path, capsys):
    cfg = tmp_path / "bom.toml"
    cfg.write_bytes(b"\xef\xbb\xbf" + RUN.encode())
    code, _, err = cli(capsys, "run", cfg, "--out", tmp_path / "o")
    assert code == 0, err


def test_a_utf16_config_says_save_as_utf8(tmp_path, capsys):
    cfg = tmp_path / "u16.toml"
    cfg.write_bytes(RUN.encode("utf-16"))
    code, _, err = cli(capsys, "run", cfg)
    assert code == 2 and "UTF-16" in one_line(err) and "save it as UTF-8" in err


def test_sweep_max_memory_in_toml(tmp_path, capsys):
    cfg = write(tmp_path, SWEEP + '\n[sweep]\nmax_memory = "100B"\n')
    code, _, err = cli(capsys, "sweep", cfg, "--no-progress", "--out", tmp_path / "m")
    assert code == 2 and "max_memory budget of 100B" in one_line(err)
    cfg = write(tmp_path, SWEEP + '\n[sweep]\nmax_memory = "lots"\n', "bad.toml")
    code, _, err = cli(capsys, "sweep", cfg)
    assert code == 2 and "[sweep].max_memory" in err and "8GB" in err
    cfg = write(tmp_path, RUN + '\n[sweep]\nmax_memory = "1GB"\n', "run.toml")
    code, _, err = cli(capsys, "run", cfg)
    assert code == 2 and "[sweep]" in err and "backtest sweep" in err


def test_a_window_longer_than_the_data_warns(tmp_path, capsys):
    cfg = write(tmp_path, RUN.replace("slow = 48", "slow = 5000"))
    code, _, err = cli(capsys, "run", cfg, "--out", tmp_path / "w")
    assert code == 0
    assert "[signals].slow = 5000 bars is not shorter than the data" in err
    assert "no trades" in err


def test_out_through_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    written = write_set(link, {"a.csv": "1"})
    assert link.is_symlink() and (real / "a.csv").read_text() == "1"
    assert written == [link / "a.csv"]


def test_too_many_signal_sets_in_a_sweep_config_are_refused_before_building(tmp_path,
                                                                           capsys):
    text = SWEEP.replace("fast = 12", "fast = [" + ", ".join(map(str, range(2, 400))) + "]")
    text = text.replace("slow = 48", "slow = [" + ", ".join(map(str, range(400, 800))) + "]")
    cfg = write(tmp_path, text + '\n[sweep]\nmax_memory = "100MB"\n')
    code, _, err = cli(capsys, "sweep", cfg, "--no-progress", "--out", tmp_path / "s")
    line = one_line(err)
    assert code == 2 and "signal sets" in line and "[signals]" in line and "Fix:" in line
