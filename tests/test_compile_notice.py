"""The one-line "compiling kernels" notice: printed once, only before a real compile."""

from __future__ import annotations

from types import SimpleNamespace

from backtest.simulation import compile_notice as cn


def _kernel(tmp_path, cached: bool, compiled: bool = False):
    index = tmp_path / "k.nbi"
    if cached:
        index.write_text("")
    cache = SimpleNamespace(_cache_file=SimpleNamespace(_index_path=str(index)))
    return SimpleNamespace(_cache=cache, signatures=["sig"] if compiled else [])


def test_prints_once_only_when_a_kernel_will_compile(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cn, "_shown", False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    warm = _kernel(tmp_path / "a", cached=True)
    cold = _kernel(tmp_path / "b", cached=False)
    in_memory = _kernel(tmp_path / "b", cached=False, compiled=True)
    assert not cn.notify_compiling(warm, in_memory)
    assert capsys.readouterr().err == ""
    assert cn.notify_compiling(warm, cold, seconds=9.6)
    assert capsys.readouterr().err == "compiling kernels (first run only, ~10 s)\n"
    assert not cn.notify_compiling(cold)          # once per process
    assert capsys.readouterr().err == ""


def test_a_real_dispatcher_is_understood():
    from backtest.kernels.simulate import simulate

    # Either compiled already in this test process or found in (or absent from) the cache:
    # the check runs without error and gives a bool.
    assert isinstance(cn.will_compile(simulate), bool)
