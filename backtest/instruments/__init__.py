"""Instruments: what is traded and under which venue rules.

Owns ``Instrument`` (settlement, venue rules, fees, contract size, tick and lot, expiry,
borrow rate), maintenance-margin tier tables with their effective dates, and the venue
presets looked up by name (``binance:BTCUSDT``, ``bitmex:XBTUSD``, ...).

May import: ``backtest.checks``, ``backtest.errors`` and ``backtest.kernels.contracts``
(the codes and the maths of the rules). Must not import data, simulation or anything above.
"""

from backtest.instruments.instrument import Instrument
from backtest.instruments.presets import get_instrument, list_instruments
from backtest.instruments.tiers import TierTable

__all__ = ["Instrument", "TierTable", "get_instrument", "list_instruments"]
