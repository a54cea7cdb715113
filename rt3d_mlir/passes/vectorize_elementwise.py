"""rt3d-vectorize-elementwise: vector kernels for elementwise ``linalg.generic`` ops.

Matches generics whose iterators are all parallel over static f32 tensors
(or bf16 / f16 ones, whose body widens them with ``arith.extf`` and narrows its
result with ``arith.truncf``: ``rt3d-propagate-layout{precision=bf16|fp16}``)
and whose indexing maps are identities, or for inputs a broadcast over the
trailing dimensions (``(d0, d1, 0, 0, 0)``: a squeeze-excitation gate
multiplying every channel; residual adds, ReLU after an add, scaling,
SiLU): the scalar body is replayed on ``vector<L x f32>`` values (scalar
constants from outside the region become splats). The flat index space is
cut into tasks of ``chunk`` elements split across threads; each task runs
whole vectors, and the last one a masked tail.

Supported body ops: ``arith.addf/subf/mulf/divf/maximumf/minimumf/negf``,
``math.exp``, ``arith.cmpf``, ``arith.select``, ``arith.extf`` and ``arith.truncf``
(between bf16 or f16 and f32). Anything else is left
for the default lowering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.elementwise import BINARY, CONVERSIONS, UNARY, elementwise_kernel_text
from rt3d_mlir.ir_matchers import (
    constant_attr,
    generic_body,
    ops_named,
    static_size,
)
from rt3d_mlir.kernel_packing import HALF_ELEMENTS
from rt3d_mlir.passes.framework import (
    Pass,
    PassFailure,
    TargetOptions,
    register_pass,
    require_count,
)
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
    vector_lanes,
)


@dataclass
class VectorizeElementwiseOptions(TargetOptions):
    chunk: int = 16384  # elements per parallel task
    min_elements: int = 4096  # smaller ops are not worth a kernel

    def __post_init__(self) -> None:
        super().__post_init__()
        require_count(self.chunk, "chunk", 1)
        require_count(self.min_elements, "min-elements")


def _static_f32(value: ir.Value) -> tuple[int, ...] | None:
    """The static shape of an f32 (or bf16 / f16) tensor, or None."""
    t = ir.RankedTensorType(value.type) if isinstance(value.type, ir.RankedTensorType) else None
    if t is None or not t.has_static_shape or str(t.element_type) not in ("f32", *HALF_ELEMENTS):
        return None
    return tuple(t.shape)


def _inner(amap: ir.AffineMap, shape: tuple[int, ...] | None, out: tuple[int, ...]) -> int | None:
    """How many consecutive output elements share one element of an operand read through ``amap``
    (1 for an identity map; ``D*H*W`` for ``(d0, d1, 0, 0, 0)`` on ``N x C x 1 x 1 x 1``), or None."""
    if shape is None or len(shape) != len(out) or amap.n_dims != len(out):
        return None
    results = list(amap.results)
    kept = 0
    while kept < len(results) and isinstance(results[kept], ir.AffineDimExpr):
        if ir.AffineDimExpr(results[kept]).position != kept:
            return None
        kept += 1
    rest = results[kept:]
    if any(not isinstance(e, ir.AffineConstantExpr) or ir.AffineConstantExpr(e).value != 0 for e in rest):
        return None
    if shape[:kept] != out[:kept] or any(s != 1 for s in shape[kept:]):
        return None
    return math.prod(out[kept:])


def elementwise_inner(op: ir.Operation) -> list[int] | None:
    """Per operand of an elementwise generic, the output elements sharing one of its elements; None
    if ``op`` is not one the kernel takes (see the module docstring)."""
    if op.name != "linalg.generic" or len(op.results) != 1:
        return None
    iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if not all("parallel" in i for i in iterators):
        return None
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    shape = _static_f32(op.results[0])
    if shape is None or maps[-1] != ir.AffineMap.get_identity(len(iterators)):
        return None
    inner = [_inner(m, _static_f32(v), shape) for m, v in zip(maps, op.operands, strict=True)]
    if any(i is None for i in inner) or inner[-1] != 1:
        return None
    block = op.regions[0].blocks[0]
    body = generic_body(op)
    known = set(block.arguments) | {r for inner_op in body for r in inner_op.results}
    for inner_op in body[:-1]:
        if inner_op.name not in (*BINARY, *UNARY, *CONVERSIONS, "arith.cmpf", "arith.select"):
            return None
        if inner_op.name in (*BINARY, *UNARY) and str(inner_op.results[0].type) != "f32":
            return None  # arithmetic in f32 only
        widths = {str(inner_op.operands[0].type), str(inner_op.results[0].type)}
        if inner_op.name in CONVERSIONS and (len(widths) != 2 or not widths <= {"f32", *HALF_ELEMENTS}):
            return None
        for operand in inner_op.operands:
            if operand in known:
                continue
            if not isinstance(constant_attr(operand), ir.FloatAttr):
                return None
    return inner  # type: ignore[return-value]


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
            inner = elementwise_inner(op)
            if inner is None:
                continue
            size = static_size(op.results[0])
            if size < opts.min_elements:
                continue
            text, inputs = elementwise_kernel_text(
                KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, op, size, lanes, opts.chunk, inner
            )
            dispatch = add_kernel(module, "elementwise", text)
            replace_with_kernel_call(
                op, dispatch, lambda op=op, inputs=inputs: [op.operands[i] for i in inputs]
            )
