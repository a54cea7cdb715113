"""rt3d-propagate-layout: keep activations channel-blocked between convolutions that read and write
that layout.

An activation between two packed convolutions is stored in the channel-blocked
layout (:mod:`rt3d_mlir.kernel_packing`: (N, C / L, D, H, W, L), ``L`` the
target's f32 lanes) when

- the producer is a "filters" kernel whose blocks are whole, in-order blocks
  of ``L`` channels (dense convs and kernel groups of ``L`` filters or more),
  so each accumulator is stored as one aligned vector instead of through the
  plain layout's transposing store; and
- its only user is a "filters" kernel reading it as its input, whose channel
  runs (``channel_unroll``) stay within a block or cover whole blocks: each
  broadcast input's cache line then serves the next channels of the run.

The producer's result gets the blocked type and ``output_layout = "blocked"``;
the consumer gets ``input_layout = "blocked"`` and its entry offsets
re-expressed for the blocked input. Every other activation stays plain (the
model's input and output, what pools, elementwise ops and "width" kernels
read), so no conversion is ever needed. Run after ``rt3d-reorder-loops``
(which chooses the vector dimension) and before ``rt3d-vectorize``. Measured
on single layers with both sides blocked (2 threads, GFLOP/s plain ->
blocked): dense (3,1,1) 144->64 on 16x56x56 138 -> 224, 512->256 on 4x14x14
219 -> 279, 3x3x3 16x16 KGS at 2.6x 216 -> 256; dense 3x3x3 layers unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith

from rt3d_mlir.dialect import load_dialect, packed_conv3d_params
from rt3d_mlir.ir_matchers import constant_array, ops_named, single_use
from rt3d_mlir.kernel_packing import blocked_offsets, blocked_shape, runs_fit_blocks
from rt3d_mlir.passes.framework import Pass, TargetOptions, register_pass
from rt3d_mlir.passes.kernel_calls import vector_lanes


@dataclass
class PropagateLayoutOptions(TargetOptions):
    pass


def _writes_channel_blocks(op: ir.Operation, lanes: int) -> bool:
    """Whether ``op``'s blocks are whole, in-order blocks of ``lanes`` output channels."""
    params = packed_conv3d_params(op)
    shape = ir.RankedTensorType(op.results[0].type).shape
    if params.vector_dim != "filters" or params.block_size != lanes or params.output_layout != "plain":
        return False
    if len(shape) != 5 or shape[1] % lanes:
        return False
    channels = constant_array(op.operands[4])
    if channels is None or channels.size != shape[1]:
        return False
    rows = channels.reshape(-1, lanes)
    return bool(np.all(rows[:, 0] % lanes == 0) and np.all(rows - rows[:, :1] == np.arange(lanes)))


def _reads_channel_blocks(op: ir.Operation, lanes: int) -> bool:
    params = packed_conv3d_params(op)
    shape = ir.RankedTensorType(op.operands[0].type).shape
    return (
        params.vector_dim == "filters"
        and params.input_layout == "plain"
        and runs_fit_blocks(params.channel_unroll, lanes)
        and len(shape) == 5
        and shape[1] % lanes == 0
        and constant_array(op.operands[2]) is not None
    )


@register_pass
class PropagateLayout(Pass):
    name = "rt3d-propagate-layout"
    summary = "Keep activations between convolutions that take it in the channel-blocked layout"
    Options = PropagateLayoutOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        if lanes < 2:
            return
        for op in ops_named(module, "rt3d.packed_conv3d"):
            consumer = single_use(op.results[0])
            if (
                consumer is None
                or consumer.name != "rt3d.packed_conv3d"
                or consumer.operands[0] != op.results[0]
                or not _writes_channel_blocks(op, lanes)
                or not _reads_channel_blocks(consumer, lanes)
            ):
                continue
            self._block(op, consumer, lanes)

    @staticmethod
    def _block(producer: ir.Operation, consumer: ir.Operation, lanes: int) -> None:
        shape = ir.RankedTensorType(producer.results[0].type).shape
        producer.results[0].set_type(ir.RankedTensorType.get(blocked_shape(shape, lanes), ir.F32Type.get()))
        producer.attributes["output_layout"] = ir.StringAttr.get("blocked")
        params = packed_conv3d_params(consumer)
        padded = [
            s + lo + hi for s, lo, hi in zip(shape[2:], params.padding_low, params.padding_high, strict=True)
        ]
        plane = padded[0] * padded[1] * padded[2]
        offsets = blocked_offsets(constant_array(consumer.operands[2]), plane, lanes)
        with ir.InsertionPoint(consumer), consumer.location:
            attr = ir.DenseElementsAttr.get(offsets)
            consumer.operands[2] = arith.ConstantOp(attr.type, attr).result
        consumer.attributes["input_layout"] = ir.StringAttr.get("blocked")
