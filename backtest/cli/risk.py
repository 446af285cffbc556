"""``backtest risk CONFIG.toml [--out DIR]``: leverage risk from a TOML file.

The file is a run/sweep config (``[market]``, optional ``[signals]``, ``[params]`` whose
lists are swept, e.g. ``leverage = [1, 2, 5, 10]``; read with ``cli.config``'s own
helpers) plus a ``[risk]`` section with the keywords of ``bt.leverage_risk``:
``method`` ("rolling"/"bootstrap"), ``horizon`` ("30D"), ``starts`` (an int: every k-th
bar, or a duration "1D"), ``side`` ("long", "short" or a list), ``n_paths``, ``block``,
``bootstrap`` ("stationary"/"moving"), ``seed``, ``threads``, and ``threshold`` (e.g. 0.05:
also print the highest leverage whose liquidation probability stays below it, per side).
Without ``[signals]`` each window holds one position from its start. With ``[signals]``
and ``method = "bootstrap"`` the rule is recomputed on every path.

Prints the description and the table; writes ``risk_table.csv``, ``survival.csv``,
``risk.png`` and ``report.html`` (atomically) to DIR (default ``out/<config stem>``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.cli import config as C
from backtest.cli import schema as S
from backtest.cli.output import produce_and_write

RISK_KEYS = ("method", "horizon", "starts", "side", "n_paths", "block", "bootstrap", "seed",
             "threads", "threshold")


def read_risk_config(path: str | Path) -> tuple[S.Config, dict[str, Any]]:
    """The checked run/sweep part (``cli.config``) and the ``[risk]`` keywords."""
    path = Path(path)
    err = S._Where(path)
    doc = S._load_toml(path)
    risk = doc.pop("risk", None)
    if not isinstance(risk, dict):
        raise err("[risk]", "missing section (a table). Fix: add [risk] with e.g. "
                  "horizon = \"30D\"; see examples/leverage_risk.toml.")
    S._known(err, "risk", risk, RISK_KEYS)
    for key in doc:
        if key not in S.SECTIONS:
            raise err(f"[{key}]", f"unknown section.{S._hint(key, (*S.SECTIONS, 'risk'))}")
    if "market" not in doc:
        raise err("[market]", "missing section. Fix: add it; see examples/leverage_risk.toml.")
    folder = path.resolve().parent
    market = S._market(err, folder, doc["market"])
    signals = S._signals(err, folder, doc["signals"], True) if "signals" in doc else {}
    params = {k: S._param(err, k, v, True) for k, v in S._known(
        err, "params", doc.get("params", {}), tuple(S.RUN_DEFAULTS)).items()}
    return S.Config(path=path, market=market, signals=signals, params=params,
                    sweep=True), risk


def risk_config(path: str | Path) -> tuple[S.Config, Any, pd.DataFrame | None]:
    """Run the config: ``(config, RiskResult, safe-leverage frame or None)``."""
    from backtest.risk.api import leverage_risk
    from backtest.risk.safe import safe_rows

    cfg, risk = read_risk_config(path)
    market = C.load_config_market(cfg)
    C.check_params(cfg, market.instrument)
    threshold = risk.pop("threshold", None)
    kwargs: dict[str, Any] = dict(risk)
    if cfg.signals:
        if risk.get("method") == "bootstrap":
            kwargs["signals"] = lambda m: C.config_signals(cfg, m)
        else:
            kwargs.update(C.config_signals(cfg, market))
    try:
        result = leverage_risk(market, **kwargs, **cfg.params)
        safe = None if threshold is None else safe_rows(result, threshold)
    except (ValueError, TypeError) as exc:
        raise S.ConfigError(f"{cfg.path}: {exc}") from None
    return cfg, result, safe


def _cmd_risk(args: argparse.Namespace) -> int:
    from backtest.presentation.plotting.common import figure_png
    from backtest.presentation.reports.risk import risk_report_html

    def produce() -> tuple[dict[str, bytes | str], str]:
        _, result, safe = risk_config(args.config)
        payloads = {"risk_table.csv": result.table.to_csv(),
                    "survival.csv": result.survival().to_csv(),
                    "risk.png": figure_png(result.plot()),
                    "report.html": risk_report_html(result)}
        return payloads, _summary(result, safe)

    return produce_and_write(args.out, args.config, produce)


def _summary(result: Any, safe: pd.DataFrame | None) -> str:
    """The printed answer: the method, the table's headline columns, the safe leverage."""
    with pd.option_context("display.width", 200, "display.max_columns", 12):
        shown = result.table[[c for c in result.table.columns if c in SHOWN]]
        lines = [result.describe(), shown.to_string(float_format="{:.4g}".format)]
    if safe is not None:
        for side, row in safe.iterrows():
            lines.append(f"safe leverage ({side}): {row['safe_leverage']:g}x keeps "
                         f"P(liquidation within {row['horizon']}) at "
                         f"{row['p_liquidation']:.2%} < {row['threshold']:.0%}; next "
                         f"{row['next_leverage']:g}x: {row['next_p_liquidation']:.2%}")
    return "\n".join(lines)


SHOWN = ("n_windows", "n_paths", "p_liquidation", "p_ruin", "p_stopped", "p_drawdown_50",
         "total_return_q50", "max_drawdown_q50", "median_time_to_liquidation", "growth_rate")


def add_risk_parser(sub: Any) -> None:
    """Register ``backtest risk`` on the main parser's subcommands."""
    cmd = sub.add_parser("risk", help="liquidation/ruin probability by leverage over every "
                                      "start date or bootstrap paths (TOML with [risk]; see "
                                      "examples/leverage_risk.toml)")
    cmd.add_argument("config", help="TOML file with [market], [risk], optional [signals], "
                                    "[params]")
    cmd.add_argument("--out", default=None, help="output folder (default: out/<config stem>)")
    cmd.set_defaults(handler=_cmd_risk)
