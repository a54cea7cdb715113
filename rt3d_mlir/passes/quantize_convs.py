"""rt3d-quantize-convs: compute the int8 scheme's convolutions with int8 kernels.

An int8 build imports the model with the int8 scheme applied
(:func:`rt3d_mlir.frontend.preparation.quantize_graph`): each quantized
layer reads ``clamp(round(x / s), -127, 127) * s`` (four elementwise
generics: divide, round to even, clamp, multiply) and its weights lie on
their per-channel int8 grids. This pass finds each ``rt3d.packed_conv3d``
whose input is such a quantization and whose kernel can take int8 (filters
in the lanes, blocks of the target's f32 lanes, channel runs and input
channels multiples of :data:`~rt3d_mlir.kernel_packing.INT8_QUAD`, no
channel chunks), and rewrites it to read

- its input quantized once, zero-padded, into the blocked layout with
  blocks of four channels (an ``rt3d.quantize``: divide, round to even,
  clamp, add the zero point, store as i8; the padding is the zero point),
  so that each position's quad is one 32-bit word. ``rt3d-vectorize``
  computes it in the epilogue of the conv before it where it can,
  ``rt3d-vectorize-quantize`` by a kernel elsewhere;
- its weights as int8 channel quads with one scale per lane
  (:func:`~rt3d_mlir.kernel_packing.int8_quads`; the weights are already on
  their grid, so the integers are the scheme's);
- a bias operand of each lane's bias followed by each lane's dequantization
  factor ``s x s_w``; the zero point's contribution (``z x s x s_w x sum of
  the lane's int8 weights``) is taken out of the bias.

The kernel (``rt3d-vectorize``) sums ``(q + z) x q_w`` exactly in int32 and
stores ``sum x factor + bias``, in f32 like everything after a quantized
layer. ``zero-point`` is the input encoding: 128 (unsigned bytes) for x86,
whose dot product ``vpdpbusd`` multiplies unsigned by signed bytes; 0 on
AArch64 (``sdot``, signed by signed).

Convs it cannot take keep computing the quantized values in f32 (exactly
the scheme, up to f32 rounding). Run after ``rt3d-reorder-loops`` (which
chooses each kernel's vector dimension) and before ``rt3d-propagate-layout``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir

from rt3d_mlir.dialect import build_quantize, load_dialect, packed_conv3d_params
from rt3d_mlir.dialect.attributes import INPUT_ZERO_POINT_ATTR
from rt3d_mlir.ir_matchers import (
    constant_array,
    defining_op,
    erase_dead_producers,
    fake_quantized_input,
    ops_named,
)
from rt3d_mlir.kernel_packing import (
    INT8_QUAD,
    INT8_ZERO_POINTS,
    blocked_offsets,
    int8_grid_weights,
    int8_quads,
    quantized_lanes,
)
from rt3d_mlir.passes.builders import array_constant
from rt3d_mlir.passes.framework import Pass, TargetOptions, register_pass
from rt3d_mlir.passes.kernel_calls import vector_lanes
from rt3d_mlir.targets import get_target


def int8_schedule(vector_dim: str, channel_chunk: int) -> bool:
    """Whether a conv with this schedule can take an int8 kernel (filters in the lanes, no channel
    chunks; its packing decides the rest): what ``--tune`` times for int8 builds."""
    return vector_dim == "filters" and not channel_chunk


def default_zero_point(target: str) -> int:
    """The input encoding a target's int8 dot products take: unsigned bytes on x86-64."""
    return 128 if get_target(target).triple.startswith("x86_64") else 0


@dataclass
class QuantizeConvsOptions(TargetOptions):
    zero_point: int = -1  # -1: the target's (default_zero_point)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.zero_point == -1:
            self.zero_point = default_zero_point(self.target)
        if self.zero_point not in INT8_ZERO_POINTS:
            choices = ", ".join(map(str, INT8_ZERO_POINTS))
            raise ValueError(f"zero-point must be one of {choices}, got {self.zero_point}")


@register_pass
class QuantizeConvs(Pass):
    name = "rt3d-quantize-convs"
    summary = "Compute packed convolutions of int8-quantized inputs with int8 weights and inputs"
    Options = QuantizeConvsOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        for op in ops_named(module, "rt3d.packed_conv3d"):
            self._rewrite(op, lanes)

    def _rewrite(self, op: ir.Operation, lanes: int) -> None:
        params = packed_conv3d_params(op)
        x_type = ir.RankedTensorType(op.operands[0].type)
        found = fake_quantized_input(op.operands[0])
        weights, offsets = constant_array(op.operands[1]), constant_array(op.operands[2])
        starts, bias = constant_array(op.operands[3]), constant_array(op.operands[5])
        if found is None or weights is None or starts is None or weights.dtype != np.float32:
            return
        q, weight_scales, sums = quantized_lanes(weights, starts, params.channel_unroll, params.block_size)
        if (
            not int8_schedule(params.vector_dim, params.channel_chunk) or params.block_size != lanes
            or params.channel_unroll % INT8_QUAD or params.input_layout != "plain"
            or x_type.rank != 5 or x_type.shape[1] % INT8_QUAD or offsets is None or bias is None
        ):
            # no int8 kernel: the weights on their int8 grid, computed in f32
            with ir.InsertionPoint(op), op.location:
                weights_f32 = int8_grid_weights(weights, starts, params.channel_unroll, params.block_size)
                op.operands[1] = array_constant(weights_f32)
            return
        source, scale = found
        zero_point = self.options.zero_point
        factors = (np.float64(scale) * weight_scales).astype(np.float32)
        shift = zero_point * factors.astype(np.float64) * sums  # what the zero point adds to each sum
        shifted = (bias.astype(np.float64) - shift).astype(np.float32)
        d, h, w = x_type.shape[2:]
        pads = zip((d, h, w), params.padding_low, params.padding_high, strict=True)
        plane = int(np.prod([s + lo + hi for s, lo, hi in pads]))
        dequantized = op.operands[0]
        with ir.InsertionPoint(op), op.location:
            op.operands[0] = build_quantize(
                source, scale, zero_point, params.padding_low, params.padding_high
            )
            op.operands[1] = array_constant(int8_quads(q, params.channel_unroll, params.block_size))
            op.operands[2] = array_constant(blocked_offsets(offsets, plane, INT8_QUAD))
            op.operands[5] = array_constant(np.concatenate([shifted, factors]))
        # the importer's quantization rt3d.quantize replaced: left to later passes, a generic turned
        # into a kernel call would run, unread, on every inference
        erase_dead_producers([defining_op(dequantized)])
        op.attributes["input_layout"] = ir.StringAttr.get("blocked")
        for name in ("padding_low", "padding_high"):  # the quantized input is padded already
            op.attributes[name] = ir.DenseI64ArrayAttr.get([0, 0, 0])
        op.attributes[INPUT_ZERO_POINT_ATTR] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), zero_point)
