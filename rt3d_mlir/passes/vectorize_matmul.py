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

from rt3d_mlir.codegen.cpu.matmul import matmul_kernel_text, pack_matmul_weights
from rt3d_mlir.ir_matchers import (
    constant_array,
    defining_op,
    fake_quantized_input,
    is_float_constant,
    ops_named,
)
from rt3d_mlir.kernel_packing import PRECISIONS, bf16_bits, quantized_lanes
from rt3d_mlir.passes.builders import array_constant
from rt3d_mlir.passes.framework import Pass, TargetOptions, register_pass, require_count
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
    vector_lanes,
)


@dataclass
class VectorizeMatmulOptions(TargetOptions):
    unroll: int = 4
    # of the packed weights (bf16, fp16: half the bytes streamed; int8: a quarter, for the layers of
    # the int8 scheme, whose input the importer put on its grid)
    precision: str = "fp32"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_count(self.unroll, "unroll", 1, note="")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")


def weight_matrix(b: ir.Value) -> np.ndarray | None:
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


def zero_init(value: ir.Value) -> bool:
    init = defining_op(value)
    if init is not None and init.name == "linalg.fill":
        return is_float_constant(init.operands[0], 0.0)
    array = constant_array(value)
    return array is not None and not array.any()


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
        if not a_type.has_static_shape or a_type.element_type != ir.F32Type.get() or not zero_init(init):
            return
        weight = weight_matrix(b)
        if weight is None:
            return
        m, k_dim = a_type.shape
        n = weight.shape[0]
        precision = self.options.precision
        if precision == "int8" and fake_quantized_input(a) is None:
            precision = "fp32"  # not a layer of the int8 scheme: its weights stay as they are
        text = matmul_kernel_text(
            KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, m, k_dim, n, lanes, self.options.unroll,
            {"bf16": "i16", "fp16": "f16", "int8": "i8"}.get(precision, "f32"),
        )
        dispatch = add_kernel(module, "matmul", text)

        def inputs() -> list[ir.Value]:
            extra = []
            if precision == "int8":
                # one block of n lanes, one entry of one channel per k: per output channel (row)
                q, scales, _ = quantized_lanes(weight.T.reshape(-1), np.array([0, k_dim]), 1, n)
                packed = pack_matmul_weights(q.reshape(k_dim, n).T.astype(np.float32), lanes).astype(np.int8)
                padded = np.ones(-(-n // lanes) * lanes, np.float32)
                padded[:n] = scales
                extra = [array_constant(padded)]
            else:
                packed = pack_matmul_weights(weight.astype(np.float32), lanes)
                if precision == "bf16":
                    packed = bf16_bits(packed).view(np.int16)
                elif precision == "fp16":
                    packed = packed.astype(np.float16)
            return [a, array_constant(packed), *extra]

        replace_with_kernel_call(op, dispatch, inputs)
