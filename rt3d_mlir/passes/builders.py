"""Small helpers that build common IR at the current insertion point."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, tensor


def array_constant(array: np.ndarray) -> ir.Value:
    """An ``arith.constant`` holding ``array`` (its shape and element type)."""
    attr = ir.DenseElementsAttr.get(np.ascontiguousarray(array))
    return arith.ConstantOp(attr.type, attr).result


def float_zero(element: ir.Type | None = None) -> ir.Value:
    """A zero of float type ``element`` (default f32)."""
    element = element or ir.F32Type.get()
    return arith.ConstantOp(element, ir.FloatAttr.get(element, 0.0)).result


def zero_pad(
    x: ir.Value, low: Sequence[int], high: Sequence[int], zero: ir.Value | None = None
) -> ir.Value:
    """``x`` (N, C, D, H, W) zero-padded on the spatial dims; ``x`` itself if no padding.

    A channel-blocked ``x`` (N, C / L, D, H, W, L) is padded as the (N, C / L, D, H, W x L)
    tensor it is in memory, W's padding times L (the pad kernels take rank 5).
    ``zero`` is an existing zero of ``x``'s element type to pad with (a new constant by default).
    """
    if not any(low) and not any(high):
        return x
    x_type = ir.RankedTensorType(x.type)
    if x_type.rank == 6:
        n, blocks, d, h, w, lanes = x_type.shape
        flat = ir.RankedTensorType.get([n, blocks, d, h, w * lanes], x_type.element_type)
        flat_x = tensor.CollapseShapeOp(flat, x, [[0], [1], [2], [3], [4, 5]]).result
        padded = zero_pad(flat_x, (low[0], low[1], low[2] * lanes), (high[0], high[1], high[2] * lanes), zero)
        p_shape = ir.RankedTensorType(padded.type).shape
        shape = [n, blocks, p_shape[2], p_shape[3], p_shape[4] // lanes, lanes]
        groups = [[0], [1], [2], [3], [4, 5]]
        blocked = ir.RankedTensorType.get(shape, x_type.element_type)
        return tensor.ExpandShapeOp(blocked, padded, groups, [], shape).result
    if zero is None:
        zero = float_zero(x_type.element_type)
    lows, highs = [0, 0, *low], [0, 0, *high]
    padded_shape = [size + lo + hi for size, lo, hi in zip(x_type.shape, lows, highs, strict=True)]
    pad = tensor.PadOp(
        ir.RankedTensorType.get(padded_shape, x_type.element_type), x, [], [], lows, highs
    )
    block = pad.regions[0].blocks.append(*([ir.IndexType.get()] * x_type.rank))
    with ir.InsertionPoint(block):
        tensor.YieldOp(zero)
    return pad.result
