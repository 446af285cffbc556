"""``run({"BTC": m1, "ETH": m2}, ...)``: several markets, one wallet (SPEC §5, §10).

Owns the checks that the markets share one bar index, the packing of their arrays for
``kernels/portfolio.py`` and ``PortfolioResult``. The bar logic is the single-market step's.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from backtest.kernels import records as R
from backtest.kernels.portfolio import simulate_portfolio
from backtest.metrics import compute_stats
from backtest.params import SIGNAL_NAMES, encode, prepare_signal, validate_params
from backtest.result import trades_frame


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
        from backtest.engine import expiry_settlement, instrument_arrays, market_arrays, signal_mask

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
        out = simulate_portfolio(rows, self.md, self.insts, self.tiers, self.masks,
                                 self.bar_ns)
        shown = {**prms[0], **{k: params[k] for k in _PER_MARKET if k in params}}
        return PortfolioResult(markets=self.markets, params=shown, raw=out,
                               signals=self.masks)


class PortfolioResult:
    """Combined equity and wallet, per-market series, trades and events with a ``market``
    column, and stats of the combined equity (SPEC §8 keys)."""

    def __init__(self, *, markets: Mapping[str, Any], params: dict[str, Any],
                 raw: tuple[np.ndarray, ...], signals: np.ndarray | None = None) -> None:
        self.markets = dict(markets)
        self._signals = signals  # the kernel's bitmasks, for the fingerprint
        self.names = list(markets)
        self.params = params
        self._equity, self._wallet, self._per_market, self._trades, self._trade_market, \
            self._events, self._event_market, self._min_liq_distance = raw
        self.index = markets[self.names[0]].index

    @cached_property
    def equity(self) -> pd.Series:
        """Wallet plus every position's uPnL at its mark close (account currency)."""
        return pd.Series(self._equity, index=self.index, name="equity")

    @cached_property
    def wallet(self) -> pd.Series:
        return pd.Series(self._wallet, index=self.index, name="wallet")

    def _frame(self, row: int) -> pd.DataFrame:
        return pd.DataFrame(self._per_market[:, row, :].T, index=self.index, columns=self.names)

    @cached_property
    def position(self) -> pd.DataFrame:
        """Signed size per market (columns) and bar."""
        return self._frame(0)

    @cached_property
    def margin(self) -> pd.DataFrame:
        return self._frame(1)

    @cached_property
    def liquidation_price(self) -> pd.DataFrame:
        """Isolated: each position's liquidation price. Cross: NaN — the liquidation is of
        the whole portfolio (wallet + Σ uPnL ≤ Σ MM), not at one market's price."""
        return self._frame(2)

    @cached_property
    def funding(self) -> pd.DataFrame:
        return self._frame(3)

    @cached_property
    def trades(self) -> pd.DataFrame:
        """SPEC §8 trades of every market, with a ``market`` column, by exit time."""
        frame = trades_frame(self._trades, self.index)
        frame.insert(0, "market", [self.names[j] for j in self._trade_market])
        return frame.sort_values(["exit_time", "market"], kind="stable").reset_index(drop=True)

    @cached_property
    def events(self) -> pd.DataFrame:
        rows = self._events
        return pd.DataFrame({
            "market": [self.names[j] for j in self._event_market],
            "time": self.index[rows[:, R.E_BAR].astype(np.int64)],
            "kind": [R.EVENT_KINDS[int(c)] for c in rows[:, R.E_KIND]],
            "value": rows[:, R.E_VALUE],
        })

    @cached_property
    def pnl_by_market(self) -> pd.DataFrame:
        """What each market made or lost: pnl, funding, fees, liquidations."""
        t = self.trades
        grouped = t.groupby("market")
        out = pd.DataFrame({
            "pnl": grouped["pnl"].sum(),
            "funding": grouped["funding"].sum(),
            "fees": grouped["fees"].sum(),
            "n_trades": grouped.size(),
            "n_liquidations": grouped["exit_reason"].apply(lambda r: int((r == "liquidation")
                                                                         .sum())),
        }).reindex(self.names)
        return out.fillna({"pnl": 0.0, "funding": 0.0, "fees": 0.0, "n_trades": 0,
                           "n_liquidations": 0})

    @cached_property
    def fingerprint(self) -> str:
        """Short SHA-256 of the markets, parameters and signals (``backtest.fingerprint``)."""
        from backtest.fingerprint import fingerprint

        return fingerprint(self.markets, self.params, self._signals)

    @cached_property
    def stats(self) -> pd.Series:
        """SPEC §8 stats of the combined equity curve, then ``version`` and ``fingerprint``."""
        from backtest import __version__

        out = self._stats()
        out["version"] = __version__
        out["fingerprint"] = self.fingerprint
        return out

    def _stats(self) -> pd.Series:
        exposed = int((self.position != 0).any(axis=1).sum())
        first = self.markets[self.names[0]]
        return compute_stats(
            self._equity, self.trades, self.params["initial_capital"], float(first.bar_ns),
            exposed_bars=exposed,
            n_ambiguous=int((self.events["kind"] == "ambiguous_bar").sum()),
            funding_paid=float(self.funding.to_numpy().sum()),
            min_liq_distance=float(self._min_liq_distance),
            ruined=bool(self._equity[-1] <= 0.0))

    def plot(self, **kwargs: Any) -> Any:
        """Combined equity, prices, P&L, margin use, positions and funding by market (a
        Figure; ``backtest.plotting.plot_portfolio``)."""
        from backtest.plotting import plot_portfolio

        return plot_portfolio(self, **kwargs)

    def report(self, path: str) -> PortfolioResult:
        """Write a self-contained HTML report to ``path`` and return self."""
        from backtest.report_portfolio import write_portfolio_report

        write_portfolio_report(self, path)
        return self

    def __repr__(self) -> str:
        s = self.stats
        return (f"<PortfolioResult {'+'.join(self.names)} {self.params['leverage']:g}x "
                f"{self.params['margin_mode']}: final equity {s['final_equity']:.6g} "
                f"({s['total_return']:+.2%}), {s['n_trades']} trades, "
                f"{s['n_liquidations']} liquidations>")
