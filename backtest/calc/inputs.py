"""Validation of the calculator's inputs, with the function and parameter in every message.

Conventions (SPEC §1): rates are fractions (0.005 = 0.5 %), leverage a multiple, prices in
the quote currency, money (margin, PnL, funding) in the instrument's account currency.
``side`` is ``"long"`` or ``"short"``; ``instrument`` a rules name (``"simple"``,
``"binance"``, ``"bitmex"``), a preset name (``"bitmex:XBTUSD"``) or an ``Instrument``.

Imports numpy, ``backtest.checks``, ``backtest.instruments`` and ``backtest.kernels``.
"""

from __future__ import annotations

import difflib
import math

import numpy as np

from backtest.checks import finite_number
from backtest.instruments.instrument import Instrument
from backtest.instruments.presets import get_instrument
from backtest.kernels import contracts as _k

_HOUR_NS = 3_600_000_000_000
# SPEC §11: a funding rate above 5 % per interval is implausible (percent passed as fraction).
_MAX_FUNDING_RATE = 0.05


# A value that fits each parameter, for the "Fix: pass e.g. name=..." of a message.
_EXAMPLES = {"entry": "40000", "exit": "42000", "mark": "40000", "size": "0.25",
             "margin": "1000", "wallet": "1000", "leverage": "10", "equity": "10000",
             "notional": "10000", "mmr": "0.005", "rate": "0.0001", "funding_rate": "0.0001",
             "risk": "0.01", "stop_distance": "0.02", "principal": "1000",
             "hourly_rate": "0.0002/24", "interval_hours": "8", "maint_amount": "0",
             "other_maintenance": "0", "other_upnl": "0", "interest": "0"}


def _number(func: str, name: str, value: object) -> float:
    return finite_number(f"calc.{func}", name, value, example=_EXAMPLES.get(name, "1.0"))


def _positive(func: str, name: str, value: object, what: str = "") -> float:
    out = _number(func, name, value)
    if out <= 0.0:
        raise ValueError(f"calc.{func}: {name} must be > 0{what}; got {value!r}. Fix: pass "
                         f"e.g. {name}={_EXAMPLES.get(name, '1.0')}.")
    return out


def _fraction(func: str, name: str, value: object, *, example: str, low: float = 0.0,
              allow_low: bool = True) -> float:
    """A rate as a fraction in ``[low, 1)`` (``(low, 1)`` when ``allow_low`` is False)."""
    out = _number(func, name, value)
    if abs(out) >= 1.0:
        raise ValueError(f"calc.{func}: {name}={value!r} is not plausible as a fraction "
                         f"(|{name}| must be < 1). Did you pass basis points/percent? "
                         f"Rates are fractions: {example}.")
    if out < low or (out == low and not allow_low):
        sign = ">=" if allow_low else ">"
        raise ValueError(f"calc.{func}: {name} must be {sign} {low}; got {value!r}.")
    return out


def _leverage(func: str, value: object) -> float:
    return _positive(func, "leverage", value, " (a multiple, 10 = 10x)")


def _funding_rate(func: str, value: object) -> float:
    out = _number(func, "rate", value)
    if abs(out) > _MAX_FUNDING_RATE:
        raise ValueError(f"calc.{func}: funding rate {value!r} is above 5 % per interval, "
                         f"implausible as a fraction. Did you pass percent/basis points? "
                         f"0.01 % per interval is 0.0001.")
    return out


def _side(func: str, side: object) -> int:
    if side == "long":
        return 1
    if side == "short":
        return -1
    close = difflib.get_close_matches(str(side).lower(), ["long", "short"], n=1, cutoff=0.3)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"calc.{func}: side must be 'long' or 'short'; got {side!r}.{hint}")


def _instrument(func: str, instrument: object) -> Instrument:
    try:
        return get_instrument(instrument)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"calc.{func}: instrument: {exc}") from None


def _default_size(inst: Instrument, entry: float) -> float:
    # One unit of the base coin: 1 BTC for linear; for inverse/quanto the (fractional)
    # number of contracts whose notional at entry is one unit of the account coin.
    if inst.settlement == "linear":
        return 1.0
    return float(_k.size_for_notional(inst.settlement_code, 1.0, entry, inst.contract_size))


def _readonly(*values: float) -> np.ndarray:
    a = np.array(values, dtype=np.float64)
    a.setflags(write=False)  # same array type as TierTable.arrays(): one kernel compilation
    return a


def _position(func: str, entry: object, side: object, leverage: object, size: object,
              wallet: object, instrument: object, cross: bool = False) -> tuple:
    """Validated ``(inst, entry, side, size, wallet, leverage)``; wallet defaults to the
    isolated margin ``notional(size, entry) / leverage``."""
    inst = _instrument(func, instrument)
    entry_f = _positive(func, "entry", entry, " (a price in the quote currency)")
    side_i = _side(func, side)
    lev = None if leverage is None else _leverage(func, leverage)
    size_f = (_default_size(inst, entry_f) if size is None
              else _positive(func, "size", size, f" ({inst.size_unit})"))
    if wallet is not None and lev is not None and not cross:
        _check_consistent(func, inst, entry_f, size_f, float(_number(func, "wallet", wallet)),
                          lev, size is None)
    if wallet is None:
        if lev is None:
            raise ValueError(f"calc.{func}: pass leverage= (isolated margin = notional / "
                             f"leverage) or wallet= (margin in {inst.account_currency}).")
        notional = _k.notional(inst.settlement_code, size_f, entry_f, inst.contract_size)
        wallet_f = notional / lev
    else:
        wallet_f = _number(func, "wallet", wallet)
    return inst, entry_f, side_i, size_f, wallet_f, lev


def _check_consistent(func: str, inst: Instrument, entry: float, size: float, wallet: float,
                      lev: float, default_size: bool) -> None:
    """An isolated position's ``wallet`` and ``leverage`` must describe the same margin
    (``notional / leverage``); otherwise one would silently override the other."""
    notional = float(_k.notional(inst.settlement_code, size, entry, inst.contract_size))
    if wallet > 0 and math.isclose(notional / wallet, lev, rel_tol=1e-9):
        return
    acc = inst.account_currency
    implied = f"{notional / wallet:.6g}x" if wallet > 0 else "no margin"
    fit = float(_k.size_for_notional(inst.settlement_code, wallet * lev, entry,
                                     inst.contract_size)) if wallet > 0 else 0.0
    raise ValueError(
        f"calc.{func}: wallet={wallet:g} and leverage={lev:g} contradict: a position of size "
        f"{size:g} {inst.size_unit}{' (the default)' if default_size else ''} at entry "
        f"{entry:g} has a notional of {notional:g} {acc}, so wallet={wallet:g} means "
        f"{implied} and leverage={lev:g} means a margin of {notional / lev:g} {acc}. Fix: "
        f"pass only one of them, or the size both describe (size={fit:.6g}); for a cross "
        "wallet pass other_maintenance=/other_upnl= too (then leverage only sets the "
        "tier's maximum check).")


def _tiers(func: str, inst: Instrument, notional: float, mmr: object,
           maint_amount: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The instrument's tier arrays, or one row built from the overrides."""
    floor, tier_mmr, tier_cum, _ = inst.tiers.arrays()
    if mmr is None and maint_amount is None:
        return floor, tier_mmr, tier_cum
    row = inst.tiers.row(notional)
    m = (float(tier_mmr[row]) if mmr is None
         else _fraction(func, "mmr", mmr, example="0.005 = 0.5 %"))
    cum = 0.0 if maint_amount is None else _number(func, "maint_amount", maint_amount)
    if cum < 0.0:
        raise ValueError(f"calc.{func}: maint_amount must be >= 0 (account currency); "
                         f"got {maint_amount!r}.")
    return _readonly(0.0), _readonly(m), _readonly(cum)
