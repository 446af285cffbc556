"""The benchmark's two reference kernels (``benchmarks/reference_kernel.py``) implement the
same rules in the same arithmetic order: the fast one must reproduce the plain loop bit for
bit, whatever the split of rows into blocks, and the data must exercise every rule."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reference_kernel import (  # noqa: E402
    plain_reference_sweep,
    reference_inputs,
    reference_sweep,
)


def _inputs():
    from benchmarks.bench_sweep import grid, signal_sets_periods, synthetic_market

    market = synthetic_market(30_000, seed=11)
    return reference_inputs(market, signal_sets_periods(market, 10, 60),
                            grid(market.instrument.max_leverage))


def test_fast_reference_equals_the_plain_loop():
    md, signals, rows = _inputs()
    plain = np.empty((rows.shape[0], 3))
    plain_reference_sweep(md, signals, rows, plain, 0, rows.shape[0])
    for bounds in ((0, rows.shape[0]), (0, 100, 300, rows.shape[0])):
        fast = np.full_like(plain, np.nan)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            reference_sweep(md, signals, rows, fast, lo, hi)
        np.testing.assert_array_equal(fast, plain)
    # the rules were exercised: liquidations (equity ~0), stops and funding bars
    assert (plain[:, 0] < 1.0).sum() > 10
    assert (plain[:, 0] > 1.0).sum() > 10
    assert np.isfinite(md[:, 7]).sum() >= 60
