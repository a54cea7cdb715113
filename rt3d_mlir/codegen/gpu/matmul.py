"""The GPU kernel of a fully connected layer of the int8 scheme (called by ``rt3d-gpu-matmul``).

``y[m, n] = s[n] x sum_k x[m, k] q[k, n]``: the weights are the scheme's
int8 values (one scale per output), four consecutive ``k`` to a 32-bit
word, stored ``[K/4][N]`` so that the invocations of a workgroup (one
output each) read consecutive words; ``K`` is padded to whole words with
zero weights. Each byte is sign-extended and multiplied with its input in
f32 (the input is the scheme's: already on its grid), and the sum scaled
once. At batch 1 the layer is bound by reading the weights: a quarter of
the f32 bytes.
"""

from __future__ import annotations

import math

from rt3d_mlir.codegen.gpu.kernel import Binding, GpuKernel, Kernel, linear_grid, signed_byte
from rt3d_mlir.kernel_packing import INT8_QUAD


def int8_matvec_kernel(name: str, m: int, k: int, n: int) -> Kernel:
    """Bindings: x (M x K f32), the weight words (K/4 x N), the scales (N), y (M x N)."""
    words = math.ceil(k / INT8_QUAD)
    points = m * n
    k_ = GpuKernel(name, [Binding(m * k), Binding(words * n, "i32"), Binding(n), Binding(points)])
    linear, ok = k_.linear_id(points)
    with k_.region(f"scf.if {ok} {{"):
        row, column = k_.delinearize(linear, [m, n])
        total, iv, acc = k_.fresh(), k_.fresh(), k_.fresh()
        header = (
            f"{total} = scf.for {iv} = {k_.const(0)} to {k_.const(words)} step {k_.const(1)} "
            f"iter_args({acc} = {k_.const(0.0, 'f32')}) -> (f32) {{"
        )
        with k_.region(header):
            word = k_.load(1, k_.index((iv, n), (column, 1)))
            value = acc
            for byte in range(INT8_QUAD):
                q = k_.op(f"arith.sitofp {signed_byte(k_, word, byte)} : i32 to f32")
                # past K the weight is zero: read the last input instead of past the row
                position = k_.index((iv, INT8_QUAD), (byte, 1))
                if (words - 1) * INT8_QUAD + byte >= k:
                    position = k_.op(f"arith.minui {position}, {k_.const(k - 1)} : index")
                x = k_.load(0, k_.index((row, k), (position, 1)))
                value = k_.op(f"math.fma {x}, {q}, {value} : f32")
            k_.emit(f"scf.yield {value} : f32")
        scaled = k_.op(f"arith.mulf {total}, {k_.load(2, column)} : f32")
        k_.store(scaled, 3, linear)
    return k_.kernel(linear_grid(points), 2 * m * k * n)
