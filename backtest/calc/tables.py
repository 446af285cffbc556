"""Text tables of ``backtest calc``: liquidation and funding, aligned for a terminal.

Built from the calculator's public functions (so the table and ``bt.calc`` agree). Imports
the sibling calculator modules, ``backtest.instruments`` and ``backtest.kernels.contracts``.
"""

from __future__ import annotations

import math

from backtest.calc.carry import annualised_funding, funding_payment
from backtest.calc.inputs import _funding_rate, _position, _positive
from backtest.calc.position import bankruptcy_price, liquidation_price
from backtest.instruments.instrument import Instrument
from backtest.kernels import contracts as _k


def _fmt(value: float, decimals: int | None = None) -> str:
    if not math.isfinite(value):
        return "none (cannot be reached)" if value > 0 else str(value)
    if decimals is None:
        mag = abs(value)
        decimals = 2 if mag >= 100 or mag == 0 else max(2, 5 - int(math.floor(math.log10(mag))))
    return f"{value:,.{decimals}f}"


def _table(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join([title] + [f"  {k.ljust(width)}  {v}" for k, v in rows])


def liquidation_table(entry: float, side: str, *, leverage: float | None = None,
                      size: float | None = None, wallet: float | None = None,
                      instrument: str | Instrument = "simple", mmr: float | None = None,
                      maint_amount: float | None = None, funding_rate: float = 0.0,
                      other_maintenance: float = 0.0, other_upnl: float = 0.0) -> str:
    """Liquidation and bankruptcy price, distance to liquidation (% of entry) and exposure
    per unit of margin, as an aligned text table (``backtest calc liquidation``).

    Same parameters as ``liquidation_price``.
    """
    func = "liquidation_table"
    liq = liquidation_price(entry, side, leverage=leverage, size=size, wallet=wallet,
                            instrument=instrument, mmr=mmr, maint_amount=maint_amount,
                            funding_rate=funding_rate, other_maintenance=other_maintenance,
                            other_upnl=other_upnl)
    # with a wallet, the margin is the wallet (leverage only set the tier check above)
    bank = bankruptcy_price(entry, side, leverage=None if wallet is not None else leverage,
                            size=size, wallet=wallet, instrument=instrument)
    inst, e, s, q, w, _ = _position(func, entry, side, leverage, size, wallet, instrument,
                                    cross=bool(other_maintenance) or bool(other_upnl))
    value = float(_k.notional(inst.settlement_code, q, e, inst.contract_size))
    acc = inst.account_currency
    name = instrument if isinstance(instrument, str) else inst.symbol
    row = inst.tiers.row(value)
    if inst.kind == "spot_margin":
        mm_text = f"liquidated at margin level {inst.liquidation_margin_level:g}"
    elif mmr is None and maint_amount is None:
        mm_text = f"{inst.tiers.mmr[row]:.3%} (tier {row + 1} at the entry notional)"
    else:
        used = inst.tiers.mmr[row] if mmr is None else float(mmr)
        mm_text = f"{used:.3%}, maintenance amount {maint_amount or 0:g} {acc} (given)"
    rows = [
        ("instrument", f"{name} ({inst.settlement} {inst.kind}, {inst.rules} rules)"),
        ("side", str(side)),
        ("entry price", _fmt(e)),
        ("size", f"{q:,.10g} {inst.size_unit}"),
        ("notional", f"{_fmt(value)} {acc}"),
        ("margin", f"{_fmt(w)} {acc}"),
        ("maintenance rate", mm_text),
        ("liquidation price", _fmt(liq) if liq > 0 else "none (cannot be reached)"),
        ("bankruptcy price", _fmt(bank) if bank > 0 else "none (cannot be reached)"),
    ]
    if math.isfinite(liq) and liq > 0:
        rows.append(("distance to liq.", f"{abs(e - liq) / e:.2%} of entry "
                                         f"({'down' if s > 0 else 'up'})"))
    rows.append(("exposure / margin", f"{value / w:.2f}x" if w > 0 else "n/a (no margin)"))
    return _table("Liquidation (prices in quote currency; rules in docs/semantics.md)", rows)


def funding_table(rate: float, interval_hours: float = 8.0, notional: float = 10_000.0) -> str:
    """Funding on a position of ``notional`` (account currency): payment per interval, per
    day, and annualised (365 days) — as an aligned text table (``backtest calc funding``).
    """
    func = "funding_table"
    r = _funding_rate(func, rate)
    hours = _positive(func, "interval_hours", interval_hours, " (e.g. 8)")
    n = _positive(func, "notional", notional)
    # A linear position of `notional` units at price 1 has notional `notional`.
    per_interval = funding_payment(n, 1.0, r, "long", "linear")
    payer = "longs pay shorts" if r > 0 else ("shorts pay longs" if r < 0 else "no payment")
    rows = [
        ("rate", f"{r:.4%} per {hours:g} h ({payer})"),
        ("notional", _fmt(n)),
        ("per interval", _fmt(per_interval, 4)),
        ("per day", _fmt(per_interval * 24.0 / hours, 4)),
        ("annualised", f"{annualised_funding(r, hours):.2%} of notional (365 days, simple)"),
    ]
    return _table("Funding (paid by a long, received by a short; docs/semantics.md)", rows)
