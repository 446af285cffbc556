"""Instruments: the contract specification (SPEC §3).

Owns ``Instrument``: plain, validated data; the maths lives in ``backtest.kernels.contracts``
(whose int codes the ``*_code`` properties return); the tier tables live in
``backtest.instruments.tiers``; the venue presets and ``get_instrument`` /
``list_instruments`` in ``backtest.instruments.presets``.

Imports pandas, ``backtest.kernels.contracts`` and the sibling modules only; must not import
the engine, market, result or plotting modules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from backtest.instruments.fields import _choice, _finite, _rate, _suggest, _text
from backtest.instruments.tiers import TierTable
from backtest.kernels import contracts as _k

_KIND_CODES = {"perpetual": 0, "future": 1, "spot_margin": 2}
_SETTLEMENT_CODES = {"linear": _k.LINEAR, "inverse": _k.INVERSE, "quanto": _k.QUANTO}
_RULES_CODES = {"simple": _k.RULES_SIMPLE, "binance": _k.RULES_BINANCE,
                "bitmex": _k.RULES_BITMEX}
# Negative maker fees are rebates (BitMEX paid 0.025 %); a rebate of 1 % or more is a typo.
_MIN_FEE = -0.01


@dataclass(frozen=True, kw_only=True)
class Instrument:
    """One tradable contract and the venue rules that margin it (SPEC §3).

    Parameters
    ----------
    symbol : str
        Venue symbol, e.g. ``"XBTUSD"``.
    kind : {"perpetual", "future", "spot_margin"}
    settlement : {"linear", "inverse", "quanto"}
        Linear: size in base units, money in quote. Inverse: size in contracts of
        ``contract_size`` quote each, money in base. Quanto: size in contracts,
        ``contract_size`` is the multiplier (settlement coin per quote unit of price).
    contract_size : float
        See ``settlement``; 1.0 for linear.
    tick_size, lot_size : float
        Price tick (quote) and size step (base units or contracts); 0 = no rounding.
    maker_fee, taker_fee : float
        Fractions of notional (0.0005 = 5 bp). A negative maker fee is a rebate (> -0.01).
    tiers : TierTable
        Maintenance-margin table, floors in the account currency.
    max_leverage : float
        Instrument-wide maximum; the effective one is ``max_leverage_at(notional)``.
    rules : {"simple", "bitmex", "binance"}
        Which venue formulas decide IM, MM and liquidation (SPEC §3).
    funding_interval_hours : float or None
        Nominal funding interval of a perpetual, for display and annualising only; the
        simulation takes funding times from the data (SPEC §6).
    expiry : pandas.Timestamp or None
        Expiry of a ``future`` (tz-aware; converted to UTC). Strings are parsed.
    borrow_rate : float or None
        ``spot_margin`` only: interest per hour, a fraction (daily rate / 24).
    liquidation_margin_level : float or None
        ``spot_margin`` only: liquidated when assets / (liabilities + interest) <= it.
    base_currency, quote_currency : str
        E.g. ``"BTC"``, ``"USDT"``.
    settlement_currency : str or None
        The coin money is counted in, when it is neither: required for quanto (``"XBT"``).
        Defaults to the quote (linear) or the base (inverse).
    """

    symbol: str
    kind: str
    settlement: str
    contract_size: float = 1.0
    tick_size: float = 0.0
    lot_size: float = 0.0
    maker_fee: float = 0.0
    taker_fee: float = 0.0
    tiers: TierTable
    max_leverage: float
    rules: str
    funding_interval_hours: float | None = None
    expiry: pd.Timestamp | None = None
    borrow_rate: float | None = None
    liquidation_margin_level: float | None = None
    base_currency: str
    quote_currency: str
    settlement_currency: str | None = None

    def __post_init__(self) -> None:
        owner = f"Instrument({self.symbol!r})" if isinstance(self.symbol, str) else "Instrument"
        _text("Instrument", "symbol", self.symbol)
        _choice(owner, "kind", self.kind, _KIND_CODES)
        _choice(owner, "settlement", self.settlement, _SETTLEMENT_CODES)
        _choice(owner, "rules", self.rules, _RULES_CODES)
        for name in ("base_currency", "quote_currency"):
            _text(owner, name, getattr(self, name))
        if not isinstance(self.tiers, TierTable):
            raise TypeError(f"{owner}: tiers must be a TierTable; got "
                            f"{type(self.tiers).__name__}. Fix: TierTable.single(mmr=0.005) "
                            f"for one maintenance rate.")
        self._set_numbers(owner)
        self._check_kind(owner)
        if self.settlement == "quanto":
            if self.settlement_currency is None:
                raise ValueError(f"{owner}: a quanto instrument needs settlement_currency "
                                 f"(the coin the multiplier is in), e.g. 'XBT'.")
        if self.settlement_currency is not None:
            _text(owner, "settlement_currency", self.settlement_currency)

    def _set_numbers(self, owner: str) -> None:
        cs = _finite(owner, "contract_size", self.contract_size)
        if cs <= 0.0:
            raise ValueError(f"{owner}: contract_size must be > 0 (inverse: quote value of one "
                             f"contract, e.g. 1 USD; quanto: multiplier, e.g. 1e-6); got {cs!r}.")
        values = {"contract_size": cs}
        for name in ("tick_size", "lot_size"):
            v = _finite(owner, name, getattr(self, name))
            if v < 0.0:
                raise ValueError(f"{owner}: {name} must be >= 0 (0 = no rounding); got {v!r}.")
            values[name] = v
        for name in ("maker_fee", "taker_fee"):
            values[name] = _rate(owner, name, getattr(self, name), low=_MIN_FEE,
                                 what="a fee rate", example="0.0005 = 5 bp, -0.00025 rebate")
        lev = _finite(owner, "max_leverage", self.max_leverage)
        if lev < 1.0:
            raise ValueError(f"{owner}: max_leverage must be >= 1 (a multiple, 10 = 10x); "
                             f"got {lev!r}.")
        mmr0 = self.tiers.mmr[0]
        if mmr0 * lev > 1.0 + 1e-12:
            raise ValueError(f"{owner}: max_leverage={lev!r} with the first tier's mmr={mmr0!r} "
                             f"would liquidate at entry. Fix: max_leverage <= 1/mmr "
                             f"= {1.0 / mmr0:g}.")
        values["max_leverage"] = lev
        for name, v in values.items():
            object.__setattr__(self, name, v)

    def _check_kind(self, owner: str) -> None:
        perp, fut, spot = (self.kind == k for k in ("perpetual", "future", "spot_margin"))
        if self.funding_interval_hours is not None:
            if not perp:
                raise ValueError(f"{owner}: funding_interval_hours applies to perpetuals only; "
                                 f"got {self.funding_interval_hours!r} for kind={self.kind!r}. "
                                 f"Fix: funding_interval_hours=None.")
            hours = _finite(owner, "funding_interval_hours", self.funding_interval_hours)
            if hours <= 0.0:
                raise ValueError(f"{owner}: funding_interval_hours must be > 0, e.g. 8; "
                                 f"got {hours!r}.")
            object.__setattr__(self, "funding_interval_hours", hours)
        if fut != (self.expiry is not None):
            raise ValueError(f"{owner}: expiry is required for kind='future' and not allowed "
                             f"otherwise; got kind={self.kind!r}, expiry={self.expiry!r}. Fix: "
                             f"expiry=pd.Timestamp('2024-12-27 12:00', tz='UTC') for a future.")
        if fut:
            object.__setattr__(self, "expiry", _utc_timestamp(owner, self.expiry))
        for name in ("borrow_rate", "liquidation_margin_level"):
            if spot != (getattr(self, name) is not None):
                raise ValueError(f"{owner}: {name} is required for kind='spot_margin' and not "
                                 f"allowed otherwise; got kind={self.kind!r}, "
                                 f"{name}={getattr(self, name)!r}.")
        if spot:
            rate = _rate(owner, "borrow_rate", self.borrow_rate, what="an hourly interest rate",
                         example="0.0002/24 for 0.02 % a day")
            level = _finite(owner, "liquidation_margin_level", self.liquidation_margin_level)
            if level <= 1.0:
                raise ValueError(f"{owner}: liquidation_margin_level must be > 1 (assets / "
                                 f"liabilities, e.g. 1.1); got {level!r}.")
            if self.settlement != "linear":
                raise ValueError(f"{owner}: spot_margin instruments are linear (size in base "
                                 f"units, money in quote); got settlement={self.settlement!r}.")
            object.__setattr__(self, "borrow_rate", rate)
            object.__setattr__(self, "liquidation_margin_level", level)

    # -- codes for the kernels ----------------------------------------------------------
    @property
    def settlement_code(self) -> int:
        """``contracts.LINEAR`` / ``INVERSE`` / ``QUANTO``."""
        return _SETTLEMENT_CODES[self.settlement]

    @property
    def rules_code(self) -> int:
        """``contracts.RULES_SIMPLE`` / ``RULES_BINANCE`` / ``RULES_BITMEX``."""
        return _RULES_CODES[self.rules]

    @property
    def kind_code(self) -> int:
        """0 perpetual, 1 future, 2 spot_margin."""
        return _KIND_CODES[self.kind]

    @property
    def expiry_ns(self) -> int | None:
        """Expiry as int64 nanoseconds since the epoch (UTC), or None."""
        return None if self.expiry is None else int(self.expiry.value)

    @property
    def account_currency(self) -> str:
        """Currency of equity, margin, fees and PnL (SPEC §1): quote for linear, base for
        inverse, the settlement coin for quanto (e.g. ``"XBT"`` for BitMEX ETHUSD)."""
        if self.settlement_currency is not None:
            return self.settlement_currency
        return self.quote_currency if self.settlement == "linear" else self.base_currency

    @property
    def size_unit(self) -> str:
        """What ``size`` counts: ``"BTC"`` (linear base units) or ``"contracts"``."""
        return self.base_currency if self.settlement == "linear" else "contracts"

    def max_leverage_at(self, notional: float) -> float:
        """Maximum leverage for a position of ``notional`` (account ccy): the smaller of the
        instrument's maximum and its tier row's."""
        return min(self.max_leverage, self.tiers.max_leverage[self.tiers.row(notional)])

    def replace(self, **changes: object) -> Instrument:
        """A copy with ``changes`` applied, validated again."""
        names = [f.name for f in dataclasses.fields(self) if f.init]
        unknown = [k for k in changes if k not in names]
        if unknown:
            raise TypeError(f"Instrument.replace: unknown field {unknown[0]!r}."
                            f"{_suggest(unknown[0], names)} Fields: {', '.join(names)}.")
        return dataclasses.replace(self, **changes)

    @classmethod
    def simple(cls, mmr: float = 0.005, taker_fee: float = 0.0, maker_fee: float = 0.0,
               settlement: str = "linear", kind: str = "perpetual",
               expiry: pd.Timestamp | str | None = None, borrow_rate: float | None = None,
               max_leverage: float | None = None,
               liquidation_margin_level: float | None = None, contract_size: float = 1.0,
               tick_size: float = 0.0) -> Instrument:
        """A one-tier ``simple``-rules instrument for examples and tests (SPEC §10).

        Liquidation at ``E * (1 - 1/L + mmr)`` (long, linear). ``max_leverage=None`` means
        ``1/mmr`` capped at 1000 (1000 when ``mmr`` is 0; 200 for the default 0.5 %).
        For ``kind="spot_margin"``: ``borrow_rate=None`` means 0 interest,
        ``liquidation_margin_level=None`` means 1.1 (Binance Cross), and ``max_leverage=None``
        means 3 (Binance Cross 3x). Currencies: BTC/USDT (linear), BTC/USD (inverse),
        ETH/USD settled in BTC (quanto). No lot rounding, no funding interval.
        """
        spot = kind == "spot_margin"
        if spot:
            borrow_rate = 0.0 if borrow_rate is None else borrow_rate
            liquidation_margin_level = (1.1 if liquidation_margin_level is None
                                        else liquidation_margin_level)
            max_leverage = 3.0 if max_leverage is None else max_leverage
        tiers = TierTable.single(mmr, max_leverage=max_leverage)
        base, quote, coin = {"linear": ("BTC", "USDT", None), "inverse": ("BTC", "USD", None),
                             "quanto": ("ETH", "USD", "BTC")}.get(settlement, ("BTC", "USDT",
                                                                                None))
        return cls(symbol=f"SIMPLE-{str(settlement).upper()}", kind=kind, settlement=settlement,
                   contract_size=contract_size, tick_size=tick_size, maker_fee=maker_fee,
                   taker_fee=taker_fee, tiers=tiers, max_leverage=tiers.max_leverage[0],
                   rules="simple", expiry=expiry, borrow_rate=borrow_rate,
                   liquidation_margin_level=liquidation_margin_level, base_currency=base,
                   quote_currency=quote, settlement_currency=coin)


def _utc_timestamp(owner: str, value: object) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: expiry must be a timestamp; got {value!r}.") from None
    if ts is pd.NaT:
        raise ValueError(f"{owner}: expiry must be a timestamp; got {value!r}.")
    if ts.tzinfo is None:
        raise ValueError(f"{owner}: expiry {value!r} has no time zone. Fix: "
                         f"pd.Timestamp({str(value)!r}, tz='UTC').")
    return ts.tz_convert("UTC")
