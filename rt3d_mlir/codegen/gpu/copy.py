"""GPU copy kernels: a constant pad, one operand of a concat, a strided slice, a fill
(``rt3d-gpu-copy``).

One invocation per element written (:func:`~rt3d_mlir.codegen.gpu.kernel.linear_grid`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rt3d_mlir.codegen.gpu.kernel import Binding, GpuKernel, Kernel, linear_grid


def pad_kernel(
    name: str, in_shape: Sequence[int], low: Sequence[int], high: Sequence[int], value: float
) -> Kernel:
    """Copy into a larger tensor, filling the border with ``value``."""
    out_shape = [s + lo + hi for s, lo, hi in zip(in_shape, low, high, strict=True)]
    points = math.prod(out_shape)
    k = GpuKernel(name, [Binding(math.prod(in_shape)), Binding(points)])
    linear, ok = k.linear_id(points)
    with k.region(f"scf.if {ok} {{"):
        src, inside = k.unpadded(k.delinearize(linear, out_shape), low, in_shape, out_shape)
        fill = k.const(value, "f32")
        k.store_inside(inside, lambda: k.load(0, k.linearize(src, in_shape)), fill, "f32", 1, linear)
    return k.kernel(linear_grid(points))


def copy_slice_kernel(
    name: str, in_shape: Sequence[int], out_shape: Sequence[int], axis: int, offset: int
) -> Kernel:
    """Copy a tensor into ``out`` at ``offset`` along ``axis`` (one operand of a concat)."""
    points = math.prod(in_shape)
    k = GpuKernel(name, [Binding(points), Binding(math.prod(out_shape))])
    linear, ok = k.linear_id(points)
    with k.region(f"scf.if {ok} {{"):
        idx = k.delinearize(linear, in_shape)
        idx[axis] = k.add(idx[axis], k.const(offset))
        k.store(k.load(0, linear), 1, k.linearize(idx, out_shape))
    return k.kernel(linear_grid(points))


def extract_slice_kernel(
    name: str,
    in_shape: Sequence[int],
    offsets: Sequence[int],
    sizes: Sequence[int],
    strides: Sequence[int],
) -> Kernel:
    """Copy the static slice ``in[offsets + i * strides]`` for ``i < sizes`` (a ``tensor.extract_slice``;
    dropped unit dimensions do not change the element order)."""
    points = math.prod(sizes)
    k = GpuKernel(name, [Binding(math.prod(in_shape)), Binding(points)])
    linear, ok = k.linear_id(points)
    with k.region(f"scf.if {ok} {{"):
        idx = k.delinearize(linear, sizes)
        steps = zip(idx, offsets, strides, strict=True)
        src = [k.index((pos, stride), (offset, 1)) for pos, offset, stride in steps]
        k.store(k.load(0, k.linearize(src, in_shape)), 1, linear)
    return k.kernel(linear_grid(points))


def fill_kernel(name: str, points: int, value: float) -> Kernel:
    """Write ``value`` to every element of a buffer of ``points`` elements."""
    k = GpuKernel(name, [Binding(points)])
    linear, ok = k.linear_id(points)
    with k.region(f"scf.if {ok} {{"):
        k.store(k.const(value, "f32"), 0, linear)
    return k.kernel(linear_grid(points))
