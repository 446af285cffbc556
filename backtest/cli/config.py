"""TOML run configurations for ``backtest run`` and ``backtest sweep`` (SPEC §10, §11).

Owns the schema (``examples/ma_cross.toml`` shows every section; paths are relative to the
config file's folder; every key is checked, unknown ones get a close-match suggestion):

- ``[market]`` -> ``bt.load_market``: ``bars`` (required), ``mark``, ``index``, ``funding``
  (a file, or ``0`` for explicitly none), ``instrument`` (a preset name, default
  ``"binance:BTCUSDT"``, or a table of ``Instrument.simple`` fields), ``start``/``end``
  (``"2024-01-01"`` or a TOML date; keeps ``start <= t < end``, UTC), ``gaps``
  (``"error"``/``"warn"``).
- ``[signals]``: ``rule = "ma_cross"`` (``fast = 24``, ``slow = 168`` bars), ``"breakout"``
  (``window = 20``, the channel of the bars' highs/lows) or ``"buy_and_hold"``, with ``side``
  ``"long"`` (entries/exits), ``"short"`` or ``"both"`` (long and short entries: a cross
  reverses); or ``file = "signals.parquet"`` (or .csv): a UTC ``timestamp`` column and
  boolean columns among entries, exits, short_entries, short_exits, one row per bar (rows
  outside ``start``/``end`` are ignored).
- ``[params]`` (optional): any ``run()`` parameter (``params.RUN_DEFAULTS``).

TOML has no null: the parameters whose default is ``None`` (``stop_loss``, ``take_profit``,
``trailing_stop``, ``fees``, ``borrow_rate``, ``settlement_price``) take the string
``"none"``. In a sweep every list is swept: ``leverage = [1, 5, 10]``,
``stop_loss = ["none", 0.02]``; lists of signal options (``fast = [12, 24]``) become named
signal sets (``"fast=12"``). ``backtest run`` refuses lists.

Errors are :class:`ConfigError` (a ``ValueError``; data problems stay ``DataError``) naming
the file, the ``[section].key``, what was expected and the fix. Imports the market, params,
signals and engine modules; nothing here writes files (that is ``cli.py``).
"""

from __future__ import annotations

import datetime as dt
import difflib
import inspect
import itertools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.errors import DataError
from backtest.simulation.params import CHOICES, RUN_DEFAULTS, SIGNAL_NAMES, validate_params

__all__ = ["Config", "ConfigError", "config_signals", "load_config_market", "read_config",
           "run_config", "sweep_config"]

SECTIONS = ("market", "signals", "params")
MARKET_KEYS = ("bars", "mark", "index", "funding", "instrument", "start", "end", "gaps")
RULES: dict[str, tuple[str, ...]] = {"ma_cross": ("fast", "slow", "side"),
                                     "breakout": ("window", "side"),
                                     "buy_and_hold": ("side",)}
SIGNAL_DEFAULTS: dict[str, Any] = {"fast": 24, "slow": 168, "window": 20, "side": "long"}
SIDES = ("long", "short", "both")
NONE_KEYS = tuple(k for k, v in RUN_DEFAULTS.items() if v is None)


class ConfigError(ValueError):
    """A configuration file is unusable as written (exit code 2 on the command line)."""


@dataclass(frozen=True)
class Config:
    """A checked configuration: ``load_market`` keywords, the signal spec, run parameters.

    ``signals`` is ``{"rule": name, <options>}`` or ``{"file": Path}``; in a sweep the
    option and parameter values may be lists.
    """

    path: Path
    market: dict[str, Any]
    signals: dict[str, Any]
    params: dict[str, Any]
    sweep: bool


def _hint(name: str, allowed: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(str(name), list(allowed), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _choice(err: _Where, where: str, value: Any, allowed: tuple[str, ...]) -> Any:
    if not isinstance(value, str) or value not in allowed:
        raise err(where, f"expected one of {', '.join(map(repr, allowed))}, got {value!r}."
                  f"{_hint(str(value), allowed)}")
    return value


class _Where:
    """Builds errors that name the file and ``[section].key``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {message}")


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise ConfigError("reading a TOML config needs Python >= 3.11 (tomllib) or the "
                              "tomli package. Fix: pip install tomli.") from None
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "not found"
        raise ConfigError(f"{path}: config file {what}. Fix: check the path (relative to "
                          f"{Path.cwd()}); see examples/*.toml.")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix: see https://toml.io (strings "
                          "in quotes, one key = value per line, [section] headers).") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc}); a TOML file is UTF-8.") from None


def read_config(path: str | Path, *, sweep: bool = False) -> Config:
    """Parse and check a config file (types, names, files); values are checked further
    against the instrument by :func:`run_config` / :func:`sweep_config`.

    Raises
    ------
    ConfigError
        Unknown section/key, wrong type, missing file, a list in a ``run`` config.
    """
    path = Path(path)
    err = _Where(path)
    doc = _load_toml(path)
    for key, value in doc.items():
        if key not in SECTIONS:
            raise err(f"[{key}]", f"unknown section.{_hint(key, SECTIONS)} Sections: "
                      f"{', '.join(f'[{s}]' for s in SECTIONS)}.")
        if not isinstance(value, dict):
            raise err(key, f"expected a [{key}] section (a table), got {value!r}. Fix: write "
                      f"[{key}] on its own line and its keys below it.")
    for name in ("market", "signals"):
        if name not in doc:
            raise err(f"[{name}]", "missing section. Fix: add it; see examples/ma_cross.toml.")
    folder = path.resolve().parent
    market = _market(err, folder, doc["market"])
    signals = _signals(err, folder, doc["signals"], sweep)
    params = {k: _param(err, k, v, sweep) for k, v in _known(
        err, "params", doc.get("params", {}), tuple(RUN_DEFAULTS)).items()}
    return Config(path=path, market=market, signals=signals, params=params, sweep=sweep)


def _known(err: _Where, section: str, table: dict[str, Any], allowed: tuple[str, ...]
           ) -> dict[str, Any]:
    for key in table:
        if key not in allowed:
            raise err(f"[{section}].{key}", f"unknown key.{_hint(key, allowed)} Known: "
                      f"{', '.join(allowed)}.")
    return table


def _file(err: _Where, folder: Path, where: str, value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise err(where, f"expected a file path in quotes, got {value!r}.")
    p = Path(value).expanduser()
    p = p if p.is_absolute() else folder / p
    if not p.is_file():
        raise err(where, f"file not found: {p}. Fix: correct the path (absolute, or "
                  f"relative to the config's folder {folder}).")
    return p


def _market(err: _Where, folder: Path, table: dict[str, Any]) -> dict[str, Any]:
    """``load_market`` keywords from ``[market]``."""
    _known(err, "market", table, MARKET_KEYS)
    if "bars" not in table:
        raise err("[market].bars", 'missing: the bar file is required, e.g. bars = '
                  '"../data/binance_btcusdt_perp_1h.parquet".')
    out: dict[str, Any] = {}
    for key in ("bars", "mark", "index"):
        if key in table:
            out[key] = _file(err, folder, f"[market].{key}", table[key])
    if "funding" in table:
        f = table["funding"]
        is_zero = isinstance(f, (int, float)) and not isinstance(f, bool) and f == 0
        out["funding"] = 0 if is_zero else _file(err, folder, "[market].funding", f)
    out["instrument"] = _instrument(err, table.get("instrument", "binance:BTCUSDT"))
    for key in ("start", "end"):
        if key in table:
            value = table[key]
            if isinstance(value, dt.time) or not isinstance(value, (str, dt.date)):
                raise err(f"[market].{key}", f"expected a time such as \"2024-01-01\" or "
                          f"2024-01-01T00:00:00Z, got {value!r}.")
            try:
                pd.Timestamp(value)
            except (ValueError, TypeError):
                raise err(f"[market].{key}", f"{value!r} is not a time; expected e.g. "
                          '"2024-01-01" or "2024-01-01 08:00" (UTC).') from None
            out[key] = value
    out["gaps"] = _choice(err, "[market].gaps", table.get("gaps", "error"), ("error", "warn"))
    return out


def _instrument(err: _Where, value: Any) -> Any:
    from backtest.instruments.instrument import Instrument
    from backtest.instruments.presets import get_instrument

    where = "[market].instrument"
    try:
        if isinstance(value, str):
            return get_instrument(value)
        if isinstance(value, dict):
            allowed = tuple(inspect.signature(Instrument.simple).parameters)
            for key in value:
                if key not in allowed:
                    raise err(f"{where}.{key}", f"unknown field of Instrument.simple."
                              f"{_hint(key, allowed)} Fields: {', '.join(allowed)}.")
            return Instrument.simple(**value)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise err(where, str(exc).strip("'\"")) from None
    raise err(where, f'expected a preset name such as "binance:BTCUSDT" or a table of '
              f"Instrument.simple fields ({{ mmr = 0.005, taker_fee = 0.0004 }}), got {value!r}.")


def _signals(err: _Where, folder: Path, table: dict[str, Any], sweep: bool) -> dict[str, Any]:
    if ("rule" in table) == ("file" in table):
        raise err("[signals]", 'give exactly one of rule = "ma_cross" | "breakout" | '
                  '"buy_and_hold" or file = "signals.parquet".')
    if "file" in table:
        _known(err, "signals", table, ("file",))
        return {"file": _file(err, folder, "[signals].file", table["file"])}
    rule = _choice(err, "[signals].rule", table["rule"], tuple(RULES))
    _known(err, "signals", table, ("rule", *RULES[rule]))
    out: dict[str, Any] = {"rule": rule}
    for key in RULES[rule]:
        value = table.get(key, SIGNAL_DEFAULTS[key])
        values = _listed(err, f"[signals].{key}", value, sweep)
        for v in values:
            if key == "side":
                _choice(err, "[signals].side", v, SIDES)
            elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise err(f"[signals].{key}", f"expected a whole number of bars >= 1, got "
                          f"{v!r}. Fix: e.g. {key} = {SIGNAL_DEFAULTS[key]}.")
        out[key] = value
    if rule == "buy_and_hold" and "both" in _listed(err, "[signals].side", out["side"], sweep):
        raise err("[signals].side", 'buy_and_hold holds one side: use "long" or "short".')
    return out


def _listed(err: _Where, where: str, value: Any, sweep: bool) -> list[Any]:
    """The values of a key: ``[value]``, or the list's items in a sweep."""
    if not isinstance(value, list):
        return [value]
    if not sweep:
        raise err(where, f"a list ({value!r}) is swept by `backtest sweep`; `backtest run` "
                  "takes one value. Fix: give one value, or run `backtest sweep`.")
    if not value:
        raise err(where, "an empty list; give at least one value.")
    for v in value:
        if isinstance(v, (list, dict)):
            raise err(where, f"a swept list holds plain values, got {v!r} inside it.")
    return value


def _param(err: _Where, key: str, value: Any, sweep: bool) -> Any:
    """One ``[params]`` value (or list in a sweep) with TOML types mapped to run()'s."""
    where = f"[params].{key}"
    items = [_param_value(err, where, key, v) for v in _listed(err, where, value, sweep)]
    return items if isinstance(value, list) else items[0]


def _param_value(err: _Where, where: str, key: str, value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "none":
        if key in NONE_KEYS:
            return None
        raise err(where, f'"none" is allowed only for {", ".join(NONE_KEYS)}. Fix: omit '
                  f"{key} for its default ({RUN_DEFAULTS[key]!r}).")
    if key in CHOICES:
        return _choice(err, where, value, CHOICES[key])
    if key == "negative_equity":
        if not isinstance(value, bool):
            raise err(where, f"expected true or false (no quotes), got {value!r}.")
        return value
    if key == "limit_ttl":
        if isinstance(value, bool) or not isinstance(value, int):
            raise err(where, f"expected a whole number of bars, got {value!r}. Fix: e.g. "
                      "limit_ttl = 3.")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        example = {"leverage": "10", "size": "0.5", "initial_capital": "10000.0"}.get(key,
                                                                                      "0.02")
        quoted = " without quotes" if isinstance(value, str) else ""
        none = ' (or "none")' if key in NONE_KEYS else ""
        raise err(where, f"expected a number{none}, got {value!r} "
                  f"({type(value).__name__}). Fix: {key} = {example}{quoted}; fractions, "
                  "not percent (0.05 = 5 %).")
    return value


# --- building the market, signals and parameters ----------------------------------------


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
        return cfg, sweep(market, **signals, progress=progress, store=store, **cfg.params)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{cfg.path}: {exc}") from None
