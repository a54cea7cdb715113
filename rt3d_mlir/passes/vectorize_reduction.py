"""rt3d-vectorize-reduction: vector kernels for sums and maxima over trailing dimensions.

Matches a ``linalg.generic`` with one input read through the identity map,
its leading iterators parallel and the rest (at least one) reductions, an
output indexed by the parallel dims (``(d0, d1)``) or by them with zeros
for the reduced ones (``(d0, d1, 0, 0, 0)``: torch's ``keepdim``), a body
that is one ``arith.addf`` or ``arith.maximumf`` of the input and the
accumulator, and an init filled with a constant. That is the sum behind a
global average pool or a ``mean`` over (D, H, W), e.g. every
squeeze-excitation block, which the default lowering runs as one scalar
loop on one thread. The kernel is :mod:`rt3d_mlir.codegen.cpu.reduction`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.reduction import COMBINERS, reduction_kernel_text
from rt3d_mlir.ir_matchers import constant_attr, defining_op, generic_body, ops_named
from rt3d_mlir.passes.framework import Pass, TargetOptions, register_pass, require_count
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
    vector_lanes,
)


@dataclass
class VectorizeReductionOptions(TargetOptions):
    min_elements: int = 4096  # smaller reductions are not worth a kernel

    def __post_init__(self) -> None:
        super().__post_init__()
        require_count(self.min_elements, "min-elements")


@dataclass(frozen=True)
class TrailingReduction:
    combiner: str  # arith.addf or arith.maximumf
    rows: int  # elements of the kept (leading) dims
    inner: int  # elements reduced into each
    init: float


def match_trailing_reduction(op: ir.Operation) -> TrailingReduction | None:
    """The reduction ``op`` computes (see the module docstring), or None."""
    if op.name != "linalg.generic" or len(op.operands) != 2 or len(op.results) != 1:
        return None
    iterators = ["reduction" in str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    kept = iterators.index(True) if True in iterators else len(iterators)
    if kept == len(iterators) or not all(iterators[kept:]):
        return None
    in_map, out_map = (ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"]))
    rank = len(iterators)
    if in_map != ir.AffineMap.get_identity(rank):
        return None
    results = [str(r) for r in out_map.results]
    leading = [f"d{i}" for i in range(kept)]
    if results not in (leading, leading + ["0"] * (rank - kept)):
        return None
    in_type, out_type = ir.RankedTensorType(op.operands[0].type), ir.RankedTensorType(op.results[0].type)
    f32 = ir.F32Type.get()
    if not (in_type.has_static_shape and out_type.has_static_shape) or in_type.element_type != f32:
        return None
    body = generic_body(op)
    block = op.regions[0].blocks[0]
    if len(body) != 2 or body[0].name not in COMBINERS or body[1].operands[0] != body[0].results[0]:
        return None
    if sorted(map(str, body[0].operands)) != sorted(map(str, block.arguments[:2])):
        return None
    fill = defining_op(op.operands[1])
    if fill is None or fill.name != "linalg.fill":
        return None
    init = constant_attr(fill.operands[0])
    if not isinstance(init, ir.FloatAttr):
        return None
    shape = list(in_type.shape)
    rows, inner = math.prod(shape[:kept]), math.prod(shape[kept:])
    return TrailingReduction(body[0].name, rows, inner, float(init.value))


@register_pass
class VectorizeReduction(Pass):
    name = "rt3d-vectorize-reduction"
    summary = "Vector kernels for sums and maxima over trailing dims (global pools, means; threads)"
    Options = VectorizeReductionOptions

    def run(self, module: ir.Operation) -> None:
        lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        for op in ops_named(module, "linalg.generic"):
            found = match_trailing_reduction(op)
            if found is None or found.rows * found.inner < self.options.min_elements:
                continue
            text = reduction_kernel_text(
                KERNEL_PLACEHOLDER,
                DISPATCH_PLACEHOLDER,
                found.combiner,
                found.rows,
                found.inner,
                found.init,
                lanes,
            )
            dispatch = add_kernel(module, "reduction", text)
            replace_with_kernel_call(op, dispatch, lambda op=op: [op.operands[0]])
