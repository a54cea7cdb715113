"""The CPU kernel of a constant ``tensor.pad`` of a 5-D activation (called by ``rt3d-vectorize-pad``),
or of the padding alone (called by ``rt3d-vectorize`` for a convolution that writes its output into
the padded input of the convolution after it).

Each padded row is written once: the low padding, the input row (vector
loads and stores, the last vector masked), the high padding; rows and
planes entirely in the padding are filled. One task per (batch x channel,
padded depth).
"""

from __future__ import annotations

from rt3d_mlir.codegen.cpu.kernel import TASK, fill_run, in_range, kernel_module, memref_type
from rt3d_mlir.codegen.text import KernelText


def pad_kernel_text(
    kernel: str,
    dispatch: str,
    in_shape: tuple[int, ...],
    low: tuple[int, ...],
    out_shape: tuple[int, ...],
    value: float,
    lanes: int,
    interior: bool = True,
    element: str = "f32",
) -> str:
    """The pad kernel; with ``interior=False`` it only fills the padding of the output (its one
    argument), whose interior another kernel writes (a convolution writing into its consumer's
    padded input). ``element``: the activation's element type (f32, bf16 or f16: values are copied)."""
    n, c, d, h, w = in_shape
    _, _, d_p, h_p, w_p = out_shape
    in_type = memref_type(n * c * d * h * w, element)
    out_type = memref_type(n * c * d_p * h_p * w_p, element)
    vec = f"vector<{lanes}x{element}>"
    mvec = f"vector<{lanes}xi1>"
    k = KernelText()
    padding = k.vconst(value, lanes, element)
    plane = k.op(f"arith.divui {TASK}, {k.const(d_p)} : index")  # n * C + c
    z = k.op(f"arith.remui {TASK}, {k.const(d_p)} : index")
    out_plane = k.index((plane, d_p * h_p * w_p), (z, h_p * w_p))

    def fill(at: str, count: int) -> None:
        """``count`` padding values from ``at`` (vectors, the last one masked)."""
        fill_run(k, padding, at, count, out_type, lanes, element)

    def copy_run(src: str, dst: str, count: int) -> None:
        full = (count // lanes) * lanes
        if full:
            i = k.fresh("x")
            with k.region(f"scf.for {i} = {k.const(0)} to {k.const(full)} step {k.const(lanes)} {{"):
                v = k.op(f"vector.load %input[{k.index((src, 1), (i, 1))}] : {in_type}, {vec}")
                k.emit(f"vector.store {v}, %output[{k.index((dst, 1), (i, 1))}] : {out_type}, {vec}")
        if count - full:
            mask = k.op(f"vector.constant_mask [{count - full}] : {mvec}")
            v = k.op(
                f"vector.maskedload %input[{k.index((src, 1), (full, 1))}], {mask}, {padding} : "
                f"{in_type}, {mvec}, {vec} into {vec}"
            )
            k.emit(
                f"vector.maskedstore %output[{k.index((dst, 1), (full, 1))}], {mask}, {v} : "
                f"{out_type}, {mvec}, {vec}"
            )

    interior_plane = in_range(k, z, low[2], d)
    if not interior:
        # only the padding: in a plane, the zeros are one run before the first row's data, one
        # between each row's data and the next's (right then left padding: one store that
        # touches one or two cache lines, not two separate ones), one after the last row's
        first = low[3] * w_p + low[4]
        last = (low[3] + h - 1) * w_p + low[4] + w
        with k.region(f"scf.if {interior_plane} {{", "} else {"):
            fill(out_plane, first)
            if w_p > w and h > 1:
                y = k.fresh("y")
                bounds = f"{k.const(low[3])} to {k.const(low[3] + h - 1)} step {k.const(1)}"
                with k.region(f"scf.for {y} = {bounds} {{"):
                    fill(k.index((out_plane, 1), (y, w_p), (low[4] + w, 1)), w_p - w)
            if h_p * w_p > last:
                fill(k.index((out_plane, 1), (last, 1)), h_p * w_p - last)
        with k.region(None):
            fill(out_plane, h_p * w_p)
        return kernel_module(kernel, dispatch, [("%output", out_type)], n * c * d_p, k)
    y = k.fresh("y")
    with k.region(f"scf.for {y} = {k.const(0)} to {k.const(h_p)} step {k.const(1)} {{"):
        row_at = k.index((out_plane, 1), (y, w_p))
        interior_row = k.op(f"arith.andi {interior_plane}, {in_range(k, y, low[3], h)} : i1")
        with k.region(f"scf.if {interior_row} {{", "} else {"):
            if low[4]:
                fill(row_at, low[4])
            src_z = k.op(f"arith.subi {z}, {k.const(low[2])} : index")
            src_y = k.op(f"arith.subi {y}, {k.const(low[3])} : index")
            src = k.index((plane, d * h * w), (src_z, h * w), (src_y, w))
            copy_run(src, k.index((row_at, 1), (low[4], 1)), w)
            if w_p - w - low[4]:
                fill(k.index((row_at, 1), (low[4] + w, 1)), w_p - w - low[4])
        with k.region(None):
            fill(row_at, w_p)
    return kernel_module(kernel, dispatch, [("%input", in_type), ("%output", out_type)], n * c * d_p, k)
