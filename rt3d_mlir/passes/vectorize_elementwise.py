"""rt3d-vectorize-elementwise: vector kernels for elementwise ``linalg.generic`` ops.

Matches generics whose iterators are all parallel and whose indexing maps
are all identities over static f32 tensors (residual adds, ReLU after an
add, scaling): the scalar body is replayed on ``vector<L x f32>`` values
(scalar constants from outside the region become splats). The flat index
space is cut into tasks of ``chunk`` elements split across threads; each
task runs whole vectors, and the last one a masked tail.

Supported body ops: ``arith.addf/subf/mulf/divf/maximumf/minimumf/negf``,
``arith.cmpf`` and ``arith.select``. Anything else is left for the
default lowering.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.elementwise import BINARY, elementwise_kernel_text
from rt3d_mlir.ir_matchers import (
    constant_attr,
    generic_body,
    ops_named,
    static_size,
)
from rt3d_mlir.passes.framework import Pass, PassFailure, register_pass, require_count, require_target
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
    vector_lanes,
)


@dataclass
class VectorizeElementwiseOptions:
    target: str = "host"
    vector_width: int = 0
    chunk: int = 16384  # elements per parallel task
    min_elements: int = 4096  # smaller ops are not worth a kernel

    def __post_init__(self) -> None:
        require_target(self.target)
        require_count(self.vector_width, "vector-width", note=" (0: the target's)")
        require_count(self.chunk, "chunk", 1)
        require_count(self.min_elements, "min-elements")


def _static_f32(value: ir.Value) -> tuple[int, ...] | None:
    t = ir.RankedTensorType(value.type) if isinstance(value.type, ir.RankedTensorType) else None
    if t is None or not t.has_static_shape or t.element_type != ir.F32Type.get():
        return None
    return tuple(t.shape)


def match_elementwise(op: ir.Operation) -> bool:
    if op.name != "linalg.generic" or len(op.results) != 1:
        return False
    iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if not all("parallel" in i for i in iterators):
        return False
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    rank = len(iterators)
    if any(m != ir.AffineMap.get_identity(rank) for m in maps):
        return False
    shape = _static_f32(op.results[0])
    if shape is None or any(_static_f32(v) != shape for v in op.operands):
        return False
    block = op.regions[0].blocks[0]
    body = generic_body(op)
    known = set(block.arguments) | {r for inner in body for r in inner.results}
    for inner in body[:-1]:
        if inner.name not in (*BINARY, "arith.negf", "arith.cmpf", "arith.select"):
            return False
        for operand in inner.operands:
            if operand in known:
                continue
            if not isinstance(constant_attr(operand), ir.FloatAttr):
                return False
    return True


@register_pass
class VectorizeElementwise(Pass):
    name = "rt3d-vectorize-elementwise"
    summary = "Vector kernels for elementwise linalg.generic ops with identity maps (threads)"
    Options = VectorizeElementwiseOptions

    def run(self, module: ir.Operation) -> None:
        opts = self.options
        lanes = vector_lanes(opts.target, opts.vector_width, module.location)
        if opts.chunk < lanes or opts.chunk % lanes:
            raise PassFailure(f"chunk must be a positive multiple of {lanes}", module.location)
        for op in ops_named(module, "linalg.generic"):
            if not match_elementwise(op):
                continue
            size = static_size(op.results[0])
            if size < opts.min_elements:
                continue
            text, inputs = elementwise_kernel_text(
                KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, op, size, lanes, opts.chunk
            )
            dispatch = add_kernel(module, "elementwise", text)
            replace_with_kernel_call(
                op, dispatch, lambda op=op, inputs=inputs: [op.operands[i] for i in inputs]
            )
