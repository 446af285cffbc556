"""Array views without a reference count, for kernels that call helpers many times a bar.

Numba increments an array's reference count (an atomic operation, and a contended one when
threads share the array) whenever the array is passed to a function; ``step_bar`` passes
its arrays to dozens of helpers. ``unowned(a)`` is a view whose calls skip that.

Imports numba only.
"""

from numba import carray, config, njit, types
from numba.extending import intrinsic


@intrinsic
def _as_pointer(typingctx, address, like):
    """An integer address as a pointer to ``like``'s dtype (for ``carray`` views)."""
    sig = types.CPointer(like.dtype)(types.intp, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def unowned(a):
    """A view of contiguous ``a`` without a reference count (NULL meminfo).

    Numba increments an array's reference count (an atomic operation, and a contended one
    when threads share the array) whenever it is passed to a function; ``step_bar`` passes
    its arrays to dozens of helpers. On a view without a meminfo those calls return at once.
    ``a`` must outlive the view (e.g. allocated in the calling kernel's frame).
    """
    return carray(_as_pointer(a.ctypes.data, a), a.shape)


if config.DISABLE_JIT:  # plain Python (coverage, tracebacks): no pointers, no counts
    def unowned(a):  # noqa: F811
        return a


