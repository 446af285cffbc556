"""The run kernel's call tree in two parts that compile independently (the cold start).

A cold ``run()`` spends ~9 s compiling ``simulate`` and its ~40 helpers, one after another
on one core: Numba compiles a callee when it first types a call to it. The tree has two
large independent subtrees under ``step_bar`` — the orders that open positions
(``entries``) and the exits, legs and funding (``exits``, ``funding``) — so
``simulation.parallel_compile`` compiles :data:`PARTS` ``"entries"`` in a second process
while this one compiles ``"exits"``; both write Numba's disk cache, and ``simulate``'s own
compile then loads the other process's half from it instead of compiling it. Helpers both
parts call (``ledger``, ``contracts``) are compiled by both, in parallel.

Contract: :data:`PARTS` maps a part to ``(dispatcher, argument types)`` pairs whose types
are exactly the ones ``step_bar``/``simulate`` call them with (all arrays 1-D C-contiguous
float64, see ``step.py``). A type that drifts from the call compiles a second, useless
specialisation; ``tests/test_parallel_compile.py`` fails then. Pure Python (no kernel
here); imports numba and kernels only, so a bare process can import it without the
package's public modules.
"""

from __future__ import annotations

from numba import types

from backtest.kernels import entries, exits, funding, simulate, stats, step

_A = types.Array(types.float64, 1, "C")     # st, p, bar, inst, tiers, trades, events, out
_I = types.int64
_F = types.float64
_B = types.boolean
_U8 = types.uint8

# Balanced by their measured compile time (CPU, this machine, 2026-12-06): ~3.7 s each
# with the shared helpers.
PARTS = {
    "entries": (
        (entries.process_signals, (_A, _A, _I, _I, _I, _F, _F, _A, _A, _A, _A, _A)),
        (entries.check_entry_limit, (_A, _A, _I, _A, _A, _A, _A, _A)),
        (stats.finalize_stats, (_A, _A, _I, _F, _A)),
    ),
    "exits": (
        (exits.run_legs, (_A, _A, _I, _A, _A, _A, _A)),
        (exits.check_open, (_A, _A, _I, _A, _A, _A, _A)),
        (funding.settle_funding, (_A, _A, _I, _A, _A, _A)),
        (funding.charge_interest, (_A, _A, _F, _F)),
        (step.idle_bar, (_A, _A, _I, _I, _B, _I, _U8, _A, _A, _A, _I)),
        (step.init_state, (_A, _A)),
        (simulate.rows_of, (_A, _I, _I)),
        (simulate.grow_buffer, (_A, _I)),
    ),
}


def compile_part(name: str) -> None:
    """Compile (or load from Numba's cache) every function of ``PARTS[name]``."""
    for dispatcher, argument_types in PARTS[name]:
        dispatcher.compile(argument_types)
