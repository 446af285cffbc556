"""The plain reference simulator for portfolios: several markets, one wallet.

Written from ``SPEC.md`` §5 ("multi-market portfolio") and ``docs/semantics.md``
"Portfolios: several markets, one wallet" — never from ``backtest/kernels``. Each market is
one :class:`reference._Run` (the single-market oracle, unchanged bar logic) on a shared
account dict; this module adds only what a portfolio adds: the cross-margin portfolio test at
the start of every bar (for a cross spot-margin account, margin level across the account),
the free wallet for sizing (``_Run.available`` over its peers), the
combined equity, the portfolio's ruin and its stats.

Entry point: :func:`simulate_portfolio`. Choices where the documents are silent are marked
``CHOICE:``.
"""

from __future__ import annotations

import math

from reference import (
    EVENT_KINDS,
    INF,
    LONG,
    NAN,
    RUIN_TOLERANCE,
    _Run,
    clock_hours_started,
    compute_stats,
    notional,
    tier_index,
    upnl,
)


def maintenance(inst: dict, side: int, q: float, entry: float, price: float,
                next_funding_rate: float) -> float:
    """MM of one position with its mark at `price` (SPEC §3), the same maintenance the
    single-market liquidation prices of ``reference.liq_and_bankruptcy`` solve for.

    `binance`: ``notional(P)·mmr − cum`` with the row chosen by the notional at P. `simple`:
    ``mmr·notional(E)`` (SPEC §3's ``E·(1 − 1/L + mmr)`` is that maintenance), `bitmex` plus
    the funding reserve ``max(0, side·F)`` of the entry value.
    CHOICE: SPEC §5 writes ``Σ MM(mark)``; for `simple`/`bitmex` the maintenance is the
    rate of the entry value, so that a one-market cross portfolio liquidates where the
    single-market cross run does (semantics: "for one market this is the single-market
    definition").
    """
    if inst["rules"] == "binance":
        value = notional(inst, q, price)
        tier = inst["tiers"][tier_index(inst, value)]
        return value * tier["mmr"] - tier["maint_amount"]
    entry_value = notional(inst, q, entry)
    tier = inst["tiers"][tier_index(inst, entry_value)]
    rate = tier["mmr"]
    if inst["rules"] == "bitmex":
        rate += max(0.0, side * next_funding_rate)
    return rate * entry_value - tier.get("maint_amount", 0.0)


def margin_level_reserve(inst: dict, pos: dict, price: float, extra_interest: float) -> float:
    """A spot-margin position's term of a cross spot-margin account's test (semantics "Spot
    margin", summed over the account): margin level ≤ m ⟺ wallet + Σ uPnL ≤
    Σ (m − 1)(liabilities(price) + interest). A long owes its borrowed quote, a short its q
    base valued at `price`."""
    owed = pos["borrowed"] if pos["side"] == LONG else notional(inst, pos["q"], price)
    return (inst["margin_level"] - 1.0) * (owed + pos["interest"] + extra_interest)


def price_for_gross(inst: dict, side: int, q: float, entry: float, gross: float) -> float:
    """The exit price X with ``uPnL(X) = gross`` (SPEC §3 PnL solved for X)."""
    s = inst["settlement"]
    if s == "linear":
        return entry + gross / (side * q)
    if s == "inverse":
        inv = 1.0 / entry - gross / (side * q * inst["contract_size"])
        return 1.0 / inv if inv > 0.0 else INF
    return entry + gross / (side * q * inst["contract_size"])


class _Portfolio:
    def __init__(self, markets: dict[str, tuple[list[dict], dict]], params: dict,
                 per_market: dict[str, dict] | None = None):
        self.p = params
        self.names = list(markets)
        self.initial = float(params.get("initial_capital", 10_000.0))
        self.cross = params.get("margin_mode", "isolated") == "cross"
        self.account = {"wallet": self.initial}
        per_market = per_market or {}
        self.runs = {name: _Run(bars, {**params, **per_market.get(name, {})}, inst,
                                self.account)
                     for name, (bars, inst) in markets.items()}
        for name, run in self.runs.items():
            run.peers = [r for other, r in self.runs.items() if other != name]
            run.portfolio_cross = self.cross
        self.n = len(next(iter(markets.values()))[0])
        self.ruined = False
        self.liq_funding = dict.fromkeys(self.names, 0.0)

    @property
    def wallet(self) -> float:
        return self.account["wallet"]

    # ---- the portfolio test (semantics "Portfolios", step 1) ------------------------------
    def adverse_terms(self, run: _Run, t: int) -> tuple[float, float, float]:
        """(uPnL at the adverse mark extreme, this bar's funding payment — spot margin: the
        interest charged at this bar's open — and the maintenance there)."""
        pos, bar, inst = run.pos, run.bars[t], run.inst
        x = bar["mark_low"] if pos["side"] == LONG else bar["mark_high"]
        pay = 0.0
        if run.spot:
            owed = pos["borrowed"] if pos["side"] == LONG else notional(
                inst, pos["q"], bar["mark_open"])
            hours = clock_hours_started(bar["time"], bar["time"] + self.p["bar_ns"])
            pay = owed * run.borrow_rate[t] * hours
            mm = margin_level_reserve(inst, pos, x, pay)
        else:
            if bar["funding_count"] > 0:
                pay = pos["side"] * notional(inst, pos["q"], bar["mark_open"]) \
                    * bar["funding_rate"]
            mm = maintenance(inst, pos["side"], pos["q"], pos["entry"], x,
                             bar["next_funding_rate"])
        return upnl(inst, pos["side"], pos["q"], pos["entry"], x), pay, mm

    def portfolio_test(self, t: int) -> None:
        """Cross only, on the positions held from before the open: every position at its
        adverse mark extreme at once and this bar's funding paid; liquidation when
        ``wallet + Σ uPnL ≤ Σ MM``. All cross positions then close."""
        held = [r for r in self.runs.values() if r.pos is not None]
        if not held:
            return
        terms = {id(r): self.adverse_terms(r, t) for r in held}
        equity = self.wallet + sum(g - pay for g, pay, _ in terms.values())
        total_mm = sum(mm for _, _, mm in terms.values())
        if equity > total_mm:
            return
        neg = bool(self.p.get("negative_equity", False))
        # semantics "Spot margin": sold at the threshold, the rest returned, whatever
        # `liquidation` says (a portfolio is all spot margin or none)
        spot = held[0].spot
        at_bankruptcy = self.p.get("liquidation", "bankruptcy") == "bankruptcy" and not spot
        if at_bankruptcy:
            # the whole remaining equity is lost; SPEC §5 "the trader loses what was above
            # zero": a negative remainder is absorbed (final equity 0) unless negative_equity
            lost = equity if (equity > 0.0 or not neg) else 0.0
        else:
            # "nothing more" than the uPnL at the extremes, floored at zero equity unless
            # negative_equity (SPEC §5: a gap costs the margin only)
            lost = equity if (equity < 0.0 and not neg) else 0.0
        values = {id(r): notional(r.inst, r.pos["q"], r.bars[t]["mark_low"]
                                  if r.pos["side"] == LONG else r.bars[t]["mark_high"])
                  for r in held}
        for run in held:
            gain, pay, mm = terms[id(run)]
            pos, inst = run.pos, run.inst
            # funding (spot: interest) of the bar is paid first (it is in the trade's)
            run.wallet -= pay
            if spot:
                pos["interest"] += pay
            else:
                pos["funding"] += pay
                self.liq_funding[self.name_of(run)] = pay
            if total_mm > 0.0:
                share = mm / total_mm
            else:
                # semantics "Portfolios": with no maintenance at all (mmr 0 everywhere) the
                # loss is shared by notional at the extreme (taken before any position closes)
                share = values[id(run)] / sum(values.values())
            gross = gain - share * lost
            price = price_for_gross(inst, pos["side"], pos["q"], pos["entry"], gross)
            fee = 0.0
            if not at_bankruptcy:
                fee = self.p.get("liquidation_fee", 0.0) * notional(inst, pos["q"], price)
            run.close_position(t, price, "liquidation", fee, gross=gross)

    def name_of(self, run: _Run) -> str:
        return next(n for n, r in self.runs.items() if r is run)

    # ---- min_liq_distance (semantics "Portfolios") ---------------------------------------
    def surplus_moved(self, t: int, d: float) -> float:
        """``wallet + Σ uPnL − Σ MM`` with every mark moved adversely by `d` beyond its bar
        extreme (long ``low·(1 − d)``, short ``high·(1 + d)``).

        CHOICE: a long's price stops at the smallest positive float (d ≥ 1 is "price 0").
        """
        out = self.wallet
        for run in self.runs.values():
            pos = run.pos
            if pos is None:
                continue
            bar = run.bars[t]
            if pos["side"] == LONG:
                x = max(bar["mark_low"] * (1.0 - d), 5e-324)
            else:
                x = bar["mark_high"] * (1.0 + d)
            out += upnl(run.inst, pos["side"], pos["q"], pos["entry"], x)
            if run.spot:
                out -= margin_level_reserve(run.inst, pos, x, 0.0)
            else:
                out -= maintenance(run.inst, pos["side"], pos["q"], pos["entry"], x,
                                   bar["next_funding_rate"])
        return out

    def cross_distance(self, t: int) -> float:
        """The smallest d with surplus ≤ 0 (bisection; +inf when no move reaches it)."""
        if self.surplus_moved(t, 0.0) <= 0.0:
            return 0.0
        lo, hi = 0.0, 1.0
        while self.surplus_moved(t, hi) > 0.0:
            lo, hi = hi, hi * 2.0
            if hi > 1e12:
                return INF
        while hi - lo > 1e-14 * hi:
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if self.surplus_moved(t, mid) > 0.0:
                lo = mid
            else:
                hi = mid
        return hi

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> dict:
        per = {name: {k: [] for k in ("position", "margin", "liquidation_price", "funding")}
               for name in self.names}
        equity_out, wallet_out, cross_dist, exposed = [], [], [], []
        for t in range(self.n):
            self.liq_funding = dict.fromkeys(self.names, 0.0)
            if self.cross:
                # a ruined portfolio places no new orders, but a position still open meets
                # liquidation as usual (semantics step 6), here the portfolio test
                self.portfolio_test(t)
            for run in self.runs.values():          # the dict's order
                run.step(t)
            equity = self.wallet + sum(r.upnl_at_close(t) for r in self.runs.values())
            equity_out.append(equity)
            wallet_out.append(self.wallet)
            for name, run in self.runs.items():
                run.record(per[name])
                per[name]["funding"][-1] += self.liq_funding[name]
            is_open = any(r.pos is not None for r in self.runs.values())
            exposed.append(is_open)
            if self.cross and is_open:
                cross_dist.append(self.cross_distance(t))
            if equity <= RUIN_TOLERANCE * self.initial and not self.ruined:
                self.ruined = True
                for run in self.runs.values():
                    run.set_ruined(t)
        trades = []
        for name, run in self.runs.items():
            trades += [{**tr, "market": name} for tr in run.trades]
        order = {name: i for i, name in enumerate(sorted(self.names))}
        trades.sort(key=lambda tr: (tr["exit_bar"], order[tr["market"]]))
        events = []
        for name, run in self.runs.items():
            events += [{**ev, "market": name} for ev in run.events]
        counts = {name: dict.fromkeys(EVENT_KINDS, 0) for name in self.names}
        for ev in events:
            counts[ev["market"]][ev["kind"]] += 1
        n_ambiguous = sum(r.n_ambiguous for r in self.runs.values())
        stats = compute_stats(equity_out, trades, [1.0 if e else 0.0 for e in exposed],
                              [NAN] * self.n, [NAN] * self.n, [NAN] * self.n, n_ambiguous,
                              self.initial, self.p["bar_ns"])
        if self.cross:
            stats["min_liq_distance"] = min(cross_dist) if cross_dist else NAN
        else:
            dists = [single_min_liq(per[name], self.runs[name].bars) for name in self.names]
            dists = [d for d in dists if not math.isnan(d)]
            stats["min_liq_distance"] = min(dists) if dists else NAN
        stats["interest_paid"] = sum(tr["interest"] for tr in trades)
        return {"equity": equity_out, "wallet": wallet_out, "markets": per, "trades": trades,
                "events": events, "event_counts": counts, "n_ambiguous": n_ambiguous,
                "ruined": self.ruined, "stats": stats}


def single_min_liq(series: dict, bars: list[dict]) -> float:
    """The single-market min_liq_distance of one market's series (semantics "Trades and
    stats"): over bars with a position open at the close."""
    dists = []
    for i, q in enumerate(series["position"]):
        liq = series["liquidation_price"][i]
        if q > 0.0:
            dists.append((bars[i]["mark_low"] - liq) / bars[i]["mark_low"])
        elif q < 0.0:
            dists.append((liq - bars[i]["mark_high"]) / bars[i]["mark_high"])
    return min(dists) if dists else NAN


def simulate_portfolio(markets: dict[str, tuple[list[dict], dict]], params: dict,
                       per_market: dict[str, dict] | None = None) -> dict:
    """Run the reference portfolio: `markets` maps name -> (bars, instrument dict) in the
    order of the run() dict, all on one bar index; `params` as for ``reference.simulate``
    (with ``bar_ns``); `per_market[name]` overrides parameters for one market (semantics:
    ``settlement_price`` and ``borrow_rate`` may be dicts keyed by market name).

    Returns ``equity, wallet`` (combined, per bar), ``markets[name]`` (per-bar lists
    ``position, margin, liquidation_price, funding``), ``trades`` (with ``market``, sorted by
    exit bar then market name), ``events``, ``event_counts[name][kind]``, ``n_ambiguous``,
    ``ruined`` and ``stats``.
    """
    return _Portfolio(markets, params, per_market).run()
