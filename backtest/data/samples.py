"""The small real sample data shipped with the package, found from anywhere.

The five Parquet files (Binance BTCUSDT perpetual 1h last and mark bars and its funding;
BitMEX XBTUSD 1h bars and funding; sources in ``data/README.md`` of the repository) are
package data under ``backtest/data/sample_files/``, so an installed wheel, a notebook run from
its own folder and a script run from anywhere all find them the same way::

    import backtest as bt
    path = bt.sample_path("binance_btcusdt_perp_1h")   # one file
    m = bt.sample_market()      # the Binance perpetual with its mark prices and funding

May import the standard library only.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["SAMPLES", "list_samples", "sample_market", "sample_market_files", "sample_path"]

# name -> (file, what it is)
SAMPLES: dict[str, tuple[str, str]] = {
    "binance_btcusdt_perp_1h": (
        "binance_btcusdt_perp_1h.parquet",
        "Binance USDⓈ-M BTCUSDT perpetual, last-trade 1h bars, 2019-09-08 -> 2026-05-17"),
    "binance_btcusdt_perp_1h_mark": (
        "binance_btcusdt_perp_1h_mark.parquet",
        "the same contract's mark-price 1h bars, 2019-12-23 -> 2026-05-17 06:00"),
    "binance_btcusdt_perp_funding": (
        "binance_btcusdt_perp_funding.parquet",
        "the same contract's 8-hourly funding rates"),
    "bitmex_xbtusd_1h": (
        "bitmex_xbtusd_1h.parquet",
        "BitMEX XBTUSD inverse perpetual, last-trade 1h bars, 2016-05-13 -> 2023-07-07"),
    "bitmex_xbtusd_funding": (
        "bitmex_xbtusd_funding.parquet",
        "BitMEX XBTUSD funding rates (24h, then 8-hourly), 2016-05-14 -> 2020-11-05"),
}

# The Binance perpetual with its mark and funding: the README's, the demo's and the
# notebooks' market. The mark file ends at 2026-05-17 06:00 (bar open), hence ``end``.
_BINANCE_PERP = {"bars": "binance_btcusdt_perp_1h", "mark": "binance_btcusdt_perp_1h_mark",
                 "funding": "binance_btcusdt_perp_funding"}
_BITMEX_PERP = {"bars": "bitmex_xbtusd_1h", "funding": "bitmex_xbtusd_funding"}


def sample_path(name: str) -> Path:
    """The path of a shipped sample file, wherever the package is installed.

    Parameters
    ----------
    name : str
        A key of :data:`SAMPLES` (e.g. ``"binance_btcusdt_perp_1h"``); a trailing
        ``.parquet`` is accepted.

    Returns
    -------
    Path
        An existing file inside the installed package.

    Raises
    ------
    KeyError
        ``name`` is not a sample; the message lists them.
    """
    key = name[: -len(".parquet")] if name.endswith(".parquet") else name
    if key not in SAMPLES:
        import difflib

        close = difflib.get_close_matches(key, list(SAMPLES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"sample_path: {name!r} is not a shipped sample.{hint} Samples: "
                       f"{list(SAMPLES)} (see backtest.list_samples()).")
    ref = resources.files("backtest.data").joinpath("sample_files", SAMPLES[key][0])
    # The package is installed as files (setuptools, editable or not): a real path.
    return Path(str(ref))


def list_samples() -> dict[str, str]:
    """Name -> description of every shipped sample file."""
    return {k: what for k, (_, what) in SAMPLES.items()}


def sample_market_files(venue: str = "binance") -> dict[str, Path]:
    """``load_market`` file arguments of a shipped perpetual: ``{"bars", "mark", "funding"}``
    for ``venue="binance"`` (BTCUSDT, with mark prices), ``{"bars", "funding"}`` for
    ``venue="bitmex"`` (XBTUSD, no mark file)."""
    table = {"binance": _BINANCE_PERP, "bitmex": _BITMEX_PERP}
    if venue not in table:
        raise KeyError(f"sample_market_files: venue={venue!r}; choose 'binance' or 'bitmex'.")
    return {k: sample_path(v) for k, v in table[venue].items()}


# The span of each venue's files where every series is present (the Binance mark file
# ends at the bar opening 2026-05-17 06:00; 07:00 is the last bar of the last-price file
# and `end` is inclusive, kept as in the demo).
SAMPLE_SPANS = {"binance": ("2020-01-01", "2026-05-17 07:00"),
                "bitmex": ("2016-05-14 12:00", "2020-11-05 04:00")}
SAMPLE_INSTRUMENTS = {"binance": "binance:BTCUSDT", "bitmex": "bitmex:XBTUSD"}


def sample_market(venue: str = "binance", **kwargs: Any) -> Any:
    """A shipped perpetual as a :class:`~backtest.data.market.Market`, ready to run.

    ``venue="binance"``: BTCUSDT (``binance:BTCUSDT``) with last-price bars, mark-price bars
    and funding, from 2020-01-01 to 2026-05-17 07:00 UTC by default (the span the mark file
    covers). ``venue="bitmex"``: XBTUSD (``bitmex:XBTUSD``, inverse, account in BTC) with
    its funding, 2016-05-14 12:00 to 2020-11-05 04:00 (the funding file's span); no mark file, so
    liquidations use the last price (the run warns). ``kwargs`` (``start``, ``end``,
    ``instrument``, ``gaps``, ...) go to ``load_market`` and override these defaults.
    """
    from backtest.data.market import load_market

    files = sample_market_files(venue)
    start, end = SAMPLE_SPANS[venue]
    options = {"instrument": SAMPLE_INSTRUMENTS[venue], "start": start, "end": end, **kwargs}
    return load_market(**files, **options)
