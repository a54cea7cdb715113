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

from rt3d_mlir.passes.framework import Pass, register_pass, require_count, require_target
from rt3d_mlir.passes.kernel_calls import (
    KernelText,
    insert_kernel_module,
    kernel_module_text,
    memref_type_text,
    replace_with_kernel_call,
    unique_kernel_names,
    vector_lanes,
)
from rt3d_mlir.passes.matchers import (
    constant_attr,
    defining_op,
    generic_body,
    ops_named,
)

_WINDOW_TERM = re.compile(r"^d(\d) (?:\* (\d+) )?\+ d(\d)$")


@dataclass
class VectorizePoolOptions:
    target: str = "host"
    vector_width: int = 0

    def __post_init__(self) -> None:
        require_target(self.target)
        require_count(self.vector_width, "vector-width", note=" (0: the target's)")


@dataclass(frozen=True)
class PoolShape:
    input: tuple[int, ...]  # N, C, D, H, W (already padded)
    output: tuple[int, ...]
    window: tuple[int, int, int]
    strides: tuple[int, int, int]
    init: float


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


def pool_kernel_text(kernel: str, dispatch: str, shape: PoolShape, lanes: int) -> str:
    n, c, d, h, w = shape.input
    _, _, d_o, h_o, w_o = shape.output
    kd, kh, kw = shape.window
    sd, sh, sw = shape.strides
    vec = f"vector<{lanes}xf32>"
    in_type = memref_type_text(n * c * d * h * w, "f32")
    out_type = memref_type_text(n * c * d_o * h_o * w_o, "f32")
    k = KernelText()
    k.indent = 2
    task = "%task"
    plane = k.op(f"arith.divui {task}, {k.const(d_o)} : index")  # n * C + c
    z = k.op(f"arith.remui {task}, {k.const(d_o)} : index")
    in_base = k.index((plane, d * h * w), (z, sd * h * w))
    out_base = k.index((plane, d_o * h_o * w_o), (z, h_o * w_o))
    init = k.vconst(shape.init, lanes, "f32")
    strided = k.vconst_list([i * sw for i in range(lanes)], "i32") if sw != 1 else None

    def columns(row: str, w0: str | int, count: int) -> None:
        mask = k.op(f"vector.constant_mask [{count}] : vector<{lanes}xi1>") if count < lanes else None
        acc = init
        for a in range(kd):
            for b in range(kh):
                for e in range(kw):
                    at = k.index((in_base, 1), (row, sh * w), (w0, sw), (a * h * w + b * w + e, 1))
                    if strided is not None:
                        all_lanes = mask or k.op(f"vector.constant_mask [{lanes}] : vector<{lanes}xi1>")
                        x = k.op(
                            f"vector.gather %input[{at}][{strided}], {all_lanes}, {init} : {in_type}, "
                            f"vector<{lanes}xi32>, vector<{lanes}xi1>, {vec} into {vec}"
                        )
                    elif mask is not None:
                        x = k.op(
                            f"vector.maskedload %input[{at}], {mask}, {init} : {in_type}, "
                            f"vector<{lanes}xi1>, {vec} into {vec}"
                        )
                    else:
                        x = k.op(f"vector.load %input[{at}] : {in_type}, {vec}")
                    acc = k.op(f"arith.maximumf {acc}, {x} : {vec}")
        out_at = k.index((out_base, 1), (row, w_o), (w0, 1))
        if mask is None:
            k.emit(f"vector.store {acc}, %output[{out_at}] : {out_type}, {vec}")
        else:
            k.emit(
                f"vector.maskedstore %output[{out_at}], {mask}, {acc} : {out_type}, vector<{lanes}xi1>, {vec}"
            )

    row = k.fresh("h")
    k.emit(f"scf.for {row} = {k.const(0)} to {k.const(h_o)} step {k.const(1)} {{")
    k.indent += 1
    full = (w_o // lanes) * lanes
    if full:
        w0 = k.fresh("w")
        k.emit(f"scf.for {w0} = {k.const(0)} to {k.const(full)} step {k.const(lanes)} {{")
        k.indent += 1
        columns(row, w0, lanes)
        k.indent -= 1
        k.emit("}")
    if w_o - full:
        columns(row, full, w_o - full)
    k.indent -= 1
    k.emit("}")
    args = [("%input", in_type), ("%output", out_type)]
    return kernel_module_text(kernel, dispatch, args, n * c * d_o, k, task)


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
            kernel, dispatch = unique_kernel_names(module, "pool")
            insert_kernel_module(module, pool_kernel_text(kernel, dispatch, shape, lanes))
            replace_with_kernel_call(op, dispatch, lambda op=op: [op.operands[0]])
