"""rt3d-vectorize-depthwise: a dedicated CPU kernel for each depthwise ``rt3d.kgs_conv3d``.

Matches kernel-group convolutions whose constant weight is block-diagonal
with one input channel per group (a depthwise convolution, with any channel
multiplier, as the frontend expands ``groups`` = channels) and dilation 1,
and replaces each by a call of the kernel from
:mod:`rt3d_mlir.codegen.cpu.depthwise` on the *unpadded* input (its zero
padding is handled in the kernel). The weight is kept as the taps of each
filter's own channel, masked by the kernel-group masks. Other convolutions
are left to ``rt3d-pack-kernel-groups`` (run this pass before it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir

from rt3d_mlir.codegen.cpu.depthwise import DepthwiseShape, depthwise_kernel_text
from rt3d_mlir.dialect import kgs_conv3d_operands, kgs_conv3d_params, load_dialect
from rt3d_mlir.ir_matchers import constant_array, ops_named
from rt3d_mlir.passes.builders import array_constant
from rt3d_mlir.passes.framework import (
    Pass,
    PassFailure,
    TargetOptions,
    register_pass,
    require_count,
)
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
    vector_lanes,
)
from rt3d_mlir.sparsity import diagonal_groups, expand_masks


@dataclass
class VectorizeDepthwiseOptions(TargetOptions):
    tile_rows: int = 0
    tile_vectors: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_count(self.tile_rows, "tile-rows", note=" (0 chooses)")
        require_count(self.tile_vectors, "tile-vectors", note=" (0 chooses)")


def narrowest_lanes(lanes: int, width: int) -> int:
    """The narrowest vector (``lanes``, halved down to 4) that covers an output row of ``width``
    in as few vectors as the widest: W=5 takes 8 lanes of 16, W=10 keeps 16 (measured: a 5x5 plane
    ran 0.20 ms with 16 lanes, 0.16 ms with 8)."""
    best = lanes
    while best // 2 >= 4 and -(-width // (best // 2)) == -(-width // lanes):
        best //= 2
    return best


def depthwise_taps(weight: np.ndarray, masks: np.ndarray, group_shape: tuple[int, int]) -> np.ndarray | None:
    """Each filter's taps on its own channel (F, kD, kH, kW), zero where the masks drop them; None
    unless ``weight`` (F, C, ...) is a depthwise convolution's (one channel per group)."""
    filters, channels = weight.shape[:2]
    if channels < 2 or filters % channels or diagonal_groups(weight) != channels:
        return None
    kept = weight * expand_masks(masks, weight.shape, group_shape)
    per_channel = filters // channels
    own = np.arange(filters) // per_channel
    return np.ascontiguousarray(kept[np.arange(filters), own], dtype=np.float32)


@register_pass
class VectorizeDepthwise(Pass):
    name = "rt3d-vectorize-depthwise"
    summary = "Dedicated vector kernels for depthwise rt3d.kgs_conv3d (unpadded input, W in lanes)"
    Options = VectorizeDepthwiseOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        for op in ops_named(module, "rt3d.kgs_conv3d"):
            self._rewrite(module, op, lanes)

    def _rewrite(self, module: ir.Operation, op: ir.Operation, target_lanes: int) -> None:
        x, w, b = kgs_conv3d_operands(op)
        weight = constant_array(w)
        bias = constant_array(b) if b is not None else None
        if weight is None or (b is not None and bias is None) or weight.ndim != 5:
            return
        params = kgs_conv3d_params(op)
        if params.dilations != (1, 1, 1):
            return
        taps = depthwise_taps(weight, params.masks, params.group_shape)
        if taps is None:
            return
        x_shape = ir.RankedTensorType(x.type).shape
        y_shape = ir.RankedTensorType(op.results[0].type).shape
        if x_shape[0] * x_shape[1] * x_shape[2] * x_shape[3] * x_shape[4] >= 2**31:
            raise PassFailure("the input is too large for 32-bit kernel offsets", op.location)
        kept = np.abs(taps) != 0
        shape = DepthwiseShape(
            batch=x_shape[0],
            channels=x_shape[1],
            input=tuple(x_shape[2:]),  # type: ignore[arg-type]
            filters=y_shape[1],
            out=tuple(y_shape[2:]),  # type: ignore[arg-type]
            kernel=tuple(taps.shape[1:]),  # type: ignore[arg-type]
            strides=params.strides,
            padding_low=params.padding_low,
            positions=frozenset(zip(*np.nonzero(kept.any(axis=(0, 1))), strict=True)),
            activation=params.activation,
            kept_weights=int(kept.sum()),
        )
        lanes = target_lanes if self.options.vector_width else narrowest_lanes(target_lanes, shape.out[2])
        text = depthwise_kernel_text(
            KERNEL_PLACEHOLDER,
            DISPATCH_PLACEHOLDER,
            shape,
            lanes,
            self.options.tile_rows,
            self.options.tile_vectors,
        )
        dispatch = add_kernel(module, "dwconv", text)
        bias_values = np.zeros(shape.filters, np.float32) if bias is None else bias.astype(np.float32)
        replace_with_kernel_call(
            op, dispatch, lambda: [x, array_constant(taps.reshape(-1)), array_constant(bias_values)]
        )
