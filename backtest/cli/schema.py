"""TOML run configurations for ``backtest run`` and ``backtest sweep`` (SPEC §10, §11).

Owns the schema (``examples/ma_cross.toml`` shows every section; paths are relative to the
config file's folder; every key is checked, unknown ones get a close-match suggestion):

- ``[market]`` -> ``bt.load_market``: ``bars`` (required), ``mark``, ``index``, ``funding``
  (a file, or ``0`` for explicitly none), ``instrument`` (a preset name, default
  ``"binance:BTCUSDT"``, or a table of ``Instrument.simple`` fields), ``start``/``end``
  (``"2024-01-01"`` or a TOML date; keeps ``start <= t < end``, UTC), ``gaps``
  (``"error"``/``"warn"``), ``funding_gaps`` (``"error"``/``"zero"``: holes in the funding
  history inside the run).
- ``[signals]``: ``rule = "ma_cross"`` (``fast = 24``, ``slow = 168`` bars), ``"breakout"``
  (``window = 20``, the channel of the bars' highs/lows) or ``"buy_and_hold"``, with ``side``
  ``"long"`` (entries/exits), ``"short"`` or ``"both"`` (long and short entries: a cross
  reverses); or ``file = "signals.parquet"`` (or .csv): a UTC ``timestamp`` column and
  boolean columns among entries, exits, short_entries, short_exits, one row per bar (rows
  outside ``start``/``end`` are ignored).
- ``[params]`` (optional): any ``run()`` parameter (``params.RUN_DEFAULTS``).
- ``[sweep]`` (optional, ``backtest sweep`` only): ``max_memory = "8GB"``, the memory budget
  of the sweep (default: half the RAM, at most 8 GiB).

TOML has no null: the parameters whose default is ``None`` (``stop_loss``, ``take_profit``,
``trailing_stop``, ``fees``, ``borrow_rate``, ``settlement_price``) take the string
``"none"``. In a sweep every list is swept: ``leverage = [1, 5, 10]``,
``stop_loss = ["none", 0.02]``; lists of signal options (``fast = [12, 24]``) become named
signal sets (``"fast=12"``). ``backtest run`` refuses lists.

Errors are :class:`ConfigError` (a ``ValueError``; data problems stay ``DataError``) naming
the file, the ``[section].key``, what was expected and the fix. This module reads and checks
the file; ``backtest.cli.config`` builds the market, signals and run from it. Imports
``backtest.simulation.params`` and ``backtest.errors``; nothing here writes files.
"""

from __future__ import annotations

import datetime as dt
import difflib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.simulation.params import CHOICES, RUN_DEFAULTS

__all__ = ["Config", "ConfigError", "read_config"]

SECTIONS = ("market", "signals", "params", "sweep")
SWEEP_KEYS = ("max_memory",)
MARKET_KEYS = ("bars", "mark", "index", "funding", "instrument", "start", "end", "gaps",
               "funding_gaps")
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
    options: dict[str, Any] = field(default_factory=dict)


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
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror}). Fix: make "
                          "it readable (chmod u+r) or copy it somewhere you can read."
                          ) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path}: saved as UTF-16 text; a TOML file is UTF-8. Fix: save it "
                          "as UTF-8 (in most editors: Save with encoding > UTF-8).")
    # A UTF-8 byte-order mark (Windows editors add one) carries no content: skip it.
    text = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return tomllib.loads(text.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix: see https://toml.io (strings "
                          "in quotes, one key = value per line, [section] headers).") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc}); a TOML file is UTF-8. Fix: save "
                          "it as UTF-8.") from None


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
    options = _sweep_options(err, doc.get("sweep"), sweep)
    return Config(path=path, market=market, signals=signals, params=params, sweep=sweep,
                  options=options)


def _sweep_options(err: _Where, table: dict[str, Any] | None, sweep: bool) -> dict[str, Any]:
    """``[sweep]``: options of ``sweep()`` itself (``max_memory = "8GB"``)."""
    if table is None:
        return {}
    if not sweep:
        raise err("[sweep]", "applies to `backtest sweep` only. Fix: remove the section or "
                  "run `backtest sweep` with this file.")
    from backtest.sweeps.grid import parse_memory

    _known(err, "sweep", table, SWEEP_KEYS)
    if "max_memory" in table:
        try:
            parse_memory(table["max_memory"])
        except (TypeError, ValueError) as exc:
            raise err("[sweep].max_memory", f"{str(exc).replace('sweep(): ', '')} e.g. "
                      'max_memory = "8GB".') from None
    return dict(table)


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
        if isinstance(f, str) and f.strip().lstrip("+-").replace(".", "", 1).isdigit():
            raise err("[market].funding", f"{f!r} is text (a file path). For no funding "
                      "write the number without quotes: funding = 0.")
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
    if "funding_gaps" in table:
        out["funding_gaps"] = _choice(err, "[market].funding_gaps", table["funding_gaps"],
                                      ("error", "zero"))
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
