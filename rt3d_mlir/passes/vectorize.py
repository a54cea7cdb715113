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

A max pool that reads the conv alone and fits the kernel's epilogue
(:func:`rt3d_mlir.passes.vectorize_pool.epilogue_pool`; ``fuse-epilogues``)
is computed there: the register tile is fitted to whole pool windows, the
call stands for the pool's result, and the pool's padded consumer is
written as above.

An ``rt3d.quantize`` that alone reads the conv (or its epilogue's pool) is
computed there too, where the kernel writes whole in-order channel blocks
("filters", blocks of the target's lanes): the epilogue quantizes each
accumulator and stores its quads into the next conv's zero-padded int8
input (the fill kernel writes the zero point into the padding first), so
the activation between two int8 convs is stored once, in int8.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.conv import (
    INT8_DOTS,
    ConvGeometry,
    amx_applies,
    amx_tile_sizes,
    conv_kernel_text,
)
from rt3d_mlir.dialect import load_dialect, packed_conv3d_params
from rt3d_mlir.dialect.attributes import DENSE_WEIGHTS_ATTR, INPUT_ZERO_POINT_ATTR, KEPT_WEIGHTS_ATTR
from rt3d_mlir.ir_matchers import constant_array, int_attr, ops_named, static_size
from rt3d_mlir.kernel_packing import chunk_starts, plain_shape
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
from rt3d_mlir.passes.padded_outputs import padded_output, quantized_output
from rt3d_mlir.passes.propagate_layout import writes_channel_blocks
from rt3d_mlir.passes.reorder_loops import choose_tile, fit_tile_to_pool, fit_width_tile_to_pool
from rt3d_mlir.passes.vectorize_pool import epilogue_pool

CONV_STEM = "conv"  # the convs' kernels and call sites: rt3d_conv_kernel_<i>, rt3d_conv_dispatch_<j>


@dataclass
class VectorizeOptions(TargetOptions):
    fuse_pads: bool = True
    fuse_epilogues: bool = True  # compute a max pool reading the conv alone in its epilogue
    # bf16 channel pairs (rt3d-propagate-layout{precision=bf16}) as AVX-512 BF16 dot products; off:
    # widened to f32 and FMAs (any target)
    native_bf16: bool = False
    amx: bool = False  # bf16 channel pairs as AMX tile products where the conv allows it
    # f16 weights (rt3d-propagate-layout{precision=fp16}) as f16 FMAs summing each entry's channel
    # run into the f32 accumulators (the target has f16 vector arithmetic); off: widened to f32
    native_f16: bool = False
    # int8 channel quads (rt3d-quantize-convs) as dot products: "vnni" (x86 AVX-512 VNNI), "sdot"
    # (AArch64 dotprod); "": widened to int32 multiply-adds
    int8_dot: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.int8_dot not in ("", *INT8_DOTS):
            raise ValueError(
                f"int8-dot must be one of {', '.join(INT8_DOTS)} or empty, got '{self.int8_dot}'"
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
        # a max pool reading this conv alone is computed in the kernel's epilogue: the kernel
        # stands for the pool, whose output it stores
        epilogue = epilogue_pool(op) if self.options.fuse_epilogues else None
        window = (1, 1)
        if epilogue is not None:
            window = epilogue[1].window[1:]  # type: ignore[assignment]
            tile = params.tile_sizes or (1, self.lanes)
            if params.vector_dim == "width":
                tile = fit_width_tile_to_pool(tile, window, params.vector_lanes or self.lanes)
            else:
                tile = fit_tile_to_pool(tile, window, y_shape[3], y_shape[4])
            params = replace(params, tile_sizes=tile, streaming_stores=False)
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
            pool=window,
            input_element=str(ir.RankedTensorType(x.type).element_type),
            output_element=str(ir.RankedTensorType(op.results[0].type).element_type),
            weights_element=str(ir.RankedTensorType(op.operands[1].type).element_type),
            native_bf16=self.options.native_bf16,
            amx=self.options.amx,
            native_f16=self.options.native_f16,
            int8_dot=self.options.int8_dot,
            input_zero_point=int_attr(op, INPUT_ZERO_POINT_ATTR) if INPUT_ZERO_POINT_ATTR in op.attributes
            else 0,
        )
        if amx_applies(geo, params):  # AMX register tiles: rows of 16-position tiles
            params = replace(params, tile_sizes=amx_tile_sizes(y_shape[3], y_shape[4]), block_group=1)
        if geo.batch * geo.channels * padded[0] * padded[1] * padded[2] >= 2**31:
            raise PassFailure("the padded input is too large for 32-bit kernel offsets", op.location)
        stored, stored_shape = op, y_shape  # the op whose result the kernel stores, and its shape
        if epilogue is not None:
            stored = epilogue[0]
            stored_shape = [*y_shape[:3], y_shape[3] // window[0], y_shape[4] // window[1]]
        fused, quantized = None, None
        if self.options.fuse_pads and params.vector_dim == "filters" and not params.channel_chunk:
            if writes_channel_blocks(op, self.lanes):
                quantized = quantized_output(module, stored, stored_shape, self.lanes)
        if self.options.fuse_pads and quantized is None:
            fused = padded_output(module, stored, stored_shape, out_block, self.lanes)
        result_type, first = None, []
        if quantized is not None:
            # compute the next conv's rt3d.quantize: store its padded int8 input
            geo = replace(
                geo, out_padded=quantized.padded, out_padding_low=quantized.params.padding_low,
                output_element="i8", output_scale=quantized.params.scale,
                output_zero_point=quantized.params.zero_point,
            )
            params = replace(params, streaming_stores=False)
            result_type, first = quantized.result_type, [quantized.fill]
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
            through=[
                *([epilogue[0]] if epilogue is not None else []),
                *([quantized.quantize] if quantized is not None else []),
            ],
        )
        if fused is not None:
            fused.take_padding()

