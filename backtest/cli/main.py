"""Command line: ``backtest <command>``.

Owns argument parsing, exit codes (0 success, 2 bad input or configuration, 1 internal
error), printing, and the files ``run``/``sweep`` write. Every command delegates to a
library function that returns text or a result; nothing here computes a number itself.

``backtest run CONFIG.toml [--out DIR]`` (config schema: :mod:`backtest.config`) writes
``stats.csv`` (stat,value), ``trades.csv``, ``equity.csv`` (the per-bar curves),
``equity.png`` and ``report.html``; ``backtest sweep`` writes ``sweep_stats.csv`` (the
index levels as the first columns; a ``"none"`` value is an empty cell) and ``report.html``
when the sweep has a report. DIR defaults to ``out/<config stem>`` in the current folder.
Every file is rendered in memory first, then written to a temporary name and renamed: an
error leaves no half-written file.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backtest.cli.output import produce_and_write
from backtest.errors import DataError


def _cmd_data_check(args: argparse.Namespace) -> int:
    from backtest.data.check import check_files

    text, ok = check_files(args.files, gaps=args.gaps)
    print(text)
    return 0 if ok else 2


def _cmd_data_import(args: argparse.Namespace) -> int:
    from backtest.data.importers import import_files, summary, write_parquet

    out = Path(args.out)
    if any(Path(s).resolve() == out.resolve() for s in args.sources):
        raise ValueError(f"--out {out}: is also a source file; the import would replace its "
                         "own input. Fix: pass another --out path.")
    frame = import_files(args.format, args.sources, symbol=args.symbol, interval=args.interval,
                         timestamp_column=args.timestamp_column, unit=args.unit,
                         timestamp_is=args.timestamp_is)
    print(summary(frame, write_parquet(frame, out)))
    return 0


def _cmd_calc_liquidation(args: argparse.Namespace) -> int:
    from backtest.calc import liquidation_table

    print(
        liquidation_table(
            entry=args.entry,
            side=args.side,
            leverage=args.leverage,
            instrument=args.instrument,
            mmr=args.mmr,
            size=args.size,
            wallet=args.wallet,
            funding_rate=args.funding_rate,
        )
    )
    return 0


def _cmd_calc_funding(args: argparse.Namespace) -> int:
    from backtest.calc import funding_table

    print(funding_table(rate=args.rate, interval_hours=args.interval_hours,
                        notional=args.notional))
    return 0


_CURVES = ("equity", "wallet", "position", "margin", "liquidation_price", "funding", "drawdown")
_FRACTIONS = ("total_return", "cagr", "max_drawdown", "win_rate", "exposure",
              "min_liq_distance")
_MONEY = ("final_equity", "funding_paid", "fees_paid", "interest_paid")
_BEST_COLUMNS = ["total_return", "sharpe", "max_drawdown", "n_liquidations", "n_trades",
                 "final_equity"]


def _run_payloads(result: Any) -> dict[str, bytes | str]:
    """The files of ``backtest run``, rendered in memory."""
    import pandas as pd

    from backtest.presentation.plotting import figure_png
    from backtest.presentation.reports.single import result_report_html

    png = figure_png(result.plot())
    curves = pd.DataFrame({k: getattr(result, k) for k in _CURVES}).rename_axis("timestamp")
    return {"stats.csv": result.stats.rename("value").rename_axis("stat").to_csv(),
            "trades.csv": result.trades.to_csv(index=False),
            "equity.csv": curves.to_csv(),
            "equity.png": png,
            "report.html": result_report_html(result, png=png)}  # what Result.report writes


def _span(market: Any) -> str:
    return (f"{market.instrument.symbol} {market.instrument.kind}, "
            f"{market.index[0]:%Y-%m-%d %H:%M} -> {market.index[-1]:%Y-%m-%d %H:%M} UTC "
            f"({market.n_bars:,} bars, liquidation on the {market.mark_source} price)")


def _stat(key: str, value: Any, currency: str) -> str:
    if isinstance(value, (bool, str)) or key.startswith("n_"):
        return str(value)
    if key in _FRACTIONS:
        return f"{value:.2%}"
    if key in _MONEY:
        return f"{value:,.2f} {currency}"
    return f"{value:.4g}"


def _describe(cfg: Any) -> str:
    """One line: the signal rule and the parameters set in the file ("none" for None)."""
    def text(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(map(text, v)) + "]"
        return "none" if v is None else v.name if isinstance(v, Path) else str(v)

    sig = ", ".join(f"{k}={text(v)}" for k, v in cfg.signals.items())
    prm = ", ".join(f"{k}={text(v)}" for k, v in cfg.params.items())
    return f"signals: {sig}; params: {prm or 'none set'} (others default)"


def _run_summary(cfg: Any, result: Any) -> str:
    lines = [f"backtest run {cfg.path}: {_span(result.market)}", _describe(cfg)]
    lines += [f"  {k:<17}{_stat(k, v, result.account_currency)}"
              for k, v in result.stats.items()]
    return "\n".join(lines)


def _sweep_payloads(swept: Any) -> dict[str, bytes | str]:
    """``sweep_stats.csv`` (one row per combination, the index levels as columns) and
    ``report.html``."""
    from backtest.presentation.reports.sweep import sweep_report_html

    return {"sweep_stats.csv": swept.stats.reset_index().to_csv(index=False),
            "report.html": sweep_report_html(swept)}


def _sweep_summary(cfg: Any, swept: Any) -> str:
    stats = swept.stats
    levels = " x ".join(f"{name} [{stats.index.get_level_values(name).nunique(dropna=False)}]"
                        for name in swept.names) or "nothing swept"
    lines = [f"backtest sweep {cfg.path}: {len(swept):,} combinations ({levels}) in "
             f"{swept.elapsed:.3g} s, {_span(swept.market)}", _describe(cfg)]
    n = min(5, len(swept))
    for metric in ("sharpe", "total_return"):
        best = swept.best(metric, n=n)[_BEST_COLUMNS]
        lines += ["", f"best {n} by {metric}:", best.to_string(float_format="{:.4g}".format)]
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace) -> int:
    from backtest.cli.config import run_config

    def produce() -> tuple[dict[str, bytes | str], str]:
        cfg, result = run_config(args.config)
        return _run_payloads(result), _run_summary(cfg, result)

    return produce_and_write(args.out, args.config, produce)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from backtest.cli.config import sweep_config

    def produce() -> tuple[dict[str, bytes | str], str]:
        cfg, swept = sweep_config(args.config, progress=not args.no_progress,
                                  store=args.store)
        return _sweep_payloads(swept), _sweep_summary(cfg, swept)

    return produce_and_write(args.out, args.config, produce)


def _cmd_demo(args: argparse.Namespace) -> int:
    from backtest.cli.demo import run_demo

    print(run_demo(out_dir=args.out))
    return 0


def _add_import(data_sub: Any) -> None:
    """``backtest data import FORMAT SRC... --out DST.parquet`` and its options."""
    from backtest.data.importers import FORMATS

    imp = data_sub.add_parser("import", help="convert exchange/tool exports to our Parquet "
                              "schema (bars or funding)")
    imp.add_argument("format", metavar="FORMAT", help="one of: " + ", ".join(FORMATS))
    imp.add_argument("sources", nargs="+", metavar="SRC",
                     help="source files (CSV/JSON, .gz, .zip; freqtrade .feather), merged in "
                          "time order")
    imp.add_argument("--out", required=True, metavar="DST.parquet", help="Parquet file to write")
    imp.add_argument("--symbol", default=None, help="bitmex-*, binance-funding: symbol to keep")
    imp.add_argument("--interval", default=None,
                     help="bitmex-trades (required): bar length, e.g. 1m, 15m, 1h, 1d")
    imp.add_argument("--timestamp-column", default=None,
                     help="csv: name of the time column (default: timestamp)")
    imp.add_argument("--unit", default=None,
                     help="csv: s, ms, us, ns (epoch numbers) or iso (text); default: detected")
    imp.add_argument("--timestamp-is", default=None, choices=["open", "close"],
                     help="csv: the time is the bar open (default) or close time")
    imp.set_defaults(handler=_cmd_data_import)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backtest",
        description="Backtest leveraged crypto derivatives (perpetuals, futures, spot margin).",
    )
    from backtest.version import __version__

    parser.add_argument("--version", action="version", version=f"backtest {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect market-data files")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="validate Parquet bar/funding files "
                                "(the checks load_market makes)")
    check.add_argument("files", nargs="+", help="Parquet files (bars, mark bars or funding)")
    check.add_argument("--gaps", choices=["error", "warn"], default="warn",
                       help="treat irregular bar spacing as an error or a warning")
    check.set_defaults(handler=_cmd_data_check)
    _add_import(data_sub)

    calc = sub.add_parser("calc", help="margin calculator (the seed article's formulas)")
    calc_sub = calc.add_subparsers(dest="calc_command", required=True)
    liq = calc_sub.add_parser("liquidation", help="liquidation and bankruptcy price")
    liq.add_argument("--entry", type=float, required=True, help="entry price (quote currency)")
    liq.add_argument("--leverage", type=float, default=None, help="leverage multiple, e.g. 10")
    liq.add_argument("--side", choices=["long", "short"], default="long")
    liq.add_argument("--instrument", default="simple",
                     help="rules name (simple, binance, bitmex) or preset, e.g. bitmex:XBTUSD")
    liq.add_argument("--mmr", type=float, default=None,
                     help="maintenance margin rate as a fraction (0.005 = 0.5 %%)")
    liq.add_argument("--size", type=float, default=None,
                     help="position size (base units or contracts); default 1 base unit")
    liq.add_argument("--wallet", type=float, default=None,
                     help="isolated margin or cross wallet (account currency)")
    liq.add_argument("--funding-rate", type=float, default=0.0,
                     help="next funding rate (BitMEX reserve term), a fraction")
    liq.set_defaults(handler=_cmd_calc_liquidation)
    fund = calc_sub.add_parser("funding", help="funding payment and annualised cost")
    fund.add_argument("--rate", type=float, required=True, help="rate per interval, a fraction")
    fund.add_argument("--interval-hours", type=float, default=8.0)
    fund.add_argument("--notional", type=float, default=10_000.0,
                      help="position notional in account currency")
    fund.set_defaults(handler=_cmd_calc_funding)

    for name, text in (("run", "one backtest from a TOML config (see examples/ma_cross.toml)"),
                       ("sweep", "a parameter sweep from a TOML config: lists in [params] "
                                 "are swept (see examples/leverage_sweep.toml)")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("config", help="TOML file with [market], [signals], [params]")
        cmd.add_argument("--out", default=None,
                         help="output folder (default: out/<config file stem>)")
        if name == "sweep":
            cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
            cmd.add_argument("--store", default=None, metavar="DIR",
                             help="keep the stats in DIR chunk by chunk as they finish; "
                                  "the same command again resumes an interrupted sweep")
        cmd.set_defaults(handler=_cmd_run if name == "run" else _cmd_sweep)

    from backtest.cli.risk import add_risk_parser

    add_risk_parser(sub)
    demo = sub.add_parser("demo", help="run the documented strategy on the shipped sample data")
    demo.add_argument("--out", default="out/demo", help="folder for the figures and report")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage and the error (or --help)
        return int(exc.code or 0)
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; every expected failure becomes one line on stderr and an exit code
    (2 bad input, configuration or file system; 130 interrupted; 1 internal error)."""
    from backtest.cli.failures import describe_os_error

    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        _say("backtest: interrupted (Ctrl-C); files already written are complete, nothing "
             "half-written was left.")
        return 130
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (e.g. `| head`): nothing more to print
        _say("backtest: output pipe closed by the reader (e.g. `| head`); output truncated. "
             "Fix: redirect to a file to keep all of it.")
        return 2
    except OSError as exc:
        _say(f"backtest: {describe_os_error(exc, args)}")
        return 2
    except (DataError, ValueError, TypeError, KeyError) as exc:
        kind = type(exc).__name__
        _say(f"backtest: {kind}: {exc}")
        return 2
    except Exception as exc:  # an internal error: show the traceback, exit 1
        if type(exc).__name__ == "SweepTaskError":  # distributed workers lost: not a bug
            _say(f"backtest: {exc}")
            return 1
        traceback.print_exc()
        return 1


def _say(line: str) -> None:
    """One line on stderr, even when stderr itself is gone."""
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
