"""rt3d-vectorize-matmul: vector kernels for fully connected layers.

Matches ``linalg.matmul(A[M,K], B[K,N])`` with a zero-filled init whose
``B`` is a constant, or a ``linalg.transpose`` of a constant ``W[N,K]`` (the
form torch-mlir gives ``nn.Linear``). At batch 1 this is a matrix-vector
product bound by reading the weights, so the kernel streams them once, in
the order it uses them: packed ``[N/B][K][B]`` (``B`` = vector lanes,
``N`` padded with zero columns), one task per block of ``B`` outputs and
row of ``A``, with ``unroll`` independent accumulators over ``K`` to hide
FMA latency. The transpose is done at compile time instead of on every
call. Tasks are split across threads like the conv kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith

from rt3d_mlir.passes.framework import Pass, register_pass, require_count, require_target
from rt3d_mlir.passes.kernel_calls import (
    KernelText,
    insert_kernel_module,
    kernel_module_text,
    memref_type_text,
    replace_with_kernel_call,
    unique_kernel_names,
    vector_lanes,
)
from rt3d_mlir.passes.matchers import (
    constant_array,
    defining_op,
    is_float_constant,
    ops_named,
)


@dataclass
class VectorizeMatmulOptions:
    target: str = "host"
    vector_width: int = 0
    unroll: int = 4

    def __post_init__(self) -> None:
        require_target(self.target)
        require_count(self.vector_width, "vector-width", note=" (0: the target's)")
        require_count(self.unroll, "unroll", 1, note="")


def _weight_matrix(b: ir.Value) -> np.ndarray | None:
    """``W[N, K]`` such that ``B = W^T``, if ``B`` is constant or a transposed constant."""
    producer = defining_op(b)
    if producer is not None and producer.name == "linalg.transpose":
        perm = tuple(ir.DenseI64ArrayAttr(producer.attributes["permutation"]))
        source = constant_array(producer.operands[0])
        if perm == (1, 0) and source is not None:
            return source
        return None
    array = constant_array(b)
    return None if array is None else np.ascontiguousarray(array.T)


def _zero_init(value: ir.Value) -> bool:
    init = defining_op(value)
    if init is not None and init.name == "linalg.fill":
        return is_float_constant(init.operands[0], 0.0)
    array = constant_array(value)
    return array is not None and not array.any()


def pack_matmul_weights(weight: np.ndarray, lanes: int) -> np.ndarray:
    """``W[N, K]`` to ``[ceil(N/lanes)][K][lanes]`` (zero columns pad N)."""
    n, k = weight.shape
    blocks = -(-n // lanes)
    padded = np.zeros((blocks * lanes, k), dtype=np.float32)
    padded[:n] = weight
    return np.ascontiguousarray(padded.reshape(blocks, lanes, k).transpose(0, 2, 1)).reshape(-1)


def matmul_kernel_text(
    kernel: str, dispatch: str, m: int, k_dim: int, n: int, lanes: int, unroll: int
) -> str:
    blocks = -(-n // lanes)
    vec = f"vector<{lanes}xf32>"
    kt = KernelText()
    kt.indent = 2
    t = "%task"
    row = kt.op(f"arith.divui {t}, {kt.const(blocks)} : index")
    block = kt.op(f"arith.remui {t}, {kt.const(blocks)} : index")
    a_base = kt.index((row, k_dim))
    w_base = kt.index((block, k_dim * lanes))
    zero = kt.vconst(0.0, lanes, "f32")
    a_type = memref_type_text(m * k_dim, "f32")
    w_type = memref_type_text(blocks * k_dim * lanes, "f32")
    unroll = max(1, min(unroll, k_dim))
    full = (k_dim // unroll) * unroll
    accs = [zero] * unroll
    if full:
        kk = kt.fresh("k")
        names = [kt.fresh("acc") for _ in range(unroll)]
        results = kt.fresh("sum")
        inits = ", ".join(f"{a} = {zero}" for a in names)
        kt.emit(
            f"{results}:{unroll} = scf.for {kk} = {kt.const(0)} to {kt.const(full)} step {kt.const(unroll)} "
            f"iter_args({inits}) -> ({', '.join([vec] * unroll)}) {{"
        )
        kt.indent += 1
        updated = []
        for u in range(unroll):
            a_at = kt.index((a_base, 1), (kk, 1), (u, 1))
            a = kt.op(f"memref.load %a[{a_at}] : {a_type}")
            a_vec = kt.op(f"vector.broadcast {a} : f32 to {vec}")
            w_at = kt.index((w_base, 1), (kk, lanes), (u * lanes, 1))
            w = kt.op(f"vector.load %w[{w_at}] : {w_type}, {vec}")
            updated.append(kt.op(f"vector.fma {a_vec}, {w}, {names[u]} : {vec}"))
        kt.emit(f"scf.yield {', '.join(updated)} : {', '.join([vec] * unroll)}")
        kt.indent -= 1
        kt.emit("}")
        accs = [f"{results}#{u}" for u in range(unroll)]
    for kk in range(full, k_dim):  # the remainder, unrolled
        a_at = kt.index((a_base, 1), (kk, 1))
        a = kt.op(f"memref.load %a[{a_at}] : {a_type}")
        a_vec = kt.op(f"vector.broadcast {a} : f32 to {vec}")
        w_at = kt.index((w_base, 1), (kk * lanes, 1))
        w = kt.op(f"vector.load %w[{w_at}] : {w_type}, {vec}")
        slot = kk % unroll
        accs[slot] = kt.op(f"vector.fma {a_vec}, {w}, {accs[slot]} : {vec}")
    total = accs[0]
    for acc in accs[1:]:
        total = kt.op(f"arith.addf {total}, {acc} : {vec}")
    first = kt.index((block, lanes))
    remaining = kt.op(f"arith.subi {kt.const(n)}, {first} : index")
    mask = kt.op(f"vector.create_mask {remaining} : vector<{lanes}xi1>")
    out_at = kt.index((row, n), (first, 1))
    kt.emit(
        f"vector.maskedstore %out[{out_at}], {mask}, {total} : "
        f"{memref_type_text(m * n, 'f32')}, vector<{lanes}xi1>, {vec}"
    )
    args = [("%a", a_type), ("%w", w_type), ("%out", memref_type_text(m * n, "f32"))]
    flops = 2 * m * n * k_dim
    return kernel_module_text(kernel, dispatch, args, m * blocks, kt, t, flops=flops, dense_flops=flops)


@register_pass
class VectorizeMatmul(Pass):
    name = "rt3d-vectorize-matmul"
    summary = "Vector kernels for linalg.matmul with constant (or transposed constant) weights"
    Options = VectorizeMatmulOptions

    def run(self, module: ir.Operation) -> None:
        lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        for op in ops_named(module, "linalg.matmul"):
            self._rewrite(module, op, lanes)

    def _rewrite(self, module: ir.Operation, op: ir.Operation, lanes: int) -> None:
        if len(op.operands) != 3 or len(op.results) != 1:
            return
        a, b, init = op.operands
        a_type = ir.RankedTensorType(a.type)
        if not a_type.has_static_shape or a_type.element_type != ir.F32Type.get() or not _zero_init(init):
            return
        weight = _weight_matrix(b)
        if weight is None:
            return
        m, k_dim = a_type.shape
        n = weight.shape[0]
        kernel, dispatch = unique_kernel_names(module, "matmul")
        insert_kernel_module(
            module, matmul_kernel_text(kernel, dispatch, m, k_dim, n, lanes, self.options.unroll)
        )

        def inputs() -> list[ir.Value]:
            attr = ir.DenseElementsAttr.get(pack_matmul_weights(weight.astype(np.float32), lanes))
            return [a, arith.ConstantOp(attr.type, attr).result]

        replace_with_kernel_call(op, dispatch, inputs)
