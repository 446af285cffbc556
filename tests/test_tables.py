"""One formatter for every table (issue 12, item 7): terminal, HTML and reprs agree."""

from __future__ import annotations

import numpy as np
import pandas as pd

from backtest.presentation.tables import StatsFrame, format_value, html_table, text_table


def test_the_issue_examples_read_as_a_quant_expects():
    assert format_value("total_return", 154.4) == "+15,440.00 %"
    assert format_value("final_equity", 1.554e6) == "1,554,000.00"
    assert format_value("stop_loss", np.nan) == "none"          # no stop, not NaN
    assert format_value("stop_loss", 0.05) == "5.00 %"
    assert format_value("sharpe", np.nan) == "–"                # undefined stat
    assert format_value("sharpe", 0.98512) == "0.985"
    assert format_value("max_drawdown", 0.1055) == "10.55 %"
    assert format_value("ruined", True) == "yes"
    assert format_value("n_liquidations", 76) == "76"
    assert format_value("leverage", 10) == "10x"
    assert format_value("profit_factor", np.inf) == "inf"
    assert format_value("final_equity", 0.0123) == "0.012300"   # coin-settled accounts


def test_terminal_html_and_repr_show_the_same_cells():
    index = pd.MultiIndex.from_tuples([(10, np.nan), (1, 0.02)],
                                      names=["leverage", "stop_loss"])
    frame = StatsFrame({"total_return": [154.4, -0.5], "ruined": [False, True]}, index=index)
    text, page = text_table(frame), html_table(frame)
    for cell in ("+15,440.00 %", "-50.00 %", "none", "2.00 %", "10x", "yes", "no"):
        assert cell in text and cell in page
    assert repr(frame) == text and frame._repr_html_() == page
    assert isinstance(frame.iloc[:1], StatsFrame)
    assert frame["total_return"].iloc[0] == 154.4          # the numbers are unchanged


def test_a_long_table_is_shortened_in_reprs():
    frame = StatsFrame({"sharpe": np.arange(100.0)})
    text = repr(frame)
    assert "... 80 rows ..." in text and len(text.splitlines()) == 22
