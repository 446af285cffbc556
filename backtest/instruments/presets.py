"""Venue presets (SPEC §3): instruments with their tier tables, dated and sourced, and the
lookup by name (``get_instrument``, ``list_instruments``).

Data, not logic: every table says where it comes from and from when, because exchanges
change them. Imports ``backtest.instruments`` only (for ``Instrument`` and ``TierTable``).
"""

from __future__ import annotations

import difflib

import pandas as pd

from backtest.instruments.instrument import Instrument
from backtest.instruments.tiers import TierTable

_BINANCE_BTCUSDT_ROWS = (  # (floor USDT, mmr, cum USDT, max leverage)
    (0, 0.004, 0, 125), (50_000, 0.005, 50, 100), (600_000, 0.0065, 950, 75),
    (3_000_000, 0.01, 11_450, 50), (12_000_000, 0.02, 131_450, 25),
    (70_000_000, 0.025, 481_450, 20), (100_000_000, 0.05, 2_981_450, 10),
    (230_000_000, 0.1, 14_481_450, 5), (480_000_000, 0.125, 26_481_450, 4),
    (600_000_000, 0.15, 41_481_450, 3), (800_000_000, 0.25, 121_481_450, 2),
    (1_200_000_000, 0.5, 421_481_450, 1),
)

_BINANCE_BTCUSD_PERP_ROWS = (  # (floor BTC, mmr, cum BTC, max leverage)
    (0, 0.004, 0.0, 125), (5, 0.005, 0.005, 100), (10, 0.01, 0.055, 50),
    (20, 0.025, 0.355, 20), (50, 0.05, 1.605, 10), (100, 0.10, 6.605, 5),
    (200, 0.125, 11.605, 4),
)


def _binance_perpetuals() -> tuple[Instrument, Instrument]:
    """Binance USDⓈ-M BTCUSDT and COIN-M BTCUSD_PERP."""
    binance_btcusdt = Instrument(
        symbol="BTCUSDT", kind="perpetual", settlement="linear", contract_size=1.0,
        tick_size=0.1, lot_size=0.001, maker_fee=0.0002, taker_fee=0.0005,
        tiers=TierTable.from_rows(
            _BINANCE_BTCUSDT_ROWS, effective_date="2024-10-24",
            source="Binance USDⓈ-M BTCUSDT leverage brackets, ccxt fetch_leverage_tiers "
                   "snapshot in freqtrade/freqtrade@c9ae5e1e9ff2 "
                   "freqtrade/exchange/binance_leverage_tiers.json (committed 2024-10-24); "
                   "case binance-btcusdt-brackets-2024-10"),
        max_leverage=125.0, rules="binance", funding_interval_hours=8.0,
        base_currency="BTC", quote_currency="USDT")
    binance_btcusd_perp = Instrument(
        symbol="BTCUSD_PERP", kind="perpetual", settlement="inverse", contract_size=100.0,
        tick_size=0.1, lot_size=1.0, maker_fee=0.0002, taker_fee=0.0005,
        tiers=TierTable.from_rows(
            _BINANCE_BTCUSD_PERP_ROWS, effective_date="2021-07-27",
            source="Binance FAQ 'Leverage and Margin in Coin-Margined Futures Contracts' "
                   "(page version with the 2021-07-27 note): BTCUSD perpetual max position "
                   "5/10/20/50/100/200/400 BTC at 125/100/50/20/10/5/4x; MMR = half the "
                   "initial rate, as in every Binance table of 2021; cum from the FAQ "
                   "definition, giving 12.5 % / 11.605 BTC at 300 BTC as in 'How to Calculate "
                   "Liquidation Price of COIN-M Futures Contracts' (case "
                   "binance-coinm-btcusd-cross-long). Rows above 400 BTC (3x and below) are "
                   "not sourced and left out: larger positions use the 200-400 BTC row, which "
                   "understates their margin."),
        max_leverage=125.0, rules="binance", funding_interval_hours=8.0,
        base_currency="BTC", quote_currency="USD")
    return binance_btcusdt, binance_btcusd_perp


def _bitmex_perpetuals() -> tuple[Instrument, Instrument]:
    """BitMEX XBTUSD (inverse) and ETHUSD (quanto)."""
    bitmex_xbtusd = Instrument(
        symbol="XBTUSD", kind="perpetual", settlement="inverse", contract_size=1.0,
        tick_size=0.5, lot_size=100.0, maker_fee=-0.00025, taker_fee=0.00075,
        tiers=TierTable.risk_limit_steps(
            0.005, 0.01, 200.0, 150.0, 3, effective_date="2021-08-31",
            source="BitMEX 'Risk Limits Examples' (https://bitmex.com/app/riskLimitsExamples): "
                   "base MM 0.50 %, IM 1.00 %, base risk limit 200 XBT, each step adds 0.50 % "
                   "to MM and IM (case bitmex-risk-limit-step-example); step 150 XBT from "
                   "2021-08-31 06:00 UTC (BitMEX announcement, was 100 XBT). Only the four "
                   "documented rows (< 650 XBT) are included. Base MM has varied (0.45 % from "
                   "2020-04-17, 0.40 % from 2020-05-05); fees 0.075 % taker / -0.025 % maker "
                   "rebate; lot 100 contracts (it was 1 in early years)."),
        max_leverage=100.0, rules="bitmex", funding_interval_hours=8.0,
        base_currency="XBT", quote_currency="USD")
    bitmex_ethusd = Instrument(
        symbol="ETHUSD", kind="perpetual", settlement="quanto", contract_size=1e-6,
        tick_size=0.05, lot_size=1.0, maker_fee=-0.00025, taker_fee=0.00075,
        tiers=TierTable.risk_limit_steps(
            0.01, 0.02, 50.0, 50.0, 0, effective_date="2020-04-16",
            source="BitMEX ETHUSD quanto, multiplier 0.000001 XBT per USD; base IM 2.00 % "
                   "(blog 'Quanto for speculators', case bitmex-quanto-ethusd-initial-margin), "
                   "base MM 1.00 % and base risk limit 50 XBT before the 2020-04-17 reduction "
                   "(BitMEX blog 'Reduction in Base Maintenance Margin - 17 April 2020'). The "
                   "risk step of that date is not sourced, so only the base row is included: "
                   "positions above 50 XBT keep base margins (understated)."),
        max_leverage=50.0, rules="bitmex", funding_interval_hours=8.0,
        base_currency="ETH", quote_currency="USD", settlement_currency="XBT")
    return bitmex_xbtusd, bitmex_ethusd


def _build_presets() -> dict[str, Instrument]:
    binance_btcusdt, binance_btcusd_perp = _binance_perpetuals()
    bitmex_xbtusd, bitmex_ethusd = _bitmex_perpetuals()
    binance_margin = Instrument(
        symbol="BTCUSDT", kind="spot_margin", settlement="linear", tick_size=0.01,
        lot_size=0.00001, maker_fee=0.001, taker_fee=0.001,
        tiers=TierTable.single(0.0, max_leverage=3.0, effective_date="2019-07-11",
                               source="spot margin has no maintenance tiers; liquidation is "
                                      "by margin level (liquidation_margin_level)"),
        max_leverage=3.0, rules="simple", borrow_rate=0.0002 / 24,
        liquidation_margin_level=1.1, base_currency="BTC", quote_currency="USDT")
    return {
        "binance:BTCUSDT": binance_btcusdt,
        "binance:BTCUSD_PERP": binance_btcusd_perp,
        "bitmex:XBTUSD": bitmex_xbtusd,
        "bitmex:ETHUSD": bitmex_ethusd,
        # Binance FAQ 'Binance Margin Level and Risk Control' (Cross 3x: liquidation at margin
        # level <= 1.1) and 'Daily Interest Rate for Binance Margin Trading' (example daily
        # rate 0.02 %, charged per started hour); fees: spot 0.1 %. Rates vary by asset/VIP.
        "binance-margin:BTCUSDT": binance_margin,
        # The same FAQ: Cross Margin 5x also liquidates at margin level <= 1.1 (its margin
        # call is at 1.16 instead of 1.3); the FAQ's date as for the 3x account.
        "binance-margin-5x:BTCUSDT": binance_margin.replace(
            max_leverage=5.0, tiers=TierTable.single(
                0.0, max_leverage=5.0, effective_date="2019-07-11",
                source="Cross Margin 5x: no maintenance tiers; liquidation is by margin "
                       "level (liquidation_margin_level)")),
        # Dated futures (SPEC §7). BitMEX quarterlies expire at 12:00 UTC on the last Friday
        # of the quarter, Binance USDⓈ-M quarterlies deliver at 08:00 UTC on that Friday.
        # Margin tables: the perpetual's of the same venue (the quarterlies' own brackets are
        # not sourced here), so treat their maintenance margins as approximate.
        "bitmex:XBTZ24": bitmex_xbtusd.replace(
            symbol="XBTZ24", kind="future", funding_interval_hours=None,
            expiry=pd.Timestamp("2024-12-27 12:00", tz="UTC")),
        "binance:BTCUSDT_241227": binance_btcusdt.replace(
            symbol="BTCUSDT_241227", kind="future", funding_interval_hours=None,
            expiry=pd.Timestamp("2024-12-27 08:00", tz="UTC")),
        "linear": Instrument.simple(mmr=0.005).replace(symbol="LINEAR"),
        "inverse": Instrument.simple(mmr=0.005, settlement="inverse").replace(symbol="INVERSE"),
        "quanto": Instrument.simple(mmr=0.005, settlement="quanto",
                                    contract_size=1e-6).replace(symbol="QUANTO"),
        # Rule-only names: a representative instrument of each rule set.
        "simple": Instrument.simple(),
        "binance": binance_btcusdt,
        "bitmex": bitmex_xbtusd,
    }


_PRESETS: dict[str, Instrument] = _build_presets()


def list_instruments() -> list[str]:
    """Names accepted by ``get_instrument`` (presets and the rule-only names)."""
    return sorted(_PRESETS)


def get_instrument(name_or_instrument: str | Instrument) -> Instrument:
    """The ``Instrument`` for a preset name, or the instrument itself.

    Names: venue presets (``"bitmex:XBTUSD"``, ``"binance:BTCUSDT"``, ...), generic
    ``"linear"``/``"inverse"``/``"quanto"``, and rule names ``"simple"`` (``Instrument.simple()``),
    ``"binance"`` (``binance:BTCUSDT``), ``"bitmex"`` (``bitmex:XBTUSD``). Matching ignores case.
    """
    if isinstance(name_or_instrument, Instrument):
        return name_or_instrument
    if not isinstance(name_or_instrument, str):
        raise TypeError(f"get_instrument: expected a preset name (str) or an Instrument; got "
                        f"{type(name_or_instrument).__name__} {name_or_instrument!r}.")
    if name_or_instrument in _PRESETS:
        return _PRESETS[name_or_instrument]
    folded = {k.lower(): k for k in _PRESETS}
    key = folded.get(name_or_instrument.strip().lower())
    if key is not None:
        return _PRESETS[key]
    close = difflib.get_close_matches(name_or_instrument.lower(), list(folded), n=3, cutoff=0.5)
    hint = (f" Did you mean {' or '.join(repr(folded[c]) for c in close)}?" if close else "")
    raise ValueError(f"unknown instrument {name_or_instrument!r}.{hint} Known: "
                     f"{', '.join(list_instruments())}; or pass an Instrument, e.g. "
                     f"Instrument.simple(mmr=0.005).")
