"""rt3d-gpu-matmul: the fully connected layers of the int8 scheme to int8-weight GPU kernels.

With ``precision=int8``, a ``linalg.matmul(A, B)`` with a zero-filled init,
whose ``B`` is a constant or a transposed constant ``W[N, K]`` (what
torch-mlir gives ``nn.Linear``) and whose ``A`` is the importer's int8
quantization (a layer of the scheme: ``W`` is on its per-output grid),
becomes a dispatch of :mod:`rt3d_mlir.codegen.gpu.matmul`: the weights
stored as their int8 values, four to a word (a quarter of the bytes), with
one scale per output. Other matmuls, and every matmul in other precisions,
are left to ``rt3d-gpu-generic``. Run before ``linalg-generalize-named-ops``.
"""

from __future__ import annotations

import numpy as np
from torch_mlir import ir

from rt3d_mlir.codegen.gpu.matmul import int8_matvec_kernel
from rt3d_mlir.ir_matchers import fake_quantized_input, ops_named
from rt3d_mlir.kernel_packing import INT8_QUAD, quantized_lanes
from rt3d_mlir.passes.builders import array_constant
from rt3d_mlir.passes.framework import Pass, register_pass
from rt3d_mlir.passes.gpu_conv import GpuPrecisionOptions
from rt3d_mlir.passes.gpu_dispatch import add_kernel, dispatch, tensor_type
from rt3d_mlir.passes.vectorize_matmul import weight_matrix, zero_init


def int8_words(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``W[N, K]`` as the scheme's int8 values, four consecutive ``k`` to a little-endian word, words
    ``[K/4][N]`` (``K`` padded with zeros); and each output's scale."""
    n, k = weight.shape
    q, scales, _ = quantized_lanes(np.ascontiguousarray(weight.T).reshape(-1), np.array([0, k]), 1, n)
    padded = np.zeros((-(-k // INT8_QUAD) * INT8_QUAD, n), np.int8)
    padded[:k] = q.reshape(k, n)
    words = padded.reshape(-1, INT8_QUAD, n).transpose(0, 2, 1)  # [K/4][N][4 bytes]
    return np.ascontiguousarray(words).view(np.int32).reshape(-1), scales


@register_pass
class GpuMatmul(Pass):
    name = "rt3d-gpu-matmul"
    summary = "int8-weight GPU kernels for the fully connected layers of the int8 scheme"
    Options = GpuPrecisionOptions

    def run(self, module: ir.Operation) -> None:
        if self.options.precision != "int8":
            return
        for op in ops_named(module, "linalg.matmul"):
            self._rewrite(module, op)

    def _rewrite(self, module: ir.Operation, op: ir.Operation) -> None:
        if len(op.operands) != 3 or len(op.results) != 1:
            return
        a, b, init = op.operands
        a_type = ir.RankedTensorType(a.type)
        weight = weight_matrix(b)
        if (
            weight is None or not a_type.has_static_shape or a_type.element_type != ir.F32Type.get()
            or not zero_init(init) or fake_quantized_input(a) is None
        ):
            return
        m, k = a_type.shape
        n = weight.shape[0]
        words, scales = int8_words(weight.astype(np.float32))
        with ir.InsertionPoint(op), op.location:
            symbol, kernel = add_kernel(module, "matmul", lambda name: int8_matvec_kernel(name, m, k, n))
            result = dispatch(
                module, symbol, kernel, [a, array_constant(words), array_constant(scales)],
                tensor_type((m, n)), "matmul",
            )
        op.results[0].replace_all_uses_with(result)
        op.erase()
