"""Numba kernels: arrays and scalars in, arrays out. Nothing here imports pandas or the
public modules; enum values are plain ints (see ``records.py`` and ``contracts.py``)."""
