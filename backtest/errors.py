"""Typed errors of the public boundary (SPEC §11).

Owns the exception classes only; imports nothing from the package.
"""


class DataError(ValueError):
    """A market-data file or frame is unusable as given.

    Messages name the file, the column (or row/timestamp), what was expected, what was
    found, and how to fix it.
    """
