"""rt3d-vectorize-pad: vector kernels for constant ``tensor.pad`` of 5-D activations.

Bufferized, a ``tensor.pad`` is a fill of the whole padded buffer and then a
copy of the interior: two passes over memory, both lowered to scalar
loops. The kernel writes each padded row once instead: the low padding,
the input row (vector loads and stores, the last vector masked), the high
padding; rows and planes entirely in the padding are filled. One task per
(batch x channel, padded depth), split across threads.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.pad import pad_kernel_text
from rt3d_mlir.ir_matchers import (
    constant_attr,
    generic_body,
    ops_named,
    static_size,
)
from rt3d_mlir.kernel_packing import HALF_ELEMENTS
from rt3d_mlir.passes.framework import Pass, TargetOptions, register_pass, require_count
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
    vector_lanes,
)


@dataclass
class VectorizePadOptions(TargetOptions):
    min_elements: int = 4096  # smaller pads are not worth a kernel

    def __post_init__(self) -> None:
        super().__post_init__()
        require_count(self.min_elements, "min-elements")


def pad_value(op: ir.Operation) -> float | None:
    """The constant a static 5-D f32 (or bf16 / f16) ``tensor.pad`` pads with, or None."""
    if op.name != "tensor.pad" or len(op.operands) != 1:
        return None
    for value in (op.operands[0], op.results[0]):
        t = ir.RankedTensorType(value.type)
        if t.rank != 5 or not t.has_static_shape or str(t.element_type) not in ("f32", *HALF_ELEMENTS):
            return None
    return pad_constant(op)


def pad_constant(op: ir.Operation) -> float | None:
    """The constant a ``tensor.pad`` yields, or None (whatever its rank)."""
    attr = constant_attr(generic_body(op)[-1].operands[0])
    return float(attr.value) if isinstance(attr, ir.FloatAttr) else None


@register_pass
class VectorizePad(Pass):
    name = "rt3d-vectorize-pad"
    summary = "Vector kernels for constant tensor.pad of 5-D activations (one pass, threads)"
    Options = VectorizePadOptions

    def run(self, module: ir.Operation) -> None:
        lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        for op in ops_named(module, "tensor.pad"):
            value = pad_value(op)
            if value is None:
                continue
            low = tuple(ir.DenseI64ArrayAttr(op.attributes["static_low"]))
            if low[:2] != (0, 0) or tuple(ir.DenseI64ArrayAttr(op.attributes["static_high"]))[:2] != (0, 0):
                continue
            in_shape = tuple(ir.RankedTensorType(op.operands[0].type).shape)
            out_shape = tuple(ir.RankedTensorType(op.results[0].type).shape)
            if static_size(op.results[0]) < self.options.min_elements:
                continue
            text = pad_kernel_text(
                KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, in_shape, low, out_shape, value, lanes,
                element=str(ir.RankedTensorType(op.results[0].type).element_type),
            )
            dispatch = add_kernel(module, "pad", text)
            replace_with_kernel_call(op, dispatch, lambda op=op: [op.operands[0]])
