"""rt3d-vectorize: replace each ``rt3d.packed_conv3d`` by a call to its CPU kernel
(``rt3d_conv_kernel_<i>``, called by dispatch ``rt3d_conv_dispatch_<j>`` for the ``j``-th conv in
walk order, the order they run: a profile's ``j``-th conv call site is that layer; depthwise
convolutions have their own kernels, ``rt3d-vectorize-depthwise``).

The kernel comes from :mod:`rt3d_mlir.codegen.cpu.conv` (how it maps the
work to vectors is described there); this pass matches the op, fills in the
schedule ``rt3d-reorder-loops`` left unset, and builds the call.

A conv whose only user is another packed conv that zero-pads its input
writes straight into that padded buffer (``fuse-pads``, on by default): the
pad kernel's fill-only form zeroes the padding first, the conv stores at
the padded strides, and the consumer's padding becomes zero, so no padded
copy of the activation is made (R(2+1)D's (1,3,3) -> (3,1,1) pairs; a
block input also read by a residual add still gets its copy).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.conv import ConvGeometry, conv_kernel_text
from rt3d_mlir.codegen.cpu.pad import pad_kernel_text
from rt3d_mlir.dialect import load_dialect, packed_conv3d_params
from rt3d_mlir.dialect.attributes import DENSE_WEIGHTS_ATTR, KEPT_WEIGHTS_ATTR
from rt3d_mlir.ir_matchers import constant_array, int_attr, ops_named, single_use, static_size
from rt3d_mlir.kernel_packing import blocked_shape, chunk_starts, plain_shape
from rt3d_mlir.passes.builders import array_constant, zero_pad
from rt3d_mlir.passes.framework import (
    Pass,
    PassFailure,
    TargetOptions,
    register_pass,
)
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
    vector_lanes,
)
from rt3d_mlir.passes.reorder_loops import choose_tile

CONV_STEM = "conv"  # the convs' kernels and call sites: rt3d_conv_kernel_<i>, rt3d_conv_dispatch_<j>


@dataclass
class VectorizeOptions(TargetOptions):
    fuse_pads: bool = True


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
    # a blocked output is padded as the rank-5 tensor it is in memory (W x L)
    m = block
    in_memory = [y_shape[0], y_shape[1] // m, *y_shape[2:4], y_shape[4] * m]
    low = (0, 0, after.padding_low[0], after.padding_low[1], after.padding_low[2] * m)
    padded_memory = [y_shape[0], y_shape[1] // m, *out_padded[:2], out_padded[2] * m]
    fill = pad_kernel_text(
        KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, tuple(in_memory), low, tuple(padded_memory), 0.0, lanes,
        interior=False,
    )
    padded_shape = [*y_shape[:2], *out_padded]
    if m > 1:
        padded_shape = list(blocked_shape(padded_shape, m))
    return PaddedOutput(
        consumer,
        out_padded,  # type: ignore[arg-type]
        tuple(after.padding_low),  # type: ignore[arg-type]
        add_kernel(module, "pad", fill),
        ir.RankedTensorType.get(padded_shape, ir.F32Type.get()),
    )


@register_pass
class Vectorize(Pass):
    name = "rt3d-vectorize"
    summary = "Generate vector kernels (filters in lanes, register-tiled outputs) for rt3d.packed_conv3d"
    Options = VectorizeOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        self.lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        for op in ops_named(module, "rt3d.packed_conv3d"):
            self._rewrite(module, op)

    def _rewrite(self, module: ir.Operation, op: ir.Operation) -> None:
        params = packed_conv3d_params(op)
        # shapes as (N, C, D, H, W) whatever the layout; a blocked layout's channel block
        y_shape = list(ir.RankedTensorType(op.results[0].type).shape)
        out_block = y_shape[5] if params.output_layout == "blocked" else 1
        if out_block > 1:
            y_shape = list(plain_shape(y_shape))
        if params.tile_sizes is None and params.vector_dim != "width":
            params = replace(params, tile_sizes=choose_tile(y_shape[3], y_shape[4], 14))
        x = op.operands[0]
        x_shape = list(ir.RankedTensorType(x.type).shape)
        in_block = x_shape[5] if params.input_layout == "blocked" else 1
        if in_block > 1:
            x_shape = list(plain_shape(x_shape))
        padded = tuple(
            s + lo + hi
            for s, lo, hi in zip(x_shape[2:], params.padding_low, params.padding_high, strict=True)
        )
        geo = ConvGeometry(
            batch=x_shape[0],
            channels=x_shape[1],
            padded=padded,  # type: ignore[arg-type]
            filters=y_shape[1],
            out=tuple(y_shape[2:]),  # type: ignore[arg-type]
            blocks=static_size(op.operands[3]) - 1,
            entries=static_size(op.operands[2]),
            weights=static_size(op.operands[1]),
            kept_weights=int_attr(op, KEPT_WEIGHTS_ATTR),
            dense_weights=int_attr(op, DENSE_WEIGHTS_ATTR),
            input_block=in_block,
        )
        if geo.batch * geo.channels * padded[0] * padded[1] * padded[2] >= 2**31:
            raise PassFailure("the padded input is too large for 32-bit kernel offsets", op.location)
        fused = padded_output(module, op, y_shape, out_block, self.lanes) if self.options.fuse_pads else None
        result_type, first = None, []
        if fused is not None:
            # write into the next conv's padded input: no padded copy of this output is made
            geo = replace(geo, out_padded=fused.padded, out_padding_low=fused.low)  # type: ignore[arg-type]
            params = replace(params, streaming_stores=False)  # rows no longer whole lines
            result_type, first = fused.result_type, [fused.fill]
        tables = []
        if params.channel_chunk:
            offsets, starts = constant_array(op.operands[2]), constant_array(op.operands[3])
            if offsets is None or starts is None:
                raise PassFailure("channel chunks need constant entry tables", op.location)
            plane = padded[0] * padded[1] * padded[2]
            tables = [chunk_starts(offsets, starts, plane, geo.channels, params.channel_chunk)]
        text = conv_kernel_text(KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, geo, params)
        dispatch = add_kernel(module, CONV_STEM, text)
        replace_with_kernel_call(
            op,
            dispatch,
            lambda: [
                zero_pad(x, params.padding_low, params.padding_high),
                *op.operands[1:],
                *(array_constant(t) for t in tables),
            ],
            result_type,
            first,
        )
        if fused is not None:
            fused.take_padding()
