"""A deliberately plain reference simulator: the test oracle for the Numba kernels.

Written from ``SPEC.md`` (§3–§8) and ``docs/semantics.md`` only — never from
``backtest/kernels``. Bars are dicts, state is dicts and floats, the loop is one Python
function per event of SPEC §5 / semantics "One bar, in order". Speed is irrelevant here;
every line should be checkable against a sentence of the two documents.

Entry point: :func:`simulate`. Bars carry ``time`` (int ns), ``open/high/low/close``,
``mark_open/mark_high/mark_low/mark_close``, ``funding_rate`` (sum of the rates settled at
this bar's open), ``funding_count``, ``next_funding_rate`` and the four boolean signals
``entries/exits/short_entries/short_exits``. The instrument is a dict (see
:func:`instrument_dict` in the tests): ``settlement``, ``contract_size``, ``tick_size``,
``lot_size``, ``maker_fee``, ``taker_fee``, ``rules`` and ``tiers`` (list of dicts with
``floor, mmr, maint_amount, max_leverage``), and for SPEC §7 ``kind`` (``perpetual`` when
absent), ``expiry_ns`` (dated futures; int ns or None) and ``margin_level`` (spot margin's
``liquidation_margin_level``). Dated futures may give bars an ``index_close`` (the index
series' close, the settlement source). Spot margin's hourly rate is ``params["borrow_rate"]``:
a float, or a list with one rate per bar (default: the instrument's ``borrow_rate``).

Several markets with one wallet (semantics "Portfolios"): ``tests/reference_portfolio.py``
drives one :class:`_Run` per market through the same steps on a shared account.

Choices where both documents are silent are marked ``CHOICE:`` in comments.
"""

from __future__ import annotations

import math

LONG, SHORT = 1, -1
INF = math.inf
NAN = math.nan
YEAR_NS = 365 * 86400 * 10**9
# CHOICE: "equity at or below zero" read with a tolerance of 1e-9 of the initial capital.
# Losing the whole wallet leaves float dust (±1e-16 of it) that must not decide whether
# the run goes on trading dust-sized positions.
RUIN_TOLERANCE = 1e-9

EVENT_KINDS = (
    "size_zero", "insufficient_margin", "leverage_above_tier", "entry_ignored",
    "conflicting_entries", "limit_expired", "signal_dropped_last_bar", "signal_after_ruin",
    "ambiguous_bar", "stop_limit_resting", "signal_after_expiry",
)
SIGNAL_NAMES = ("entries", "exits", "short_entries", "short_exits")
HOUR_NS = 3_600 * 10**9


# ============================================================================================
# Contract maths (SPEC §3 table)
# ============================================================================================

def notional(inst: dict, q: float, price: float) -> float:
    """Account-currency notional of `q` at `price` (SPEC §3)."""
    s = inst["settlement"]
    if s == "linear":
        return q * price
    if s == "inverse":
        return q * inst["contract_size"] / price
    return q * inst["contract_size"] * price          # quanto: multiplier m


def upnl(inst: dict, side: int, q: float, entry: float, price: float) -> float:
    """PnL of closing `q` opened at `entry` at `price` (SPEC §3)."""
    s = inst["settlement"]
    if s == "linear":
        return side * q * (price - entry)
    if s == "inverse":
        return side * q * inst["contract_size"] * (1.0 / entry - 1.0 / price)
    return side * q * inst["contract_size"] * (price - entry)


def size_for_notional(inst: dict, value: float, price: float) -> float:
    """Inverse of :func:`notional` in `q`."""
    s = inst["settlement"]
    if s == "linear":
        return value / price
    if s == "inverse":
        return value * price / inst["contract_size"]
    return value / (inst["contract_size"] * price)


def round_lot(inst: dict, q: float) -> float:
    """semantics: rounded **down** to lot_size, ``floor(q/lot + 1e-9)·lot``."""
    lot = inst.get("lot_size") or 0.0
    if lot <= 0:
        return q
    return math.floor(q / lot + 1e-9) * lot


def tier_index(inst: dict, value: float) -> int:
    """SPEC §3: the tier row is chosen by the position's notional (largest floor ≤ value)."""
    idx = 0
    for i, tier in enumerate(inst["tiers"]):
        if value >= tier["floor"]:
            idx = i
    return idx


def _solve_constant_mm(inst: dict, side: int, q: float, entry: float, w: float,
                       mm: float) -> float:
    """Price P solving ``w + uPnL(P) = mm`` with `mm` not depending on P.

    Used for the bankruptcy price (mm = 0, semantics: "P_b solves W + uPnL = 0") and for the
    `simple` and `bitmex` liquidation prices, whose maintenance is a rate of the entry value
    (SPEC §3: simple long ``E·(1 − 1/L + mmr)`` = linear with MM = mmr·q·E; bitmex
    ``E/(1 + IMR − MMR − fund)`` = inverse with MM = (MMR + fund)·q·cs/E). Returns +inf /
    a non-positive number when no positive price satisfies it (then it can never trigger,
    except a long's +inf which triggers at once).
    """
    free = (w - mm) / notional(inst, q, entry)          # as a fraction of the entry value
    if inst["settlement"] in ("linear", "quanto"):
        return entry * (1.0 - side * free)              # E (1 - 1/L + mmr) for a long
    den = 1.0 + side * free                             # E / (1 + 1/L - mmr) for a long
    return entry / den if den > 0.0 else INF            # long: beyond already; short: never


def _binance_price(inst: dict, side: int, q: float, entry: float, w: float,
                   mmr: float, cum: float) -> float:
    """SPEC §3 binance closed forms for one tier (position alone; WB = w)."""
    if inst["settlement"] == "inverse":
        cs = inst["contract_size"]
        den = w + cum + side * q * cs / entry
        price = (q * mmr + side * q) * cs / den if den != 0.0 else -1.0   # COIN-M
        return price if price > 0.0 else INF            # short covered at any price
    m = inst["contract_size"] if inst["settlement"] == "quanto" else 1.0
    return (w + cum - side * q * m * entry) / (q * m * mmr - side * q * m)   # USDⓈ-M


def _binance_liq(inst: dict, side: int, q: float, entry: float, w: float) -> float:
    """SPEC §3: "If LP falls in another tier, recompute with that tier".

    MM is continuous across tiers (cum), so exactly one tier is consistent with its own LP;
    we search it directly (equivalent to re-selecting until stable).
    """
    tiers = inst["tiers"]
    best, best_miss = NAN, INF
    for i, tier in enumerate(tiers):
        p = _binance_price(inst, side, q, entry, w, tier["mmr"], tier["maint_amount"])
        value = notional(inst, q, p) if 0.0 < p < INF else 0.0
        upper = tiers[i + 1]["floor"] if i + 1 < len(tiers) else INF
        if tier["floor"] <= value < upper:
            return p
        miss = min(abs(value - tier["floor"]), abs(value - upper))
        if miss < best_miss:                            # float noise exactly at a boundary
            best, best_miss = p, miss
    return best


# semantics step 4: a stop within this relative distance of the liquidation price ties,
# and liquidation wins the tie.
STOP_TIE = 1e-12


def _round_toward_entry(inst: dict, side: int, price: float, entry: float) -> float:
    """bitmex: "prices rounded to the tick toward the entry": a long's up, a short's down.

    CHOICE: by side, as in BitMEX's own formula (exchange case bitmex-testnet-xbtusd-long-1x:
    long ``ceil_tick``, short ``floor_tick``), also in the odd case where a funding reserve
    larger than the margin puts the price on the other side of the entry. semantics: a price
    before the entry that rounding would carry onto or past it stays unrounded.
    """
    tick = inst.get("tick_size") or 0.0
    if tick <= 0.0 or not (0.0 < price < INF):
        return price
    if side == LONG:
        rounded = math.ceil(price / tick - 1e-9) * tick
        return price if price < entry <= rounded else rounded
    rounded = math.floor(price / tick + 1e-9) * tick
    return price if rounded <= entry < price else rounded


def liq_and_bankruptcy(inst: dict, side: int, q: float, entry: float, w: float,
                       next_funding_rate: float = 0.0) -> tuple[float, float]:
    """(liquidation price, bankruptcy price) of a position backed by margin `w` (SPEC §3).

    `w` is the isolated margin W or, cross, the wallet (semantics "Account").
    """
    rules = inst["rules"]
    entry_value = notional(inst, q, entry)
    bankrupt = _solve_constant_mm(inst, side, q, entry, w, 0.0)
    if rules == "binance":
        liq = _binance_liq(inst, side, q, entry, w)
    else:
        tier = inst["tiers"][tier_index(inst, entry_value)]
        rate = tier["mmr"]
        if rules == "bitmex":
            # SPEC §3 bitmex: MM also reserves the next funding this side pays (fund = max(0,
            # side·F)); semantics: F = next_funding_rate of the current bar. The closing-fee
            # reserve is in both posMargin and posMaint, so it cancels (reference cases).
            rate += max(0.0, side * next_funding_rate)
        liq = _solve_constant_mm(inst, side, q, entry, w, rate * entry_value
                                 - tier.get("maint_amount", 0.0))
    if rules == "bitmex":
        liq = _round_toward_entry(inst, side, liq, entry)
        bankrupt = _round_toward_entry(inst, side, bankrupt, entry)
    # CHOICE: a long that no positive price can liquidate (e.g. 1x, or funding received)
    # reports 0, not a negative "price"; either never triggers.
    return max(liq, 0.0), max(bankrupt, 0.0)


def spot_margin_liq(side: int, q: float, entry: float, w: float, borrowed: float,
                    interest: float, level: float) -> float:
    """semantics "Spot margin": the price at which margin level = `level` (m).

    Long (owes quote): ``W + uPnL(P) = (m−1)(borrowed + interest)``; short (owes q base):
    ``W + uPnL(P) = (m−1)(notional(P) + interest)``. Linear contract maths (a spot pair),
    solved for P by hand: long ``P = E + ((m−1)(B + I) − W)/q``, short
    ``P = (W + q·E − (m−1)·I) / (m·q)``.
    """
    m = level
    if side == LONG:
        return entry + ((m - 1.0) * (borrowed + interest) - w) / q
    return (w + q * entry - (m - 1.0) * interest) / (m * q)


def clock_hours_started(start_ns: int, end_ns: int) -> int:
    """Clock hours that start in ``[start, end)``: k with start ≤ k·1h < end."""
    return -(-end_ns // HOUR_NS) - -(-start_ns // HOUR_NS)


def clock_hours_touched(start_ns: int, end_ns: int) -> int:
    """The started hour at `start` plus the clock hours starting later in ``(start, end)``:
    the clock hours that ``[start, end)`` overlaps (semantics: interest at an entry filled at
    the open)."""
    return -(-end_ns // HOUR_NS) - start_ns // HOUR_NS


# ============================================================================================
# Small predicates: "reached" in the losing / winning direction of a side
# ============================================================================================

def adverse_reached(side: int, price: float, level: float) -> bool:
    """Long: price at/below level; short: at/above."""
    return price <= level if side == LONG else price >= level


def favourable_reached(side: int, price: float, level: float) -> bool:
    """Long: price at/above level; short: at/below."""
    return price >= level if side == LONG else price <= level


def worse(side: int, a: float, b: float) -> float:
    """The worse of two exit prices for `side` (long: lower)."""
    return min(a, b) if side == LONG else max(a, b)


def better(side: int, a: float, b: float) -> float:
    """The better of two exit prices for `side` (long: higher)."""
    return max(a, b) if side == LONG else min(a, b)


# ============================================================================================
# The simulator
# ============================================================================================

class _Run:
    """State of one run; a method per event of semantics "One bar, in order"."""

    def __init__(self, bars: list[dict], params: dict, inst: dict,
                 account: dict | None = None):
        self.bars, self.p, self.inst = bars, params, inst
        self.n = len(bars)
        self.kind = inst.get("kind", "perpetual")
        self.spot = self.kind == "spot_margin"
        self.taker = inst["taker_fee"] if params.get("fees") is None else params["fees"]
        self.maker = inst["maker_fee"]      # API: a float `fees` sets the taker fee only
        self.slip = params.get("slippage", 0.0)
        self.cross = params.get("margin_mode", "isolated") == "cross"
        self.initial = float(params.get("initial_capital", 10_000.0))
        # The cash balance lives in `account` so that a portfolio's markets can share it
        # (reference_portfolio.py); `peers` are the other markets' runs on that account.
        self.account = {"wallet": self.initial} if account is None else account
        self.peers: list[_Run] = []
        # semantics "Portfolios": a cross position never liquidates on its own (the
        # portfolio test does); its liquidation price is NaN.
        self.portfolio_cross = False
        self.expiry_bar, self.settle_price = self.expiry_settlement()
        rate = params.get("borrow_rate")          # run(borrow_rate=) overrides the instrument
        if rate is None:
            rate = inst.get("borrow_rate") or 0.0
        self.borrow_rate = list(rate) if isinstance(rate, (list, tuple)) else [rate] * self.n
        self.pos: dict | None = None
        self.pending: dict | None = None    # resting entry limit
        self.ruined = False
        self.ruin_bar = None
        self.trades: list[dict] = []
        self.events: list[dict] = []
        self.funding_bar = 0.0
        self.n_ambiguous = 0

    # ---- the account ------------------------------------------------------------------------
    @property
    def wallet(self) -> float:
        return self.account["wallet"]

    @wallet.setter
    def wallet(self, value: float) -> None:
        self.account["wallet"] = value

    def margin_held(self) -> float:
        """The margin this market's position holds (semantics "Portfolios": isolated W;
        cross notional(q, E)/L)."""
        if self.pos is None:
            return 0.0
        return self.pos["w0"] if self.cross else self.pos["w"]

    def available(self) -> float:
        """The free wallet for sizing: wallet − Σ margin of the other markets' positions
        (a single market has no peers: the wallet).

        semantics "Portfolios": while other markets hold margin, a free wallet within 1e-9
        of the initial capital of zero is zero, as for ruin: after a market loses its whole
        margin, wallet − Σ other margins is ±1e-13 of float dust, which must not open
        dust-sized positions (the portfolio is not ruined: the other markets' margins keep
        its equity up).
        """
        locked = sum(peer.margin_held() for peer in self.peers)
        if locked == 0.0:
            return self.wallet
        free = self.wallet - locked
        return 0.0 if abs(free) <= RUIN_TOLERANCE * self.initial else free

    def expiry_settlement(self) -> tuple[int | None, float]:
        """semantics "Future": the expiry bar is the last bar that ends at or before
        `expiry`; none when the expiry lies after the data's end (the run ends with `end`).

        Settlement price: `settlement_price=` if given, else the index close of that bar,
        else its last close.
        """
        expiry = self.inst.get("expiry_ns")
        if self.kind != "future" or expiry is None:
            return None, NAN
        bar_ns = self.p["bar_ns"]
        done = [i for i, b in enumerate(self.bars) if b["time"] + bar_ns <= expiry]
        if not done:
            raise ValueError("the future expires before the first bar ends")
        eb = done[-1]
        if eb == self.n - 1 and self.bars[eb]["time"] + bar_ns < expiry:
            return None, NAN                    # the data stops before the expiry
        price = self.p.get("settlement_price")
        if price is None:
            bar = self.bars[eb]
            price = bar["index_close"] if bar.get("index_close") is not None else bar["close"]
        return eb, float(price)

    # ---- bookkeeping ------------------------------------------------------------------------
    def event(self, t: int, kind: str, detail: str = "") -> None:
        self.events.append({"bar": t, "time": self.bars[t]["time"], "kind": kind,
                            "detail": detail})

    def margin_backing(self) -> float:
        """semantics: isolated W; cross (single market) W = the wallet."""
        return self.wallet if self.cross else self.pos["w"]

    def recompute_levels(self, t: int) -> None:
        """semantics: liq/bankruptcy recomputed at entry and whenever W changes."""
        pos = self.pos
        if self.portfolio_cross:
            pos["liq"] = pos["bankrupt"] = NAN      # NaN: never reached by a comparison
            return
        pos["liq"], pos["bankrupt"] = liq_and_bankruptcy(
            self.inst, pos["side"], pos["q"], pos["entry"], self.margin_backing(),
            self.bars[t]["next_funding_rate"])
        if self.spot:
            # semantics "Spot margin": liquidation at the margin-level price, not by tiers.
            # CHOICE: as for every other long, a price below zero is reported as 0.
            pos["liq"] = max(0.0, spot_margin_liq(
                pos["side"], pos["q"], pos["entry"], self.margin_backing(), pos["borrowed"],
                pos["interest"], self.inst["margin_level"]))

    def effective_stop(self, resting_too: bool = False) -> tuple[float | None, str | None]:
        """semantics: the tighter of stop_loss and trailing levels; its reason.

        CHOICE: on an exact tie stop_loss is reported. No stop while a stop-limit rests
        (it has triggered already) unless `resting_too` (the level itself, for counting).
        """
        pos = self.pos
        if pos["stop_limit"] is not None and not resting_too:
            return None, None
        level, reason = pos["sl"], "stop_loss"
        trail = self.p.get("trailing_stop")
        if trail is not None:
            tl = pos["trail_ref"] * (1.0 - pos["side"] * trail)
            if level is None or better(pos["side"], tl, level) != level:
                level, reason = tl, "trailing_stop"
        return level, reason

    def close_position(self, t: int, price: float, reason: str, fee: float,
                       gross: float | None = None) -> None:
        """Realise the trade: wallet += gross − exit fee; one trade row (SPEC §8)."""
        pos = self.pos
        if gross is None:
            gross = upnl(self.inst, pos["side"], pos["q"], pos["entry"], price)
        self.wallet += gross - fee
        fees = pos["entry_fee"] + fee
        interest = pos["interest"]
        self.trades.append({
            "entry_bar": pos["entry_bar"], "exit_bar": t,
            "entry_time": self.bars[pos["entry_bar"]]["time"],
            "exit_time": self.bars[t]["time"],
            "side": "long" if pos["side"] == LONG else "short",
            "size": pos["q"], "leverage": self.p["leverage"], "entry_price": pos["entry"],
            "exit_price": price, "margin": pos["w0"], "gross_pnl": gross, "fees": fees,
            "funding": pos["funding"], "interest": interest,
            "pnl": gross - fees - pos["funding"] - interest, "exit_reason": reason,
        })
        self.pos = None

    def market_exit(self, t: int, ref_price: float, reason: str) -> None:
        """semantics "Prices of fills": market exits move against the trader by slippage."""
        side = self.pos["side"]
        price = ref_price * (1.0 - side * self.slip)
        self.close_position(t, price, reason, self.taker * notional(
            self.inst, self.pos["q"], price))

    # ---- entries ------------------------------------------------------------------------------
    def open_position(self, t: int, side: int, price: float, fee_rate: float,
                      at_open: bool = True) -> None:
        """Size at the fill (semantics "Sizing"), reject with a recorded reason, or open.

        `at_open`: the fill happened at the bar's open (or, CHOICE, inside the bar by a
        resting entry limit), not at its close — it decides the spot-margin hours charged at
        entry.
        """
        p, inst = self.p, self.inst
        wallet = self.available()
        lev, size, kind = p["leverage"], p["size"], p.get("size_type", "margin")
        if kind == "margin":
            value = size * wallet / (1.0 / lev + fee_rate)
        elif kind == "notional":
            value = size
        elif kind == "risk":
            value = size * wallet / p["stop_loss"]
        else:
            value = None
        q = size if kind == "qty" else size_for_notional(inst, value, price)
        q = round_lot(inst, q)
        # semantics "Sizing": below the instrument's minimum order (one lot; 1e-8 units
        # without lots) is size_zero, so a liquidation's dust cannot keep trading.
        if not q >= ((inst.get("lot_size") or 0.0) or 1e-8):
            self.event(t, "size_zero")
            return
        entry_value = notional(inst, q, price)
        w0 = entry_value / lev
        fee = fee_rate * entry_value
        # CHOICE: a relative 1e-9 tolerance, so that size=1.0 ("commits the whole wallet,
        # fee included") is not rejected by the last bit of rounding.
        if w0 + fee > wallet * (1.0 + 1e-9):
            self.event(t, "insufficient_margin")
            return
        max_lev = inst["tiers"][tier_index(inst, entry_value)].get("max_leverage")
        if max_lev and lev > max_lev * (1.0 + 1e-12):
            self.event(t, "leverage_above_tier")
            return
        self.wallet -= fee
        sl, tp = p.get("stop_loss"), p.get("take_profit")
        self.pos = {
            "side": side, "q": q, "entry": price, "entry_bar": t, "w0": w0, "w": w0,
            "entry_fee": fee, "funding": 0.0,
            "sl": None if sl is None else price * (1.0 - side * sl),
            "tp": None if tp is None else price * (1.0 + side * tp),
            "trail_ref": price,          # SPEC §4: "set at entry from the fill price"
            "stop_limit": None, "stop_limit_reason": None,
            # semantics "Spot margin": a long borrows notional − W0 quote, a short q base
            "borrowed": entry_value - w0 if side == LONG else 0.0, "interest": 0.0,
        }
        if self.spot:
            # semantics: at entry, the started hour plus the clock hours starting later
            # inside the entry bar when the fill is at the open.
            # CHOICE: a fill at the close happens at the bar's last instant: only its
            # (started) hour is charged; the next bar's open charges the hours from there.
            # CHOICE: an entry limit filled inside the bar is charged like a fill at the
            # open (the fill moment inside the bar is unknown; the pessimistic count).
            bar = self.bars[t]
            hours = (clock_hours_touched(bar["time"], bar["time"] + p["bar_ns"])
                     if at_open else 1)
            # a short's base interest is valued at the entry price at entry
            self.charge_interest(t, price, hours)
        self.recompute_levels(t)

    def charge_interest(self, t: int, price: float, hours: int) -> None:
        """semantics "Spot margin": `hours` × the bar's hourly rate on the borrowed amount
        (a short's base valued at `price`), from the wallet and, isolated, from W."""
        pos = self.pos
        owed = pos["borrowed"] if pos["side"] == LONG else notional(self.inst, pos["q"], price)
        cost = owed * self.borrow_rate[t] * hours
        self.wallet -= cost
        if not self.cross:
            pos["w"] -= cost
        pos["interest"] += cost

    def execute_signals(self, t: int, sb: int, ref_price: float) -> None:
        """semantics step 3 / 6: exits, then entries, of signal bar `sb` at `ref_price`."""
        bar = self.bars[sb]
        pos = self.pos
        if pos is not None and ((pos["side"] == LONG and bar["exits"])
                                or (pos["side"] == SHORT and bar["short_exits"])):
            self.market_exit(t, ref_price, "signal")
        long_in, short_in = bool(bar["entries"]), bool(bar["short_entries"])
        if long_in and short_in:
            self.event(t, "conflicting_entries")
            return
        if not (long_in or short_in):
            return
        side = LONG if long_in else SHORT
        if self.pos is not None and self.pos["side"] == side:
            self.event(t, "entry_ignored")
            return
        if self.p.get("entry_order", "market") == "market":
            if self.pos is not None:
                self.market_exit(t, ref_price, "reverse")
            self.open_position(t, side, ref_price * (1.0 + side * self.slip), self.taker,
                               at_open=sb != t)
        else:
            # semantics "Entry limit": an opposite position stays open while the limit rests.
            # semantics: limit at the signal bar's close C·(1 ∓ offset), resting limit_ttl
            # bars from the bar after the signal bar; a new entry signal replaces it.
            self.pending = {
                "side": side,
                "price": bar["close"] * (1.0 - side * self.p.get("limit_offset", 0.0)),
                "first": sb + 1, "last": sb + int(self.p.get("limit_ttl", 1)),
            }

    def check_entry_limit(self, t: int) -> None:
        """semantics step 3: resting entry limits checked against the bar (open, then range).

        A buy limit fills at the open if the open is at/below it, else at the limit when the
        low reaches it (mirror for a sell); maker fee, no slippage; unfilled → expired.
        """
        lim = self.pending
        if lim is None or t < lim["first"]:
            return
        bar, side, price = self.bars[t], lim["side"], lim["price"]
        extreme = bar["low"] if side == LONG else bar["high"]
        fill = None
        if adverse_reached(side, bar["open"], price):      # buy: open ≤ limit
            fill = bar["open"]
        elif adverse_reached(side, extreme, price):          # buy: low ≤ limit
            fill = price
        if fill is not None:
            self.pending = None
            if self.pos is not None and self.pos["side"] == side:
                self.event(t, "entry_ignored")
                return
            if self.pos is not None:
                # semantics "Entry limit": the fill flips the position, closing the opposite
                # side at the fill price (taker fee, no slippage).
                self.close_position(t, fill, "reverse",
                                    self.taker * notional(self.inst, self.pos["q"], fill))
            self.open_position(t, side, fill, self.maker)
        elif t >= lim["last"]:
            self.pending = None
            self.event(t, "limit_expired")

    # ---- liquidation ------------------------------------------------------------------------
    def liquidate(self, t: int, at_open: bool) -> None:
        """semantics "Liquidation fills" (always triggered on the mark series)."""
        pos, inst = self.pos, self.inst
        side, q = pos["side"], pos["q"]
        w = self.margin_backing()
        mark_open = self.bars[t]["mark_open"]
        neg = bool(self.p.get("negative_equity", False))
        # semantics "Spot margin": sold at the margin-level price (or the mark open when
        # gapped), liquidation_fee, loss floored at W: the liquidation_price branch below.
        if self.p.get("liquidation", "bankruptcy") == "bankruptcy" and not self.spot:
            # exit at P_b, no fee, gross exactly −W; a gap beyond P_b costs W too, unless
            # negative_equity, when the exit is the mark open.
            if at_open and neg and adverse_reached(side, mark_open, pos["bankrupt"]):
                self.close_position(t, mark_open, "liquidation", 0.0)
            else:
                self.close_position(t, pos["bankrupt"], "liquidation", 0.0, gross=-w)
            return
        # liquidation_price: at the liq price in-bar, at the mark open when it gapped beyond.
        price = mark_open if at_open else pos["liq"]
        gross = upnl(inst, side, q, pos["entry"], price)
        fee = self.p.get("liquidation_fee", 0.0) * notional(inst, q, price)
        if not neg:
            if gross < -w:                       # floored at −W, reported at P_b
                gross, price = -w, pos["bankrupt"]
            fee = max(0.0, min(fee, w + gross))  # the fee is cut to what is left
        self.close_position(t, price, "liquidation", fee, gross=gross)

    # ---- stops ----------------------------------------------------------------------------
    def stop_fill(self, t: int, level: float, reason: str, gapped: bool) -> None:
        """semantics "Prices of fills": stop market / stop limit, at trigger or at a gap."""
        side = self.pos["side"]
        bar = self.bars[t]
        q = self.pos["q"]
        if self.p.get("stop_order", "market") == "market":
            price = worse(side, level, bar["open"]) if gapped else level
            price *= 1.0 - side * self.slip
            self.close_position(t, price, reason, self.taker * notional(self.inst, q, price))
            return
        limit = level * (1.0 - side * self.p.get("stop_limit_offset", 0.0))
        if not gapped:                           # the path crossed S continuously
            self.close_position(t, level, reason, self.taker * notional(self.inst, q, level))
        elif favourable_reached(side, bar["open"], limit):   # open still at/better than limit
            self.close_position(t, bar["open"], reason,
                                self.taker * notional(self.inst, q, bar["open"]))
        else:                                     # rests; the position stays open
            self.pos["stop_limit"] = limit
            self.pos["stop_limit_reason"] = reason
            self.event(t, "stop_limit_resting")

    def fill_resting_stop_limit(self, t: int, price: float) -> None:
        pos = self.pos
        self.close_position(t, price, pos["stop_limit_reason"],
                            self.taker * notional(self.inst, pos["q"], price))

    # ---- the steps of one bar ------------------------------------------------------------
    def settle_funding(self, t: int) -> None:
        """Step 1 (SPEC §6): s·notional(q, mark_open)·F from wallet (and isolated W)."""
        bar, pos = self.bars[t], self.pos
        if pos is None or bar["funding_count"] <= 0:
            return
        pay = pos["side"] * notional(self.inst, pos["q"], bar["mark_open"]) * bar["funding_rate"]
        self.wallet -= pay
        if not self.cross:
            pos["w"] -= pay
        pos["funding"] += pay
        self.funding_bar += pay
        self.recompute_levels(t)

    def settle_interest(self, t: int) -> None:
        """Step 1 for spot margin: the clock hours starting in ``[open, next open)`` at the
        bar's hourly rate; a short's base valued at the mark open."""
        bar, pos = self.bars[t], self.pos
        if pos is None or not self.spot:
            return
        hours = clock_hours_started(bar["time"], bar["time"] + self.p["bar_ns"])
        if hours:
            self.charge_interest(t, bar["mark_open"], hours)
            self.recompute_levels(t)

    def check_open(self, t: int) -> None:
        """Step 2: (a) liquidation at the mark open, (b) stop gap, (c) resting stop-limit,
        (d) take-profit gap."""
        pos = self.pos
        if pos is None:
            return
        bar, side = self.bars[t], pos["side"]
        if adverse_reached(side, bar["mark_open"], pos["liq"]):
            self.liquidate(t, at_open=True)
            return
        level, reason = self.effective_stop()
        if level is not None and adverse_reached(side, self.trigger(t, "open"), level):
            self.stop_fill(t, level, reason, gapped=True)   # closes it, or a limit rests
            return
        if pos["stop_limit"] is not None and favourable_reached(side, bar["open"],
                                                                pos["stop_limit"]):
            self.fill_resting_stop_limit(t, bar["open"])
            return
        if pos["tp"] is not None and favourable_reached(side, bar["open"], pos["tp"]):
            self.close_position(t, bar["open"], "take_profit",
                                self.maker * notional(self.inst, pos["q"], bar["open"]))

    def orders_at_open(self, t: int) -> None:
        """Step 3: with next_open, the signals of bar t−1 fill at open[t]; then entry limits."""
        if self.p.get("fill", "next_open") == "next_open" and t >= 1:
            if self.ruined:
                self.count_after_ruin(t - 1)
            else:
                self.execute_signals(t, t - 1, self.bars[t]["open"])
        if not self.ruined:
            self.check_entry_limit(t)

    def trigger(self, t: int, field: str) -> float:
        """The stop's trigger series (SPEC §4 stop_trigger) at `field`."""
        bar = self.bars[t]
        if self.p.get("stop_trigger", "last") == "mark":
            return bar["mark_" + field]
        return bar[field]

    def adverse_leg(self, t: int) -> None:
        """Step 4: stop vs liquidation on the adverse extremes."""
        pos = self.pos
        if pos is None:
            return
        bar, side = self.bars[t], pos["side"]
        ext = "low" if side == LONG else "high"
        liq_hit = adverse_reached(side, bar["mark_" + ext], pos["liq"])
        level, reason = self.effective_stop()
        stop_hit = level is not None and adverse_reached(side, self.trigger(t, ext), level)
        inside = side * (level - pos["liq"]) > STOP_TIE * pos["liq"] if stop_hit else False
        if stop_hit and (not liq_hit or inside):
            # the stop wins when it lies strictly between entry and liq (long: S > liq);
            # semantics: "strictly" = by more than 1e-12 relative, a tie is liquidation
            self.stop_fill(t, level, reason, gapped=False)
        elif liq_hit:
            self.liquidate(t, at_open=False)

    def favourable_leg(self, t: int) -> None:
        """Step 5: resting stop-limit, take-profit, then the trailing reference."""
        pos = self.pos
        if pos is None:
            return
        bar, side = self.bars[t], pos["side"]
        ext = "high" if side == LONG else "low"
        # CHOICE: a resting stop-limit (sell limit for a long, below the open) fills when
        # the price comes back up to it, i.e. on the favourable move, before the TP level
        # (which lies further away); the pessimistic path lets liquidation come first.
        if pos["stop_limit"] is not None and favourable_reached(side, bar[ext],
                                                                pos["stop_limit"]):
            self.fill_resting_stop_limit(t, pos["stop_limit"])
            return
        if pos["tp"] is not None and favourable_reached(side, bar[ext], pos["tp"]):
            self.close_position(t, pos["tp"], "take_profit",
                                self.maker * notional(self.inst, pos["q"], pos["tp"]))
            return
        move = self.trigger(t, ext)
        pos["trail_ref"] = better(side, pos["trail_ref"], move)

    def count_ambiguous(self, t: int) -> None:
        """semantics: loss-side (stop or liq level) and profit-side (TP) both reachable.

        CHOICE: evaluated with the levels in force before the legs, whatever the path; the
        stop level counts as "reached" also once it has become a resting stop-limit.
        """
        pos = self.pos
        if pos is None or pos["tp"] is None:
            return
        bar, side = self.bars[t], pos["side"]
        adv, fav = ("low", "high") if side == LONG else ("high", "low")
        level, _ = self.effective_stop(resting_too=True)
        loss = adverse_reached(side, bar["mark_" + adv], pos["liq"]) or (
            level is not None and adverse_reached(side, self.trigger(t, adv), level))
        profit = favourable_reached(side, bar[fav], pos["tp"])
        if loss and profit:
            self.n_ambiguous += 1
            self.event(t, "ambiguous_bar")

    def legs(self, t: int) -> None:
        """Steps 4–5 in the order of `path` (pessimistic: adverse first; ohlc: by colour)."""
        if self.pos is None:
            return
        self.count_ambiguous(t)
        bar = self.bars[t]
        adverse_first = True
        if self.p.get("path", "pessimistic") == "ohlc":
            green = bar["close"] >= bar["open"]
            lows_first = green
            adverse_first = lows_first == (self.pos["side"] == LONG)
        if adverse_first:
            self.adverse_leg(t)
            self.favourable_leg(t)
        else:
            self.favourable_leg(t)
            self.adverse_leg(t)

    def any_signal(self, sb: int) -> bool:
        return any(self.bars[sb][name] for name in SIGNAL_NAMES)

    def count_after_ruin(self, sb: int) -> None:
        """CHOICE: one event per signal bar (not per signal) that comes after the ruin."""
        if self.any_signal(sb):
            self.event(sb, "signal_after_ruin")

    def close_bar(self, t: int) -> None:
        """Step 6: fill="close" signals, end-of-data close, mark-to-market, ruin."""
        last = t == self.n - 1
        if self.p.get("fill", "next_open") == "close":
            if self.ruined:
                self.count_after_ruin(t)
            else:
                self.execute_signals(t, t, self.bars[t]["close"])
        elif last and self.any_signal(t):
            # CHOICE: one event for the bar, whether or not the run is ruined.
            self.event(t, "signal_dropped_last_bar")
        if t == self.expiry_bar and self.pos is not None:
            # semantics "Future": at the expiry bar's close, after any fill="close" orders: a
            # market exit at the settlement price without slippage, taker fee.
            self.close_position(t, self.settle_price, "expiry", self.taker * notional(
                self.inst, self.pos["q"], self.settle_price))
        if last and self.pos is not None:
            self.market_exit(t, self.bars[t]["close"], "end")

    def after_expiry(self, t: int) -> None:
        """semantics "Future": bars after the expiry bar trade nothing; the signals that
        would execute in them are counted as `signal_after_expiry`.

        CHOICE: once ruined, `signal_after_ruin` is counted instead (ruin came first, and it
        stops trading whatever the instrument). CHOICE: the last bar's own signals with
        next_open are `signal_dropped_last_bar` as on every last bar (they could fill on no
        bar, expired or not); with next_open the expiry bar's signals, which would fill at
        the open after the expiry, are `signal_after_expiry` (counted on the bar after).
        A resting entry limit is simply not filled any more, as at the end of the data.
        """
        fill_close = self.p.get("fill", "next_open") == "close"
        sb = t if fill_close else t - 1
        if self.ruined:
            self.count_after_ruin(sb)
        elif self.any_signal(sb):
            self.event(sb, "signal_after_expiry")
        if not fill_close and t == self.n - 1 and self.any_signal(t):
            self.event(t, "signal_dropped_last_bar")

    # ---- the loop ---------------------------------------------------------------------------
    def step(self, t: int) -> None:
        """One bar through semantics "One bar, in order" (steps 1–6, without the
        mark-to-market and the ruin check, which :meth:`record` and the caller do)."""
        self.funding_bar = 0.0
        if self.expiry_bar is not None and t > self.expiry_bar:
            self.after_expiry(t)
            return
        self.settle_funding(t)
        self.settle_interest(t)
        self.check_open(t)
        self.orders_at_open(t)
        self.legs(t)
        self.close_bar(t)

    def upnl_at_close(self, t: int) -> float:
        pos = self.pos
        if pos is None:
            return 0.0
        return upnl(self.inst, pos["side"], pos["q"], pos["entry"], self.bars[t]["mark_close"])

    def record(self, out: dict) -> None:
        """Append the per-market series of the bar just stepped (SPEC §8)."""
        pos = self.pos
        out["position"].append(0.0 if pos is None else pos["side"] * pos["q"])
        out["margin"].append(self.margin_held())
        out["liquidation_price"].append(NAN if pos is None else pos["liq"])
        out["funding"].append(self.funding_bar)

    def set_ruined(self, t: int) -> None:
        self.ruined, self.ruin_bar = True, t
        self.pending = None

    def run(self) -> dict:
        out = {k: [] for k in ("equity", "wallet", "position", "margin", "liquidation_price",
                               "funding")}
        for t in range(self.n):
            self.step(t)
            equity = self.wallet + self.upnl_at_close(t)
            out["equity"].append(equity)
            out["wallet"].append(self.wallet)
            self.record(out)
            if equity <= RUIN_TOLERANCE * self.initial and not self.ruined:
                self.set_ruined(t)
        out["trades"] = self.trades
        out["events"] = self.events
        counts = {k: 0 for k in EVENT_KINDS}
        for ev in self.events:
            counts[ev["kind"]] += 1
        out["event_counts"] = counts
        out["n_ambiguous"] = self.n_ambiguous
        out["ruined"] = self.ruined
        out["stats"] = compute_stats(
            out["equity"], self.trades, out["position"], out["liquidation_price"],
            [b["mark_low"] for b in self.bars], [b["mark_high"] for b in self.bars],
            self.n_ambiguous, float(self.p.get("initial_capital", 10_000.0)),
            self.p["bar_ns"])
        out["stats"]["interest_paid"] = sum(tr["interest"] for tr in self.trades)
        return out


def simulate(bars: list[dict], params: dict, instrument: dict) -> dict:
    """Run the reference simulation.

    Returns per-bar lists ``equity, wallet, position, margin, liquidation_price, funding``,
    ``trades`` (dicts with the SPEC §8 columns plus bar numbers), ``events``,
    ``event_counts`` (by kind), ``n_ambiguous``, ``ruined`` and ``stats``.
    `params` must hold ``bar_ns`` (bar spacing) besides the run() parameters.
    """
    return _Run(bars, params, instrument).run()


# ============================================================================================
# Stats (SPEC §8 with semantics "Trades and stats")
# ============================================================================================

def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def compute_stats(equity: list[float], trades: list[dict], position: list[float],
                  liq: list[float], mark_low: list[float], mark_high: list[float],
                  n_ambiguous: int, initial: float, bar_ns: int) -> dict:
    """Every stats key, from the per-bar series and the trade rows."""
    n = len(equity)
    final = equity[-1]
    # per-bar log returns of the equity floored at the ruin threshold (1e-9 of the initial
    # capital), equity_{-1} = initial: a ruining bar is one return of about ln(1e-9)
    floor = 1e-9 * initial
    rets, prev = [], max(initial, floor)
    for e in equity:
        x = max(e, floor)
        rets.append(math.log(x / prev))
        prev = x
    bars_per_year = YEAR_NS / bar_ns
    sharpe = NAN
    if n >= 2:
        m = _mean(rets)
        var = sum((r - m) ** 2 for r in rets) / (n - 1)
        if var > 0.0:
            sharpe = m / math.sqrt(var) * math.sqrt(bars_per_year)
    down = math.sqrt(_mean([min(r, 0.0) ** 2 for r in rets]))
    sortino = _mean(rets) / down * math.sqrt(bars_per_year) if down > 0.0 else NAN
    peak, max_dd = initial, 0.0
    for e in equity:
        peak = max(peak, e)
        max_dd = max(max_dd, 1.0 - e / peak)
    years = n * bar_ns / YEAR_NS
    if final <= 0.0:
        cagr = -1.0
    else:
        try:
            cagr = math.exp(math.log(final / initial) / years) - 1.0
        except OverflowError:
            cagr = INF
    calmar = cagr / max_dd if max_dd > 0.0 else NAN
    pnls = [tr["pnl"] for tr in trades]
    wins = sum(x for x in pnls if x > 0.0)
    losses = sum(x for x in pnls if x < 0.0)
    if not pnls:
        win_rate, profit_factor = NAN, NAN
    else:
        win_rate = sum(1 for x in pnls if x > 0.0) / len(pnls)
        # semantics "Trades and stats": NaN when no trade won or lost anything.
        profit_factor = wins / abs(losses) if losses < 0.0 else (INF if wins > 0.0 else NAN)
    exposed = [i for i in range(n) if position[i] != 0.0]
    dists = []
    for i in exposed:
        if position[i] > 0.0:
            dists.append((mark_low[i] - liq[i]) / mark_low[i])
        else:
            dists.append((liq[i] - mark_high[i]) / mark_high[i])
    return {
        "final_equity": final,
        "total_return": final / initial - 1.0,
        "cagr": cagr,
        "max_drawdown": max_dd,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "n_trades": len(trades),
        "win_rate": win_rate,
        "profit_factor": profit_factor,
        "exposure": len(exposed) / n,
        "n_liquidations": sum(1 for tr in trades if tr["exit_reason"] == "liquidation"),
        "n_stops": sum(1 for tr in trades
                       if tr["exit_reason"] in ("stop_loss", "trailing_stop")),
        "funding_paid": sum(tr["funding"] for tr in trades),
        "fees_paid": sum(tr["fees"] for tr in trades),
        "n_ambiguous": n_ambiguous,
        "min_liq_distance": min(dists) if dists else NAN,
        "ruined": any(e <= RUIN_TOLERANCE * initial for e in equity),
    }


# ============================================================================================
# Adapters for the tests (outside the simulation): public objects -> plain dicts
# ============================================================================================

def instrument_dict(inst) -> dict:  # noqa: ANN001 - a backtest.Instrument
    """Plain-data view of a ``backtest.Instrument`` (its fields only, none of its maths)."""
    t = inst.tiers
    tiers = [{"floor": float(t.floor[i]), "mmr": float(t.mmr[i]),
              "maint_amount": float(t.cum[i]),
              "max_leverage": min(float(t.max_leverage[i]), float(inst.max_leverage))}
             for i in range(len(t.floor))]
    return {"settlement": inst.settlement, "contract_size": float(inst.contract_size),
            "tick_size": float(inst.tick_size), "lot_size": float(inst.lot_size),
            "maker_fee": float(inst.maker_fee), "taker_fee": float(inst.taker_fee),
            "rules": inst.rules, "tiers": tiers, "kind": inst.kind,
            "expiry_ns": None if inst.expiry is None else int(inst.expiry.value),
            "borrow_rate": float(inst.borrow_rate or 0.0),
            "margin_level": float(inst.liquidation_margin_level or NAN)}


def align_funding_events(times_ns: list[int], rates: list[float], bar_times: list[int],
                         bar_ns: int) -> tuple[list[float], list[int], list[float]]:
    """SPEC §6 timing, written plainly: an event at τ is settled at the open of the bar
    containing τ. Returns per-bar (rate sum, count, next rate); the next rate is that of the
    first event at or after the bar's end (``Market.next_funding_rate``'s definition).
    Events must lie inside the bars (no gaps)."""
    n = len(bar_times)
    rate_sum, count, nxt = [0.0] * n, [0] * n, [0.0] * n
    for tau, r in zip(times_ns, rates, strict=True):
        for i in range(n):
            if bar_times[i] <= tau < bar_times[i] + bar_ns:
                rate_sum[i] += r
                count[i] += 1
    for i in range(n):
        end = bar_times[i] + bar_ns
        later = [(tau, r) for tau, r in zip(times_ns, rates, strict=True) if tau >= end]
        nxt[i] = min(later)[1] if later else 0.0
    return rate_sum, count, nxt
