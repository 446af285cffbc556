"""The CI speed guard fails only on a large regression of a ratio."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import check_regression as guard  # noqa: E402


def test_passes_within_the_factor_and_fails_beyond(tmp_path):
    recorded = guard.RECORDED["ratio_to_reference"]
    assert 2.0 <= guard.FACTOR <= 4.0      # loose enough for noise, tight enough to matter
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"ratio_to_reference": recorded * (guard.FACTOR - 0.1)}))
    assert guard.main([str(ok)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"ratio_to_reference": recorded * (guard.FACTOR + 0.1)}))
    assert guard.main([str(bad)]) == 1
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"bars": 1}))
    assert guard.main([str(missing)]) == 1
