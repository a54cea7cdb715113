"""The CPU kernel of a max pool (called by ``rt3d-vectorize-pool``).

Plain (N, C, D, H, W) activations: one task per (batch x channel, output
depth); each output row is computed a vector of columns at a time, the
window's inputs read with contiguous vector loads (W stride 1; stride 2: two
loads and an even-lane shuffle) or strided gathers (larger strides) and
reduced with ``maximumf``.

Channel-blocked (N, C / L, D, H, W, L) activations (:mod:`rt3d_mlir.kernel_packing`):
one task per (batch x channel block, output depth); a vector is the ``L``
channels of one position, so every window input is one aligned load
whatever the strides, and :data:`BLOCKED_COLUMNS` output columns are reduced
side by side.

Either writes its output into the zero-padded input of the conv after it
when asked (``PoolShape.out_padded``; the padding is filled by the pad
kernel's fill-only form), so no padded copy is made.
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
    blocked: bool = False  # input and output are (N, C / L, D, H, W, L)
    # the output written into a zero-padded buffer of this spatial shape, at ``out_low`` (the padded
    # input of the conv after the pool, whose padding another kernel fills)
    out_padded: tuple[int, int, int] | None = None
    out_low: tuple[int, int, int] = (0, 0, 0)
    element: str = "f32"  # of input and output: f32, or (blocked) bf16 / f16

    def out_strides(self) -> tuple[int, int, int]:
        """Elements (positions, for a blocked output) between output planes, rows and the first
        output of a task's plane and the buffer's start: (depth, row, offset)."""
        _, h_p, w_p = self.out_padded or self.output[2:5]
        return h_p * w_p, w_p, (self.out_low[0] * h_p + self.out_low[1]) * w_p + self.out_low[2]

    def out_volume(self) -> int:
        d_p, h_p, w_p = self.out_padded or self.output[2:5]
        return d_p * h_p * w_p


BLOCKED_COLUMNS = 4  # output columns a blocked kernel reduces side by side (independent max chains)


def pool_kernel_text(kernel: str, dispatch: str, shape: PoolShape, lanes: int) -> str:
    if shape.blocked:
        return _blocked_kernel_text(kernel, dispatch, shape, lanes)
    if shape.element != "f32":
        raise ValueError(f"a plain max pool computes in f32, not {shape.element}")
    n, c, d, h, w = shape.input
    _, _, d_o, h_o, w_o = shape.output
    kd, kh, kw = shape.window
    sd, sh, sw = shape.strides
    plane_o, row_o, first_o = shape.out_strides()
    vec = f"vector<{lanes}xf32>"
    in_type = memref_type(n * c * d * h * w, "f32")
    out_type = memref_type(n * c * shape.out_volume(), "f32")
    k = KernelText()
    task = TASK
    plane = k.op(f"arith.divui {task}, {k.const(d_o)} : index")  # n * C + c
    z = k.op(f"arith.remui {task}, {k.const(d_o)} : index")
    in_base = k.index((plane, d * h * w), (z, sd * h * w))
    out_base = k.index((plane, shape.out_volume()), (z, plane_o), (first_o, 1))
    init = k.vconst(shape.init, lanes, "f32")
    strided = k.vconst_list([i * sw for i in range(lanes)], "i32") if sw > 2 else None
    evens = ", ".join(str(2 * i) for i in range(lanes))

    def masked_load(at: str, count: int) -> str:
        """``count`` consecutive inputs from ``at`` as a vector (the rest ``init``)."""
        if count >= lanes:
            return k.op(f"vector.load %input[{at}] : {in_type}, {vec}")
        mask = k.op(f"vector.constant_mask [{count}] : vector<{lanes}xi1>")
        types = f"{in_type}, vector<{lanes}xi1>, {vec} into {vec}"
        return k.op(f"vector.maskedload %input[{at}], {mask}, {init} : {types}")

    def columns(row: str, w0: str | int, count: int) -> None:
        mask = k.op(f"vector.constant_mask [{count}] : vector<{lanes}xi1>") if count < lanes else None
        acc = init
        for a in range(kd):
            for b in range(kh):
                for e in range(kw):
                    at = k.index((in_base, 1), (row, sh * w), (w0, sw), (a * h * w + b * w + e, 1))
                    if sw == 2:
                        # the inputs of ``count`` outputs are the even ones of 2 x count - 1 consecutive
                        # inputs: two contiguous loads and one even-lane shuffle (no gather)
                        span = 2 * count - 1
                        first = masked_load(at, span)
                        second = first
                        if span > lanes:
                            second = masked_load(k.index((at, 1), (lanes, 1)), span - lanes)
                        x = k.op(f"vector.shuffle {first}, {second} [{evens}] : {vec}, {vec}")
                    elif strided is not None:
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
        out_at = k.index((out_base, 1), (row, row_o), (w0, 1))
        if mask is None:
            k.emit(f"vector.store {acc}, %output[{out_at}] : {out_type}, {vec}")
        else:
            k.emit(
                f"vector.maskedstore %output[{out_at}], {mask}, {acc} : {out_type}, vector<{lanes}xi1>, {vec}"
            )

    _output_rows(k, h_o, w_o, lanes, columns)
    args = [("%input", in_type), ("%output", out_type)]
    return kernel_module(kernel, dispatch, args, n * c * d_o, k)


def _output_rows(k: KernelText, h_o: int, w_o: int, step: int, columns) -> None:
    """``columns(row, w0, count)`` for every output row, ``step`` columns at a time (the last
    ``count`` may be fewer)."""
    row = k.fresh("h")
    with k.region(f"scf.for {row} = {k.const(0)} to {k.const(h_o)} step {k.const(1)} {{"):
        full = (w_o // step) * step
        if full:
            w0 = k.fresh("w")
            with k.region(f"scf.for {w0} = {k.const(0)} to {k.const(full)} step {k.const(step)} {{"):
                columns(row, w0, step)
        if w_o - full:
            columns(row, full, w_o - full)


def _blocked_kernel_text(kernel: str, dispatch: str, shape: PoolShape, lanes: int) -> str:
    n, blocks, d, h, w, block = shape.input
    _, _, d_o, h_o, w_o, _ = shape.output
    if block != lanes:
        raise ValueError(f"a blocked pool needs blocks of {lanes} channels, not {block}")
    kd, kh, kw = shape.window
    sd, sh, sw = shape.strides
    plane_o, row_o, first_o = shape.out_strides()
    vec = f"vector<{lanes}xf32>"
    element = shape.element
    stored = f"vector<{lanes}x{element}>"  # bf16 / f16: widened on load, narrowed (exactly) on store
    in_type = memref_type(n * blocks * d * h * w * lanes, element)
    out_type = memref_type(n * blocks * shape.out_volume() * lanes, element)
    k = KernelText()
    plane = k.op(f"arith.divui {TASK}, {k.const(d_o)} : index")  # n * C / L + channel block
    z = k.op(f"arith.remui {TASK}, {k.const(d_o)} : index")
    in_base = k.index((plane, d * h * w * lanes), (z, sd * h * w * lanes))
    out_base = k.index((plane, shape.out_volume() * lanes), (z, plane_o * lanes), (first_o * lanes, 1))
    init = k.vconst(shape.init, lanes, "f32")

    def columns(row: str, w0: str | int, count: int) -> None:
        accs = [init] * count
        for a in range(kd):
            for b in range(kh):
                for e in range(kw):
                    for j in range(count):
                        at = k.index(
                            (in_base, 1),
                            (row, sh * w * lanes),
                            (w0, sw * lanes),
                            ((a * h * w + b * w + e + j * sw) * lanes, 1),
                        )
                        x = k.op(f"vector.load %input[{at}] : {in_type}, {stored}")
                        if element != "f32":
                            x = k.op(f"arith.extf {x} : {stored} to {vec}")
                        accs[j] = k.op(f"arith.maximumf {accs[j]}, {x} : {vec}")
        for j in range(count):
            out_at = k.index((out_base, 1), (row, row_o * lanes), (w0, lanes), (j * lanes, 1))
            value = accs[j] if element == "f32" else k.op(f"arith.truncf {accs[j]} : {vec} to {stored}")
            k.emit(f"vector.store {value}, %output[{out_at}] : {out_type}, {stored}")

    _output_rows(k, h_o, w_o, BLOCKED_COLUMNS, columns)
    args = [("%input", in_type), ("%output", out_type)]
    return kernel_module(kernel, dispatch, args, n * blocks * d_o, k)
