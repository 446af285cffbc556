"""Signal helpers: hand-checked crossings and no look-ahead (a signal on bar t uses data up
to close[t] only, so changing later prices never changes it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.simulation.signals import breakout, buy_and_hold, crossover, crossunder, ma_cross


def _index(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")


def _walk(rng: np.random.Generator, n: int) -> pd.Series:
    return pd.Series(100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), index=_index(n))


def test_crossover_and_crossunder_hand_example() -> None:
    idx = _index(6)
    fast = pd.Series([1.0, 2.0, 3.0, 2.0, 1.0, 2.0], index=idx)
    slow = pd.Series(1.5, index=idx)
    assert crossover(fast, slow).tolist() == [False, True, False, False, False, True]
    assert crossunder(fast, slow).tolist() == [False, False, False, False, True, False]
    # A constant level works the same as a constant Series.
    assert crossover(fast, 1.5).equals(crossover(fast, slow))
    out = crossover(fast, slow)
    assert out.dtype == bool and out.index.equals(idx)


def test_touch_then_cross_counts_once_and_nan_is_false() -> None:
    idx = _index(5)
    fast = pd.Series([np.nan, 1.0, 2.0, 3.0, 3.0], index=idx)
    slow = pd.Series([1.0, 2.0, 2.0, 2.0, 2.0], index=idx)
    # Bar 2 only touches (2 == 2); bar 3 crosses from "<=" to ">"; NaN bars are False.
    assert crossover(fast, slow).tolist() == [False, False, False, True, False]
    assert not crossunder(fast, slow).any()


def test_ma_cross_matches_rolling_means() -> None:
    idx = _index(8)
    close = pd.Series([5.0, 4.0, 3.0, 2.0, 6.0, 9.0, 1.0, 1.0], index=idx)
    entries, exits = ma_cross(close, fast=1, slow=3)
    slow = close.rolling(3).mean()
    # fast (= close) vs 3-bar mean: first defined at bar 2; a cross needs bar 3 at least.
    expected_up = (close > slow) & (close.shift() <= slow.shift())
    expected_down = (close < slow) & (close.shift() >= slow.shift())
    assert entries.tolist() == expected_up.fillna(False).tolist()
    assert exits.tolist() == expected_down.fillna(False).tolist()
    assert entries.tolist() == [False, False, False, False, True, False, False, False]
    assert exits.tolist() == [False, False, False, False, False, False, True, False]


def test_breakout_excludes_the_current_bar() -> None:
    idx = _index(6)
    close = pd.Series([10.0, 11.0, 12.0, 12.0, 9.0, 13.0], index=idx)
    up, down = breakout(close, window=2)
    # Channel of the 2 bars before t: bar 2 (12 > max(10, 11)), bar 5 (13 > max(12, 9)).
    assert up.tolist() == [False, False, True, False, False, True]
    assert down.tolist() == [False, False, False, False, True, False]
    high, low = close + 0.5, close - 0.5
    up_hl, _ = breakout(close, window=2, high=high, low=low)
    assert up_hl.tolist() == [False, False, True, False, False, True]


def test_buy_and_hold_enters_on_the_first_bar_only() -> None:
    idx = _index(4)
    s = buy_and_hold(idx)
    assert s.tolist() == [True, False, False, False] and s.index.equals(idx)
    assert buy_and_hold(pd.Series(1.0, index=idx)).equals(s)


@pytest.mark.parametrize("cut", [0, 1, 30, 170, 171, 250, 398])
def test_changing_future_prices_never_changes_past_signals(cut: int,
                                                           rng: np.random.Generator) -> None:
    n = 400
    close = _walk(rng, n)
    high, low = close * 1.01, close * 0.99
    changed = close.copy()
    changed.iloc[cut + 1:] = rng.uniform(1.0, 1_000.0, n - cut - 1)
    h2, l2 = changed * 1.02, changed * 0.97
    h2.iloc[: cut + 1], l2.iloc[: cut + 1] = high.iloc[: cut + 1], low.iloc[: cut + 1]
    fast_a, slow_a = close.rolling(5).mean(), close.rolling(20).mean()
    fast_b, slow_b = changed.rolling(5).mean(), changed.rolling(20).mean()
    pairs = [
        (crossover(fast_a, slow_a), crossover(fast_b, slow_b)),
        (crossunder(fast_a, slow_a), crossunder(fast_b, slow_b)),
        *zip(ma_cross(close, 24, 168), ma_cross(changed, 24, 168), strict=True),
        *zip(breakout(close, 20, high=high, low=low), breakout(changed, 20, high=h2, low=l2),
             strict=True),
    ]
    for before, after in pairs:
        assert before.iloc[: cut + 1].equals(after.iloc[: cut + 1])


def test_first_bars_are_false_while_history_is_short(rng: np.random.Generator) -> None:
    close = _walk(rng, 300)
    entries, exits = ma_cross(close, 24, 168)
    assert not entries.iloc[:168].any() and not exits.iloc[:168].any()
    up, down = breakout(close, 20)
    assert not up.iloc[:20].any() and not down.iloc[:20].any()


def test_bad_arguments_are_refused_with_a_message() -> None:
    a = pd.Series([1.0, 2.0], index=_index(2))
    b = pd.Series([1.0, 2.0], index=_index(3)[1:])
    with pytest.raises(ValueError, match="same index|share one index"):
        crossover(a, b)
    with pytest.raises(TypeError, match="pandas Series"):
        crossover([1.0, 2.0], a)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shorter"):
        ma_cross(a, fast=10, slow=5)
    with pytest.raises(ValueError, match="positive number of bars"):
        breakout(a, window=0)
    with pytest.raises(TypeError, match="market index"):
        buy_and_hold([1, 2])  # type: ignore[arg-type]
