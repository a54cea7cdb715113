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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith

from rt3d_mlir.codegen.gpu.conv import ConvShape, packed_conv_kernel, positions_per_invocation
from rt3d_mlir.dialect import load_dialect, packed_conv3d_params
from rt3d_mlir.dialect.attributes import DENSE_WEIGHTS_ATTR
from rt3d_mlir.ir_matchers import constant_array, int_attr, ops_named
from rt3d_mlir.kernel_packing import GPU_PRECISIONS
from rt3d_mlir.passes.builders import zero_pad
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


@dataclass
class GpuConvOptions:
    precision: str = "fp32"  # fp16: activations between convs in f16 (see the module docstring)

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
    Options = GpuConvOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        written_padded: dict[ir.Value, tuple[ir.Value, Padding]] = {}
        replaced = []
        for op in ops_named(module, "rt3d.packed_conv3d"):
            self._rewrite(module, op, written_padded)
            replaced.append(op)
        for op in reversed(replaced):  # consumers first: a producer's result is used until then
            op.erase()

    def _rewrite(
        self, module: ir.Operation, op: ir.Operation, written_padded: dict[ir.Value, tuple[ir.Value, Padding]]
    ) -> None:
        params = packed_conv3d_params(op)
        padding = (tuple(params.padding_low), tuple(params.padding_high))
        tables = [constant_array(v) for v in list(op.operands)[1:6]]
        if any(t is None for t in tables):
            raise PassFailure("the GPU convolution kernel needs constant weights and tables", op.location)
        if params.block_size % 4:
            raise PassFailure(f"a filter block of {params.block_size} is not a multiple of 4", op.location)
        weights, offsets, starts = tables[0], tables[1], tables[2]
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
            shape = ConvShape(
                in_padded=shape_of(source),  # type: ignore[arg-type]
                out=out_shape,  # type: ignore[arg-type]
                strides=params.strides,
                weights=int(weights.size),  # type: ignore[union-attr]
                entries=int(offsets.size),  # type: ignore[union-attr]
                blocks=int(starts.size) - 1,  # type: ignore[union-attr]
                block_size=params.block_size,
                channel_unroll=params.channel_unroll,
                relu=params.activation == "relu",
                per_invocation=positions_per_invocation(math.prod(out_shape[2:])),
                out_low=out_padding[0] if out_padding else (0, 0, 0),  # type: ignore[arg-type]
                out_high=out_padding[1] if out_padding else (0, 0, 0),  # type: ignore[arg-type]
                input_element=element,
                output_element="f16" if half_out else "f32",
            )
            symbol, kernel = add_kernel(module, "conv", lambda name: packed_conv_kernel(name, shape))
            dense = int_attr(op, DENSE_WEIGHTS_ATTR)
            result_shape = padded_shape(out_shape, out_padding) if out_padding else out_shape
            result = dispatch(
                module,
                symbol,
                kernel,
                [source, *operands],
                tensor_type(result_shape, ir.F16Type.get() if half_out else None),
                "conv",
                dense_flops=2 * dense * math.prod(out_shape) // out_shape[1] if dense else None,
                zero_init=out_padding is not None,
            )
        if out_padding is not None:
            written_padded[op.results[0]] = (result, out_padding)  # its consumers are convs: rewritten here
        else:
            op.results[0].replace_all_uses_with(result)
