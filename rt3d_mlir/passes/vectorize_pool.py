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

The channel-blocked form ``rt3d-propagate-layout`` makes of it (six
parallel loops, input map ``(n, cb, d*sd + kd, h*sh + kh, w*sw + kw, l)`` on
(N, C / L, D, H, W, L) tensors) gets the blocked kernel: one aligned vector
load of ``L`` channels per window position and output column.

Run before ``rt3d-vectorize``: a pool whose only user is a packed conv that
zero-pads it writes into that conv's padded input (``fuse-pads``, as convs
do), and the conv's padding becomes zero. A pool the conv before it
computes in its kernel's epilogue (:func:`epilogue_pool`: non-overlapping
windows over rows and columns) is left to ``rt3d-vectorize``
(``fuse-epilogues``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.pool import PoolShape, pool_kernel_text
from rt3d_mlir.dialect import packed_conv3d_params
from rt3d_mlir.ir_matchers import (
    constant_attr,
    defining_op,
    generic_body,
    ops_named,
    single_use,
)
from rt3d_mlir.kernel_packing import HALF_ELEMENTS, plain_shape
from rt3d_mlir.passes.framework import Pass, TargetOptions, register_pass
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
    vector_lanes,
)
from rt3d_mlir.passes.padded_outputs import padded_output

_WINDOW_TERM = re.compile(r"^d(\d) (?:\* (\d+) )?\+ d(\d)$")


@dataclass
class VectorizePoolOptions(TargetOptions):
    fuse_pads: bool = True  # write into the zero-padded input of a conv reading the pool alone
    fuse_epilogues: bool = True  # leave a pool the conv before it computes (epilogue_pool) to it


def pool_strides(input_map: ir.AffineMap, rank: int) -> tuple[int, int, int] | None:
    """The window strides of a pool's input map over ``rank`` parallel loops (5: plain; 6: blocked,
    the last loop the channel within the block), or None if it is not a pool's."""
    results = [str(r) for r in input_map.results]
    tail = [f"d{rank - 1}"] if rank == 6 else []
    if len(results) != rank or results[:2] != ["d0", "d1"] or results[5:] != tail:
        return None
    strides = []
    for dim, text in enumerate(results[2:5]):
        match = _WINDOW_TERM.match(text)
        if not match or int(match.group(1)) != dim + 2 or int(match.group(3)) != dim + rank:
            return None
        strides.append(int(match.group(2) or 1))
    return strides[0], strides[1], strides[2]


def match_max_pool(op: ir.Operation) -> PoolShape | None:
    """The shape of a max-pool ``linalg.generic`` (plain or channel-blocked), or None if ``op`` is
    not one."""
    if op.name != "linalg.generic" or len(op.operands) != 3 or len(op.results) != 1:
        return None
    iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    rank = len(iterators) - 3
    if rank not in (5, 6) or ["parallel" in i for i in iterators] != [True] * rank + [False] * 3:
        return None
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    strides = pool_strides(maps[0], rank)
    window_dims = [f"d{rank + i}" for i in range(3)]
    if strides is None or [str(r) for r in maps[1].results] != window_dims:
        return None
    if [str(r) for r in maps[2].results] != [f"d{i}" for i in range(rank)]:
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
    types = [ir.RankedTensorType(v.type) for v in (op.operands[0], op.operands[1], op.results[0])]
    if not all(t.has_static_shape for t in types):
        return None
    element = str(types[0].element_type)
    # f32, or 16-bit activations of the blocked layout (rt3d-propagate-layout{precision=bf16|fp16})
    if str(types[2].element_type) != element or (
        element != "f32" and (rank != 6 or element not in HALF_ELEMENTS)
    ):
        return None
    shapes = [tuple(t.shape) for t in types]
    window = shapes[1]
    if len(window) != 3:
        return None
    return PoolShape(
        shapes[0], shapes[2], window, strides, float(value.value), blocked=rank == 6,  # type: ignore[arg-type]
        element=element,
    )


def epilogue_candidate(conv: ir.Operation) -> tuple[ir.Operation, PoolShape] | None:
    """The max pool a packed conv's kernel can compute in its epilogue, and its shape: the conv's
    only user, pooling rows and columns only (depth window and stride 1) in windows equal to its
    strides that tile the conv's output plane. None if there is none."""
    if conv.name != "rt3d.packed_conv3d":
        return None
    pool = single_use(conv.results[0])
    shape = match_max_pool(pool) if pool is not None else None
    if shape is None or pool.operands[0] != conv.results[0]:  # type: ignore[union-attr]
        return None
    _, kh, kw = shape.window
    if shape.window[0] != 1 or shape.strides != shape.window or kh * kw == 1:
        return None
    if shape.input[3] % kh or shape.input[4] % kw:
        return None
    return pool, shape  # type: ignore[return-value]


def epilogue_pool(conv: ir.Operation) -> tuple[ir.Operation, PoolShape] | None:
    """The max pool that packed conv ``conv``'s kernel computes in its epilogue (``rt3d-vectorize``)
    and its shape: an :func:`epilogue_candidate` after a "filters" kernel or (windows of 1 or 2
    columns) a "width" kernel, without channel chunks (its register tile is fitted to whole
    windows). None if there is none."""
    candidate = epilogue_candidate(conv)
    if candidate is None:
        return None
    params = packed_conv3d_params(conv)
    width = params.vector_dim == "width" and candidate[1].window[2] <= 2
    if (params.vector_dim != "filters" and not width) or params.channel_chunk:
        return None
    return candidate


@register_pass
class VectorizePool(Pass):
    name = "rt3d-vectorize-pool"
    summary = "Vector kernels for max-pool linalg.generic ops (strided gathers, threads)"
    Options = VectorizePoolOptions

    def run(self, module: ir.Operation) -> None:
        lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        for op in ops_named(module, "linalg.generic"):
            shape = match_max_pool(op)
            if shape is None or (shape.blocked and shape.input[-1] != lanes):
                continue
            producer = defining_op(op.operands[0])
            if self.options.fuse_epilogues and producer is not None and epilogue_pool(producer):
                continue  # the conv before it computes it (rt3d-vectorize)
            block = shape.output[5] if shape.blocked else 1
            plain = list(plain_shape(shape.output) if shape.blocked else shape.output)
            fused = padded_output(module, op, plain, block, lanes) if self.options.fuse_pads else None
            result_type, first = None, []
            if fused is not None:
                shape = replace(shape, out_padded=fused.padded, out_low=fused.low)
                result_type, first = fused.result_type, [fused.fill]
            dispatch = add_kernel(
                module, "pool", pool_kernel_text(KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, shape, lanes)
            )
            replace_with_kernel_call(op, dispatch, lambda op=op: [op.operands[0]], result_type, first)
            if fused is not None:
                fused.take_padding()
