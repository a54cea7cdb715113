"""The GPU kernel that quantizes an int8 convolution's input (called by ``rt3d-gpu-conv``).

It reads a plain f32 activation (N, C, D, H, W) and writes the conv's
zero-padded input in the layout the int8 conv kernel reads: one 32-bit
word per (batch, channel quad, padded position), (N, C / 4, D + pads,
H + pads, W + pads), holding the quad's four channels as signed bytes,
the first channel in the lowest byte (the packed operand of an integer dot
product). A channel's byte is ``clamp(round(x / s), -127, 127)`` (round half
to even, as :func:`rt3d_mlir.quantization.fake_quantize` computes it);
the padding is 0. One invocation per word written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rt3d_mlir.codegen.gpu.kernel import Binding, GpuKernel, Kernel, linear_grid
from rt3d_mlir.kernel_packing import INT8_MAX, INT8_QUAD


def packed_quad(k: GpuKernel, values: Sequence[str], scale: float) -> str:
    """The i32 word of four f32 ``values`` (a channel quad) quantized with ``scale``: byte ``i`` is
    ``clamp(round(values[i] / scale), -127, 127)`` (round half to even, as
    :func:`rt3d_mlir.quantization.fake_quantize` computes it). Shared by this kernel and the conv
    epilogues that store the next conv's int8 input (:mod:`rt3d_mlir.codegen.gpu.conv`)."""
    word = None
    for byte, x in enumerate(values):
        q = k.op(f"arith.divf {x}, {k.const(scale, 'f32')} : f32")
        q = k.op(f"math.roundeven {q} : f32")
        q = k.op(f"arith.maximumf {q}, {k.const(-float(INT8_MAX), 'f32')} : f32")
        q = k.op(f"arith.minimumf {q}, {k.const(float(INT8_MAX), 'f32')} : f32")
        q = k.op(f"arith.andi {k.op(f'arith.fptosi {q} : f32 to i32')}, {k.const(255, 'i32')} : i32")
        if byte:
            q = k.op(f"arith.shli {q}, {k.const(8 * byte, 'i32')} : i32")
        word = q if word is None else k.op(f"arith.ori {word}, {q} : i32")
    assert word is not None
    return word


def quantize_kernel(
    name: str, in_shape: Sequence[int], low: Sequence[int], padded: Sequence[int], scale: float
) -> Kernel:
    """``in_shape`` (N, C, D, H, W) f32 in, (N, C / 4, *padded) packed quads out, the input at
    ``low`` (D, H, W) in them."""
    n, c, *spatial = in_shape
    out_shape = [n, c // INT8_QUAD, *padded]
    points = math.prod(out_shape)
    k = GpuKernel(name, [Binding(math.prod(in_shape)), Binding(points, "i32")])
    linear, ok = k.linear_id(points)
    with k.region(f"scf.if {ok} {{"):
        batch, quad, *position = k.delinearize(linear, out_shape)
        source, inside = k.unpadded(position, low, spatial, padded)

        def packed() -> str:
            values = []
            for byte in range(INT8_QUAD):
                channel = k.index((quad, INT8_QUAD), (byte, 1))
                values.append(k.load(0, k.linearize([batch, channel, *source], in_shape)))
            return packed_quad(k, values, scale)

        k.store_inside(inside, packed, k.const(0, "i32"), "i32", 1, linear)
    return k.kernel(linear_grid(points))
