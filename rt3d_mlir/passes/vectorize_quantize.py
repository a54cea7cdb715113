"""rt3d-vectorize-quantize: the CPU kernel of each ``rt3d.quantize`` left standing.

``rt3d-quantize-convs`` puts an ``rt3d.quantize`` before each conv that
computes in int8; ``rt3d-vectorize`` computes it in the epilogue of the conv
before it where it can (the conv's only reader, a "filters" kernel of whole
in-order channel blocks). The others (an activation also read by a
residual add, a pool's output, a model input) get the quantize kernel
(:mod:`rt3d_mlir.codegen.cpu.quantize`): it reads the plain f32 activation
and writes the zero-padded int8 input blocked by four channels. Run after
``rt3d-vectorize``.
"""

from __future__ import annotations

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.quantize import quantize_kernel_text
from rt3d_mlir.dialect import load_dialect, quantize_params
from rt3d_mlir.ir_matchers import ops_named
from rt3d_mlir.passes.framework import Pass, TargetOptions, register_pass
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
    vector_lanes,
)

QUANTIZE_STEM = "quantize"  # the kernels' names: rt3d_quantize_kernel_<i>, rt3d_quantize_dispatch_<j>


@register_pass
class VectorizeQuantize(Pass):
    name = "rt3d-vectorize-quantize"
    summary = "Vector kernels for rt3d.quantize (int8 inputs of convs, padded and blocked by 4 channels)"
    Options = TargetOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        for op in ops_named(module, "rt3d.quantize"):
            params = quantize_params(op)
            x_shape = tuple(ir.RankedTensorType(op.operands[0].type).shape)
            padded = tuple(ir.RankedTensorType(op.results[0].type).shape)[2:5]
            text = quantize_kernel_text(
                KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, x_shape, params.padding_low, padded,  # type: ignore[arg-type]
                params.scale, params.zero_point, lanes,
            )
            dispatch = add_kernel(module, QUANTIZE_STEM, text)
            replace_with_kernel_call(op, dispatch, lambda op=op: [op.operands[0]])
