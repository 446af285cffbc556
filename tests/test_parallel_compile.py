"""A cold run() compiles its kernel on two cores (simulation.parallel_compile): the parts'
signatures are the ones the run uses, the child's half is loaded rather than compiled
here, and a failing child changes nothing but the time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backtest.simulation import parallel_compile as pc

# Runs in a fresh process with an empty Numba cache: which functions this process compiled
# (Numba's compile events), and how many signatures each part's function has after a run.
SCRIPT = textwrap.dedent("""
    import json, sys
    from numba.core import event
    compiled = []
    class Recorder(event.Listener):
        def on_start(self, e):
            pass
        def on_end(self, e):
            compiled.append(e.data["dispatcher"].py_func.__name__)
    event.register("numba:compile", Recorder())
    import numpy as np, pandas as pd
    import backtest as bt
    from backtest.kernels.simulate import simulate
    from backtest.kernels.warmup import PARTS
    from backtest.simulation.parallel_compile import two_core_compile
    idx = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    c = 100 + np.cumsum(np.random.default_rng(1).normal(0, 1, 300))
    bars = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c}, index=idx)
    m = bt.load_market(bars, funding=0, instrument=bt.Instrument.simple())
    e = np.zeros(300, bool); e[::25] = True
    used_child = two_core_compile(simulate)
    r = bt.run(m, entries=e, leverage=5, stop_loss=0.02)
    counts = {d.py_func.__name__: len(d.signatures)
              for d, _ in [*PARTS["entries"], *PARTS["exits"], (simulate, None)]}
    print(json.dumps({"used_child": used_child, "compiled": compiled, "counts": counts,
                      "final_equity": float(r.stats["final_equity"])}))
""")


def _run(tmp_path: Path, **env: str) -> dict:
    cache = tmp_path / f"cache{len(list(tmp_path.iterdir()))}"
    full = {**os.environ, "NUMBA_CACHE_DIR": str(cache), **env}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=full, capture_output=True,
                          text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs the JIT")
@pytest.mark.skipif(pc.usable_cpus() < 2, reason="the parallel compile needs 2 CPUs")
def test_the_child_compiles_its_half_and_the_run_uses_the_parts_signatures(tmp_path):
    two = _run(tmp_path)
    assert two["used_child"] is True
    # every part function has exactly the one signature the run called it with
    assert set(two["counts"].values()) == {1}, two["counts"]
    # the child's half was loaded from the cache here, not compiled; ours was compiled
    assert "process_signals" not in two["compiled"]
    assert "check_entry_limit" not in two["compiled"]
    assert {"run_legs", "settle_funding", "step_bar", "simulate"} <= set(two["compiled"])
    one = _run(tmp_path, BACKTEST_PARALLEL_COMPILE="0")
    assert one["used_child"] is False
    assert "process_signals" in one["compiled"]
    assert one["final_equity"] == two["final_equity"]


class _Dispatcher:
    """Stands in for a cold Numba dispatcher."""

    signatures: list = []

    def compile(self, argument_types) -> None:
        raise AssertionError("not called directly")


def _fake_parts(monkeypatch, start_child) -> list[str]:
    log: list[str] = []
    monkeypatch.setattr(pc, "wanted", lambda kernel: True)
    monkeypatch.setattr(pc, "start_child", start_child)
    from backtest.kernels import warmup
    monkeypatch.setattr(warmup, "compile_part", lambda name: log.append(name))
    return log


def test_a_failing_child_changes_nothing_but_the_time(monkeypatch):
    log = _fake_parts(monkeypatch, lambda part: subprocess.Popen(
        [sys.executable, "-c", "raise SystemExit(3)"]))
    assert pc.two_core_compile(_Dispatcher()) is False
    log.append("kernel call")             # compiles whatever the child did not cache
    assert log == ["exits", "kernel call"]


def test_a_child_that_cannot_start_changes_nothing_but_the_time(monkeypatch):
    log = _fake_parts(monkeypatch, lambda part: None)
    assert pc.two_core_compile(_Dispatcher()) is False
    log.append("kernel call")
    assert log == ["exits", "kernel call"]


def test_a_slow_child_is_not_waited_for_and_is_stopped(monkeypatch):
    children: list[subprocess.Popen] = []

    def slow(part):
        children.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        return children[-1]

    log = _fake_parts(monkeypatch, slow)
    monkeypatch.setattr(pc, "MIN_WAIT_S", 0.2)
    assert pc.two_core_compile(_Dispatcher()) is False
    assert children[0].poll() is not None     # not waited for: stopped, not left running
    assert log == ["exits"]


def test_it_stays_off_when_asked_or_when_the_jit_is_off(monkeypatch):
    monkeypatch.setenv("BACKTEST_PARALLEL_COMPILE", "0")
    assert not pc.wanted(_Dispatcher())
    monkeypatch.delenv("BACKTEST_PARALLEL_COMPILE")
    assert not pc.wanted(lambda: None)          # NUMBA_DISABLE_JIT: a plain function
