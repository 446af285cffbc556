"""Hypothesis profiles of the hardening tests: ``ci`` (default, bounded) and ``thorough``.

Import this module before building ``@settings`` (the values are taken when a test module
is imported). Choose the profile with the environment variable::

    HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_fuzz.py

or with Hypothesis' own option, which needs the profiles registered before pytest
configures itself (i.e. loaded as an early plugin)::

    python -m pytest -p tests.hypothesis_profiles --hypothesis-profile=thorough tests/test_fuzz.py

A profile chosen with ``--hypothesis-profile`` is kept: importing this module again from the
test files does not override it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

# ci is derandomized: the same examples on every run, so that a CI result depends on the
# code alone; thorough draws new examples every run (that is where new cases are found).
settings.register_profile("ci", max_examples=150, deadline=2_000, derandomize=True,
                          suppress_health_check=_QUIET, print_blob=True)
settings.register_profile("thorough", max_examples=2_000, deadline=5_000,
                          suppress_health_check=_QUIET, print_blob=True)

PROFILE_NAME = os.environ.get("HYPOTHESIS_PROFILE")
if PROFILE_NAME:
    settings.load_profile(PROFILE_NAME)
elif settings.get_current_profile_name() == "default":
    settings.load_profile("ci")


def oracle_profile(prefix: str, ci_examples: int, thorough_examples: int) -> settings:
    """The settings of an oracle-agreement module: ``{prefix}-ci`` (``ci_examples``,
    derandomized like ``ci``) or ``{prefix}-thorough`` (``thorough_examples``, random),
    chosen by the environment variable ``BACKTEST_HYPOTHESIS_PROFILE`` (``ci`` by default).
    No deadline: a first example may include a Numba compile."""
    for name, examples in (("ci", ci_examples), ("thorough", thorough_examples)):
        settings.register_profile(
            f"{prefix}-{name}", max_examples=examples, deadline=None,
            derandomize=name == "ci", print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    return settings.get_profile(f"{prefix}-" + os.environ.get("BACKTEST_HYPOTHESIS_PROFILE",
                                                              "ci"))

