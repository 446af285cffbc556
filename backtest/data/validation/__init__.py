"""Checks of market-data tables at the load boundary (SPEC §11).

Owns reading Parquet, turning a DataFrame into a :class:`Table` (int64 ns times and float64
columns) and one function per validation concern. Every problem is a :class:`DataError` whose
message names the file (or "bars DataFrame"), the column, the first offending row and the
count, what was expected, what was found and a fix. Known real-data conventions are repaired
only where the SPEC allows it, and counted. Imports pandas, numpy, pyarrow and
``backtest.errors`` only; never the kernels or the engine.

Split by table: ``timestamps`` (times and their formats), ``tables`` (reading, schema,
order), ``bars`` (price bars), ``reference`` (funding and mark/index against the bars). The
loaders and importers use the names re-exported here as ``v.<name>``.
"""

from backtest.data.validation.bars import (
    MAX_PRICE,
    MIN_PRICE,
    check_price_magnitude,
    check_prices,
    check_ranges,
    check_tick,
    check_volume,
    gaps_message,
    record_open_repair,
    repair_open,
    spacing,
    validate_bars,
)
from backtest.data.validation.reference import (
    MAX_FUNDING_RATE,
    MAX_MEDIAN_FUNDING_RATE,
    align_reference,
    check_funding_coverage,
    check_reference_plausible,
    funding_holes,
    validate_funding,
)
from backtest.data.validation.tables import (
    PRICE_COLUMNS,
    Table,
    check_columns,
    check_duplicate_columns,
    check_order,
    check_readable_file,
    numeric_column,
    read_frame,
    suggest,
    to_table,
    trim,
)
from backtest.data.validation.timestamps import EARLIEST_NS, fmt_interval, fmt_ts, timestamps

__all__ = [
    "EARLIEST_NS", "MAX_FUNDING_RATE", "MAX_MEDIAN_FUNDING_RATE", "MAX_PRICE", "MIN_PRICE",
    "PRICE_COLUMNS", "Table", "align_reference", "check_columns", "check_duplicate_columns",
    "check_funding_coverage", "check_order", "check_reference_plausible", "funding_holes",
    "check_price_magnitude", "check_prices", "check_readable_file",
    "check_ranges", "check_tick", "check_volume", "fmt_interval", "fmt_ts", "gaps_message",
    "numeric_column", "read_frame", "record_open_repair", "repair_open", "spacing", "suggest",
    "timestamps", "to_table", "trim", "validate_bars", "validate_funding",
]
