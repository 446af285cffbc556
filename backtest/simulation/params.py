"""Run parameters: defaults (defined once), validation at the public boundary, encoding into
the kernels' float vector (``kernels/records.P_*``), signal preparation and grid expansion.

Owns every parameter message of SPEC §11. Must not import the kernels' step logic.
"""

from __future__ import annotations

import difflib
import itertools
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from backtest.checks import finite_number, user_stacklevel
from backtest.kernels import records as R

RUN_DEFAULTS: dict[str, Any] = {
    "leverage": 1.0,
    "margin_mode": "isolated",
    "size": 1.0,
    "size_type": "margin",
    "stop_loss": None,
    "take_profit": None,
    "trailing_stop": None,
    "stop_trigger": "last",
    "stop_order": "market",
    "stop_limit_offset": 0.0,
    "entry_order": "market",
    "limit_offset": 0.0,
    "limit_ttl": 1,
    "fill": "next_open",
    "path": "pessimistic",
    "liquidation": "bankruptcy",
    "liquidation_fee": 0.0,
    "negative_equity": False,
    "fees": None,
    "slippage": 0.0,
    "initial_capital": 10_000.0,
    "borrow_rate": None,
    "settlement_price": None,
}

CHOICES: dict[str, tuple[str, ...]] = {
    "margin_mode": R.MARGIN_MODES,
    "size_type": R.SIZE_TYPES,
    "stop_trigger": R.TRIGGERS,
    "stop_order": R.ORDERS,
    "entry_order": R.ORDERS,
    "fill": R.FILLS,
    "path": R.PATHS,
    "liquidation": R.LIQUIDATIONS,
}

SIGNAL_NAMES = ("entries", "exits", "short_entries", "short_exits")


def _suggest(value: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(value), allowed, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


# Example values for messages (anything not listed is a fraction like 0.02).
_EXAMPLES = {"leverage": "10", "size": "1.0", "initial_capital": "10_000.0",
             "settlement_price": "40_000.0"}
# Amounts above this overflow float64 once multiplied by leverage and prices (NaN equity).
MAX_INITIAL_CAPITAL = 1e15
MAX_LIMIT_TTL = 10**12
MIN_FEE = -0.01  # a negative taker fee is a rebate; as for Instrument, -1 % or less is a typo


def _number(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    return finite_number("run()", name, value, example=_EXAMPLES.get(name, "0.02"))


def validate_params(instrument: Any, **kwargs: Any) -> dict[str, Any]:
    """Check one combination's parameters and return them complete (defaults filled in).

    Raises ``ValueError``/``TypeError`` whose message names the parameter, what is allowed,
    what was received and a fix. Warns (``UserWarning``) when a stop lies beyond the
    liquidation distance and so can never fire.
    """
    unknown = [k for k in kwargs if k not in RUN_DEFAULTS]
    if unknown:
        hints = "".join(_suggest(k, tuple(RUN_DEFAULTS)) for k in unknown)
        raise TypeError(f"run(): unknown parameter(s) {unknown}.{hints} "
                        f"Known: {', '.join(RUN_DEFAULTS)}.")
    prm = {**RUN_DEFAULTS, **kwargs}
    for name, allowed in CHOICES.items():
        if prm[name] not in allowed:
            raise ValueError(f"run(): {name}={prm[name]!r} is not one of {allowed}."
                             f"{_suggest(prm[name], allowed)}")
    prm["leverage"] = _leverage(instrument, prm["leverage"])
    prm["size"] = _size(prm["size"], prm["size_type"])
    _check_exits(prm)
    _check_costs(instrument, prm)
    prm["limit_ttl"] = _limit_ttl(prm["limit_ttl"])
    prm["initial_capital"] = _capital(instrument, prm["initial_capital"])
    neg = prm["negative_equity"]
    if not isinstance(neg, (bool, np.bool_)):  # bool("no") is True: never guess
        raise TypeError(f"run(): negative_equity must be True or False, got {neg!r} "
                        f"({type(neg).__name__}).")
    prm["negative_equity"] = bool(neg)
    _check_kind_params(instrument, prm)
    _warn_unreachable_stop(instrument, prm)
    return prm


def _leverage(instrument: Any, value: Any) -> float:
    lev = _number("leverage", value)
    if lev <= 0:
        raise ValueError(f"run(): leverage must be > 0 (a multiple: 10 = 10x), got {lev!r}.")
    if lev > instrument.max_leverage:
        raise ValueError(f"run(): leverage={lev!r} is above {instrument.symbol}'s maximum of "
                         f"{instrument.max_leverage:g}x. Choose leverage <= "
                         f"{instrument.max_leverage:g} or another instrument.")
    return lev


def _size(value: Any, size_type: str) -> float:
    size = _number("size", value)
    if size <= 0:
        example = {"margin": "0.5", "notional": "10_000.0", "risk": "0.01", "qty": "0.1"}
        raise ValueError(f"run(): size must be > 0, got {size!r}. With size_type="
                         f"{size_type!r} pass e.g. size={example[size_type]}.")
    if size_type in ("margin", "risk") and size > 1:
        raise ValueError(f"run(): size={size!r} with size_type={size_type!r} is a fraction "
                         "of equity and must be <= 1. For an amount of money use "
                         "size_type='notional'; for contracts or coins size_type='qty'.")
    return size


def _check_exits(prm: dict[str, Any]) -> None:
    """stop_loss, take_profit and trailing_stop: fractions of the entry price, or None."""
    for name in ("stop_loss", "take_profit", "trailing_stop"):
        value = _number(name, prm[name], allow_none=True)
        if value is not None and not 0 < value < 1:
            raise ValueError(f"run(): {name} is a fraction of the entry price (0.02 = 2 %) and "
                             f"must be in (0, 1), got {value!r}. Percent? divide by 100.")
        prm[name] = value
    if prm["size_type"] == "risk" and prm["stop_loss"] is None:
        raise ValueError("run(): size_type='risk' sizes the position from the stop distance; "
                         "pass stop_loss (e.g. stop_loss=0.02) or use size_type='margin'.")


def _check_costs(instrument: Any, prm: dict[str, Any]) -> None:
    """Fees (default: the instrument's taker fee), slippage and price offsets: fractions."""
    fees = prm["fees"]
    taker = instrument.taker_fee if fees is None else _number("fees", fees)
    prm["taker_fee"] = taker
    prm["maker_fee"] = instrument.maker_fee
    for name, value in (("fees", taker), ("slippage", _number("slippage", prm["slippage"])),
                        ("liquidation_fee", _number("liquidation_fee", prm["liquidation_fee"])),
                        ("stop_limit_offset", _number("stop_limit_offset",
                                                      prm["stop_limit_offset"])),
                        ("limit_offset", _number("limit_offset", prm["limit_offset"]))):
        if value >= 1:
            raise ValueError(f"run(): {name}={value!r} must be a fraction < 1 (0.0005 = 5 bp). "
                             "Did you pass basis points or percent? Divide by 10,000 or 100.")
        if value < 0 and name != "fees":
            raise ValueError(f"run(): {name} must be >= 0 (a fraction, 0.0005 = 5 bp), got "
                             f"{value!r}. Pass e.g. {name}=0.0005, or 0 for none.")
        if name == "fees" and value < MIN_FEE:
            raise ValueError(f"run(): fees={value!r} is a rebate of more than 1 %; expected "
                             f"a fraction >= {MIN_FEE} (0.0005 = 5 bp, -0.00025 = a 2.5 bp "
                             "rebate). Basis points or percent? Divide by 10,000 or 100.")
    prm["slippage"] = float(prm["slippage"])


def _limit_ttl(ttl: Any) -> Any:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, np.integer)):
        raise TypeError(f"run(): limit_ttl is a whole number of bars >= 1, got {ttl!r} "
                        f"({type(ttl).__name__}). Pass an int, e.g. limit_ttl=3.")
    if not 1 <= ttl <= MAX_LIMIT_TTL:
        raise ValueError(f"run(): limit_ttl is a number of bars >= 1 (and <= {MAX_LIMIT_TTL:.0e}"
                         f"), got {ttl!r}. Pass e.g. limit_ttl=3.")
    return ttl


def _capital(instrument: Any, value: Any) -> float:
    capital = _number("initial_capital", value)
    if not 0 < capital <= MAX_INITIAL_CAPITAL:
        raise ValueError(f"run(): initial_capital must be > 0 and <= {MAX_INITIAL_CAPITAL:g} "
                         f"(in {instrument.account_currency}), got {capital!r}. Pass the "
                         "account's starting balance, e.g. initial_capital=10_000.0.")
    return capital


def _check_kind_params(instrument: Any, prm: dict[str, Any]) -> None:
    """borrow_rate belongs to spot margin, settlement_price to dated futures."""
    rate = prm["borrow_rate"]
    if rate is not None:
        if instrument.kind != "spot_margin":
            raise ValueError(f"run(): borrow_rate applies to spot-margin instruments; "
                             f"{instrument.symbol} is a {instrument.kind}. Remove borrow_rate.")
        if not isinstance(rate, pd.Series):
            rate = _number("borrow_rate", rate)
            if not 0 <= rate < 0.01:
                raise ValueError(f"run(): borrow_rate={rate!r} is an hourly rate as a fraction "
                                 "and must be in [0, 0.01). A daily rate? divide by 24; "
                                 "percent? divide by 100.")
            prm["borrow_rate"] = rate
    price = prm["settlement_price"]
    if price is not None:
        if instrument.kind != "future":
            raise ValueError(f"run(): settlement_price applies to dated futures; "
                             f"{instrument.symbol} is a {instrument.kind}. Remove it.")
        price = _number("settlement_price", price)
        if price <= 0:
            raise ValueError(f"run(): settlement_price must be > 0, got {price!r}.")
        prm["settlement_price"] = price


def _warn_unreachable_stop(instrument: Any, prm: Mapping[str, Any]) -> None:
    """A stop farther than the liquidation distance can never fire (SPEC §11: a warning)."""
    if prm["stop_loss"] is None or prm["margin_mode"] != "isolated":
        return
    mmr = float(instrument.tiers.mmr[0])
    distance = 1.0 / prm["leverage"] - mmr
    if prm["stop_loss"] >= distance:
        warnings.warn(
            f"run(): stop_loss={prm['stop_loss']:g} lies beyond the liquidation distance "
            f"({distance:.4g} of entry at {prm['leverage']:g}x, mmr {mmr:g}); the position is "
            "liquidated before the stop can fire. Use a tighter stop or lower leverage.",
            UserWarning, stacklevel=user_stacklevel())


def encode(prm: Mapping[str, Any], signal_set: int = 0) -> np.ndarray:
    """The kernel's parameter vector (``records.P_*``) for validated parameters."""
    p = np.empty(R.N_PARAMS)

    def frac(x: float | None) -> float:
        return np.nan if x is None else float(x)

    p[R.P_LEVERAGE] = prm["leverage"]
    p[R.P_SIZE] = prm["size"]
    p[R.P_SIZE_TYPE] = R.SIZE_TYPES.index(prm["size_type"])
    p[R.P_STOP_LOSS] = frac(prm["stop_loss"])
    p[R.P_TAKE_PROFIT] = frac(prm["take_profit"])
    p[R.P_TRAILING] = frac(prm["trailing_stop"])
    p[R.P_STOP_TRIGGER] = R.TRIGGERS.index(prm["stop_trigger"])
    p[R.P_STOP_ORDER] = R.ORDERS.index(prm["stop_order"])
    p[R.P_STOP_LIMIT_OFFSET] = prm["stop_limit_offset"]
    p[R.P_ENTRY_ORDER] = R.ORDERS.index(prm["entry_order"])
    p[R.P_LIMIT_OFFSET] = prm["limit_offset"]
    p[R.P_LIMIT_TTL] = prm["limit_ttl"]
    p[R.P_FILL] = R.FILLS.index(prm["fill"])
    p[R.P_PATH] = R.PATHS.index(prm["path"])
    p[R.P_LIQUIDATION] = R.LIQUIDATIONS.index(prm["liquidation"])
    p[R.P_LIQUIDATION_FEE] = prm["liquidation_fee"]
    p[R.P_TAKER_FEE] = prm["taker_fee"]
    p[R.P_MAKER_FEE] = prm["maker_fee"]
    p[R.P_SLIPPAGE] = prm["slippage"]
    p[R.P_MARGIN_MODE] = R.MARGIN_MODES.index(prm["margin_mode"])
    p[R.P_NEGATIVE_EQUITY] = 1.0 if prm["negative_equity"] else 0.0
    p[R.P_INITIAL_CAPITAL] = prm["initial_capital"]
    p[R.P_SIGNAL_SET] = signal_set
    return p


def prepare_signal(name: str, signal: Any, index: pd.DatetimeIndex) -> np.ndarray:
    """One signal as a bool column ``(n_bars, 1)``; ``None`` means never."""
    n = len(index)
    if signal is None:
        return np.zeros((n, 1), dtype=np.bool_)
    if isinstance(signal, pd.DataFrame):
        raise TypeError(f"run(): {name} must be one boolean series, got a DataFrame. "
                        "Several signal sets are a sweep: bt.sweep(..., entries={'a': s1, ...}).")
    if isinstance(signal, pd.Series):
        if len(signal) != n or not signal.index.equals(index):
            raise ValueError(f"run(): {name} is a Series whose index does not match the "
                             f"market's bar index ({len(signal)} vs {n} rows"
                             f"{_first_difference(signal.index, index)}). Build signals "
                             f"on market.index, or use {name}.reindex(market.index, "
                             "fill_value=False).")
        values = signal.to_numpy()
    else:
        try:
            values = np.asarray(signal)
        except (ValueError, TypeError) as exc:  # ragged lists and the like
            raise ValueError(f"run(): {name} is not an array of one value per bar ({exc}). "
                             f"Pass a boolean Series on market.index or a 1-D bool array."
                             ) from None
    if values.ndim != 1 or values.shape[0] != n:
        raise ValueError(f"run(): {name} must have one value per bar ({n}), got shape "
                         f"{values.shape}. Build signals on market.index (e.g. "
                         f"market.bars.close > market.bars.close.rolling(20).mean()).")
    original = values.dtype
    if values.dtype != np.bool_:
        if values.dtype == object or values.dtype.kind == "f":
            as_float = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float)
            if np.isnan(as_float).any():
                first = int(np.flatnonzero(np.isnan(as_float))[0])
                raise ValueError(f"run(): {name} has missing/non-boolean values (first at bar "
                                 f"{first}, {index[first]}). Use {name}.fillna(False)"
                                 ".astype(bool).")
            values = as_float
        if values.dtype.kind not in "biuf" or not np.isin(values, (0, 1)).all():
            raise ValueError(f"run(): {name} must be boolean (True/False or 0/1), got dtype "
                             f"{original}. Compare to build one, e.g. fast > slow.")
        values = values.astype(np.bool_)
    return np.ascontiguousarray(values.reshape(n, 1))


def _first_difference(got: pd.Index, want: pd.DatetimeIndex) -> str:
    """``'; first difference at position i: X vs Y'`` for two indexes (empty if none)."""
    m = min(len(got), len(want))
    try:
        diff = np.flatnonzero(np.asarray(got[:m] != want[:m], dtype=bool))
    except (TypeError, ValueError):  # e.g. naive vs tz-aware times: compare one by one
        diff = np.array([i for i in range(m) if not _same(got[i], want[i])], dtype=np.int64)
    if not diff.size:
        return ""
    i = int(diff[0])
    return f"; first difference at position {i}: {got[i]!r} vs bar {want[i]}"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def expand_grid(grid: Mapping[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Cartesian product of the list-valued parameters, in the order given.

    Returns the names of the varying parameters and one tuple of values per combination.
    """
    names = [k for k, v in grid.items() if isinstance(v, (list, tuple, np.ndarray, range))]
    values = [list(grid[k]) for k in names]
    for name, vals in zip(names, values, strict=True):
        if not vals:
            raise ValueError(f"sweep(): {name} is an empty list; give at least one value.")
    return names, list(itertools.product(*values))
