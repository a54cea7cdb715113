"""Kernels that write their output into the zero-padded input of the packed conv after them.

A conv (``rt3d-vectorize``) or a max pool (``rt3d-vectorize-pool``) whose
only user is a packed conv that zero-pads it stores its output at the padded
strides of that conv's input: the pad kernel's fill-only form zeroes the
padding first, and the consumer's padding becomes zero, so no padded copy
of the activation is made. A conv whose only user is an ``rt3d.quantize``
stores that quantization instead (:func:`quantized_output`): the next
conv's int8 input, zero-padded, blocked by four channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir

from rt3d_mlir.codegen.cpu.pad import pad_kernel_text
from rt3d_mlir.codegen.cpu.quantize import padding_byte
from rt3d_mlir.dialect import QuantizeParams, packed_conv3d_params, quantize_params
from rt3d_mlir.ir_matchers import single_use
from rt3d_mlir.kernel_packing import INT8_QUAD, blocked_shape
from rt3d_mlir.passes.kernel_calls import DISPATCH_PLACEHOLDER, KERNEL_PLACEHOLDER, add_kernel


def padding_consumer(op: ir.Operation) -> ir.Operation | None:
    """The packed conv that reads ``op``'s result, its only use, through a zero padding."""
    user = single_use(op.results[0])
    if user is None or user.name != "rt3d.packed_conv3d" or user.operands[0] != op.results[0]:
        return None
    params = packed_conv3d_params(user)
    if not any(params.padding_low) and not any(params.padding_high):
        return None
    return user


@dataclass(frozen=True)
class PaddedOutput:
    """The zero-padded input of the conv that reads an op's output: the op's kernel writes its
    output into it (no padded copy is made)."""

    consumer: ir.Operation  # the packed conv that zero-pads the op's output
    padded: tuple[int, int, int]  # spatial shape of the padded buffer
    low: tuple[int, int, int]  # where the output starts in it
    fill: str  # the dispatch that zeroes the padding alone (called first, on the buffer)
    result_type: ir.Type  # the padded buffer (blocked if the output is)

    def take_padding(self) -> None:
        """The consumer reads the padded buffer as it is: its padding becomes zero."""
        none = ir.DenseI64ArrayAttr.get([0, 0, 0])
        self.consumer.attributes["padding_low"] = none
        self.consumer.attributes["padding_high"] = none


def padded_output(
    module: ir.Operation, op: ir.Operation, y_shape: list[int], block: int, lanes: int
) -> PaddedOutput | None:
    """If ``op``'s only user is a packed conv that zero-pads it: the padded buffer ``op``'s kernel
    should write (``y_shape``: its output as (N, C, D, H, W); ``block``: the output's channel block, 1
    if plain), with the fill kernel of its padding added to ``module``; None otherwise or if the
    buffer is too large for 32-bit offsets."""
    consumer = padding_consumer(op)
    if consumer is None:
        return None
    after = packed_conv3d_params(consumer)
    out_padded = tuple(
        s + lo + hi for s, lo, hi in zip(y_shape[2:], after.padding_low, after.padding_high, strict=True)
    )
    if out_padded[0] * out_padded[1] * out_padded[2] * y_shape[0] * y_shape[1] >= 2**31:
        return None
    element = ir.RankedTensorType(op.results[0].type).element_type
    fill = _fill_kernel(module, y_shape, block, out_padded, after.padding_low, str(element), 0.0, lanes)
    padded_shape = [*y_shape[:2], *out_padded]
    if block > 1:
        padded_shape = list(blocked_shape(padded_shape, block))
    return PaddedOutput(
        consumer,
        out_padded,  # type: ignore[arg-type]
        tuple(after.padding_low),  # type: ignore[arg-type]
        fill,
        ir.RankedTensorType.get(padded_shape, element),
    )


def _fill_kernel(
    module: ir.Operation, y_shape: list[int], block: int, padded: tuple[int, ...], low: tuple[int, ...],
    element: str, value: float, lanes: int,
) -> str:
    """The dispatch that fills the padding (``value``) of an output of shape ``y_shape`` (N, C, D, H,
    W; blocked by ``block`` channels) written at ``low`` into a buffer of spatial shape ``padded``."""
    # a blocked output is padded as the rank-5 tensor it is in memory (W x L)
    m = block
    in_memory = [y_shape[0], y_shape[1] // m, *y_shape[2:4], y_shape[4] * m]
    at = (0, 0, low[0], low[1], low[2] * m)
    padded_memory = [y_shape[0], y_shape[1] // m, *padded[:2], padded[2] * m]
    text = pad_kernel_text(
        KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, tuple(in_memory), at, tuple(padded_memory), value, lanes,
        interior=False, element=element,
    )
    return add_kernel(module, "pad", text)


@dataclass(frozen=True)
class QuantizedOutput:
    """The ``rt3d.quantize`` that alone reads an op's output: the op's kernel computes it in its
    epilogue and stores the next conv's zero-padded int8 input (blocked by four channels)."""

    quantize: ir.Operation
    params: QuantizeParams
    padded: tuple[int, int, int]  # spatial shape of the padded buffer
    fill: str  # the dispatch that writes the padding alone (the zero point), called first
    result_type: ir.Type


def quantized_output(
    module: ir.Operation, op: ir.Operation, y_shape: list[int], lanes: int
) -> QuantizedOutput | None:
    """If ``op``'s only user is an ``rt3d.quantize``: what ``op``'s kernel should store instead of its
    output (``y_shape``: (N, C, D, H, W)), with the fill kernel of its padding added to ``module``;
    None otherwise or if the buffer is too large for 32-bit offsets."""
    user = single_use(op.results[0])
    if user is None or user.name != "rt3d.quantize":
        return None
    params = quantize_params(user)
    result_type = ir.RankedTensorType(user.results[0].type)
    padded = tuple(result_type.shape[2:5])
    if y_shape[0] * y_shape[1] * int(np.prod(padded)) >= 2**31:
        return None
    fill = _fill_kernel(
        module, y_shape, INT8_QUAD, padded, params.padding_low, "i8", padding_byte(params.zero_point), lanes
    )
    return QuantizedOutput(user, params, padded, fill, result_type)  # type: ignore[arg-type]
