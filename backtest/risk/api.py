"""``leverage_risk``: one market, many leverages, every start date (or resampled paths).

validate -> the parameter rows (``sweeps.grid.Plan``, the sweep's own validation and
encoding) x the sides -> the window plan or the bootstrap paths -> the columns kernel
(``engine``) -> :class:`RiskResult`. Definitions: ``docs/leverage_risk.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from backtest.checks import user_stacklevel
from backtest.kernels import records as R
from backtest.risk import bootstrap as B
from backtest.risk.engine import run_paths, run_rolling
from backtest.risk.result import RiskResult
from backtest.risk.windows import horizon_ns, plan_windows
from backtest.simulation.arrays import (
    check_market,
    instrument_arrays,
    market_arrays,
    signal_mask,
)
from backtest.simulation.params import SIGNAL_NAMES, prepare_signal
from backtest.sweeps.grid import MARKET_PARAMS, Plan, expand

WHERE = "leverage_risk()"
DEFAULT_LEVERAGE = (1, 2, 3, 5, 10, 20, 50, 100)
METHODS = ("rolling", "bootstrap")
SIDES = ("long", "short")


def leverage_risk(market: Any, leverage: Any = DEFAULT_LEVERAGE, horizon: Any = "30D",
                  starts: Any = None, entries: Any = None, exits: Any = None,
                  short_entries: Any = None, short_exits: Any = None, *,
                  signals: Callable[[Any], Mapping[str, Any]] | None = None,
                  side: str | list[str] | None = None, method: str = "rolling",
                  n_paths: int = 1000, block: Any = "1D", bootstrap: str = "stationary",
                  seed: int | None = None, threads: int | None = None,
                  **params: Any) -> RiskResult:
    """The distribution of liquidation, ruin, drawdown and growth by leverage (and by any
    other list-valued parameter), over every start date or over resampled paths.

    Parameters
    ----------
    market : Market
        From ``bt.load_market`` (a perpetual or spot margin; not a dated future).
    leverage : number or list of numbers
        One table row per leverage (times the other list-valued parameters and sides).
    horizon : str or Timedelta
        Window length, e.g. ``"30D"``: a window holds the bars opening in
        ``[start, start + horizon)``.
    starts : None, int, duration or list of times
        Rolling only. ``None``: every bar; ``k``: every k-th bar; ``"1D"``: one a day; a list
        of times: the first bar at or after each. Windows cut by the end of the data are
        simulated and censored in :meth:`RiskResult.survival`, not counted in the table.
    entries, exits, short_entries, short_exits : bool Series/arrays on market.index
        Rolling only: a strategy run inside each window (the window's slice of them).
    signals : callable, optional
        ``market -> {"entries": ..., "exits": ..., ...}``: recomputed on every bootstrap
        path (and, rolling, evaluated once on the whole market, then sliced).
    side : "long", "short" or a list of both
        Without signals, each window holds one position of this side opened at its start:
        an entry signal on the window's first bar, filled by the ``fill`` rule (default at
        the second bar's open). With signals the signals decide the side; leave it None.
    method : "rolling" or "bootstrap"
    n_paths, block, bootstrap, seed
        Bootstrap: number of paths, mean block length (a duration or bars), ``"stationary"``
        or ``"moving"`` blocks, and the seed (None draws one; it is kept in the result).
    threads : int, optional
        Threads (default: Numba's thread count).
    **params
        Any ``run()`` parameter (stop_loss, margin_mode, size, initial_capital, fees, ...);
        a list sweeps it. ``size`` defaults to 1.0: the whole wallet backs the position.

    Returns
    -------
    RiskResult
        ``.table`` (one row per combination), ``.survival()``, ``.windows``, ``.plot()``,
        ``.report(path)``.
    """
    _check_market(market)
    if method not in METHODS:
        raise ValueError(f"{WHERE}: method={method!r} is not one of {METHODS}.")
    fixed = (entries, exits, short_entries, short_exits)
    has_fixed = any(s is not None for s in fixed)
    if signals is not None and (has_fixed or not callable(signals)):
        raise TypeError(f"{WHERE}: signals= takes a function market -> dict of signals, "
                        "used instead of entries/exits; pass one or the other.")
    if method == "bootstrap" and has_fixed:
        raise ValueError(f"{WHERE}: fixed signal arrays cannot be used with "
                         "method='bootstrap': they belong to the historical bars, and a "
                         "resampled path has other prices at other times, so they would "
                         "trade on information the path does not contain. Pass "
                         "signals=lambda m: {'entries': ..., 'exits': ...} built from the "
                         "market m; it is recomputed on every path.")
    hold_mode = not has_fixed and signals is None
    sides, side_level = _sides(side, hold_mode)
    plan, names, values, codes, scalars = _plan(market, leverage, params)
    rows = plan.rows(0, plan.n_grid)
    params_rows = np.ascontiguousarray(np.tile(rows, (len(sides), 1)))
    side_codes = {"long": R.SIG_ENTRY, "short": R.SIG_SHORT_ENTRY}
    hold = np.repeat(np.array([side_codes[s] if hold_mode else 0 for s in sides],
                              dtype=np.uint8), plan.n_grid)
    levels = ([("side", list(sides))] if side_level else []) + \
        [(n, list(values[n])) for n in names]
    level_codes = np.hstack([np.repeat(np.arange(len(sides)), plan.n_grid)[:, None],
                             np.tile(codes, (len(sides), 1))]) if side_level else codes
    md = market_arrays(market, plan.base["borrow_rate"])
    inst, tiers = instrument_arrays(market.instrument)
    common = dict(market=market, levels=levels, level_codes=level_codes, scalars=scalars,
                  params=params_rows, hold=hold, sides=sides, hold_mode=hold_mode,
                  signals=signals if signals is not None else (fixed if has_fixed else None))
    if method == "rolling":
        wplan = plan_windows(market, horizon, starts, WHERE)
        mask = _fixed_mask(market, fixed, signals) if not hold_mode else \
            np.zeros((1, 1), dtype=np.uint8)
        out = run_rolling(params_rows, hold, md, inst, tiers, mask, float(market.bar_ns),
                          wplan.starts, wplan.ends, threads)
        return RiskResult(**common, method="rolling", out=out, horizon_ns=wplan.horizon_ns,
                          starts=wplan.starts, ends=wplan.ends, complete=wplan.complete)
    if starts is not None:
        raise ValueError(f"{WHERE}: starts= applies to method='rolling'; bootstrap paths all "
                         "start after the data's last bar. Remove starts.")
    return _bootstrap(market, horizon, n_paths, block, bootstrap, seed, threads, hold_mode,
                      signals, params_rows, hold, md, inst, tiers, common)


def _check_market(market: Any) -> None:
    if isinstance(market, Mapping):
        raise ValueError(f"{WHERE}: several markets (a portfolio) are not supported; pass "
                         "one Market.")
    check_market(market, WHERE, min_bars=3)
    if market.instrument.kind == "future":
        raise ValueError(f"{WHERE}: {market.instrument.symbol} is a dated future; each window "
                         "would need its own expiry and settlement. Use the perpetual, or "
                         "bt.run/bt.sweep on the future.")


def _sides(side: Any, hold_mode: bool) -> tuple[list[str], bool]:
    if not hold_mode:
        if side is not None:
            raise ValueError(f"{WHERE}: side={side!r} applies when no signals are given (one "
                             "position held from each window's start); with signals the "
                             "signals decide the side (short_entries for shorts). Remove side.")
        return ["long"], False
    if side is None:
        return ["long"], False
    listed = isinstance(side, (list, tuple))
    sides = list(side) if listed else [side]
    bad = [s for s in sides if s not in SIDES]
    if bad or not sides or len(set(sides)) != len(sides):
        raise ValueError(f"{WHERE}: side must be 'long', 'short' or a list of distinct ones, "
                         f"got {side!r}.")
    return sides, listed


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{WHERE}: {name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


def _signal_dict(market: Any, signals: Callable[[Any], Mapping[str, Any]]) -> dict[str, Any]:
    got = signals(market)
    if not isinstance(got, Mapping) or not set(got) <= set(SIGNAL_NAMES) or not got:
        raise TypeError(f"{WHERE}: the signals function must return a dict with keys among "
                        f"{SIGNAL_NAMES}, got {type(got).__name__}"
                        f"{'' if not isinstance(got, Mapping) else ' ' + str(list(got))}.")
    return dict(got)


def _fixed_mask(market: Any, fixed: tuple, signals: Any) -> np.ndarray:
    if signals is not None:
        got = _signal_dict(market, signals)
        fixed = tuple(got.get(n) for n in SIGNAL_NAMES)
    cols = [prepare_signal(n, s, market.index) for n, s in zip(SIGNAL_NAMES, fixed, strict=True)]
    return signal_mask(*cols)


def _path_signals(market: Any, signals: Callable, src: np.ndarray,
                  scale: np.ndarray) -> np.ndarray:
    """uint8[horizon, n_paths]: the signals function on every path's Market."""
    out = np.empty((src.shape[1], src.shape[0]), dtype=np.uint8)
    for p in range(src.shape[0]):
        path = B.path_market(market, src[p], scale[p])
        got = _signal_dict(path, signals)
        cols = [prepare_signal(n, got.get(n), path.index) for n in SIGNAL_NAMES]
        out[:, p] = signal_mask(*cols)[:, 0]
    return np.ascontiguousarray(out)


def _plan(market: Any, leverage: Any, params: dict[str, Any]) -> tuple:
    """The grid (leverage x list-valued run parameters) validated and encoded by the sweep's
    own ``Plan``; warnings re-worded for ``leverage_risk()``."""
    lev_list = list(leverage) if isinstance(leverage, (list, tuple, np.ndarray, range)) \
        else [leverage]
    grid = {"leverage": lev_list, **params}
    grid.setdefault("size", 1.0)
    names, values, codes = expand(grid)
    swept_market = [k for k in MARKET_PARAMS if k in values]
    if swept_market:
        raise ValueError(f"{WHERE}: {swept_market} cannot be lists (they shape the market "
                         "arrays); pass one value.")
    scalars = {k: v for k, v in grid.items() if k not in values}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            plan = Plan(market.instrument, scalars, names, values, codes, n_sets=1)
        except (TypeError, ValueError) as exc:
            raise type(exc)(str(exc).replace("sweep():", f"{WHERE}:", 1)) from None
    for w in caught:   # the sweep's validation speaks of sweep(); this is leverage_risk()
        warnings.warn(str(w.message).replace("sweep():", f"{WHERE}:", 1), w.category,
                      stacklevel=user_stacklevel())
    return plan, names, values, codes, scalars


def _bootstrap(market: Any, horizon: Any, n_paths: Any, block: Any, bootstrap: str, seed: Any,
               threads: Any, hold_mode: bool, signals: Any, params_rows: np.ndarray,
               hold: np.ndarray, md: np.ndarray, inst: np.ndarray, tiers: np.ndarray,
               common: dict[str, Any]) -> RiskResult:
    """``method="bootstrap"``: resample the paths, run every path x combination column."""
    n_paths = _positive_int("n_paths", n_paths)
    h_ns = horizon_ns(horizon, market.bar_ns, WHERE)
    n_h = int(-(-h_ns // market.bar_ns))
    blk = B.block_bars(block, market.bar_ns, market.n_bars)
    if bootstrap not in B.METHODS:
        raise ValueError(f"{WHERE}: bootstrap={bootstrap!r} is not one of {B.METHODS}.")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    seed = _positive_int("seed", seed, minimum=0)
    src, scale = B.resample(market.close, n_paths, n_h, blk, bootstrap, seed)
    mask = np.zeros((1, 1), dtype=np.uint8) if hold_mode else \
        _path_signals(market, signals, src, scale)
    out = run_paths(params_rows, hold, md, inst, tiers, mask, float(market.bar_ns), src, scale,
                    B.path_hours(market, n_h), threads)
    return RiskResult(**common, method="bootstrap", out=out, horizon_ns=h_ns,
                      starts=np.zeros(n_paths, dtype=np.int64),
                      ends=np.full(n_paths, n_h - 1, dtype=np.int64),
                      complete=np.ones(n_paths, dtype=bool),
                      bootstrap={"n_paths": n_paths, "block_bars": blk, "method": bootstrap,
                                 "seed": seed, "src": src, "scale": scale})

