"""``run({"BTC": m1, "ETH": m2}, ...)``: several markets, one wallet (SPEC §5, §10).

Owns the checks that the markets share one bar index, the packing of their arrays for
``kernels/portfolio.py`` and ``PortfolioResult``. The bar logic is the single-market step's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from backtest.kernels.portfolio import simulate_portfolio
from backtest.results.portfolio import PortfolioResult
from backtest.simulation.arrays import (
    expiry_settlement,
    instrument_arrays,
    market_arrays,
    signal_mask,
)
from backtest.simulation.compile_notice import SECONDS, notify_compiling
from backtest.simulation.parallel_compile import two_core_compile
from backtest.simulation.params import SIGNAL_NAMES, encode, prepare_signal, validate_params


def _check_aligned(markets: Mapping[str, Any]) -> None:
    names = list(markets)
    if len(names) < 1:
        raise ValueError("run(): the portfolio dict is empty; pass {'BTC': market, ...}.")
    first = markets[names[0]]
    for name in names[1:]:
        other = markets[name]
        if other.bar_ns != first.bar_ns:
            raise ValueError(f"run(): market {name!r} has bars every {other.bar_ns / 6e10:g} min "
                             f"but {names[0]!r} every {first.bar_ns / 6e10:g} min; a portfolio "
                             "needs one bar index. Resample to a common interval.")
        if not np.array_equal(other.index_ns, first.index_ns):
            a, b = first.index, other.index
            only_a = a.difference(b)
            only_b = b.difference(a)
            where = (f"{len(only_a)} bar(s) only in {names[0]!r} (first {only_a[0]})"
                     if len(only_a) else f"{len(only_b)} bar(s) only in {name!r} "
                     f"(first {only_b[0]})")
            raise ValueError(f"run(): markets {names[0]!r} and {name!r} are not on one bar "
                             f"index: {where}. Load them with the same start=/end= "
                             f"(common span {max(a[0], b[0])} -> {min(a[-1], b[-1])}).")


def _signals_for(name: str, markets: Mapping[str, Any], signal: Any) -> dict[str, Any]:
    if signal is None:
        return dict.fromkeys(markets)
    if not isinstance(signal, Mapping):
        raise TypeError(f"run(): with several markets, {name} must be a dict keyed by market "
                        f"name ({list(markets)}), got {type(signal).__name__}.")
    unknown = set(signal) - set(markets)
    if unknown:
        raise ValueError(f"run(): {name} has signals for unknown market(s) {sorted(unknown)}; "
                         f"the markets are {list(markets)}.")
    return {m: signal.get(m) for m in markets}


def _pack_tiers(instruments: list[Any]) -> np.ndarray:
    """Flat tier tables ``(n_markets, 4 * rows)``, each column padded to the longest table
    with +inf floors (never selected) and the last row's values."""
    tables = [inst.tiers.arrays() for inst in instruments]
    rows = max(len(t[0]) for t in tables)
    packed = np.empty((len(tables), 4 * rows))
    for j, table in enumerate(tables):
        for k, column in enumerate(table):
            block = packed[j, k * rows:(k + 1) * rows]
            block[:len(column)] = column
            block[len(column):] = np.inf if k == 0 else column[-1]
    return packed


_PER_MARKET = ("settlement_price", "borrow_rate")   # may be dicts keyed by market name


def _check_kinds(markets: Mapping[str, Any]) -> None:
    """One account: one currency; derivatives (perpetuals, futures) or spot margin."""
    currencies = {name: m.instrument.account_currency for name, m in markets.items()}
    if len(set(currencies.values())) > 1:
        raise ValueError(f"run(): a portfolio has one wallet in one currency; the markets "
                         f"settle in {currencies}. Run each currency's markets as a separate "
                         "portfolio (e.g. linear USDT contracts apart from inverse ones).")
    kinds = {name: m.instrument.kind for name, m in markets.items()}
    if "spot_margin" in kinds.values():
        if set(kinds.values()) != {"spot_margin"}:
            raise ValueError(f"run(): spot margin is a separate account from derivatives at "
                             f"every exchange; got kinds {kinds}. Run the spot-margin markets "
                             "as their own portfolio.")


def _market_params(names: list[str], params: dict[str, Any]) -> list[dict[str, Any]]:
    """``params`` per market: a dict-valued ``settlement_price``/``borrow_rate`` is split."""
    out = [dict(params) for _ in names]
    for key in _PER_MARKET:
        value = params.get(key)
        if not isinstance(value, Mapping):
            continue
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(f"run(): {key} names unknown market(s) {sorted(unknown)}; the "
                             f"markets are {names}.")
        for j, name in enumerate(names):
            out[j][key] = value.get(name)
    return out


def run_portfolio(markets: Mapping[str, Any], entries: Any = None, exits: Any = None,
                  short_entries: Any = None, short_exits: Any = None,
                  **params: Any) -> PortfolioResult:
    """Simulate several markets with one wallet; the same parameters apply to every market.

    Signals are dicts keyed by market name (a missing name means no signal);
    ``settlement_price`` (dated futures) and ``borrow_rate`` (spot margin) may be dicts too.
    In ``margin_mode="cross"`` the wallet backs every position and the portfolio is
    liquidated when ``wallet + Σ uPnL(mark) ≤ Σ MM`` (kernels/portfolio.py); in
    ``"isolated"`` each position risks only its margin. Rules: docs/semantics.md,
    "Portfolios".
    """
    inputs = PortfolioInputs(markets, (entries, exits, short_entries, short_exits), params)
    return inputs.run(params)


class PortfolioInputs:
    """The portfolio kernel's market, instrument, tier and signal arrays, built once.

    ``params`` fixes what shapes those arrays (``settlement_price``, ``borrow_rate`` and
    the margin mode's kind rules); :meth:`run` then simulates any parameter set that
    agrees on them — what a portfolio sweep does for every combination.
    """

    def __init__(self, markets: Mapping[str, Any], signals: tuple[Any, Any, Any, Any],
                 params: Mapping[str, Any]) -> None:
        _check_aligned(markets)
        self.markets = dict(markets)
        self.names = names = list(markets)
        first = markets[names[0]]
        self.bar_ns = float(first.bar_ns)
        prms = self.validate(params)
        per_signal = [_signals_for(n, markets, s) for n, s in
                      zip(SIGNAL_NAMES, signals, strict=True)]
        self.masks = np.empty((len(names), first.n_bars), dtype=np.uint8)
        for j, name in enumerate(names):
            cols = [prepare_signal(f"{sig}[{name!r}]", per_signal[i][name], first.index)
                    for i, sig in enumerate(SIGNAL_NAMES)]
            self.masks[j] = signal_mask(*cols)[:, 0]
        self.md = np.stack([market_arrays(markets[n], prm["borrow_rate"])
                            for n, prm in zip(names, prms, strict=True)])
        self.insts = np.stack([instrument_arrays(markets[n].instrument,
                                                 *expiry_settlement(markets[n],
                                                                    prm["settlement_price"]))[0]
                               for n, prm in zip(names, prms, strict=True)])
        self.tiers = _pack_tiers([markets[n].instrument for n in names])

    def validate(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every market's complete parameters (``validate_params`` errors and warnings)."""
        _check_kinds(self.markets)
        return [validate_params(self.markets[n].instrument, **kw)
                for n, kw in zip(self.names, _market_params(self.names, dict(params)),
                                 strict=True)]

    def run(self, params: Mapping[str, Any],
            validated: list[dict[str, Any]] | None = None) -> PortfolioResult:
        """Simulate one parameter set (``validated``: its :meth:`validate` output)."""
        prms = self.validate(params) if validated is None else validated
        rows = np.stack([encode(prm) for prm in prms])       # fees follow each instrument
        notify_compiling(simulate_portfolio, seconds=SECONDS["portfolio"])
        two_core_compile(simulate_portfolio)
        out = simulate_portfolio(rows, self.md, self.insts, self.tiers, self.masks,
                                 self.bar_ns)
        shown = {**prms[0], **{k: params[k] for k in _PER_MARKET if k in params}}
        return PortfolioResult(markets=self.markets, params=shown, raw=out,
                               signals=self.masks)
