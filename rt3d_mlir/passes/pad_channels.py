"""rt3d-pad-channels: pad the channel count between two convolutions to the target's channel block.

An ``rt3d.kgs_conv3d`` whose filter count the block does not divide (the
target's f32 lanes, or ``vector-width``: the channels of one block of the
channel-blocked layout, see ``rt3d-propagate-layout``), and whose result is
the input of one other ``rt3d.kgs_conv3d`` and nothing else, gets zero
filters (and zero biases) up to the next multiple of the block, and its
reader as many zero input channels, when that adds at most an eighth of the
channels. Exact: the new channels are zeros (``relu`` and ``none`` keep them
zero) and are multiplied by zero weights. In int8 builds the reader's input
is the importer's quantization of the producer's result (four one-use
elementwise generics, :func:`~rt3d_mlir.ir_matchers.fake_quantized_input`,
which keep zeros zero): the pair is padded through it, so that the reader
reads whole channel quads and takes an int8 kernel. The group shapes and masks the
weights' zeros gave stay: new channels fall into the last kernel group (which
computes them as zeros) or into new groups whose masks are empty (computed
by nothing).

This lets the activation between the two be channel-blocked (and, in
16-bit builds, stored in 16 bits and multiplied on AMX): R(2+1)D's (2+1)D
blocks have 45, 230, 460 and 921 channels there; on this repository's Intel
VM its bf16 dense build went from 95.9 to 73.4 ms (``bench/RESULTS.md``).
Convolutions with block-diagonal weights (grouped or depthwise, made
ordinary by the importer) are left alone: padding would break the diagonal
that ``rt3d-vectorize-depthwise`` recognizes.

Run after ``rt3d-recognize-kgs``, before ``rt3d-vectorize-depthwise`` and
``rt3d-pack-kernel-groups``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import tensor

from rt3d_mlir.dialect import build_kgs_conv3d, kgs_conv3d_operands, kgs_conv3d_params, load_dialect
from rt3d_mlir.dialect.rt3d import ZERO_PRESERVING
from rt3d_mlir.ir_matchers import (
    constant_array,
    defining_op,
    erase_dead_producers,
    fake_quantized_input,
    ops_named,
)
from rt3d_mlir.passes.builders import array_constant
from rt3d_mlir.passes.framework import Pass, TargetOptions, register_pass
from rt3d_mlir.passes.kernel_calls import vector_lanes
from rt3d_mlir.sparsity import diagonal_groups

KGS_OP = "rt3d.kgs_conv3d"
# Padding is done when it adds at most this fraction of the channels (45 -> 48, 230 -> 240,
# 921 -> 928; not 12 -> 16).
MAX_PADDING = 1 / 8


@dataclass
class PadChannelsOptions(TargetOptions):
    pass


def _padded(op: ir.Operation, multiple: int) -> int | None:
    """The filter count ``op`` should have, or None if it stays."""
    weight_type = ir.RankedTensorType(op.operands[1].type)
    filters = weight_type.shape[0]
    padded = -(-filters // multiple) * multiple
    if padded == filters or padded - filters > filters * MAX_PADDING:
        return None
    return padded


QUANTIZATION_STEPS = 4  # the generics of the importer's int8 quantization (divide, round, clamp, scale)


def _reader(op: ir.Operation) -> tuple[ir.Operation, list[ir.Operation]] | None:
    """The one ``rt3d.kgs_conv3d`` that reads ``op``'s result as its input, if nothing else does,
    directly or through the importer's int8 quantization (each step used once); and those steps."""
    value, steps = op.results[0], []
    while True:
        uses = list(value.uses)
        if len(uses) != 1 or uses[0].operand_number != 0:
            return None
        owner = uses[0].owner
        if owner.name == KGS_OP:
            if steps:
                quantized = fake_quantized_input(value)
                if quantized is None or quantized[0] != op.results[0]:
                    return None
            return owner, steps
        if owner.name != "linalg.generic" or len(steps) == QUANTIZATION_STEPS:
            return None
        steps.append(owner)
        value = owner.results[0]


def _plain_weight(op: ir.Operation) -> np.ndarray | None:
    """The constant weight of a kgs conv that is not block-diagonal (grouped or depthwise)."""
    weight = constant_array(op.operands[1])
    if weight is None or diagonal_groups(weight) > 1:
        return None
    return weight


def _grown_masks(masks: np.ndarray, axis: int, groups: int) -> np.ndarray:
    """``masks`` with empty groups appended along ``axis`` up to ``groups``."""
    extra = groups - masks.shape[axis]
    if extra <= 0:
        return masks
    shape = list(masks.shape)
    shape[axis] = extra
    return np.concatenate([masks, np.zeros(shape, dtype=masks.dtype)], axis=axis)


@register_pass
class PadChannels(Pass):
    name = "rt3d-pad-channels"
    summary = "Pad the channels between two kgs convolutions to the target's channel block (zeros)"
    Options = PadChannelsOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        multiple = vector_lanes(self.options.target, self.options.vector_width, module.location)
        if multiple <= 1:
            return
        changed = True
        while changed:  # a rewritten reader may be the next pair's producer
            changed = any(self._rewrite(op, multiple) for op in ops_named(module, KGS_OP))

    def _rewrite(self, producer: ir.Operation, multiple: int) -> bool:
        padded = _padded(producer, multiple)
        if padded is None:
            return False
        params = kgs_conv3d_params(producer)
        found = _reader(producer)
        if params.activation not in ZERO_PRESERVING or found is None:
            return False
        reader, steps = found
        weight, reader_weight = _plain_weight(producer), _plain_weight(reader)
        if weight is None or reader_weight is None:
            return False
        x, _, bias_value = kgs_conv3d_operands(producer)
        bias = constant_array(bias_value) if bias_value is not None else None
        if bias_value is not None and bias is None:
            return False
        extra = padded - weight.shape[0]

        weight = np.concatenate([weight, np.zeros((extra, *weight.shape[1:]), weight.dtype)])
        g_f = params.group_shape[0]
        params = replace(params, masks=_grown_masks(params.masks, 0, -(-padded // g_f)))
        reader_params = kgs_conv3d_params(reader)
        zeros = np.zeros((reader_weight.shape[0], extra, *reader_weight.shape[2:]), reader_weight.dtype)
        reader_weight = np.concatenate([reader_weight, zeros], axis=1)
        g_c = reader_params.group_shape[1]
        reader_params = replace(reader_params, masks=_grown_masks(reader_params.masks, 1, -(-padded // g_c)))

        result_type = ir.RankedTensorType(producer.results[0].type)
        shape = list(result_type.shape)
        shape[1] = padded
        with ir.InsertionPoint(producer), producer.location:
            new_bias = None
            if bias is not None:
                new_bias = array_constant(np.concatenate([bias, np.zeros(extra, bias.dtype)]))
            new_producer = build_kgs_conv3d(
                ir.RankedTensorType.get(shape, result_type.element_type),
                x, array_constant(weight), new_bias, params,
            )
            padded_type = ir.RankedTensorType.get(shape, result_type.element_type)
            empty = tensor.EmptyOp(shape, result_type.element_type).result if steps else None
        _, _, reader_bias = kgs_conv3d_operands(reader)
        value = new_producer.results[0]
        for step in steps:  # the quantization between them, on the padded channels
            step.operands[0] = value
            step.operands[1] = empty
            step.results[0].set_type(padded_type)
            value = step.results[0]
        with ir.InsertionPoint(reader), reader.location:
            new_reader = build_kgs_conv3d(
                reader.results[0].type, value, array_constant(reader_weight), reader_bias, reader_params,
            )
        reader.results[0].replace_all_uses_with(new_reader.results[0])
        old_constants = [defining_op(v) for v in (*reader.operands[1:], *producer.operands[1:])]
        reader.erase()
        producer.erase()
        erase_dead_producers([op for op in old_constants if op is not None])
        return True
