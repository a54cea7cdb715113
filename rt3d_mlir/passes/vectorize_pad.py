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

from rt3d_mlir.passes.framework import Pass, register_pass, require_count, require_target
from rt3d_mlir.passes.kernel_calls import (
    KernelText,
    insert_kernel_module,
    kernel_module_text,
    memref_type_text,
    replace_with_kernel_call,
    static_size,
    unique_kernel_names,
    vector_lanes,
)
from rt3d_mlir.passes.matchers import (
    constant_attr,
    generic_body,
    ops_named,
)


@dataclass
class VectorizePadOptions:
    target: str = "host"
    vector_width: int = 0
    min_elements: int = 4096  # smaller pads are not worth a kernel

    def __post_init__(self) -> None:
        require_target(self.target)
        require_count(self.vector_width, "vector-width", note=" (0: the target's)")
        require_count(self.min_elements, "min-elements")


def pad_value(op: ir.Operation) -> float | None:
    """The constant a static 5-D f32 ``tensor.pad`` pads with, or None."""
    if op.name != "tensor.pad" or len(op.operands) != 1:
        return None
    for value in (op.operands[0], op.results[0]):
        t = ir.RankedTensorType(value.type)
        if t.rank != 5 or not t.has_static_shape or t.element_type != ir.F32Type.get():
            return None
    body = generic_body(op)
    attr = constant_attr(body[-1].operands[0])
    return float(attr.value) if isinstance(attr, ir.FloatAttr) else None


def pad_kernel_text(
    kernel: str,
    dispatch: str,
    in_shape: tuple[int, ...],
    low: tuple[int, ...],
    out_shape: tuple[int, ...],
    value: float,
    lanes: int,
) -> str:
    n, c, d, h, w = in_shape
    _, _, d_p, h_p, w_p = out_shape
    in_type = memref_type_text(n * c * d * h * w, "f32")
    out_type = memref_type_text(n * c * d_p * h_p * w_p, "f32")
    vec = f"vector<{lanes}xf32>"
    mvec = f"vector<{lanes}xi1>"
    k = KernelText()
    k.indent = 2
    fill = k.vconst(value, lanes, "f32")
    plane = k.op(f"arith.divui %task, {k.const(d_p)} : index")  # n * C + c
    z = k.op(f"arith.remui %task, {k.const(d_p)} : index")
    out_plane = k.index((plane, d_p * h_p * w_p), (z, h_p * w_p))

    def fill_run(at: str, count: int) -> None:
        """``count`` padding values from ``at`` (vectors, the last one masked)."""
        for start in range(0, count, lanes):
            where = k.index((at, 1), (start, 1))
            if count - start >= lanes:
                k.emit(f"vector.store {fill}, %output[{where}] : {out_type}, {vec}")
            else:
                mask = k.op(f"vector.constant_mask [{count - start}] : {mvec}")
                k.emit(f"vector.maskedstore %output[{where}], {mask}, {fill} : {out_type}, {mvec}, {vec}")

    def copy_run(src: str, dst: str, count: int) -> None:
        full = (count // lanes) * lanes
        if full:
            i = k.fresh("x")
            k.emit(f"scf.for {i} = {k.const(0)} to {k.const(full)} step {k.const(lanes)} {{")
            k.indent += 1
            v = k.op(f"vector.load %input[{k.index((src, 1), (i, 1))}] : {in_type}, {vec}")
            k.emit(f"vector.store {v}, %output[{k.index((dst, 1), (i, 1))}] : {out_type}, {vec}")
            k.indent -= 1
            k.emit("}")
        if count - full:
            mask = k.op(f"vector.constant_mask [{count - full}] : {mvec}")
            v = k.op(
                f"vector.maskedload %input[{k.index((src, 1), (full, 1))}], {mask}, {fill} : "
                f"{in_type}, {mvec}, {vec} into {vec}"
            )
            k.emit(
                f"vector.maskedstore %output[{k.index((dst, 1), (full, 1))}], {mask}, {v} : "
                f"{out_type}, {mvec}, {vec}"
            )

    def in_range(index: str, lo: int, size: int) -> str:
        above = k.op(f"arith.cmpi uge, {index}, {k.const(lo)} : index")
        below = k.op(f"arith.cmpi ult, {index}, {k.const(lo + size)} : index")
        return k.op(f"arith.andi {above}, {below} : i1")

    interior_plane = in_range(z, low[2], d)
    y = k.fresh("y")
    k.emit(f"scf.for {y} = {k.const(0)} to {k.const(h_p)} step {k.const(1)} {{")
    k.indent += 1
    row_at = k.index((out_plane, 1), (y, w_p))
    interior_row = k.op(f"arith.andi {interior_plane}, {in_range(y, low[3], h)} : i1")
    k.emit(f"scf.if {interior_row} {{")
    k.indent += 1
    src_z = k.op(f"arith.subi {z}, {k.const(low[2])} : index")
    src_y = k.op(f"arith.subi {y}, {k.const(low[3])} : index")
    src = k.index((plane, d * h * w), (src_z, h * w), (src_y, w))
    if low[4]:
        fill_run(row_at, low[4])
    copy_run(src, k.index((row_at, 1), (low[4], 1)), w)
    if w_p - w - low[4]:
        fill_run(k.index((row_at, 1), (low[4] + w, 1)), w_p - w - low[4])
    k.indent -= 1
    k.emit("} else {")
    k.indent += 1
    fill_run(row_at, w_p)
    k.indent -= 1
    k.emit("}")
    k.indent -= 1
    k.emit("}")
    args = [("%input", in_type), ("%output", out_type)]
    return kernel_module_text(kernel, dispatch, args, n * c * d_p, k, "%task")


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
            kernel, dispatch = unique_kernel_names(module, "pad")
            insert_kernel_module(
                module, pad_kernel_text(kernel, dispatch, in_shape, low, out_shape, value, lanes)
            )
            replace_with_kernel_call(op, dispatch, lambda op=op: [op.operands[0]])
