"""rt3d-gpu-conv: ``rt3d.packed_conv3d`` to a dispatch of its GPU kernel.

The kernel comes from :mod:`rt3d_mlir.codegen.gpu.conv`. A convolution's
zero-padded input is a ``tensor.pad`` (``rt3d-gpu-copy`` gives it a copy
kernel), except where the producer is itself a convolution whose every
consumer is a convolution reading it with the same padding: that producer
writes the interior of a zero-initialised padded buffer (``zero_init``),
and its consumers read that buffer as is (pad elision: no pad dispatch).
The packed weights and tables must be constants.

With ``precision=fp16`` a convolution whose every consumer is a
convolution reading it as its input (through pad elision, or unpadded)
stores its result in f16 (half the bytes written and read between them),
and its consumers take f16 weights and sum each kept entry in f16
(:mod:`rt3d_mlir.codegen.gpu.conv`); every other tensor stays f32.

With ``precision=int8`` (a model imported with the int8 scheme,
:func:`rt3d_mlir.frontend.preparation.quantize_graph`) a convolution whose
input is the scheme's quantization (``clamp(round(x / s), -127, 127) * s``)
and whose channel runs and input channels are multiples of four reads that
input quantized by a kernel (:mod:`rt3d_mlir.codegen.gpu.quantize`, padded,
four channels' bytes to a word) and sums int8 weight quads by integer dot
products; its bias operand becomes the biases followed by each filter's
dequantization factor. Where such a conv's quantized input is the result
of another int8 conv alone (blocks of whole, in-order channel quads), that
conv's epilogue stores it packed into the zero-initialised padded buffer
and no quantize kernel runs between them. Other convolutions compute in f32 with their weights
on the int8 grid (exactly the scheme, up to f32 rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith

from rt3d_mlir.codegen.gpu.conv import ConvShape, packed_conv_kernel, positions_per_invocation
from rt3d_mlir.codegen.gpu.quantize import quantize_kernel
from rt3d_mlir.dialect import load_dialect, packed_conv3d_params
from rt3d_mlir.dialect.attributes import DENSE_WEIGHTS_ATTR
from rt3d_mlir.ir_matchers import (
    constant_array,
    defining_op,
    erase_dead_producers,
    fake_quantized_input,
    int_attr,
    ops_named,
    single_use,
)
from rt3d_mlir.kernel_packing import (
    GPU_PRECISIONS,
    INT8_QUAD,
    blocked_offsets,
    int8_grid_weights,
    int8_quads,
    quantized_lanes,
)
from rt3d_mlir.passes.builders import array_constant, zero_pad
from rt3d_mlir.passes.framework import Pass, PassFailure, register_pass
from rt3d_mlir.passes.gpu_dispatch import add_kernel, dispatch, shape_of, tensor_type

Padding = tuple[tuple[int, ...], tuple[int, ...]]


def padded_shape(shape: tuple[int, ...], padding: Padding) -> tuple[int, ...]:
    low, high = padding
    return (*shape[:2], *(s + lo + hi for s, lo, hi in zip(shape[2:], low, high, strict=True)))


def padding_of_all_consumers(value: ir.Value) -> Padding | None:
    """The (low, high) padding with which every user reads ``value``, when every user
    is a packed convolution taking it as input with the same nonzero padding."""
    found = None
    for use in value.uses:
        owner = getattr(use.owner, "operation", use.owner)
        if owner.name != "rt3d.packed_conv3d" or use.operand_number != 0:
            return None
        params = packed_conv3d_params(owner)
        padding = (tuple(params.padding_low), tuple(params.padding_high))
        if found not in (None, padding):
            return None
        found = padding
    if found is None or not any(found[0] + found[1]):
        return None
    return found


def _conv_shape(op: ir.Operation, in_padded: tuple[int, ...], weights: int, **extra: object) -> ConvShape:
    """The kernel shape of packed conv ``op`` (constant tables) reading an input padded to
    ``in_padded``, with ``weights`` packed weights (``extra``: element types, output padding)."""
    params = packed_conv3d_params(op)
    offsets, starts = constant_array(op.operands[2]), constant_array(op.operands[3])
    out_shape = shape_of(op.results[0])
    return ConvShape(
        in_padded=in_padded,  # type: ignore[arg-type]
        out=out_shape,  # type: ignore[arg-type]
        strides=params.strides,
        weights=weights,
        entries=int(offsets.size),  # type: ignore[union-attr]
        blocks=int(starts.size) - 1,  # type: ignore[union-attr]
        block_size=params.block_size,
        channel_unroll=params.channel_unroll,
        activation=params.activation,
        per_invocation=positions_per_invocation(math.prod(out_shape[2:])),
        **extra,  # type: ignore[arg-type]
    )


def _conv_dispatch(
    module: ir.Operation, op: ir.Operation, shape: ConvShape, operands: list[ir.Value], result_type: ir.Type,
    zero_init: bool = False,
) -> ir.Value:
    """A dispatch of the conv kernel of ``shape`` for ``op``, at the current insertion point."""
    symbol, kernel = add_kernel(module, "conv", lambda name: packed_conv_kernel(name, shape))
    dense = int_attr(op, DENSE_WEIGHTS_ATTR)
    out = shape.out
    return dispatch(
        module, symbol, kernel, operands, result_type, "conv",
        dense_flops=2 * dense * math.prod(out) // out[1] if dense else None, zero_init=zero_init,
    )


@dataclass(frozen=True)
class Int8Input:
    """How an int8 conv reads its input: the f32 value the importer quantized, its scale, the padded
    spatial shape, and the entry offsets in channel quads."""

    source: ir.Value
    scale: float
    padded: tuple[int, ...]
    offsets_in_quads: np.ndarray


def _int8_input(op: ir.Operation) -> Int8Input | None:
    """The int8 input of packed conv ``op`` if it can take an int8 kernel: its input is the
    importer's quantization, its channel runs and input channels are whole quads and every run
    starts a quad; else None."""
    params = packed_conv3d_params(op)
    offsets = constant_array(op.operands[2])
    found = fake_quantized_input(op.operands[0])
    if found is None or offsets is None:
        return None
    shape = shape_of(op.operands[0])
    padded = padded_shape(shape, (params.padding_low, params.padding_high))[2:]
    c = shape[1]
    offsets_in_quads = blocked_offsets(offsets, math.prod(padded), INT8_QUAD)
    if params.channel_unroll % INT8_QUAD or c % INT8_QUAD or np.any(offsets_in_quads % INT8_QUAD):
        return None
    return Int8Input(found[0], found[1], padded, offsets_in_quads)


@dataclass(frozen=True)
class NextInt8Input:
    """What an int8 conv stores when it is the only producer of the next int8 conv's input: that
    input (the importer's quantization the next conv reads), quantized with its scale and padded."""

    reader_input: ir.Value
    scale: float
    low: tuple[int, ...]
    high: tuple[int, ...]


@dataclass
class GpuPrecisionOptions:
    """The option of the GPU passes whose kernels depend on the build's precision."""

    precision: str = "fp32"  # fp16: activations between convs in f16; int8: int8 kernels (docstrings)

    def __post_init__(self) -> None:
        if self.precision not in GPU_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(GPU_PRECISIONS)}, got '{self.precision}'")


def read_by_convs_only(value: ir.Value, padding: Padding | None) -> bool:
    """Every use of ``value`` is a packed convolution's input, read through ``padding`` (pad
    elision) or unpadded: no other kernel sees it (an f16 result stays between convs)."""
    for use in value.uses:
        owner = getattr(use.owner, "operation", use.owner)
        if owner.name != "rt3d.packed_conv3d" or use.operand_number != 0:
            return False
        params = packed_conv3d_params(owner)
        if padding is None and (any(params.padding_low) or any(params.padding_high)):
            return False
    return bool(list(value.uses))


@register_pass
class GpuConv(Pass):
    name = "rt3d-gpu-conv"
    summary = "GPU kernels for rt3d.packed_conv3d (vec4 filter blocks over kept entries; pad elision)"
    Options = GpuPrecisionOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        written_padded: dict[ir.Value, tuple[ir.Value, Padding]] = {}
        replaced: list[ir.Operation] = []
        # int8: the convs whose int8 input the conv before them stores (its result -> the reader),
        # and the packed words each such reader then takes
        self.quantized_outputs = self._quantized_outputs(module) if self.options.precision == "int8" else {}
        self.quantized_inputs: dict[ir.Value, ir.Value] = {}
        for op in ops_named(module, "rt3d.packed_conv3d"):
            block_size = packed_conv3d_params(op).block_size
            if block_size % 4:  # every kernel holds filters in vectors of four
                raise PassFailure(f"a filter block of {block_size} is not a multiple of 4", op.location)
            if self.options.precision == "int8" and self._int8(module, op, replaced):
                continue  # erased already, or (storing the next conv's input) in replaced
            self._rewrite(module, op, written_padded)
            replaced.append(op)
        for op in reversed(replaced):  # consumers first: a producer's result is used until then
            producers = [p for p in (defining_op(v) for v in op.operands) if p is not None]
            op.erase()
            erase_dead_producers(producers)  # e.g. the quantization an int8 conv stored for it

    @staticmethod
    def _quantized_outputs(module: ir.Operation) -> dict[ir.Value, NextInt8Input]:
        """The int8 convs whose result only the quantization of another int8 conv's input reads,
        their blocks whole, in-order channel quads: each stores that input itself (its result ->
        what it stores)."""
        found = {}
        for op in ops_named(module, "rt3d.packed_conv3d"):
            plan = _int8_input(op)
            if plan is None or single_use(op.operands[0]) is None:
                continue
            producer = defining_op(plan.source)
            if producer is None or producer.name != "rt3d.packed_conv3d" or single_use(plan.source) is None:
                continue
            if _int8_input(producer) is None:
                continue  # an f32 conv (conv1): its kernel has no int8 output
            channels = constant_array(producer.operands[4])
            if channels is None or channels.size % INT8_QUAD:
                continue
            quads = channels.reshape(-1, INT8_QUAD)
            if np.any(quads[:, 0] % INT8_QUAD) or np.any(quads - quads[:, :1] != np.arange(INT8_QUAD)):
                continue
            params = packed_conv3d_params(op)
            found[plan.source] = NextInt8Input(
                op.operands[0], plan.scale, tuple(params.padding_low), tuple(params.padding_high)
            )
        return found

    def _int8(self, module: ir.Operation, op: ir.Operation, replaced: list[ir.Operation]) -> bool:
        """Rewrite ``op`` to an int8 kernel reading its input quantized, if it can take one (True);
        else put its weights on their int8 grid for the f32 kernel (False). Its input is the words
        the conv before it stored (``quantized_inputs``) or those of a quantize kernel; if it is in
        ``quantized_outputs`` its kernel stores the next conv's input."""
        params = packed_conv3d_params(op)
        weights, starts = constant_array(op.operands[1]), constant_array(op.operands[3])
        bias = constant_array(op.operands[5])
        if weights is None or constant_array(op.operands[2]) is None or starts is None or bias is None:
            return False  # refused by _rewrite
        unroll, block_size = params.channel_unroll, params.block_size
        plan = _int8_input(op)
        if plan is None:
            with ir.InsertionPoint(op), op.location:
                op.operands[1] = array_constant(int8_grid_weights(weights, starts, unroll, block_size))
            return False
        n, c, *spatial = shape_of(op.operands[0])
        q, weight_scales, _ = quantized_lanes(weights, starts, unroll, block_size)
        factors = (np.float64(plan.scale) * weight_scales).astype(np.float32)
        shape = _conv_shape(op, (n, c, *plan.padded), int(q.size), input_element="i8")
        stores_next = op.results[0] in self.quantized_outputs
        if stores_next:
            stored = self.quantized_outputs[op.results[0]]
            shape = replace(shape, output_scale=stored.scale, out_low=stored.low, out_high=stored.high)
        i32 = ir.IntegerType.get_signless(32)
        with ir.InsertionPoint(op), op.location:
            quantized = self.quantized_inputs.pop(op.operands[0], None)
            if quantized is None:
                symbol, kernel = add_kernel(
                    module, "quantize",
                    lambda name: quantize_kernel(
                        name, (n, c, *spatial), params.padding_low, plan.padded, plan.scale
                    ),
                )
                words = tensor_type((n, c // INT8_QUAD, *plan.padded), i32)
                quantized = dispatch(module, symbol, kernel, [plan.source], words, "quantize")
            operands = [
                quantized,
                array_constant(int8_quads(q, unroll, block_size).view(np.int32)),
                array_constant(plan.offsets_in_quads // INT8_QUAD),
                op.operands[3],
                op.operands[4],
                array_constant(np.concatenate([bias.astype(np.float32), factors])),
            ]
            if stores_next:  # the next conv's zero-padded int8 input, packed
                n_out, f_out, *padded_out = padded_shape(shape.out, (shape.out_low, shape.out_high))
                result_type = tensor_type((n_out, f_out // INT8_QUAD, *padded_out), i32)
            else:
                result_type = tensor_type(shape.out)
            result = _conv_dispatch(module, op, shape, operands, result_type, zero_init=stores_next)
        dequantized = defining_op(op.operands[0])
        if stores_next:
            self.quantized_inputs[self.quantized_outputs[op.results[0]].reader_input] = result
            replaced.append(op)  # its result feeds the quantization the next conv replaces
        else:
            op.results[0].replace_all_uses_with(result)
            op.erase()
        if dequantized is not None:  # the importer's quantization, which the kernel replaced
            erase_dead_producers([dequantized])
        return True

    def _rewrite(
        self, module: ir.Operation, op: ir.Operation, written_padded: dict[ir.Value, tuple[ir.Value, Padding]]
    ) -> None:
        params = packed_conv3d_params(op)
        padding = (tuple(params.padding_low), tuple(params.padding_high))
        tables = [constant_array(v) for v in list(op.operands)[1:6]]
        if any(t is None for t in tables):
            raise PassFailure("the GPU convolution kernel needs constant weights and tables", op.location)
        weights = tables[0]
        out_shape = shape_of(op.results[0])
        out_padding = padding_of_all_consumers(op.results[0])
        half_out = self.options.precision == "fp16" and read_by_convs_only(op.results[0], out_padding)
        with ir.InsertionPoint(op), op.location:
            x = op.operands[0]
            if x in written_padded:
                source, written = written_padded[x]
                if written != padding:
                    raise PassFailure("a convolution input padded in place for another padding", op.location)
            else:
                source = zero_pad(x, params.padding_low, params.padding_high)
            element = str(ir.RankedTensorType(source.type).element_type)
            operands = list(op.operands)[1:6]
            if element == "f16":  # an f16 input (a conv's f16 result): f16 weights
                attr = ir.DenseElementsAttr.get(weights.astype(np.float16))  # type: ignore[union-attr]
                operands[0] = arith.ConstantOp(attr.type, attr).result
            shape = _conv_shape(
                op, shape_of(source), int(weights.size),  # type: ignore[union-attr]
                out_low=out_padding[0] if out_padding else (0, 0, 0),
                out_high=out_padding[1] if out_padding else (0, 0, 0),
                input_element=element,
                output_element="f16" if half_out else "f32",
            )
            result_shape = padded_shape(out_shape, out_padding) if out_padding else out_shape
            result = _conv_dispatch(
                module, op, shape, [source, *operands],
                tensor_type(result_shape, ir.F16Type.get() if half_out else None),
                zero_init=out_padding is not None,
            )
        if out_padding is not None:
            written_padded[op.results[0]] = (result, out_padding)  # its consumers are convs: rewritten here
        else:
            op.results[0].replace_all_uses_with(result)
