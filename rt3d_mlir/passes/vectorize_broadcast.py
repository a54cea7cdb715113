"""rt3d-vectorize-broadcast: vector kernels for broadcasting copies.

Matches a ``linalg.generic`` with one input and one result, all iterators
parallel, whose body yields its input element, whose result map is the
identity and whose input map reads a subset of the result's dimensions in
order (``(d0, ..., d7) -> (d0, d1, d2, d4, d6)``), over static f32 (or bf16 /
f16) tensors. ``prepare_graph`` writes a nearest upsampling by whole factors
as such a copy (``nearest_upsamplings``); ``expand`` of a tensor lowers to
one too. Without a kernel it is a scalar loop nest run by the model's one
thread (in the 2D U-Net its three upsamplings took more time than its
two smallest convs). The kernel (:mod:`rt3d_mlir.codegen.cpu.broadcast`)
copies contiguous input runs with vector loads and writes each output row
once, repeated elements by vector shuffles, rows split across threads.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.broadcast import broadcast_groups, broadcast_kernel_text
from rt3d_mlir.ir_matchers import generic_body, ops_named, static_size
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
class VectorizeBroadcastOptions(TargetOptions):
    chunk: int = 16384  # output elements per parallel task (whole rows)
    min_elements: int = 4096  # smaller copies are not worth a kernel

    def __post_init__(self) -> None:
        super().__post_init__()
        require_count(self.chunk, "chunk", 1)
        require_count(self.min_elements, "min-elements")


def broadcast_dims(op: ir.Operation) -> tuple[tuple[int, ...], list[bool]] | None:
    """A broadcasting copy's result shape and, per result dim, whether the input has it; None if
    ``op`` is not one (see the module docstring)."""
    if op.name != "linalg.generic" or len(op.operands) != 2 or len(op.results) != 1:
        return None
    iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if not all("parallel" in i for i in iterators):
        return None
    types = [ir.RankedTensorType(v.type) for v in (op.operands[0], op.results[0])
             if isinstance(v.type, ir.RankedTensorType)]
    if len(types) != 2 or any(not t.has_static_shape for t in types):
        return None
    element = str(types[1].element_type)
    if element not in ("f32", *HALF_ELEMENTS) or str(types[0].element_type) != element:
        return None
    body = generic_body(op)
    block = op.regions[0].blocks[0]
    if len(body) != 1 or body[0].name != "linalg.yield" or body[0].operands[0] != block.arguments[0]:
        return None
    in_map, out_map = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    out_shape = tuple(types[1].shape)
    if out_map != ir.AffineMap.get_identity(len(out_shape)):
        return None
    positions = []
    for expr in in_map.results:
        if not isinstance(expr, ir.AffineDimExpr):
            return None
        positions.append(ir.AffineDimExpr(expr).position)
    if positions != sorted(set(positions)) or len(positions) == len(out_shape):
        return None
    if tuple(types[0].shape) != tuple(out_shape[p] for p in positions):
        return None
    return out_shape, [d in positions for d in range(len(out_shape))]


@register_pass
class VectorizeBroadcast(Pass):
    name = "rt3d-vectorize-broadcast"
    summary = "Vector kernels for broadcasting copies (nearest upsamplings; threads)"
    Options = VectorizeBroadcastOptions

    def run(self, module: ir.Operation) -> None:
        opts = self.options
        lanes = vector_lanes(opts.target, opts.vector_width, module.location)
        if opts.chunk < lanes:
            raise PassFailure(f"chunk must be at least {lanes}", module.location)
        for op in ops_named(module, "linalg.generic"):
            dims = broadcast_dims(op)
            if dims is None or static_size(op.results[0]) < opts.min_elements:
                continue
            groups = broadcast_groups(*dims)
            if all(kept for _, kept in groups) or not any(kept for _, kept in groups):
                continue  # a copy, or a splat of one element
            element = str(ir.RankedTensorType(op.results[0].type).element_type)
            text = broadcast_kernel_text(
                KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, groups, lanes, opts.chunk, element
            )
            dispatch = add_kernel(module, "broadcast", text)
            replace_with_kernel_call(op, dispatch, lambda op=op: [op.operands[0]])
