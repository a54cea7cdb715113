"""The CPU kernel of ``rt3d.quantize``: an int8 convolution's input quantized (called by
``rt3d-vectorize-quantize``), and the encoding it shares with the convolution epilogues that store
such an input themselves (:class:`Int8Encoder`).

It reads a plain f32 activation (N, C, D, H, W) and writes the conv's
zero-padded input as int8 in the layout the int8 kernels read: blocked by
four channels, (N, C / 4, D + pads, H + pads, W + pads, 4), each position's
four channels one 32-bit word. An element is ``clamp(round(x / s), -127,
127) + z`` (round half to even, the division as PyTorch computes it, so the
integers are those of :func:`rt3d_mlir.quantization.fake_quantize`), the
padding the zero point ``z`` (q = 0).

One task per (batch x channel quad, padded depth). A row of the quad is
``lanes`` columns at a time: the four channels' vectors are quantized,
narrowed to bytes and interleaved by one shuffle into the four-channel
layout, stored as one vector (the last one masked); rows and planes in the
padding are filled.
"""

from __future__ import annotations

from rt3d_mlir.codegen.cpu.kernel import TASK, fill_run, in_range, kernel_module, memref_type
from rt3d_mlir.codegen.text import KernelText
from rt3d_mlir.kernel_packing import INT8_MAX, INT8_QUAD


class Int8Encoder:
    """Emits the scheme's quantization of f32 vectors of ``lanes`` values into ``k``: the bytes
    ``clamp(round_even(x / scale), -127, 127) + zero_point`` (the division as PyTorch computes it, so
    the integers are those of :func:`rt3d_mlir.quantization.fake_quantize`). Shared by the quantize
    kernel and the epilogues that store a quantized output (``codegen/cpu/conv.py``)."""

    def __init__(self, k: KernelText, scale: float, zero_point: int, lanes: int) -> None:
        self.k, self.zero_point, self.lanes = k, zero_point, lanes
        self.scale = k.vconst(float(scale), lanes, "f32")
        self.low = k.vconst(float(-INT8_MAX), lanes, "f32")
        self.high = k.vconst(float(INT8_MAX), lanes, "f32")
        self.shift = k.vconst(zero_point, lanes, "i32")

    def __call__(self, x: str) -> str:
        """The ``vector<lanes x i8>`` of f32 vector ``x``."""
        k, vec, ivec = self.k, f"vector<{self.lanes}xf32>", f"vector<{self.lanes}xi32>"
        q = k.op(f"math.roundeven {k.op(f'arith.divf {x}, {self.scale} : {vec}')} : {vec}")
        q = k.op(f"arith.minimumf {k.op(f'arith.maximumf {q}, {self.low} : {vec}')}, {self.high} : {vec}")
        q = k.op(f"arith.fptosi {q} : {vec} to {ivec}")
        if self.zero_point:
            q = k.op(f"arith.addi {q}, {self.shift} : {ivec}")
        return k.op(f"arith.trunci {q} : {ivec} to vector<{self.lanes}xi8>")


def padding_byte(zero_point: int) -> int:
    """The byte (as a signed i8) that encodes the value 0: the zero point."""
    return zero_point - 256 if zero_point > INT8_MAX else zero_point


def quantize_kernel_text(
    kernel: str,
    dispatch: str,
    in_shape: tuple[int, ...],
    low: tuple[int, ...],
    padded: tuple[int, ...],
    scale: float,
    zero_point: int,
    lanes: int,
) -> str:
    """The kernel: ``in_shape`` (N, C, D, H, W) f32 in, (N, C / 4, *padded, 4) i8 out, the input at
    ``low`` (D, H, W) in it."""
    n, c, d, h, w = in_shape
    d_p, h_p, w_p = padded
    quads = c // INT8_QUAD
    in_type = memref_type(n * c * d * h * w, "f32")
    out_type = memref_type(n * quads * d_p * h_p * w_p * INT8_QUAD, "i8")
    vec, bytes_ = f"vector<{lanes}xf32>", f"vector<{lanes}xi8>"
    wide = INT8_QUAD * lanes
    out_vec, out_mask = f"vector<{wide}xi8>", f"vector<{wide}xi1>"
    k = KernelText()
    padding = k.vconst(padding_byte(zero_point), wide, "i8")
    encode = Int8Encoder(k, scale, zero_point, lanes)
    zero = k.vconst(0.0, lanes, "f32")
    plane = k.op(f"arith.divui {TASK}, {k.const(d_p)} : index")  # n * C / 4 + quad
    z = k.op(f"arith.remui {TASK}, {k.const(d_p)} : index")
    out_plane = k.index((plane, d_p * h_p * w_p * INT8_QUAD), (z, h_p * w_p * INT8_QUAD))
    # the four channels of the quad, interleaved: byte 4p + j is channel j at column p
    pairs = ", ".join(str(i) for i in range(2 * lanes))
    interleave = ", ".join(str(j * lanes + p) for p in range(lanes) for j in range(INT8_QUAD))

    def fill(at: str, count: int) -> None:
        """``count`` bytes of padding from ``at``."""
        fill_run(k, padding, at, count, out_type, wide, "i8")

    def quantized(at: str, count: int) -> str:
        """The quad's ``count`` (up to ``lanes``) columns from input element ``at``, interleaved."""
        mask = k.op(f"vector.constant_mask [{count}] : vector<{lanes}xi1>") if count < lanes else None
        rows = []
        for j in range(INT8_QUAD):
            where = k.index((at, 1), (j * d * h * w, 1))
            if mask is None:
                x = k.op(f"vector.load %input[{where}] : {in_type}, {vec}")
            else:
                x = k.op(
                    f"vector.maskedload %input[{where}], {mask}, {zero} : {in_type}, vector<{lanes}xi1>, "
                    f"{vec} into {vec}"
                )
            rows.append(encode(x))
        two = f"vector<{2 * lanes}xi8>"
        first = k.op(f"vector.shuffle {rows[0]}, {rows[1]} [{pairs}] : {bytes_}, {bytes_}")
        second = k.op(f"vector.shuffle {rows[2]}, {rows[3]} [{pairs}] : {bytes_}, {bytes_}")
        return k.op(f"vector.shuffle {first}, {second} [{interleave}] : {two}, {two}")

    # where the quad's first channel is: batch n = plane / quads, quad = plane % quads
    batch = k.op(f"arith.divui {plane}, {k.const(quads)} : index")
    quad = k.op(f"arith.remui {plane}, {k.const(quads)} : index")
    in_plane = k.index((batch, c * d * h * w), (quad, INT8_QUAD * d * h * w))
    interior_plane = in_range(k, z, low[0], d)
    row_bytes = w_p * INT8_QUAD
    y = k.fresh("y")
    with k.region(f"scf.for {y} = {k.const(0)} to {k.const(h_p)} step {k.const(1)} {{"):
        row_at = k.index((out_plane, 1), (y, row_bytes))
        interior_row = k.op(f"arith.andi {interior_plane}, {in_range(k, y, low[1], h)} : i1")
        with k.region(f"scf.if {interior_row} {{", "} else {"):
            if low[2]:
                fill(row_at, low[2] * INT8_QUAD)
            src_z = k.op(f"arith.subi {z}, {k.const(low[0])} : index")
            src_y = k.op(f"arith.subi {y}, {k.const(low[1])} : index")
            src = k.index((in_plane, 1), (src_z, h * w), (src_y, w))
            dst = k.index((row_at, 1), (low[2] * INT8_QUAD, 1))
            full = (w // lanes) * lanes
            if full:
                x0 = k.fresh("x")
                with k.region(f"scf.for {x0} = {k.const(0)} to {k.const(full)} step {k.const(lanes)} {{"):
                    value = quantized(k.index((src, 1), (x0, 1)), lanes)
                    at = k.index((dst, 1), (x0, INT8_QUAD))
                    k.emit(f"vector.store {value}, %output[{at}] : {out_type}, {out_vec}")
            if w - full:
                value = quantized(k.index((src, 1), (full, 1)), w - full)
                mask = k.op(f"vector.constant_mask [{(w - full) * INT8_QUAD}] : {out_mask}")
                at = k.index((dst, 1), (full * INT8_QUAD, 1))
                k.emit(
                    f"vector.maskedstore %output[{at}], {mask}, {value} : {out_type}, {out_mask}, {out_vec}"
                )
            if w_p - w - low[2]:
                fill(k.index((row_at, 1), ((low[2] + w) * INT8_QUAD, 1)), (w_p - w - low[2]) * INT8_QUAD)
        with k.region(None):
            fill(row_at, row_bytes)
    return kernel_module(
        kernel, dispatch, [("%input", in_type), ("%output", out_type)], n * quads * d_p, k
    )
