"""rt3d-vectorize-pool: vector kernels for 3D max pooling.

Matches the ``linalg.generic`` torch-mlir emits for ``max_pool3d``: five
parallel and three reduction loops, input map ``(n, c, d*sd + kd, h*sh + kh,
w*sw + kw)``, a window operand, a ``maximumf`` body and an init filled with
a constant (``-inf``). Padding stays in the ``tensor.pad`` before it.

The kernel runs one task per (batch x channel, output depth) and walks
each output row in vectors of ``lanes`` columns: for every window position
one input vector (a contiguous load for W stride 1, a strided
``vector.gather`` from the cache-resident input row otherwise) and one
``maximumf``; the row's last vector is masked. Tasks are split across
threads like the conv kernels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.pool import PoolShape, pool_kernel_text
from rt3d_mlir.ir_matchers import (
    constant_attr,
    defining_op,
    generic_body,
    ops_named,
)
from rt3d_mlir.passes.framework import Pass, TargetOptions, register_pass
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
    vector_lanes,
)

_WINDOW_TERM = re.compile(r"^d(\d) (?:\* (\d+) )?\+ d(\d)$")


@dataclass
class VectorizePoolOptions(TargetOptions):
    pass


def _strides(input_map: ir.AffineMap) -> tuple[int, int, int] | None:
    results = [str(r) for r in input_map.results]
    if len(results) != 5 or results[:2] != ["d0", "d1"]:
        return None
    strides = []
    for dim, text in enumerate(results[2:]):
        match = _WINDOW_TERM.match(text)
        if not match or int(match.group(1)) != dim + 2 or int(match.group(3)) != dim + 5:
            return None
        strides.append(int(match.group(2) or 1))
    return strides[0], strides[1], strides[2]


def match_max_pool(op: ir.Operation) -> PoolShape | None:
    """The shape of a max-pool ``linalg.generic``, or None if ``op`` is not one."""
    if op.name != "linalg.generic" or len(op.operands) != 3 or len(op.results) != 1:
        return None
    iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if ["parallel" in i for i in iterators] != [True] * 5 + [False] * 3:
        return None
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    strides = _strides(maps[0])
    if strides is None or [str(r) for r in maps[1].results] != ["d5", "d6", "d7"]:
        return None
    if [str(r) for r in maps[2].results] != ["d0", "d1", "d2", "d3", "d4"]:
        return None
    body = generic_body(op)
    block = op.regions[0].blocks[0]
    if len(body) != 2 or body[0].name != "arith.maximumf" or body[1].operands[0] != body[0].results[0]:
        return None
    if set(body[0].operands) != {block.arguments[0], block.arguments[2]}:
        return None
    fill = defining_op(op.operands[2])
    if fill is None or fill.name != "linalg.fill":
        return None
    value = constant_attr(fill.operands[0])
    if not isinstance(value, ir.FloatAttr):
        return None
    shapes = []
    for v in (op.operands[0], op.operands[1], op.results[0]):
        t = ir.RankedTensorType(v.type)
        if not t.has_static_shape or t.element_type != ir.F32Type.get():
            return None
        shapes.append(tuple(t.shape))
    window = shapes[1]
    if len(window) != 3:
        return None
    return PoolShape(shapes[0], shapes[2], window, strides, float(value.value))  # type: ignore[arg-type]


@register_pass
class VectorizePool(Pass):
    name = "rt3d-vectorize-pool"
    summary = "Vector kernels for max-pool linalg.generic ops (strided gathers, threads)"
    Options = VectorizePoolOptions

    def run(self, module: ir.Operation) -> None:
        lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        for op in ops_named(module, "linalg.generic"):
            shape = match_max_pool(op)
            if shape is None:
                continue
            dispatch = add_kernel(
                module, "pool", pool_kernel_text(KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, shape, lanes)
            )
            replace_with_kernel_call(op, dispatch, lambda op=op: [op.operands[0]])
