"""The CPU kernel of a max pool (called by ``rt3d-vectorize-pool``).

One task per (batch x channel, output depth); each output row is computed a
vector of columns at a time, the window's inputs read with contiguous (W
stride 1) or strided (gather) vector loads and reduced with ``maximumf``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rt3d_mlir.codegen.cpu.kernel import TASK, kernel_module, memref_type
from rt3d_mlir.codegen.text import KernelText


@dataclass(frozen=True)
class PoolShape:
    input: tuple[int, ...]  # N, C, D, H, W (already padded)
    output: tuple[int, ...]
    window: tuple[int, int, int]
    strides: tuple[int, int, int]
    init: float


def pool_kernel_text(kernel: str, dispatch: str, shape: PoolShape, lanes: int) -> str:
    n, c, d, h, w = shape.input
    _, _, d_o, h_o, w_o = shape.output
    kd, kh, kw = shape.window
    sd, sh, sw = shape.strides
    vec = f"vector<{lanes}xf32>"
    in_type = memref_type(n * c * d * h * w, "f32")
    out_type = memref_type(n * c * d_o * h_o * w_o, "f32")
    k = KernelText()
    task = TASK
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
    with k.region(f"scf.for {row} = {k.const(0)} to {k.const(h_o)} step {k.const(1)} {{"):
        full = (w_o // lanes) * lanes
        if full:
            w0 = k.fresh("w")
            with k.region(f"scf.for {w0} = {k.const(0)} to {k.const(full)} step {k.const(lanes)} {{"):
                columns(row, w0, lanes)
        if w_o - full:
            columns(row, full, w_o - full)
    args = [("%input", in_type), ("%output", out_type)]
    return kernel_module(kernel, dispatch, args, n * c * d_o, k)
