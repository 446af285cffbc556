"""``backtest demo``: one documented strategy on the shipped sample data at 1×, 3×, 10×, 25×.

Data (shipped inside the package, :func:`backtest.data.samples.sample_path`): Binance USDⓈ-M BTCUSDT
perpetual — 1h last-price bars, 1h mark-price bars and the funding events — as preset
``binance:BTCUSDT`` (linear, USDT account, Binance fees and maintenance tiers), trimmed to
``2020-01-01 → 2026-05-17 07:00 UTC``, the span the mark-price file covers. Liquidations
are therefore tested on the exchange's mark price, stops on the last price.

Strategy (fixed for the demo, not optimised — it is an example, not advice):

- ``fast`` = 24-bar (one day) and ``slow`` = 168-bar (one week) simple moving averages of
  the last close (:func:`backtest.signals.ma_cross`; no look-ahead).
- Long when fast crosses above slow, short when it crosses below; the opposite entry
  reverses the position. Signals at a bar's close fill at the next bar's open (taker fee).
- A 5 % stop-loss from the entry fill (triggered on the last price, market fill). After a
  stop the strategy waits flat for the next cross.
- Isolated margin; at each entry 25 % of the wallet is posted as margin (``size=0.25``,
  ``size_type="margin"``), so the position notional is 0.25×, 0.75×, 2.5× and 6.25× equity
  at 1×, 3×, 10× and 25×.

Why this sizing: everything but the leverage is held fixed, so the runs differ in exactly
what leverage changes — exposure, fee and funding drag (both proportional to notional), and
the liquidation distance (≈ 1/L − mmr: ~33 % at 3×, ~9.5 % at 10×, ~3.6 % at 25×). Posting a
quarter of the wallet rather than all of it keeps isolated margin meaningful: a liquidation
costs that position's margin, not the whole account, so the table shows *how often* it
happens. At 25× the 5 % stop lies beyond the liquidation price and can never fire — the run
warns, and the table shows liquidations where the lower leverages show stops.

Owns :func:`run_demo` only; imports the engine, signals, plotting and report modules.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backtest.data.market import load_market
from backtest.data.samples import sample_path
from backtest.errors import DataError
from backtest.presentation.plotting import figure_png, plot_comparison, plot_result
from backtest.presentation.render_pool import RenderPool
from backtest.presentation.reports.single import write_atomic, write_comparison_report
from backtest.presentation.tables import format_value
from backtest.simulation.run import run
from backtest.simulation.signals import ma_cross

FILES = {"bars": "binance_btcusdt_perp_1h.parquet",
         "mark": "binance_btcusdt_perp_1h_mark.parquet",
         "funding": "binance_btcusdt_perp_funding.parquet"}
INSTRUMENT = "binance:BTCUSDT"
START, END = "2020-01-01", "2026-05-17 07:00"  # the span the mark file covers
LEVERAGES = (1, 3, 10, 25)
FAST, SLOW = 24, 168
RUN_PARAMS: dict[str, Any] = {"margin_mode": "isolated", "size": 0.25, "size_type": "margin",
                              "stop_loss": 0.05, "stop_trigger": "last",
                              "initial_capital": 10_000.0}
WICK = 0.01  # last-price low this far below the mark low counts as a wick the mark ignored



def _strategy(instrument: Any) -> str:
    """The strategy in four lines (the module docstring says why)."""
    return (
        f"strategy: {FAST}h/{SLOW}h SMA cross of the last close, long and short (a cross "
        "reverses the position);\n"
        f"          signal at the bar close, filled at the next open; "
        f"{RUN_PARAMS['stop_loss']:.0%} stop-loss on the {RUN_PARAMS['stop_trigger']} price;"
        f"\n          {RUN_PARAMS['margin_mode']} margin, {RUN_PARAMS['size']:.0%} of the wallet "
        "posted per entry (notional = margin x leverage),\n"
        f"          so only the leverage differs between the runs; fees: taker "
        f"{instrument.taker_fee:.3%}, maker {instrument.maker_fee:.3%} of notional.")


def data_dir() -> Path:
    """Where the shipped sample data is: the package's ``backtest/data/sample_files``
    (package data, so an installed wheel has it too)."""
    return sample_path(FILES["bars"]).parent


def _paths(folder: Path) -> dict[str, Path]:
    paths = {k: folder / name for k, name in FILES.items()}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise DataError(f"backtest demo: the sample data is expected in {folder} and "
                        f"{', '.join(missing)} is missing there. It ships inside the "
                        "package (backtest/data/sample_files). Fix: reinstall the package "
                        "(pip install --force-reinstall backtest), or pass data= a folder "
                        "holding these files.")
    return paths


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Right-aligned columns separated by two spaces, with a rule under the header."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    lines = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


def _table(results: dict[str, Any], currency: str) -> str:
    """The comparison table, one row per leverage, numbers by the package's one formatter
    (``backtest.presentation.tables``)."""
    header = ("leverage", "total return", "CAGR", "max drawdown", "Sharpe", "liquidations",
              "ruined", "stops", f"funding paid ({currency})", f"fees paid ({currency})",
              f"final equity ({currency})")
    keys = ("total_return", "cagr", "max_drawdown", "sharpe", "n_liquidations", "ruined",
            "n_stops", "funding_paid", "fees_paid", "final_equity")
    rows = [(label, *(format_value(k, r.stats[k]) for k in keys))
            for label, r in results.items()]
    return _text_table(header, rows)


def _rejections(label: str, result: Any) -> list[str]:
    """Entries the run refused (recorded as events), one note per reason."""
    kinds = result.events["kind"].value_counts()
    reasons = {"size_zero": "the size rounded to 0 lots (equity too small)",
               "insufficient_margin": "not enough free margin",
               "leverage_above_tier": "the leverage exceeds the tier's maximum"}
    return [f"{label}: {int(kinds[k])} entries rejected: {why}."
            for k, why in reasons.items() if k in kinds.index]


def _wick_line(market: Any) -> str:
    """How often the last price wicked more than :data:`WICK` below the mark low."""
    depth = (market.mark_low - market.low) / market.mark_low
    hit = depth > WICK
    n = int(hit.sum())
    line = (f"wicks: in {n:,} of {market.n_bars:,} bars the last-price low was more than "
            f"{WICK:.0%} below the mark low")
    if n:
        i = int(np.argmax(depth))
        line += (f" (deepest {depth[i]:.1%} at {market.index[i]:%Y-%m-%d %H:%M} UTC); "
                 "a stop on the last price fires on them, a mark-price liquidation does not")
    return line + "."


PROGRESS_DELAY_S = 2.0  # the progress bar appears only once the demo has taken this long


def _progress(show: bool) -> Any:
    """A tqdm bar over the demo's steps (runs, figures, report) on stderr that stays hidden
    unless the demo outlives :data:`PROGRESS_DELAY_S` (a cold Numba cache, a slow disk)."""
    from tqdm.auto import tqdm

    return tqdm(total=2 * len(LEVERAGES) + 3, desc="backtest demo", unit="step",
                delay=PROGRESS_DELAY_S, disable=not show, leave=False)


def result_png(result: Any) -> bytes:
    """One run's figure as PNG (module level, so the render worker can be sent it)."""
    return figure_png(plot_result(result))   # log equity axis beyond a 10x span


def comparison_png(results: dict[str, Any], symbol: str) -> bytes:
    """The equity comparison of all runs as PNG (module level, like :func:`result_png`)."""
    return figure_png(plot_comparison(results, title=(
        f"{symbol}: {FAST}h/{SLOW}h SMA cross, long/short, 5% stop, 25% of the wallet as "
        "isolated margin — by leverage")))


def _figures_and_report(results: dict[str, Any], symbol: str, summary: str, out: Path,
                        pool: RenderPool, bar: Any) -> list[Path]:
    """Draw the figures (the last half of the runs in the render worker, if there is one,
    the rest here meanwhile), write them and the report; returns the files written."""
    labels = list(results)
    elsewhere = labels[len(labels) // 2:] if pool.parallel else []
    pending = dict(zip(elsewhere, pool.render([(result_png, (results[label],))
                                               for label in elsewhere]), strict=True))
    images: dict[str, bytes] = {}
    written: list[Path] = []
    for label in labels:
        images[label] = (pending[label].result() if label in pending
                         else result_png(results[label]))
        written.append(write_atomic(out / f"result_{label}.png", images[label]))
        bar.update()
    comparison = comparison_png(results, symbol)
    written.append(write_atomic(out / "comparison.png", comparison))
    bar.update()
    written.append(write_comparison_report(
        results, out / "report.html", title="backtest demo: one strategy at 1x, 3x, 10x, 25x",
        notes=summary, images=images, comparison_image=comparison,
        # the tables of each run's analysis, not its figure: four figures would triple
        # the demo's time (about 1 s each); `backtest run` and Result.report() draw it
        analysis_figures=False))
    bar.update()
    return written


def run_demo(out_dir: str | Path = "out/demo", data: str | Path | None = None,
             progress: bool = True) -> str:
    """Run the module's strategy at 1×, 3×, 10×, 25× and write figures and a report.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``result_<L>x.png`` (one per leverage), ``comparison.png`` and
        ``report.html``; created if needed. Files are written atomically.
    data : str or Path, optional
        Folder with the sample files; default :func:`data_dir`.
    progress : bool
        Show a progress bar (stderr) when the demo takes more than ~2 s.

    Returns
    -------
    str
        The text the command prints: data, strategy, comparison table, wick count, notes
        (warnings raised by the runs) and the files written.

    Raises
    ------
    DataError
        The sample data is not where it is expected (e.g. an installed wheel).
    """
    t0 = time.perf_counter()
    paths = _paths(Path(data) if data is not None else data_dir())
    out = Path(out_dir)
    notes: list[str] = []
    bar = _progress(progress)
    # started first: its imports overlap the data loading and the kernels' compile
    pool = RenderPool()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            market = load_market(paths["bars"], mark=paths["mark"], funding=paths["funding"],
                                 instrument=INSTRUMENT, start=START, end=END)
            entries, short_entries = ma_cross(market.bars["close"], FAST, SLOW)
            bar.update()
            results: dict[str, Any] = {}
            for lev in LEVERAGES:
                label = f"{lev}x"
                n_before = len(caught)
                results[label] = run(market, entries=entries, short_entries=short_entries,
                                     leverage=lev, **RUN_PARAMS)
                notes += [f"{label}: {w.message}" for w in caught[n_before:]]
                notes += _rejections(label, results[label])
                bar.update()
        notes = list(dict.fromkeys(notes))
        t_run = time.perf_counter() - t0
        currency = market.instrument.account_currency
        funding_events = int(market.funding_count.sum())
        head = (f"backtest demo: {market.instrument.symbol} perpetual ({INSTRUMENT}), 1h bars "
                f"{market.index[0]:%Y-%m-%d %H:%M} -> {market.index[-1]:%Y-%m-%d %H:%M} UTC "
                f"({market.n_bars:,} bars, liquidation on the {market.mark_source} price, "
                f"{funding_events:,} funding events), initial capital "
                f"{RUN_PARAMS['initial_capital']:,.0f} {currency}")
        body = [head, _strategy(market.instrument), "", _table(results, currency), "",
                _wick_line(market)]
        if notes:
            body += ["", "notes:"] + [f"  {n}" for n in notes]
        summary = "\n".join(body)
        written = _figures_and_report(results, market.instrument.symbol, summary, out, pool,
                                      bar)
    finally:
        pool.close()
    bar.close()
    elapsed = time.perf_counter() - t0
    files = "files: " + ", ".join(str(p) for p in written)
    timing = (f"time: {elapsed:.1f} s ({t_run:.1f} s loading and running, Numba compile "
              "included on first use)")
    return "\n".join([summary, "", files, timing])
