"""Helpers for the compiled per-row loops (population kernel, care choice, family capacity).

`row_function` and `kernel` compile (numba) without reference counting. These loops only read and
write arrays they are given, in NamedTuples; with counting on, numba increfs and decrefs every
array of a tuple at each inlined row-function call, which costs several times the arithmetic.
Code compiled so cannot allocate arrays: callers pass outputs and scratch in. A `kernel` releases
the GIL while it runs, so the worker thread of `CareModel.run_until` runs beside it.

`fetch_add` adds to an array element atomically, so that threads running compiled loops at the
same time can share out work (the population kernel's chunks) without a lock.

`prefetch` asks the CPU to start loading an array element into cache. Loops over scattered rows
issue it for the rows `AHEAD` of the current one, so that the memory waits of successive rows
overlap instead of adding up. It is a hint: no result depends on it.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

row_function = numba.njit(inline="always", cache=True, _nrt=False)
kernel = numba.njit(cache=True, _nrt=False, nogil=True)
AHEAD = 16  # rows; measured on the 2030 deciders and residents in need (8-32 do about as well)

_I32 = ir.IntType(32)
_BYTES = ir.IntType(8).as_pointer()


@intrinsic
def prefetch(typingctx, array, index):
    """Start loading array[index] (a non-negative index) into cache, for reading."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        data = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, data, [args[1]], wraparound=False
        )
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [_BYTES, _I32, _I32, _I32]),
            "llvm.prefetch.p0",
        )
        read, keep_in_all_levels, data_cache = (ir.Constant(_I32, v) for v in (0, 3, 1))
        builder.call(fn, [builder.bitcast(pointer, _BYTES), read, keep_in_all_levels, data_cache])
        return context.get_dummy_value()

    return types.void(array, index), codegen


@intrinsic
def fetch_add(typingctx, array, index, value):
    """Atomically add `value` to array[index] (an int64 array, a non-negative index); returns
    the element before the addition. Sequentially consistent: every thread sees the additions in
    one order."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        data = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, data, [args[1]], wraparound=False
        )
        amount = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", pointer, amount, "seq_cst")

    return types.int64(array, index, value), codegen
