"""Command line: ``backtest <command>``.

Owns argument parsing, exit codes (0 success, 2 bad input or configuration, 1 internal
error) and printing. Every command delegates to a library function that returns text or a
result; nothing here computes a number itself.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from backtest.errors import DataError


def _cmd_data_check(args: argparse.Namespace) -> int:
    from backtest.market import check_files

    text, ok = check_files(args.files, gaps=args.gaps)
    print(text)
    return 0 if ok else 2


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


def _cmd_demo(args: argparse.Namespace) -> int:
    from backtest.demo import run_demo

    print(run_demo(out_dir=args.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backtest",
        description="Backtest leveraged crypto derivatives (perpetuals, futures, spot margin).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect market-data files")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="validate Parquet bar/funding files (SPEC §11)")
    check.add_argument("files", nargs="+", help="Parquet files (bars, mark bars or funding)")
    check.add_argument("--gaps", choices=["error", "warn"], default="warn",
                       help="treat irregular bar spacing as an error or a warning")
    check.set_defaults(handler=_cmd_data_check)

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
    try:
        return int(args.handler(args))
    except (DataError, ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        kind = type(exc).__name__
        print(f"backtest: {kind}: {exc}", file=sys.stderr)
        return 2
    except Exception:  # an internal error: show the traceback, exit 1
        traceback.print_exc()
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
