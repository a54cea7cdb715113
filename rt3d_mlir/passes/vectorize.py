"""rt3d-vectorize: generate vector code for each ``rt3d.packed_conv3d``.

Each packed conv becomes a kernel function (see ``kernel_calls``) and a call
to it. The kernel maps a block's ``B`` filters to the lanes of a
``vector<Bxf32>``; for one parallel task (batch, filter block, output depth)
it walks the output plane in register tiles of ``rows x cols`` positions
(``tile_sizes``), each tile holding ``rows*cols`` accumulators initialized
with the block's bias. For each of the block's kept entries (a run of ``U``
input channels at one kernel position: the offset comes from the entry
table) and each channel of the run, it loads the ``B`` weights once and
issues one broadcast-FMA per accumulator. Only kept entries are visited, so
the work is proportional to the kept weights; no lane diverges. The
epilogue applies ReLU and writes the ``B`` lanes to their output channels
(``out_channels``, the filter permutation) with a masked ``vector.scatter``
into the NCDHW result. Tiles at the plane's right and bottom edges get
their own, smaller, tile code (all shapes are static).

The input is zero-padded once (``tensor.pad``) before the call. The task
space is ``N x blocks x D_out`` ordered by ``loop_order`` and split across
threads by the artifact's runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir

from rt3d_mlir.dialect import load_dialect, packed_conv3d_params
from rt3d_mlir.dialect.rt3d import PackedConv3dParams
from rt3d_mlir.passes.builders import zero_pad
from rt3d_mlir.passes.framework import Pass, PassFailure, register_pass
from rt3d_mlir.passes.kernel_calls import (
    KernelText,
    call_kernel,
    insert_kernel_module,
    kernel_module_text,
    memref_type_text,
    unique_kernel_names,
)
from rt3d_mlir.passes.matchers import defining_op, erase_dead_producers, ops_named
from rt3d_mlir.passes.reorder_loops import choose_tile


@dataclass(frozen=True)
class ConvGeometry:
    batch: int
    channels: int
    padded: tuple[int, int, int]  # D, H, W of the zero-padded input
    filters: int
    out: tuple[int, int, int]  # D, H, W of the output
    blocks: int
    entries: int
    weights: int


def _size(value: ir.Value) -> int:
    size = 1
    for dim in ir.RankedTensorType(value.type).shape:
        size *= dim
    return size


def conv_kernel_text(kernel: str, dispatch: str, geo: ConvGeometry, p: PackedConv3dParams) -> str:
    """MLIR text of the kernel function and its dispatch declaration."""
    lanes, unroll = p.block_size, p.channel_unroll
    rows, cols = p.tile_sizes or choose_tile(geo.out[1], geo.out[2], 14)
    order = p.loop_order or "fdhw"
    d_p, h_p, w_p = geo.padded
    d_o, h_o, w_o = geo.out
    channel_stride = d_p * h_p * w_p
    plane = d_o * h_o * w_o
    sd, sh, sw = p.strides
    vec = f"vector<{lanes}xf32>"
    input_type = memref_type_text(geo.batch * geo.channels * channel_stride, "f32")
    k = KernelText()
    k.indent = 2

    # Decode the task index into (n, block, d).
    t = "%task"
    if order == "fdhw":
        per_n = geo.blocks * d_o
        n = k.op(f"arith.divui {t}, {k.const(per_n)} : index")
        rest = k.op(f"arith.remui {t}, {k.const(per_n)} : index")
        block = k.op(f"arith.divui {rest}, {k.const(d_o)} : index")
        d = k.op(f"arith.remui {rest}, {k.const(d_o)} : index")
    else:
        per_n = d_o * geo.blocks
        n = k.op(f"arith.divui {t}, {k.const(per_n)} : index")
        rest = k.op(f"arith.remui {t}, {k.const(per_n)} : index")
        d = k.op(f"arith.divui {rest}, {k.const(geo.blocks)} : index")
        block = k.op(f"arith.remui {rest}, {k.const(geo.blocks)} : index")
    next_block = k.op(f"arith.addi {block}, {k.const(1)} : index")
    first = k.op(f"memref.load %starts[{block}] : memref<{geo.blocks + 1}xi32>")
    last = k.op(f"memref.load %starts[{next_block}] : memref<{geo.blocks + 1}xi32>")
    first = k.op(f"arith.index_cast {first} : i32 to index")
    last = k.op(f"arith.index_cast {last} : i32 to index")
    in_base = k.index((n, geo.channels * channel_stride), (d, sd * h_p * w_p))
    out_base = k.index((n, geo.filters * plane), (d, h_o * w_o))
    lane0 = k.index((block, lanes))
    if p.vector_dim == "width":
        _width_in_lanes_body(k, geo, p, first, last, lane0, in_base, out_base)
        return _kernel_module(kernel, dispatch, geo, p, k, t)
    channels = k.op(
        f"vector.load %out_channels[{lane0}] : memref<{geo.blocks * lanes}xi32>, vector<{lanes}xi32>"
    )
    mask = k.op(f"arith.cmpi sge, {channels}, {k.vconst(0, lanes, 'i32')} : vector<{lanes}xi32>")
    scatter_index = k.op(f"arith.muli {channels}, {k.vconst(plane, lanes, 'i32')} : vector<{lanes}xi32>")
    bias = k.op(f"vector.load %bias[{lane0}] : memref<{geo.blocks * lanes}xf32>, {vec}")
    zero = k.vconst(0.0, lanes, "f32")

    def tile(tile_rows: int, tile_cols: int, h0: str | int, w0: str | int) -> None:
        count = tile_rows * tile_cols
        base = k.index((in_base, 1), (h0, sh * w_p), (w0, sw))
        accs = [k.fresh("acc") for _ in range(count)]
        results = k.fresh("tile")
        entry = k.fresh("e")
        inits = ", ".join(f"{a} = {bias}" for a in accs)
        k.emit(
            f"{results}:{count} = scf.for {entry} = {first} to {last} step {k.const(1)} "
            f"iter_args({inits}) -> ({', '.join([vec] * count)}) {{"
        )
        k.indent += 1
        offset = k.op(f"memref.load %offsets[{entry}] : memref<{geo.entries}xi32>")
        offset = k.op(f"arith.index_cast {offset} : i32 to index")
        at = k.op(f"arith.addi {base}, {offset} : index")
        weight_at = k.index((entry, unroll * lanes))
        current = list(accs)
        for u in range(unroll):
            w_index = k.index((weight_at, 1), (u * lanes, 1))
            weights = k.op(f"vector.load %weights[{w_index}] : memref<{geo.weights}xf32>, {vec}")
            for i in range(tile_rows):
                for j in range(tile_cols):
                    x_index = k.index((at, 1), (u * channel_stride + i * sh * w_p + j * sw, 1))
                    x = k.op(f"memref.load %input[{x_index}] : {input_type}")
                    xs = k.op(f"vector.broadcast {x} : f32 to {vec}")
                    slot = i * tile_cols + j
                    current[slot] = k.op(f"vector.fma {xs}, {weights}, {current[slot]} : {vec}")
        k.emit(f"scf.yield {', '.join(current)} : {', '.join([vec] * count)}")
        k.indent -= 1
        k.emit("}")
        for i in range(tile_rows):
            for j in range(tile_cols):
                value = f"{results}#{i * tile_cols + j}"
                if p.activation == "relu":
                    value = k.op(f"arith.maximumf {value}, {zero} : {vec}")
                at_out = k.index((out_base, 1), (h0, w_o), (i * w_o, 1), (w0, 1), (j, 1))
                k.emit(
                    f"vector.scatter %output[{at_out}][{scatter_index}], {mask}, {value} : "
                    f"memref<{geo.batch * geo.filters * plane}xf32>, vector<{lanes}xi32>, "
                    f"vector<{lanes}xi1>, {vec}"
                )

    def row_of_tiles(tile_rows: int, h0: str | int) -> None:
        full_w = (w_o // cols) * cols
        if full_w:
            w0 = k.fresh("w")
            k.emit(f"scf.for {w0} = {k.const(0)} to {k.const(full_w)} step {k.const(cols)} {{")
            k.indent += 1
            tile(tile_rows, cols, h0, w0)
            k.indent -= 1
            k.emit("}")
        if w_o - full_w:
            tile(tile_rows, w_o - full_w, h0, full_w)

    full_h = (h_o // rows) * rows
    if full_h:
        h0 = k.fresh("h")
        k.emit(f"scf.for {h0} = {k.const(0)} to {k.const(full_h)} step {k.const(rows)} {{")
        k.indent += 1
        row_of_tiles(rows, h0)
        k.indent -= 1
        k.emit("}")
    if h_o - full_h:
        row_of_tiles(h_o - full_h, full_h)

    return _kernel_module(kernel, dispatch, geo, p, k, t)


def _kernel_module(
    kernel: str, dispatch: str, geo: ConvGeometry, p: PackedConv3dParams, k: KernelText, task: str
) -> str:
    lanes = p.block_size
    plane = geo.out[0] * geo.out[1] * geo.out[2]
    args = [
        ("%input", memref_type_text(geo.batch * geo.channels * int(np.prod(geo.padded)), "f32")),
        ("%weights", memref_type_text(geo.weights, "f32")),
        ("%offsets", memref_type_text(geo.entries, "i32")),
        ("%starts", memref_type_text(geo.blocks + 1, "i32")),
        ("%out_channels", memref_type_text(geo.blocks * lanes, "i32")),
        ("%bias", memref_type_text(geo.blocks * lanes, "f32")),
        ("%output", memref_type_text(geo.batch * geo.filters * plane, "f32")),
    ]
    tasks = geo.batch * geo.blocks * geo.out[0]
    return kernel_module_text(kernel, dispatch, args, tasks, k, task)


def _width_in_lanes_body(
    k: KernelText,
    geo: ConvGeometry,
    p: PackedConv3dParams,
    first: str,
    last: str,
    lane0: str,
    in_base: str,
    out_base: str,
) -> None:
    """Output columns in the lanes: one accumulator per filter of the block.

    Per entry and channel: one contiguous input-vector load (W stride 1)
    and one FMA per filter with that filter's weight broadcast. Each
    accumulator is a run of one filter's outputs, stored contiguously to
    its (permuted) output channel: no scatter. Suits wide planes with few
    entries per block (e.g. a first layer with 3 input channels).
    """
    filters, unroll = p.block_size, p.channel_unroll
    lanes = p.block_size
    d_p, h_p, w_p = geo.padded
    d_o, h_o, w_o = geo.out
    channel_stride = d_p * h_p * w_p
    plane = d_o * h_o * w_o
    sh = p.strides[1]
    vec = f"vector<{lanes}xf32>"
    input_type = memref_type_text(geo.batch * geo.channels * channel_stride, "f32")
    weights_type = memref_type_text(geo.weights, "f32")
    table_type = memref_type_text(geo.blocks * filters, "i32")
    bias_type = memref_type_text(geo.blocks * filters, "f32")
    out_type = memref_type_text(geo.batch * geo.filters * plane, "f32")
    zero = k.vconst(0.0, lanes, "f32")

    def column_tile(h: str, w0: str | int, width: int) -> None:
        mask = k.op(f"vector.constant_mask [{width}] : vector<{lanes}xi1>") if width < lanes else None
        base = k.index((in_base, 1), (h, sh * w_p), (w0, 1))
        inits = []
        for f in range(filters):
            at = k.index((lane0, 1), (f, 1))
            b = k.op(f"memref.load %bias[{at}] : {bias_type}")
            inits.append(k.op(f"vector.broadcast {b} : f32 to {vec}"))
        accs = [k.fresh("acc") for _ in range(filters)]
        results = k.fresh("tile")
        entry = k.fresh("e")
        k.emit(
            f"{results}:{filters} = scf.for {entry} = {first} to {last} step {k.const(1)} "
            f"iter_args({', '.join(f'{a} = {i}' for a, i in zip(accs, inits, strict=True))}) "
            f"-> ({', '.join([vec] * filters)}) {{"
        )
        k.indent += 1
        offset = k.op(f"memref.load %offsets[{entry}] : memref<{geo.entries}xi32>")
        offset = k.op(f"arith.index_cast {offset} : i32 to index")
        at = k.op(f"arith.addi {base}, {offset} : index")
        weight_at = k.index((entry, unroll * filters))
        current = list(accs)
        for u in range(unroll):
            x_at = k.index((at, 1), (u * channel_stride, 1))
            if mask is None:
                x = k.op(f"vector.load %input[{x_at}] : {input_type}, {vec}")
            else:
                x = k.op(
                    f"vector.maskedload %input[{x_at}], {mask}, {zero} : {input_type}, "
                    f"vector<{lanes}xi1>, {vec} into {vec}"
                )
            for f in range(filters):
                w_at = k.index((weight_at, 1), (u * filters + f, 1))
                w = k.op(f"memref.load %weights[{w_at}] : {weights_type}")
                wb = k.op(f"vector.broadcast {w} : f32 to {vec}")
                current[f] = k.op(f"vector.fma {wb}, {x}, {current[f]} : {vec}")
        k.emit(f"scf.yield {', '.join(current)} : {', '.join([vec] * filters)}")
        k.indent -= 1
        k.emit("}")
        for f in range(filters):
            value = f"{results}#{f}"
            if p.activation == "relu":
                value = k.op(f"arith.maximumf {value}, {zero} : {vec}")
            lane_at = k.index((lane0, 1), (f, 1))
            channel = k.op(f"memref.load %out_channels[{lane_at}] : {table_type}")
            used = k.op(f"arith.cmpi sge, {channel}, {k.const(0, 'i32')} : i32")
            k.emit(f"scf.if {used} {{")
            k.indent += 1
            channel = k.op(f"arith.index_cast {channel} : i32 to index")
            out_at = k.index((out_base, 1), (channel, plane), (h, w_o), (w0, 1))
            if mask is None:
                k.emit(f"vector.store {value}, %output[{out_at}] : {out_type}, {vec}")
            else:
                k.emit(
                    f"vector.maskedstore %output[{out_at}], {mask}, {value} : "
                    f"{out_type}, vector<{lanes}xi1>, {vec}"
                )
            k.indent -= 1
            k.emit("}")

    h = k.fresh("h")
    k.emit(f"scf.for {h} = {k.const(0)} to {k.const(h_o)} step {k.const(1)} {{")
    k.indent += 1
    full_w = (w_o // lanes) * lanes
    if full_w:
        w0 = k.fresh("w")
        k.emit(f"scf.for {w0} = {k.const(0)} to {k.const(full_w)} step {k.const(lanes)} {{")
        k.indent += 1
        column_tile(h, w0, lanes)
        k.indent -= 1
        k.emit("}")
    if w_o - full_w:
        column_tile(h, full_w, w_o - full_w)
    k.indent -= 1
    k.emit("}")


@dataclass
class VectorizeOptions:
    pass


@register_pass
class Vectorize(Pass):
    name = "rt3d-vectorize"
    summary = "Generate vector kernels (filters in lanes, register-tiled outputs) for rt3d.packed_conv3d"
    Options = VectorizeOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        for op in ops_named(module, "rt3d.packed_conv3d"):
            self._rewrite(module, op)

    def _rewrite(self, module: ir.Operation, op: ir.Operation) -> None:
        params = packed_conv3d_params(op)
        x = op.operands[0]
        x_shape = ir.RankedTensorType(x.type).shape
        y_shape = ir.RankedTensorType(op.results[0].type).shape
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
            blocks=_size(op.operands[3]) - 1,
            entries=_size(op.operands[2]),
            weights=_size(op.operands[1]),
        )
        if geo.batch * geo.channels * padded[0] * padded[1] * padded[2] >= 2**31:
            raise PassFailure("the padded input is too large for 32-bit kernel offsets", op.location)
        kernel, dispatch = unique_kernel_names(module, "conv")
        insert_kernel_module(module, conv_kernel_text(kernel, dispatch, geo, params))
        with ir.InsertionPoint(op), op.location:
            padded_x = zero_pad(x, params.padding_low, params.padding_high)
            result = call_kernel(dispatch, [padded_x, *op.operands[1:]], op.results[0].type)
        producers = [p for p in (defining_op(v) for v in op.operands) if p is not None]
        op.results[0].replace_all_uses_with(result)
        op.erase()
        erase_dead_producers(producers)
