"""Running a TOML configuration: market, signals and parameters into ``run``/``sweep``.

The schema and its checks live in :mod:`backtest.cli.schema` (re-exported here:
``read_config``, ``Config``, ``ConfigError``). Errors name the config file; data problems
stay ``DataError``. Imports the market, params, signals, run and sweep modules; nothing here
writes files (that is ``backtest.cli.main``).
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.cli.schema import Config, ConfigError, _hint, _Where, read_config
from backtest.errors import DataError
from backtest.simulation.params import SIGNAL_NAMES, validate_params

__all__ = ["Config", "ConfigError", "config_signals", "load_config_market", "read_config",
           "run_config", "sweep_config"]



def load_config_market(cfg: Config) -> Any:
    """``bt.load_market`` with the ``[market]`` keywords; errors name the config file."""
    from backtest.data.market import load_market

    try:
        return load_market(**cfg.market)
    except DataError as exc:
        raise DataError(f"{cfg.path}: [market]: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{cfg.path}: [market]: {exc}") from None


def _rule(market: Any, rule: str, fast: int = 24, slow: int = 168, window: int = 20,
          side: str = "long") -> dict[str, pd.Series]:
    from backtest.simulation.signals import breakout, buy_and_hold, ma_cross

    if rule == "buy_and_hold":
        entry = buy_and_hold(market.index)
        return {"entries": entry} if side == "long" else {"short_entries": entry}
    bars = market.bars
    up, down = (ma_cross(bars["close"], fast, slow) if rule == "ma_cross"
                else breakout(bars["close"], window, bars["high"], bars["low"]))
    return {"long": {"entries": up, "exits": down},
            "short": {"short_entries": down, "short_exits": up},
            "both": {"entries": up, "short_entries": down}}[side]


def config_signals(cfg: Config, market: Any) -> dict[str, Any]:
    """The signal keywords of ``run()``/``sweep()``: one series each, or (a sweep over
    signal options) dicts of named signal sets, ``"fast=12,slow=168"`` -> series."""
    spec = dict(cfg.signals)
    if "file" in spec:
        return _signal_file(cfg, spec["file"], market)
    rule = spec.pop("rule")
    _warn_long_windows(cfg, spec, market.n_bars)
    swept = [k for k, v in spec.items() if isinstance(v, list)]
    try:
        if not swept:
            return _rule(market, rule, **spec)
        sets: dict[str, dict[str, pd.Series]] = {}
        for combo in itertools.product(*(spec[k] for k in swept)):
            chosen = dict(zip(swept, combo, strict=True))
            name = ",".join(f"{k}={v}" for k, v in chosen.items())
            sets[name] = _rule(market, rule, **{**spec, **chosen})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{cfg.path}: [signals]: {exc}") from None
    never = pd.Series(False, index=market.index)
    used = [n for n in SIGNAL_NAMES if any(n in s for s in sets.values())]
    return {n: {name: s.get(n, never) for name, s in sets.items()} for n in used}


def _warn_long_windows(cfg: Config, spec: dict[str, Any], n_bars: int) -> None:
    """A window as long as the data never produces a signal: 0 trades, said up front."""
    for key in ("fast", "slow", "window"):
        values = spec.get(key, [])
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, int) and value >= n_bars:
                warnings.warn(f"{cfg.path}: [signals].{key} = {value} bars is not shorter than "
                              f"the data ({n_bars:,} bars): that rule can never signal, so "
                              f"the run has no trades. Fix: a window below {n_bars:,} bars, "
                              "or a longer start=/end= span.", UserWarning, stacklevel=2)


def _signal_file(cfg: Config, path: Path, market: Any) -> dict[str, pd.Series]:
    """Boolean columns of a Parquet/CSV file on the bar times (rows outside the market's
    span are ignored; inside it every bar needs exactly one row)."""
    err, where = _Where(cfg.path), f"[signals].file ({path.name})"
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise err(where, "expected a .parquet or .csv file.")
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
        if "timestamp" in frame.columns:
            frame = frame.set_index("timestamp")
        numeric = frame.index.dtype.kind in "iuf"  # a RangeIndex: no timestamp column
        ts = pd.DatetimeIndex(pd.to_datetime(frame.index))
    except Exception as exc:  # pyarrow/pandas parse errors come in many types
        raise err(where, f"cannot read it ({type(exc).__name__}: {exc}). Expected a "
                  "`timestamp` column (UTC bar open times) and boolean columns.") from None
    if numeric or ts.tz is None:
        raise err(where, "needs a `timestamp` column of UTC bar open times with the zone, "
                  "e.g. 2024-01-01 00:00:00+00:00 (pandas: .dt.tz_localize('UTC')).")
    frame.index = ts.tz_convert("UTC").as_unit("ns")
    cols = [str(c) for c in frame.columns]
    for c in cols:
        if c not in SIGNAL_NAMES:
            raise err(where, f"unknown column {c!r}.{_hint(c, SIGNAL_NAMES)} Columns: "
                      f"timestamp and any of {', '.join(SIGNAL_NAMES)}.")
    if not cols or frame.index.has_duplicates:
        raise err(where, f"expected one row per bar and columns among "
                  f"{', '.join(SIGNAL_NAMES)}; got columns {cols} and "
                  f"{int(frame.index.duplicated().sum())} duplicate timestamps.")
    idx = market.index
    stray = frame.index[(frame.index >= idx[0]) & (frame.index <= idx[-1])].difference(idx)
    missing = idx.difference(frame.index)
    for bad, what in ((stray, "rows are not on a bar open time"), (missing, "bars have no row")):
        if len(bad):
            raise err(where, f"{len(bad)} {what} (first {bad[0]}). Fix: one row per bar at "
                      "its open time (rows outside the market's start/end are ignored).")
    out: dict[str, pd.Series] = {}
    for c, col in frame.loc[idx].items():
        ok = col.notna() & col.isin([0, 1])  # True == 1 and False == 0
        if not ok.all():
            first = col.index[~ok.to_numpy()][0]
            raise err(f"{where}.{c}", f"expected true/false or 1/0 on every bar; got "
                      f"{col.loc[first]!r} at {first}.")
        out[str(c)] = col.astype(bool).rename(str(c))
    return out


def _failure(instrument: Any, params: dict[str, Any]) -> tuple[str, str] | None:
    """``(key, message)`` when ``validate_params`` rejects ``params``, else None; the key is
    the first one (in file order) whose addition makes it fail."""
    def message(sub: dict[str, Any]) -> str | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # run()/sweep() warn once, later
            try:
                validate_params(instrument, **sub)
            except (ValueError, TypeError) as exc:
                return str(exc).replace("run(): ", "", 1)
        return None

    text = message(params)
    if text is None:
        return None
    keys = list(params)
    culprit = next((k for i, k in enumerate(keys)
                    if message({kk: params[kk] for kk in keys[: i + 1]}) is not None), "")
    return culprit, text


def check_params(cfg: Config, instrument: Any) -> None:
    """Every ``[params]`` value against ``instrument`` (each swept value with the others'
    first values), so an error names the key and the value."""
    err = _Where(cfg.path)
    base = {k: (v[0] if isinstance(v, list) else v) for k, v in cfg.params.items()}
    failed = _failure(instrument, base)
    if failed:
        raise err(f"[params].{failed[0]}" if failed[0] else "[params]", failed[1])
    for key, values in cfg.params.items():
        for i, value in enumerate(values if isinstance(values, list) else []):
            failed = _failure(instrument, {**base, key: value})
            if failed:
                raise err(f"[params].{key}[{i}] = {value!r}", failed[1])


def _prepare(path: str | Path, sweep: bool) -> tuple[Config, Any, dict[str, Any]]:
    """The checked config, its market and its signal keywords."""
    cfg = read_config(path, sweep=sweep)
    market = load_config_market(cfg)
    check_params(cfg, market.instrument)
    return cfg, market, config_signals(cfg, market)


def run_config(path: str | Path) -> tuple[Config, Any]:
    """Read ``path``, load the market, build the signals and ``bt.run`` it.

    Returns the :class:`Config` and the ``Result``.
    """
    from backtest.simulation.run import run

    cfg, market, signals = _prepare(path, sweep=False)
    try:
        return cfg, run(market, **signals, **cfg.params)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{cfg.path}: {exc}") from None


def sweep_config(path: str | Path, progress: bool = True,
                 store: str | Path | None = None) -> tuple[Config, Any]:
    """Read ``path`` and ``bt.sweep`` every list-valued parameter (and signal option);
    ``store``: the sweep's ``store=`` directory (resumable).

    Returns the :class:`Config` and the ``SweepResult``.
    """
    from backtest.sweeps.api import sweep

    cfg, market, signals = _prepare(path, sweep=True)
    try:
        return cfg, sweep(market, **signals, progress=progress, store=store, **cfg.params,
                          **cfg.options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{cfg.path}: {exc}") from None
