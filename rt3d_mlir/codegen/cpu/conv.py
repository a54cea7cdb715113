"""The CPU kernel of ``rt3d.packed_conv3d`` (called by the ``rt3d-vectorize`` pass).

The kernel maps a block's ``B`` filters to the lanes of a
``vector<Bxf32>``; for one parallel task (batch, filter block, output depth,
and band of rows where ``row_bands`` splits the plane: a 2D model's convs
have one output depth, and few filter blocks would leave threads idle)
it walks the output plane in register tiles of ``rows x cols`` positions
(``tile_sizes``), each tile holding ``rows*cols`` accumulators initialized
with the block's bias (``block_group`` consecutive blocks with the same
entries share a tile: each broadcast input then feeds one FMA per block).
For each of the block's kept entries (a run of ``U`` input channels at one
kernel position: the offset comes from the entry table) and each channel
of the run, it loads the ``B`` weights once and
issues one broadcast-FMA per accumulator. Only kept entries are visited, so
the work is proportional to the kept weights; no lane diverges. The
epilogue applies ReLU and transposes the tile through a small stack buffer
so that each filter's outputs are written as one contiguous masked store
to its output channel (``out_channels``, the filter permutation) of the
NCDHW result. Tiles at the plane's right and bottom edges get
their own, smaller, tile code (all shapes are static). Two other mappings
serve narrow blocks (``vector_dim``): "width" (output columns in the lanes,
:meth:`_ConvKernel.width_tile`) and "interleaved" (the block's filters times
a run of columns, :meth:`_ConvKernel.interleaved_tile`).

In the channel-blocked layout (``input_layout`` / ``output_layout``
"blocked", "filters" kernels: :mod:`rt3d_mlir.kernel_packing`) a block's
``B`` filters are one block of channels, so each accumulator is stored as
one contiguous, aligned vector (no transposing store), and an entry's ``U``
channels are consecutive floats of the input (each broadcast's line is
shared by the next channels' broadcasts).

With ``channel_chunk`` ("width" kernels in "dhfw" order) a row group is
computed in passes over chunks of input channels: in each pass every block
adds its entries of that chunk (a per-block, per-chunk range of the entry
table, the ``%chunk_starts`` argument) to partial sums kept in the output,
initialized with the bias in the first pass and rectified in the last, so
the chunk's input rows stay in L1 while all blocks read them.

A max pool that only reads the conv (``pool``: windows over rows and
columns equal to their strides) is computed in the epilogue: the register
tile holds whole windows, so a "filters" kernel's pooled vector is the
``maximumf`` of its window's accumulators, and a "width" kernel (windows of
1 or 2 columns) folds the window's rows lane by lane and column pairs by an
even/odd shuffle; only the pooled plane is stored (C3D's conv1 stores a
quarter of its 51 MB output).

With bf16 activations (``input_element`` / ``output_element``, blocked
layout only: ``rt3d-propagate-layout{precision=bf16}``) the accumulators
stay f32: a bf16 output is rounded once as it is stored; a bf16 input read
with i16 weights (bf16 channel pairs, :func:`rt3d_mlir.kernel_packing.bf16_pairs`)
adds two channels per lane with one ``vdpbf16ps`` per accumulator and pair,
the pair broadcast as one 32-bit word (``native_bf16``; otherwise the pair's
weights are split, widened, and each channel gets an FMA), and a bf16 input
with f32 weights (odd channel runs) is widened element by element. With f16
activations (``precision=fp16``) the weights are f16 in the same layout;
where the target computes in f16 (``native_f16``: AArch64 +fullfp16, blocks
of 8 filters in one register) each entry's run of channels is summed by f16
FMAs (the first a product) into a partial sum per accumulator, widened and
added to the f32 accumulator once per entry: half the FMA instructions of
f32, with f16 rounding over at most one block of channels (f16 sums over a
whole 3x3x3x64 reduction deviate by ~1e-2, per-entry ones by ~1e-3);
elsewhere the weights and inputs are widened to f32 FMAs.

The input is zero-padded once (``tensor.pad``) before the call, unless the
conv before it wrote its output straight into that padded buffer
(``out_padded``: its stores use the padded strides, and the padding is
filled by the pad kernel's fill-only form). The task
space is ``N x blocks x D_out`` ordered by ``loop_order`` and split across
threads by the artifact's runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from rt3d_mlir.codegen.activations import activation_text
from rt3d_mlir.codegen.cpu.kernel import TASK, kernel_module, memref_type
from rt3d_mlir.codegen.cpu.quantize import Int8Encoder
from rt3d_mlir.codegen.text import KernelText
from rt3d_mlir.dialect.rt3d import PackedConv3dParams
from rt3d_mlir.kernel_packing import INT8_QUAD, runs_fit_blocks

# AVX-512 BF16's dot product of bf16 pairs, called by its LLVM intrinsic's name (declared with the
# kernel; a call, unlike llvm.call_intrinsic, has effects bufferization can see: none on memory)
BF16_DOT = '"llvm.x86.avx512bf16.dpbf16ps.512"'
BF16_DOT_DECLARATION = (
    f"func.func private @{BF16_DOT}(vector<16xf32>, vector<32xbf16>, vector<32xbf16>) -> vector<16xf32>"
)

# AMX (tiles of up to 16 rows x 64 bytes; LLVM configures them): loads, bf16 tile products, stores.
# The artifact asks Linux for the tile state before its first call (backend/abi.py).
AMX = "!llvm.x86_amx"
TILE_LOAD_NAME = "llvm.x86.tileloadd64.internal"  # declared in every module whose kernels use AMX
TILE_LOAD = f"@{TILE_LOAD_NAME}"
TILE_DOT = "@llvm.x86.tdpbf16ps.internal"
TILE_STORE = "@llvm.x86.tilestored64.internal"
AMX_DECLARATIONS = (
    f"func.func private {TILE_LOAD}(i16, i16, !llvm.ptr, i64) -> {AMX}",
    f"func.func private {TILE_DOT}(i16, i16, i16, {AMX}, {AMX}, {AMX}) -> {AMX}",
    f"func.func private {TILE_STORE}(i16, i16, !llvm.ptr, i64, {AMX})",
)
AMX_TILES = 4  # accumulator tiles per register tile (of 8: one more for the input, one for weights)

# Dot products of int8 channel quads into int32 lanes, by LLVM intrinsic name (declared with the
# kernel): AVX-512 VNNI (unsigned input bytes x signed weight bytes, 16 lanes) and AArch64 sdot
# (signed x signed, 4 lanes; LLVM selects its by-element form for the broadcast input word).
INT8_DOTS = {
    "vnni": ('"llvm.x86.avx512.vpdpbusd.512"', 16),
    "sdot": ('"llvm.aarch64.neon.sdot.v4i32.v16i8"', 4),
}


def int8_dot_declaration(dot: str) -> str:
    name, lanes = INT8_DOTS[dot]
    acc, quads = f"vector<{lanes}xi32>", f"vector<{4 * lanes}xi8>"
    return f"func.func private @{name}({acc}, {quads}, {quads}) -> {acc}"


def amx_applies(geo: ConvGeometry, p: PackedConv3dParams) -> bool:
    """Whether an AMX kernel computes this conv: bf16 channel pairs from a blocked bf16 input, blocks
    of 16 filters, no pool in the epilogue, no channel chunks."""
    return (
        geo.amx and geo.weights_element == "i16" and p.block_size == 16 and p.vector_dim == "filters"
        and geo.pool == (1, 1) and not p.channel_chunk
    )


def amx_tile_sizes(h_out: int, w_out: int) -> tuple[int, int]:
    """(rows, columns) of an AMX register tile: up to 64 columns of a row in tiles of 16 positions,
    as many rows as keep it within :data:`AMX_TILES` accumulator tiles."""
    cols = min(w_out, 16 * AMX_TILES)
    return max(1, min(h_out, AMX_TILES // -(-cols // 16))), cols


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
    kept_weights: int = 0
    dense_weights: int = 0
    # the output written into a larger, zero-padded buffer (the next conv's padded input): its
    # D, H, W and where the output starts in it; None: the output buffer is the output
    out_padded: tuple[int, int, int] | None = None
    out_padding_low: tuple[int, int, int] = (0, 0, 0)
    # an input in the blocked layout (input_layout "blocked"): its channel block
    input_block: int = 1
    # the (rows, columns) window and stride of a max pool computed in the epilogue (1, 1: none): the
    # output buffer holds the pooled plane (out_padded: its padded shape)
    pool: tuple[int, int] = (1, 1)
    # element types: of the input and the output (f32, or bf16 / f16 in the blocked layout), and of
    # the weights (f32; i16: bf16 channel pairs, kernel_packing.bf16_pairs, for a bf16 input; f16 for
    # an f16 input)
    input_element: str = "f32"
    output_element: str = "f32"
    weights_element: str = "f32"
    # bf16 channel pairs as AVX-512 BF16 dot products (16 lanes); otherwise widened to f32 and FMAs
    native_bf16: bool = False
    # f16 weights and input as f16 FMAs summing each entry's channel run (the target has f16 vector
    # arithmetic: AArch64 +fullfp16), added to the f32 accumulators; otherwise widened to f32 FMAs
    native_f16: bool = False
    # bf16 channel pairs as AMX tile products (16 lanes, no pool in the epilogue): see amx_tile
    amx: bool = False
    # int8 channel quads (i8 weights, an i8 input blocked by 4 channels): the dot product that sums
    # them (a key of INT8_DOTS, for blocks of its lanes; otherwise widened to int32 multiply-adds),
    # and the zero point the input bytes carry (128: unsigned)
    int8_dot: str = ""
    input_zero_point: int = 0
    # an i8 output (output_element "i8"): the next conv's int8 input (an rt3d.quantize this kernel
    # computes), its scale and zero point; the output is blocked by 4 channels (out_padded: padded)
    output_scale: float = 0.0
    output_zero_point: int = 0


@dataclass
class _Block:
    """Per-block values, emitted where the block index becomes known."""

    first: str  # first and one-past-last entry
    last: str
    lane0: str  # index of the block's first lane in the lane tables
    bias: str = ""  # filters in lanes: the bias vector
    factor: str = ""  # int8 quads: the dequantization factors (input scale x weight scale)


class _ConvKernel:
    """Emits one packed convolution's kernel body (see the module docstring)."""

    def __init__(self, geo: ConvGeometry, p: PackedConv3dParams) -> None:
        self.geo, self.p = geo, p
        self.k = KernelText()
        self.lanes, self.unroll = p.block_size, p.channel_unroll
        # Vector length: the block's filters, or (width, interleaved) the target's.
        self.vlanes = (p.vector_lanes or p.block_size) if p.vector_dim != "filters" else p.block_size
        if p.vector_dim == "interleaved" and (self.vlanes <= p.block_size or self.vlanes % p.block_size):
            raise ValueError(f"interleaved lanes {self.vlanes} are not a multiple of the block size")
        if p.channel_chunk and (p.vector_dim != "width" or p.loop_order != "dhfw" or p.streaming_stores):
            raise ValueError(
                "channel chunks need a \"width\" kernel in \"dhfw\" order, without streaming stores"
            )
        if "blocked" in (p.input_layout, p.output_layout) and p.vector_dim != "filters":
            raise ValueError("the blocked layout needs a \"filters\" kernel")
        if p.tile_sizes is None and p.vector_dim == "filters":
            raise ValueError("a filters-in-lanes conv kernel needs its tile_sizes (rt3d-reorder-loops)")
        self.rows, self.cols = p.tile_sizes or (1, self.vlanes)
        # filters in lanes: consecutive blocks (with the same entries) sharing a register tile
        self.group = 1 if p.vector_dim != "filters" else (p.block_group or 1)
        # what the block loops count: blocks or block groups, the last one partial if the group
        # does not divide the blocks (its ``rest`` blocks get a tile of their own)
        self.full_units, self.rest = divmod(geo.blocks, self.group)
        self.units = self.full_units + (1 if self.rest else 0)
        # bands of whole row groups, each its own task: ``band_groups`` row groups each, the last
        # band the rest (with a last, partial row group)
        row_groups = -(-geo.out[1] // self.rows)
        self.band_groups = -(-row_groups // max(1, p.row_bands or 1))
        self.bands = -(-row_groups // self.band_groups)
        self.band = ""  # the task's band (emit_body), while bands > 1
        d_p, h_p, w_p = geo.padded
        self.channel_stride = d_p * h_p * w_p
        # input addressing: what the next channel of a run and the next position add (elements)
        blocked_in = p.input_layout == "blocked"
        if blocked_in and not runs_fit_blocks(p.channel_unroll, geo.input_block):
            raise ValueError(f"channel runs of {p.channel_unroll} straddle blocks of {geo.input_block}")
        self.in_position = geo.input_block if blocked_in else 1
        # a blocked output: positions are vectors of the block's channels; an int8 output: quads
        self.out_quads = geo.output_element == "i8"
        self.out_position = p.block_size if p.output_layout == "blocked" else 1
        if self.out_quads:
            if p.vector_dim != "filters" or p.output_layout != "plain" or p.block_size % INT8_QUAD:
                raise ValueError(
                    f"an int8 output needs a \"filters\" kernel with blocks of a multiple of {INT8_QUAD} "
                    "filters, writing whole in-order channel blocks"
                )
            if p.channel_chunk or p.streaming_stores or not geo.output_scale > 0:
                raise ValueError("an int8 output needs whole results (no channel chunks or streaming stores) "
                                 "and its positive scale")
            self.out_position = INT8_QUAD
        # a max pool in the epilogue: each of its windows lies in one register tile
        ph, pw = geo.pool
        if geo.pool != (1, 1):
            if p.vector_dim not in ("filters", "width") or (p.vector_dim == "width" and pw > 2):
                raise ValueError("a pool in the epilogue needs a \"filters\" kernel or, windows of 1 or 2 "
                                 "columns, a \"width\" kernel")
            if p.channel_chunk or p.streaming_stores:
                raise ValueError("a pool in the epilogue needs whole results: no channel chunks or streaming "
                                 "stores")
            if self.rows % ph or self.cols % pw or geo.out[1] % ph or geo.out[2] % pw:
                raise ValueError(f"tiles of {self.rows}x{self.cols} on a {geo.out[1]}x{geo.out[2]} plane "
                                 f"do not hold whole {ph}x{pw} pool windows")
        # output strides: a filter's plane, an output depth, a row; where output (0, 0, 0) is
        d_b, h_b, w_b = geo.out_padded or (geo.out[0], geo.out[1] // ph, geo.out[2] // pw)
        self.plane, self.depth_stride, self.row = d_b * h_b * w_b, h_b * w_b, w_b
        lo_d, lo_h, lo_w = geo.out_padding_low
        self.origin = lo_d * h_b * w_b + lo_h * w_b + lo_w
        self.vec = f"vector<{self.vlanes}xf32>"
        self.input_type = memref_type(geo.batch * geo.channels * self.channel_stride, geo.input_element)
        self.output_type = memref_type(geo.batch * geo.filters * self.plane, geo.output_element)
        self.table_type = memref_type(geo.blocks * self.lanes, "i32")
        # int8 quads: each lane's bias, then each lane's dequantization factor
        self.quads = geo.weights_element == "i8"
        self.bias_type = memref_type(geo.blocks * self.lanes * (2 if self.quads else 1), "f32")
        self.weights_type = memref_type(geo.weights, geo.weights_element)
        self.pairs = geo.weights_element == "i16"
        # pairs as vdpbf16ps (its 512-bit form: 16 lanes), else widened to FMAs
        self.native_dot = self.pairs and geo.native_bf16 and p.block_size == 16
        if (
            geo.input_element != "f32" or geo.output_element != "f32" or geo.weights_element != "f32"
        ) and p.vector_dim != "filters":
            raise ValueError("16-bit activations need a \"filters\" kernel")
        if geo.output_element not in ("f32", "i8") and p.output_layout != "blocked":
            raise ValueError(f"a {geo.output_element} output needs the blocked layout")
        if self.pairs and (geo.input_element != "bf16" or not blocked_in or p.channel_unroll % 2):
            raise ValueError("bf16 weight pairs need a blocked bf16 input and even channel runs")
        if self.quads and (
            geo.input_element != "i8" or not blocked_in or geo.input_block != INT8_QUAD
            or p.channel_unroll % INT8_QUAD or p.vector_dim != "filters" or p.channel_chunk
        ):
            raise ValueError(
                f"int8 quads need an i8 input blocked by {INT8_QUAD}, channel runs of multiples of "
                f"{INT8_QUAD} and a \"filters\" kernel without channel chunks"
            )
        dot_lanes = INT8_DOTS.get(geo.int8_dot, ("", 0))[1]
        self.dot = geo.int8_dot if self.quads and dot_lanes == self.lanes else ""
        self.acc_vec = f"vector<{self.lanes}xi32>" if self.quads else self.vec
        self.halves = geo.weights_element == "f16"
        if self.halves and geo.input_element != "f16":
            raise ValueError("f16 weights need an f16 input")
        # f16 partial sums of each entry's run (one rounding per product and add, a run at most a
        # block of channels), else f16 weights widened
        self.native_half = self.halves and geo.native_f16
        self.zero = self.k.vconst(0.0, self.vlanes, "f32")
        self.encoder = None  # an int8 output's quantization
        if self.out_quads:
            self.encoder = Int8Encoder(self.k, geo.output_scale, geo.output_zero_point, self.lanes)
        self.amx = amx_applies(geo, p)
        if self.amx and (p.block_group or 1) != 1:
            raise ValueError("AMX kernels take one block per register tile")
        # channel chunks: their count, and (while emitting a chunk's pass) its index and whether it
        # is the first or the last
        self.chunks = -(-geo.channels // p.channel_chunk) if p.channel_chunk else 0
        self.chunk_table_type = memref_type(geo.blocks * (self.chunks + 1), "i32")
        self.chunk = self.first_chunk = self.last_chunk = ""

    # -- structure ---------------------------------------------------------

    def tasks(self) -> int:
        geo = self.geo
        if self.p.loop_order == "dhfw":
            return geo.batch * geo.out[0] * self.bands
        return geo.batch * self.units * geo.out[0] * self.bands

    def emit_body(self, task: str) -> None:
        k, geo = self.k, self.geo
        d_o = geo.out[0]
        if self.bands > 1:  # the band is the innermost index of the task space
            self.band = k.op(f"arith.remui {task}, {k.const(self.bands)} : index")
            task = k.op(f"arith.divui {task}, {k.const(self.bands)} : index")
        order = self.p.loop_order or "fdhw"
        if order == "dhfw":
            n = k.op(f"arith.divui {task}, {k.const(d_o)} : index")
            d = k.op(f"arith.remui {task}, {k.const(d_o)} : index")
        else:
            inner = d_o if order == "fdhw" else self.units
            per_n = self.units * d_o
            n = k.op(f"arith.divui {task}, {k.const(per_n)} : index")
            rest = k.op(f"arith.remui {task}, {k.const(per_n)} : index")
            outer_index = k.op(f"arith.divui {rest}, {k.const(inner)} : index")
            inner_index = k.op(f"arith.remui {rest}, {k.const(inner)} : index")
            unit, d = (outer_index, inner_index) if order == "fdhw" else (inner_index, outer_index)
        sd, _, _ = self.p.strides
        _, h_p, w_p = geo.padded
        self.in_base = k.index(
            (n, geo.channels * self.channel_stride), (d, sd * h_p * w_p * self.in_position)
        )
        m = self.out_position
        self.out_base = k.index(
            (n, geo.filters * self.plane), (d, self.depth_stride * m), (self.origin * m, 1)
        )
        if order == "dhfw":
            # Rows outermost, then every block on that row group: the input
            # rows stay in cache while all filter blocks use them.
            def per_row_group(rows: int, h0: str | int) -> None:
                if self.chunks:
                    self.chunk = k.fresh("chunk")
                    end = k.const(self.chunks)
                    with k.region(f"scf.for {self.chunk} = {k.const(0)} to {end} step {k.const(1)} {{"):
                        self.first_chunk = k.op(f"arith.cmpi eq, {self.chunk}, {k.const(0)} : index")
                        last = k.const(self.chunks - 1)
                        self.last_chunk = k.op(f"arith.cmpi eq, {self.chunk}, {last} : index")
                        blocks_of_row_group(rows, h0)
                else:
                    blocks_of_row_group(rows, h0)

            def blocks_of_row_group(rows: int, h0: str | int) -> None:
                if self.full_units:
                    u = k.fresh("b")
                    end = k.const(self.full_units)
                    with k.region(f"scf.for {u} = {k.const(0)} to {end} step {k.const(1)} {{"):
                        self.row_group(self.unit_values(u), rows, h0)
                if self.rest:
                    self.row_group(self.unit_values(k.const(self.full_units), self.rest), rows, h0)

            self.for_row_groups(per_row_group)
        elif self.rest and self.full_units:
            whole = k.op(f"arith.cmpi ult, {unit}, {k.const(self.full_units)} : index")
            with k.region(f"scf.if {whole} {{", "} else {"):
                values = self.unit_values(unit)
                self.for_row_groups(lambda rows, h0: self.row_group(values, rows, h0))
            with k.region(None):
                last = self.unit_values(unit, self.rest)
                self.for_row_groups(lambda rows, h0: self.row_group(last, rows, h0))
        else:
            values = self.unit_values(unit, self.rest if not self.full_units else self.group)
            self.for_row_groups(lambda rows, h0: self.row_group(values, rows, h0))

    def unit_values(self, unit: str, count: int = 0) -> list[_Block]:
        """The values of the ``count`` (default: the group's) blocks of one block loop step."""
        count = count or self.group
        if self.group == 1:
            return [self.block_values(unit)]
        first = self.k.index((unit, self.group))
        return [self.block_values(self.k.index((first, 1), (j, 1))) for j in range(count)]

    def for_row_groups(self, emit) -> None:
        """``emit(rows, h0)`` for each row group of the task's band: whole groups of ``self.rows``,
        then the last, partial one (in the last band)."""
        k, h_o, rows = self.k, self.geo.out[1], self.rows
        full = (h_o // rows) * rows
        if self.bands == 1:
            if full:
                h0 = k.fresh("h")
                with k.region(f"scf.for {h0} = {k.const(0)} to {k.const(full)} step {k.const(rows)} {{"):
                    emit(rows, h0)
            if h_o - full:
                emit(h_o - full, full)
            return
        span = self.band_groups * rows
        first = k.index((self.band, span))
        end = k.op(f"arith.minui {k.index((first, 1), (span, 1))}, {k.const(full)} : index")
        h0 = k.fresh("h")
        with k.region(f"scf.for {h0} = {first} to {end} step {k.const(rows)} {{"):
            emit(rows, h0)
        if h_o - full:
            last = k.op(f"arith.cmpi eq, {self.band}, {k.const(self.bands - 1)} : index")
            with k.region(f"scf.if {last} {{"):
                emit(h_o - full, full)

    def block_values(self, block: str) -> _Block:
        k, lanes, blocks = self.k, self.lanes, self.geo.blocks
        if self.chunks:
            # the block's entries of the chunk being emitted
            at = k.index((block, self.chunks + 1), (self.chunk, 1))
            after = k.op(f"arith.addi {at}, {k.const(1)} : index")
            first = k.op(f"memref.load %chunk_starts[{at}] : {self.chunk_table_type}")
            last = k.op(f"memref.load %chunk_starts[{after}] : {self.chunk_table_type}")
        else:
            next_block = k.op(f"arith.addi {block}, {k.const(1)} : index")
            first = k.op(f"memref.load %starts[{block}] : memref<{blocks + 1}xi32>")
            last = k.op(f"memref.load %starts[{next_block}] : memref<{blocks + 1}xi32>")
        values = _Block(
            first=k.op(f"arith.index_cast {first} : i32 to index"),
            last=k.op(f"arith.index_cast {last} : i32 to index"),
            lane0=k.index((block, lanes)),
        )
        if self.p.vector_dim == "filters":
            values.bias = k.op(f"vector.load %bias[{values.lane0}] : {self.bias_type}, {self.vec}")
        if self.quads:
            at = k.index((values.lane0, 1), (blocks * lanes, 1))
            values.factor = k.op(f"vector.load %bias[{at}] : {self.bias_type}, {self.vec}")
        return values

    def row_group(self, blocks: list[_Block], rows: int, h0: str | int) -> None:
        k, w_o, cols = self.k, self.geo.out[2], self.cols
        tile = {"width": self.width_tile, "interleaved": self.interleaved_tile}.get(
            self.p.vector_dim, self.amx_tile if self.amx else self.filter_tile
        )
        b = blocks if self.p.vector_dim == "filters" else blocks[0]
        full = (w_o // cols) * cols
        if full:
            w0 = k.fresh("w")
            with k.region(f"scf.for {w0} = {k.const(0)} to {k.const(full)} step {k.const(cols)} {{"):
                tile(b, rows, cols, h0, w0)
        if w_o - full:
            tile(b, rows, w_o - full, h0, full)

    def entry_loop(self, b: _Block, base: str, inits: list[str], body, carried: str = "") -> list[str]:
        """``scf.for`` over the block's entries carrying ``inits`` (of type ``carried``, default the
        accumulator vector); the results."""
        k, count = self.k, len(inits)
        accs = [k.fresh("acc") for _ in range(count)]
        results = k.fresh("tile")
        entry = k.fresh("e")
        types = ", ".join([carried or self.vec] * count)
        carried = ", ".join(f"{a} = {i}" for a, i in zip(accs, inits, strict=True))
        header = (
            f"{results}:{count} = scf.for {entry} = {b.first} to {b.last} step {k.const(1)} "
            f"iter_args({carried}) -> ({types}) {{"
        )
        with k.region(header):
            offset = k.op(f"memref.load %offsets[{entry}] : memref<{self.geo.entries}xi32>")
            offset = k.op(f"arith.index_cast {offset} : i32 to index")
            at = k.op(f"arith.addi {base}, {offset} : index")
            weight_at = k.index((entry, self.unroll * self.lanes))
            updated = body(at, weight_at, list(accs))
            k.emit(f"scf.yield {', '.join(updated)} : {types}")
        return [f"{results}#{i}" for i in range(count)]

    def rectified(self, value: str) -> str:
        """An accumulator after the conv's activation (:mod:`rt3d_mlir.codegen.activations`)."""
        return activation_text(self.k, self.p.activation, value, self.vec)

    def finished(self, value: str) -> str:
        """An accumulator as stored: activated, or (channel chunks) activated after the last pass."""
        if not self.chunks or self.p.activation == "none":
            return self.rectified(value)
        return self.k.op(f"arith.select {self.last_chunk}, {self.rectified(value)}, {value} : {self.vec}")

    def load_run(self, at: str, vec: str, mask: str | None, zero: str, buffer: str = "%input") -> str:
        """A contiguous run of columns at ``at`` of the input (or ``buffer`` "%output") as ``vec``
        (masked, zeros beyond, if ``mask``)."""
        memref = self.input_type if buffer == "%input" else self.output_type
        if mask is None:
            return self.k.op(f"vector.load {buffer}[{at}] : {memref}, {vec}")
        mask_type = vec.replace("xf32>", "xi1>")
        return self.k.op(
            f"vector.maskedload {buffer}[{at}], {mask}, {zero} : {memref}, {mask_type}, {vec} into {vec}"
        )

    def store_run(self, value: str, at: str, vec: str, mask: str | None, nontemporal: bool = False) -> None:
        """Store a run of one filter's output columns at ``at`` (masked if ``mask``)."""
        if mask is None:
            hint = " {nontemporal = true}" if nontemporal else ""
            self.k.emit(f"vector.store {value}, %output[{at}]{hint} : {self.output_type}, {vec}")
        else:
            mask_type = vec.replace("xf32>", "xi1>")
            self.k.emit(
                f"vector.maskedstore %output[{at}], {mask}, {value} : {self.output_type}, {mask_type}, {vec}"
            )

    def for_output_channels(self, b: _Block, filters: range, emit) -> None:
        """``emit(i, channel)`` for the ``i``-th of the block's ``filters`` with an output channel
        (its permuted channel as an index), in an ``scf.if`` that skips unused lanes."""
        k = self.k
        for i, f in enumerate(filters):
            lane = k.index((b.lane0, 1), (f, 1))
            channel = k.op(f"memref.load %out_channels[{lane}] : {self.table_type}")
            used = k.op(f"arith.cmpi sge, {channel}, {k.const(0, 'i32')} : i32")
            with k.region(f"scf.if {used} {{"):
                emit(i, k.op(f"arith.index_cast {channel} : i32 to index"))

    def output_at(self, channel: str, h0: str | int, w0: str | int, offset: int) -> str:
        """Where output ``offset`` (row * row stride + column) of a tile at (h0, w0) of ``channel`` is."""
        return self.k.index(
            (self.out_base, 1), (channel, self.plane), (h0, self.row), (w0, 1), (offset, 1)
        )

    # -- filters in lanes --------------------------------------------------

    def filter_tile(
        self, blocks: list[_Block], rows: int, cols: int, h0: str | int, w0: str | int
    ) -> None:
        """``rows x cols`` output positions of each block of ``blocks`` (their filters in the lanes):
        each input element is broadcast once and feeds one FMA per block. The blocks share their
        entries (block_group), so the first block's entry loop walks them all; block ``j``'s weights
        are its own run of the weight table, ``first_j - first_0`` entries further on."""
        k, vec = self.k, self.vec
        _, sh, sw = self.p.strides
        w_p = self.geo.padded[2]
        m = self.in_position
        base = k.index((self.in_base, 1), (h0, sh * w_p * m), (w0, sw * m))
        lead = blocks[0]
        # where block j's weights start relative to the lead block's (elements)
        shifts = [
            k.index((k.op(f"arith.subi {b.first}, {lead.first} : index"), self.unroll * self.lanes))
            for b in blocks[1:]
        ]
        positions = rows * cols

        def body(at: str, weight_at: str, current: list[str]) -> list[str]:
            if self.pairs:
                return self.pair_body(at, weight_at, current, shifts, rows, cols)
            if self.quads:
                return self.quad_body(at, weight_at, current, shifts, rows, cols)
            # f16 partial sums of the run (native f16), added to the f32 accumulators after it
            sums: list[str | None] = [None] * len(current) if self.native_half else current
            scalar = "f16" if self.native_half else "f32"
            vec_u = f"vector<{self.vlanes}x{scalar}>"
            for u in range(self.unroll):
                weights = []
                for j in range(len(blocks)):
                    shift = (shifts[j - 1], 1) if j else (0, 0)
                    w_index = k.index((weight_at, 1), shift, (u * self.lanes, 1))
                    weights.append(self.weight_vector(w_index))
                for i in range(rows):
                    for c in range(cols):
                        step = self.run_channel(u) + (i * sh * w_p + c * sw) * m
                        x = self.input_scalar(at, step, widen=not self.native_half)
                        xs = k.op(f"vector.broadcast {x} : {scalar} to {vec_u}")
                        for j, w in enumerate(weights):
                            slot = j * positions + i * cols + c
                            partial = sums[slot]
                            sums[slot] = k.op(
                                f"arith.mulf {xs}, {w} : {vec_u}" if partial is None
                                else f"vector.fma {xs}, {w}, {partial} : {vec_u}"
                            )
            if self.native_half:
                for slot, partial in enumerate(sums):
                    wide = k.op(f"arith.extf {partial} : {vec_u} to {vec}")
                    current[slot] = k.op(f"arith.addf {current[slot]}, {wide} : {vec}")
            return current

        if self.quads:  # int32 sums from zero, then sum x factor + bias
            zero = k.vconst(0, self.lanes, "i32")
            sums = self.entry_loop(lead, base, [zero] * (len(blocks) * positions), body, self.acc_vec)
            results = []
            for j, b in enumerate(blocks):
                for acc in sums[j * positions : (j + 1) * positions]:
                    wide = k.op(f"arith.sitofp {acc} : {self.acc_vec} to {vec}")
                    results.append(k.op(f"vector.fma {wide}, {b.factor}, {b.bias} : {vec}"))
        else:
            inits = [b.bias for b in blocks for _ in range(positions)]
            results = self.entry_loop(lead, base, inits, body)
        if self.geo.pool != (1, 1):  # where the tile's pooled outputs are in the pooled plane
            h0, w0 = self.pooled_index(h0, self.geo.pool[0]), self.pooled_index(w0, self.geo.pool[1])
        for j, b in enumerate(blocks):
            mine = results[j * positions : (j + 1) * positions]
            values = [[self.rectified(mine[i * cols + c]) for c in range(cols)] for i in range(rows)]
            if self.geo.pool != (1, 1):
                values = self.pooled(values)
            if self.out_quads:
                self.quad_store(b, values, h0, w0)
            elif self.out_position > 1:
                self.blocked_store(b, values, h0, w0)
            else:
                self.transposed_store(b, values, h0, w0)

    def pointer(self, buffer: str, memref: str) -> str:
        """``buffer``'s first element as an ``!llvm.ptr`` (for the AMX tile loads and stores)."""
        k = self.k
        address = k.op(f"memref.extract_aligned_pointer_as_index {buffer} : {memref} -> index")
        address = k.op(f"arith.index_cast {address} : index to i64")
        return k.op(f"llvm.inttoptr {address} : i64 to !llvm.ptr")

    def element_pointer(self, base: str, index: str, element: str) -> str:
        k = self.k
        index = k.op(f"arith.index_cast {index} : index to i64")
        return k.op(f"llvm.getelementptr {base}[{index}] : (!llvm.ptr, i64) -> !llvm.ptr, {element}")

    def amx_tile(self, blocks: list[_Block], rows: int, cols: int, h0: str | int, w0: str | int) -> None:
        """``rows x cols`` output positions of one block of 16 filters with AMX: each row's columns
        go 16 at a time into accumulator tiles (positions x filters, f32) that start as the bias;
        per entry, the block's weights (``U/2`` channel pairs x 16 filters x 2: the packed pairs as
        they are) are one tile and each accumulator adds the product of that and an input tile
        (its positions x the entry's ``U`` channels: a row per position, ``U`` bf16 of the blocked
        input at the positions' stride). The accumulators go through a stack tile to the output,
        rectified: a vector per position of a blocked one (rounded to bf16), or transposed into the
        filters' rows of a plain one."""
        k, b = self.k, blocks[0]
        _, sh, sw = self.p.strides
        w_p, lanes, unroll = self.geo.padded[2], self.lanes, self.unroll
        i16 = "i16"
        base = k.index((self.in_base, 1), (h0, sh * w_p * lanes), (w0, sw * lanes))
        tiles = [(i, c0, min(16, cols - c0)) for i in range(rows) for c0 in range(0, cols, 16)]
        scratch = f"memref<{lanes * lanes}xf32>"
        scratch_at = self.pointer("%scratch", scratch)
        # the bias, a row per position: the accumulators' start
        for row in range(16):
            k.emit(f"vector.store {b.bias}, %scratch[{k.const(row * lanes)}] : {scratch}, {self.vec}")
        row_bytes = 4 * lanes  # a row of f32 accumulators; of a weight tile: 16 filters x 2 channels
        inits = [self.tile_load(count, row_bytes, scratch_at, row_bytes) for _, _, count in tiles]
        input_at = self.pointer("%input", self.input_type)
        weights_at = self.pointer("%weights", self.weights_type)
        k_bytes = k.const(2 * unroll, i16)

        def body(at: str, weight_at: str, current: list[str]) -> list[str]:
            w = self.element_pointer(weights_at, weight_at, "i16")
            weights = self.tile_load(unroll // 2, row_bytes, w, row_bytes)
            for t, (i, c0, count) in enumerate(tiles):
                x_at = k.index((at, 1), ((i * sh * w_p + c0 * sw) * lanes, 1))
                x = self.element_pointer(input_at, x_at, "bf16")
                rows_ = k.const(count, i16)
                inputs = self.tile_load(count, 2 * unroll, x, 2 * lanes * sw)
                current[t] = k.op(
                    f"func.call {TILE_DOT}({rows_}, {k.const(4 * lanes, i16)}, {k_bytes}, {current[t]}, "
                    f"{inputs}, {weights}) : (i16, i16, i16, {AMX}, {AMX}, {AMX}) -> {AMX}"
                )
            return current

        results = self.entry_loop(b, base, inits, body, AMX)
        for t, (i, c0, count) in enumerate(tiles):
            shape = f"{k.const(count, i16)}, {k.const(row_bytes, i16)}"
            k.emit(
                f"func.call {TILE_STORE}({shape}, {scratch_at}, {k.const(row_bytes, 'i64')}, {results[t]}) : "
                f"(i16, i16, !llvm.ptr, i64, {AMX}) -> ()"
            )
            values = [
                self.rectified(k.op(f"vector.load %scratch[{k.const(j * lanes)}] : {scratch}, {self.vec}"))
                for j in range(count)
            ]
            store = self.blocked_store if self.out_position > 1 else self.transposed_store
            store(b, [values], k.index((h0, 1), (i, 1)), k.index((w0, 1), (c0, 1)))

    def tile_load(self, rows: int, row_bytes: int, at: str, stride: int) -> str:
        """An AMX tile of ``rows`` rows of ``row_bytes`` bytes, ``stride`` bytes apart, from ``at``."""
        k = self.k
        return k.op(
            f"func.call {TILE_LOAD}({k.const(rows, 'i16')}, {k.const(row_bytes, 'i16')}, {at}, "
            f"{k.const(stride, 'i64')}) : (i16, i16, !llvm.ptr, i64) -> {AMX}"
        )

    def input_scalar(self, at: str, step: int, widen: bool = True) -> str:
        """The input element ``step`` past ``at`` (a 16-bit one widened to f32 if ``widen``)."""
        k, element = self.k, self.geo.input_element
        x = k.op(f"memref.load %input[{k.index((at, 1), (step, 1))}] : {self.input_type}")
        return k.op(f"arith.extf {x} : {element} to f32") if widen and element != "f32" else x

    def weight_vector(self, at: str) -> str:
        """The block's ``B`` weights of one channel at ``at``: f32 (f16 weights widened unless
        they are computed in f16)."""
        k, element = self.k, self.geo.weights_element
        w = k.op(f"vector.load %weights[{at}] : {self.weights_type}, vector<{self.vlanes}x{element}>")
        if element == "f16" and not self.native_half:
            return k.op(f"arith.extf {w} : vector<{self.vlanes}xf16> to {self.vec}")
        return w

    def pair_body(
        self, at: str, weight_at: str, current: list[str], shifts: list[str], rows: int, cols: int
    ) -> list[str]:
        """One entry of a bf16 "filters" tile: per pair of the run's channels (adjacent in the blocked
        input, one 32-bit word) and block, the ``B x 2`` weights of the pair are one vector of bf16
        (``kernel_packing.bf16_pairs``); per position the pair is broadcast and one dot product adds
        both channels' products to each lane (``vdpbf16ps``, f32 accumulators). Without the
        instruction (``native_bf16`` off, or not 16 lanes) the pair's weights are split into even
        and odd lanes, widened, and each channel gets its broadcast and FMA."""
        k, vec, lanes = self.k, self.vec, self.lanes
        _, sh, sw = self.p.strides
        w_p, m = self.geo.padded[2], self.in_position
        native = self.native_dot
        pair_vec, half_vec = f"vector<{2 * lanes}xbf16>", f"vector<{lanes}xbf16>"
        even = ", ".join(str(2 * i) for i in range(lanes))
        odd = ", ".join(str(2 * i + 1) for i in range(lanes))
        positions = rows * cols
        for pair in range(self.unroll // 2):
            weights = []
            for j in range(len(shifts) + 1):
                shift = (shifts[j - 1], 1) if j else (0, 0)
                w_index = k.index((weight_at, 1), shift, (pair * 2 * lanes, 1))
                bits = k.op(f"vector.load %weights[{w_index}] : {self.weights_type}, vector<{2 * lanes}xi16>")
                w = k.op(f"vector.bitcast {bits} : vector<{2 * lanes}xi16> to {pair_vec}")
                if native:
                    weights.append((w,))
                    continue
                halves = []
                for picks in (even, odd):
                    half = k.op(f"vector.shuffle {w}, {w} [{picks}] : {pair_vec}, {pair_vec}")
                    halves.append(k.op(f"arith.extf {half} : {half_vec} to {vec}"))
                weights.append(tuple(halves))
            for i in range(rows):
                for c in range(cols):
                    step = self.run_channel(2 * pair) + (i * sh * w_p + c * sw) * m
                    if native:
                        x_index = k.index((at, 1), (step, 1))
                        x2 = k.op(f"vector.load %input[{x_index}] : {self.input_type}, vector<2xbf16>")
                        word = k.op(f"vector.bitcast {x2} : vector<2xbf16> to vector<1xi32>")
                        word = k.op(f"vector.extract {word}[0] : i32 from vector<1xi32>")
                        words = k.op(f"vector.broadcast {word} : i32 to vector<{lanes}xi32>")
                        xs = k.op(f"vector.bitcast {words} : vector<{lanes}xi32> to {pair_vec}")
                    else:
                        xs = tuple(
                            k.op(f"vector.broadcast {self.input_scalar(at, step + h)} : f32 to {vec}")
                            for h in (0, 1)
                        )
                    for j, w in enumerate(weights):
                        slot = j * positions + i * cols + c
                        if native:
                            current[slot] = k.op(
                                # the broadcast pair last: the instruction's memory operand
                                # (an embedded {1to16} broadcast load)
                                f"func.call @{BF16_DOT}({current[slot]}, {w[0]}, {xs}) : "
                                f"({vec}, {pair_vec}, {pair_vec}) -> {vec}"
                            )
                        else:
                            for h in (0, 1):
                                current[slot] = k.op(f"vector.fma {xs[h]}, {w[h]}, {current[slot]} : {vec}")
        return current

    def quad_body(
        self, at: str, weight_at: str, current: list[str], shifts: list[str], rows: int, cols: int
    ) -> list[str]:
        """One entry of an int8 "filters" tile: per quad of the run's channels (adjacent in the input
        blocked by 4, one 32-bit word) and block, the ``B x 4`` int8 weights of the quad are one
        vector (``kernel_packing.int8_quads``); per position the quad is broadcast and one dot
        product adds the four channels' products to each int32 lane (``vpdpbusd`` / ``sdot``).
        Without one (``int8_dot`` off, or other lanes) each channel's weights are picked out,
        widened, and multiplied with the widened input (unsigned bytes if the zero point is 128)."""
        k, lanes = self.k, self.lanes
        _, sh, sw = self.p.strides
        w_p, m = self.geo.padded[2], self.in_position
        acc, quad_vec, word_vec = self.acc_vec, f"vector<{4 * lanes}xi8>", f"vector<{lanes}xi32>"
        widen = "arith.extui" if self.geo.input_zero_point else "arith.extsi"
        positions = rows * cols
        for quad in range(self.unroll // INT8_QUAD):
            weights = []
            for j in range(len(shifts) + 1):
                shift = (shifts[j - 1], 1) if j else (0, 0)
                w_index = k.index((weight_at, 1), shift, (quad * INT8_QUAD * lanes, 1))
                w = k.op(f"vector.load %weights[{w_index}] : {self.weights_type}, {quad_vec}")
                if self.dot:
                    weights.append((w,))
                    continue
                picked = []
                for c in range(INT8_QUAD):
                    picks = ", ".join(str(INT8_QUAD * f + c) for f in range(lanes))
                    one = k.op(f"vector.shuffle {w}, {w} [{picks}] : {quad_vec}, {quad_vec}")
                    picked.append(k.op(f"arith.extsi {one} : vector<{lanes}xi8> to {acc}"))
                weights.append(tuple(picked))
            for i in range(rows):
                for c in range(cols):
                    step = self.run_channel(INT8_QUAD * quad) + (i * sh * w_p + c * sw) * m
                    x_index = k.index((at, 1), (step, 1))
                    x4 = k.op(f"vector.load %input[{x_index}] : {self.input_type}, vector<4xi8>")
                    if self.dot:
                        word = k.op(f"vector.bitcast {x4} : vector<4xi8> to vector<1xi32>")
                        word = k.op(f"vector.extract {word}[0] : i32 from vector<1xi32>")
                        words = k.op(f"vector.broadcast {word} : i32 to {word_vec}")
                        xs = (k.op(f"vector.bitcast {words} : {word_vec} to {quad_vec}"),)
                    else:
                        wide = []
                        for h in range(INT8_QUAD):
                            byte = k.op(f"vector.extract {x4}[{h}] : i8 from vector<4xi8>")
                            byte = k.op(f"{widen} {byte} : i8 to i32")
                            wide.append(k.op(f"vector.broadcast {byte} : i32 to {acc}"))
                        xs = tuple(wide)
                    for j, w in enumerate(weights):
                        slot = j * positions + i * cols + c
                        if self.dot:
                            name = INT8_DOTS[self.dot][0]
                            # x86: the unsigned input bytes first; sdot multiplies either way
                            operands = (xs[0], w[0]) if self.dot == "vnni" else (w[0], xs[0])
                            current[slot] = k.op(
                                f"func.call @{name}({current[slot]}, {operands[0]}, {operands[1]}) : "
                                f"({acc}, {quad_vec}, {quad_vec}) -> {acc}"
                            )
                        else:
                            for h in range(INT8_QUAD):
                                product = k.op(f"arith.muli {xs[h]}, {w[h]} : {acc}")
                                current[slot] = k.op(f"arith.addi {current[slot]}, {product} : {acc}")
        return current

    def pooled_index(self, at: str | int, window: int) -> str | int:
        """A tile's first row or column ``at`` in the plane pooled by ``window``."""
        if isinstance(at, int):
            return at // window
        return self.k.op(f"arith.divui {at}, {self.k.const(window)} : index")

    def pooled(self, values: list[list[str]]) -> list[list[str]]:
        """The max pool of a tile's ``values[row][col]`` (windows of ``geo.pool`` rows x columns)."""
        k, (ph, pw) = self.k, self.geo.pool
        pooled = []
        for i in range(0, len(values), ph):
            row = []
            for c in range(0, len(values[i]), pw):
                window = [values[i + a][c + b] for a in range(ph) for b in range(pw)]
                best = window[0]
                for value in window[1:]:
                    best = k.op(f"arith.maximumf {best}, {value} : {self.vec}")
                row.append(best)
            pooled.append(row)
        return pooled

    def run_channel(self, u: int) -> int:
        """Where the ``u``-th channel of an entry's run is, relative to its first (elements)."""
        if self.p.input_layout != "blocked":
            return u * self.channel_stride
        block = self.geo.input_block
        return (u // block) * block * self.channel_stride + u % block

    def blocked_store(self, b: _Block, values: list[list[str]], h0: str | int, w0: str | int) -> None:
        """Write ``values[row][col]`` (the block's filters, one block of channels, in lanes) to the
        blocked output: one vector store per position."""
        k, m = self.k, self.out_position
        channel = k.op(f"memref.load %out_channels[{b.lane0}] : {self.table_type}")
        channel = k.op(f"arith.index_cast {channel} : i32 to index")
        corner = k.index((self.out_base, 1), (channel, self.plane), (h0, self.row * m), (w0, m))
        narrow = self.geo.output_element != "f32"
        stored = f"vector<{self.vlanes}x{self.geo.output_element}>"
        for i, row in enumerate(values):
            for c, value in enumerate(row):
                at = k.index((corner, 1), ((i * self.row + c) * m, 1))
                if narrow:
                    value = k.op(f"arith.truncf {value} : {self.vec} to {stored}")
                k.emit(f"vector.store {value}, %output[{at}] : {self.output_type}, {stored}")

    def quad_store(self, b: _Block, values: list[list[str]], h0: str | int, w0: str | int) -> None:
        """Write ``values[row][col]`` (the block's filters, whole in-order channels, in lanes) as the
        next conv's int8 input: quantized (:class:`~rt3d_mlir.codegen.cpu.quantize.Int8Encoder`) and
        stored in blocks of four channels, each quad of lanes one 32-bit word of its channel quad's
        plane."""
        k, m, lanes, encoder = self.k, self.out_position, self.lanes, self.encoder
        assert encoder is not None
        channel = k.op(f"memref.load %out_channels[{b.lane0}] : {self.table_type}")
        channel = k.op(f"arith.index_cast {channel} : i32 to index")
        corner = k.index((self.out_base, 1), (channel, self.plane), (h0, self.row * m), (w0, m))
        quad = f"vector<{INT8_QUAD}xi8>"
        for i, row in enumerate(values):
            for c, value in enumerate(row):
                at = k.index((corner, 1), ((i * self.row + c) * m, 1))
                encoded = encoder(value)
                for j in range(lanes // INT8_QUAD):
                    word = k.op(
                        f"vector.extract_strided_slice {encoded} {{offsets = [{j * INT8_QUAD}], sizes = "
                        f"[{INT8_QUAD}], strides = [1]}} : vector<{lanes}xi8> to {quad}"
                    )
                    where = k.index((at, 1), (j * INT8_QUAD * self.plane, 1))
                    k.emit(f"vector.store {word}, %output[{where}] : {self.output_type}, {quad}")

    def transposed_store(self, b: _Block, values: list[list[str]], h0: str | int, w0: str | int) -> None:
        """Write ``values[row][col]`` (each the block's filters in lanes) to NCDHW rows.

        Each run of up to ``lanes`` columns is stored to a stack scratch tile
        (contiguous vector stores), read back one filter at a time with a
        strided gather from that L1-resident tile, and written as one
        contiguous masked store to the filter's (permuted) output row. A
        direct ``vector.scatter`` of each accumulator touches ``lanes``
        output lines per store and measured 10-30 % slower on large planes.
        """
        k, vec, lanes = self.k, self.vec, self.lanes
        ivec = f"vector<{lanes}xi32>"
        scratch = f"memref<{lanes * lanes}xf32>"
        strided = k.vconst_list([j * lanes for j in range(lanes)], "i32")
        channels = k.op(f"vector.load %out_channels[{b.lane0}] : {self.table_type}, {ivec}")
        for i, row in enumerate(values):
            for c0 in range(0, len(row), lanes):
                run = row[c0 : c0 + lanes]
                for j, value in enumerate(run):
                    k.emit(f"vector.store {value}, %scratch[{k.const(j * lanes)}] : {scratch}, {vec}")
                mask = k.op(f"vector.constant_mask [{len(run)}] : vector<{lanes}xi1>")
                for lane in range(lanes):
                    channel = k.op(f"vector.extract {channels}[{lane}] : i32 from {ivec}")
                    used = k.op(f"arith.cmpi sge, {channel}, {k.const(0, 'i32')} : i32")
                    with k.region(f"scf.if {used} {{"):
                        channel = k.op(f"arith.index_cast {channel} : i32 to index")
                        outputs = k.op(
                            f"vector.gather %scratch[{k.const(lane)}][{strided}], {mask}, {self.zero} : "
                            f"{scratch}, {ivec}, vector<{lanes}xi1>, {vec} into {vec}"
                        )
                        at_out = self.output_at(channel, h0, w0, i * self.row + c0)
                        k.emit(
                            f"vector.maskedstore %output[{at_out}], {mask}, {outputs} : "
                            f"{self.output_type}, vector<{lanes}xi1>, {vec}"
                        )

    # -- output columns in lanes -------------------------------------------

    def width_tile(self, b: _Block, rows: int, cols: int, h0: str | int, w0: str | int) -> None:
        """``rows x cols`` outputs of each of the block's filters, columns in the lanes.

        The block's filters go ``tile_filters`` at a time (each group its own
        pass over the entries). Accumulators: filter x row x column vector.
        Per entry and channel, one contiguous input-vector load (W stride 1)
        per row and column vector, reused by every filter of the group, and
        one FMA per accumulator with the filter's weight broadcast. Each
        accumulator is a run of one filter's outputs, stored contiguously to
        its (permuted) output channel: no scatter. A partial last vector is
        masked. With ``streaming_stores`` full-vector stores are
        non-temporal, so an output much larger than the cache is written
        without first reading each line (for C3D's conv1a this doubled the
        kernel's speed).
        """
        k, lanes = self.k, self.vlanes
        vectors = -(-cols // lanes)
        tail = cols - (vectors - 1) * lanes
        mask = k.op(f"vector.constant_mask [{tail}] : vector<{lanes}xi1>") if tail < lanes else None
        base = k.index((self.in_base, 1), (h0, self.p.strides[1] * self.geo.padded[2]), (w0, 1))
        group = min(self.p.tile_filters or self.lanes, self.lanes)
        for f0 in range(0, self.lanes, group):
            filters = range(f0, min(f0 + group, self.lanes))
            self.width_filter_group(b, rows, cols, mask, base, filters, h0, w0)

    def width_filter_group(
        self, b: _Block, rows: int, cols: int, mask: str | None, base: str, filters: range,
        h0: str | int, w0: str | int,
    ) -> None:
        """One group of the block's filters over a ``rows x cols`` width tile (see width_tile)."""
        k, vec, lanes, block = self.k, self.vec, self.vlanes, self.lanes
        vectors = -(-cols // lanes)
        sh = self.p.strides[1]
        w_p = self.geo.padded[2]
        count = len(filters)

        def slot(f: int, r: int, v: int) -> int:
            return (f * rows + r) * vectors + v

        inits = []
        for f in filters:
            bias = k.op(f"memref.load %bias[{k.index((b.lane0, 1), (f, 1))}] : {self.bias_type}")
            bias = k.op(f"vector.broadcast {bias} : f32 to {vec}")
            if not self.chunks:
                inits += [bias] * (rows * vectors)
                continue
            # a pass over one channel chunk: the partial sums so far, or the bias in the first pass
            # (an unused lane reads channel 0's outputs and never stores them)
            lane = k.index((b.lane0, 1), (f, 1))
            channel = k.op(f"memref.load %out_channels[{lane}] : {self.table_type}")
            channel = k.op(f"arith.maxsi {channel}, {k.const(0, 'i32')} : i32")
            channel = k.op(f"arith.index_cast {channel} : i32 to index")
            for r in range(rows):
                for v in range(vectors):
                    at = self.output_at(channel, h0, w0, r * self.row + v * lanes)
                    partial = self.load_run(at, vec, mask if v == vectors - 1 else None, self.zero, "%output")
                    inits.append(k.op(f"arith.select {self.first_chunk}, {bias}, {partial} : {vec}"))

        def body(at: str, weight_at: str, current: list[str]) -> list[str]:
            for u in range(self.unroll):
                weights = []
                for f in filters:
                    w_at = k.index((weight_at, 1), (u * block + f, 1))
                    w = k.op(f"memref.load %weights[{w_at}] : {self.weights_type}")
                    weights.append(k.op(f"vector.broadcast {w} : f32 to {vec}"))
                for r in range(rows):
                    for v in range(vectors):
                        x_at = k.index((at, 1), (u * self.channel_stride + r * sh * w_p + v * lanes, 1))
                        x = self.load_run(x_at, vec, mask if v == vectors - 1 else None, self.zero)
                        for f in range(count):
                            i = slot(f, r, v)
                            current[i] = k.op(f"vector.fma {weights[f]}, {x}, {current[i]} : {vec}")
            return current

        results = self.entry_loop(b, base, inits, body)
        if self.geo.pool != (1, 1):
            self.for_output_channels(
                b, filters, lambda f, channel: self.pooled_width_store(
                    [[self.finished(results[slot(f, r, v)]) for v in range(vectors)] for r in range(rows)],
                    channel, h0, w0, cols,
                )
            )
            return

        def store(f: int, channel: str) -> None:
            for r in range(rows):
                for v in range(vectors):
                    value = self.finished(results[slot(f, r, v)])
                    at = self.output_at(channel, h0, w0, r * self.row + v * lanes)
                    last = mask if v == vectors - 1 else None
                    self.store_run(value, at, vec, last, self.p.streaming_stores)

        self.for_output_channels(b, filters, store)

    def pooled_width_store(
        self, values: list[list[str]], channel: str, h0: str | int, w0: str | int, cols: int
    ) -> None:
        """Store the max pool (windows of ``geo.pool``: any rows, 1 or 2 columns) of one filter's
        ``rows x vectors`` accumulators of ``cols`` columns ("width"): the rows of a window are
        reduced lane by lane, pairs of columns by an even/odd shuffle of two vectors into one."""
        k, vec, lanes = self.k, self.vec, self.vlanes
        ph, pw = self.geo.pool
        h0, w0 = self.pooled_index(h0, ph), self.pooled_index(w0, pw)
        out_cols = cols // pw
        for pr in range(len(values) // ph):
            window = values[pr * ph : (pr + 1) * ph]
            merged = window[0]
            for row in window[1:]:
                merged = [k.op(f"arith.maximumf {a}, {b} : {vec}") for a, b in zip(merged, row, strict=True)]
            if pw == 2:
                pairs = []
                even = ", ".join(str(2 * i) for i in range(lanes))
                odd = ", ".join(str(2 * i + 1) for i in range(lanes))
                for v in range(0, len(merged), 2):
                    a = merged[v]
                    b = merged[v + 1] if v + 1 < len(merged) else a
                    left = k.op(f"vector.shuffle {a}, {b} [{even}] : {vec}, {vec}")
                    right = k.op(f"vector.shuffle {a}, {b} [{odd}] : {vec}, {vec}")
                    pairs.append(k.op(f"arith.maximumf {left}, {right} : {vec}"))
                merged = pairs
            for v, value in enumerate(merged):
                count = min(lanes, out_cols - v * lanes)
                mask = k.op(f"vector.constant_mask [{count}] : vector<{lanes}xi1>") if count < lanes else None
                self.store_run(value, self.output_at(channel, h0, w0, pr * self.row + v * lanes), vec, mask)

    # -- filters x columns in lanes ------------------------------------------

    def interleaved_tile(self, b: _Block, rows: int, cols: int, h0: str | int, w0: str | int) -> None:
        """``rows x cols`` outputs of the block's ``B`` filters, lane ``f * Q + c`` holding filter
        ``f`` at column ``c`` of a run of ``Q = lanes / B`` columns.

        Per entry and channel: the block's ``B`` weights are loaded once as a
        vector and spread ``Q`` times each; per accumulator, ``Q`` input
        columns are loaded (a short load, rarely crossing a cache line) and
        repeated ``B`` times, then one FMA does ``B x Q`` useful products.
        A narrow group thus fills the vector without wide unaligned input
        loads ("width") or a vector of only ``B`` lanes ("filters"). Each
        accumulator is stored as ``B`` runs of ``Q`` columns, one per filter's
        (permuted) output channel; a partial last run is masked.
        """
        k, vec, lanes, block = self.k, self.vec, self.vlanes, self.lanes
        q = lanes // block
        runs = -(-cols // q)
        tail = cols - (runs - 1) * q
        sh = self.p.strides[1]
        w_p = self.geo.padded[2]
        run_vec, run_mask = f"vector<{q}xf32>", f"vector<{q}xi1>"
        block_vec = f"vector<{block}xf32>"
        mask = k.op(f"vector.constant_mask [{tail}] : {run_mask}") if tail < q else None
        run_zero = k.vconst(0.0, q, "f32")
        spread = ", ".join(str(f) for f in range(block) for _ in range(q))  # weights, bias
        repeat = ", ".join(str(c) for _ in range(block) for c in range(q))  # input columns
        base = k.index((self.in_base, 1), (h0, sh * w_p), (w0, 1))
        biases = k.op(f"vector.load %bias[{b.lane0}] : {self.bias_type}, {block_vec}")
        bias = k.op(f"vector.shuffle {biases}, {biases} [{spread}] : {block_vec}, {block_vec}")

        def body(at: str, weight_at: str, current: list[str]) -> list[str]:
            for u in range(self.unroll):
                w_at = k.index((weight_at, 1), (u * block, 1))
                ws = k.op(f"vector.load %weights[{w_at}] : {self.weights_type}, {block_vec}")
                w = k.op(f"vector.shuffle {ws}, {ws} [{spread}] : {block_vec}, {block_vec}")
                for r in range(rows):
                    for v in range(runs):
                        x_at = k.index((at, 1), (u * self.channel_stride + r * sh * w_p + v * q, 1))
                        xs = self.load_run(x_at, run_vec, mask if v == runs - 1 else None, run_zero)
                        x = k.op(f"vector.shuffle {xs}, {xs} [{repeat}] : {run_vec}, {run_vec}")
                        i = r * runs + v
                        current[i] = k.op(f"vector.fma {x}, {w}, {current[i]} : {vec}")
            return current

        results = [self.rectified(v) for v in self.entry_loop(b, base, [bias] * (rows * runs), body)]

        def store(f: int, channel: str) -> None:
            picks = ", ".join(str(f * q + c) for c in range(q))
            for r in range(rows):
                for v in range(runs):
                    value = results[r * runs + v]
                    outputs = k.op(f"vector.shuffle {value}, {value} [{picks}] : {vec}, {vec}")
                    at = self.output_at(channel, h0, w0, r * self.row + v * q)
                    self.store_run(outputs, at, run_vec, mask if v == runs - 1 else None)

        self.for_output_channels(b, range(block), store)


def conv_kernel_text(kernel: str, dispatch: str, geo: ConvGeometry, p: PackedConv3dParams) -> str:
    """MLIR text of the kernel function and its dispatch declaration."""
    emitter = _ConvKernel(geo, p)
    emitter.emit_body(TASK)
    lanes = p.block_size
    args = [
        ("%input", emitter.input_type),
        ("%weights", emitter.weights_type),
        ("%offsets", memref_type(geo.entries, "i32")),
        ("%starts", memref_type(geo.blocks + 1, "i32")),
        ("%out_channels", memref_type(geo.blocks * lanes, "i32")),
        ("%bias", emitter.bias_type),
        *([("%chunk_starts", emitter.chunk_table_type)] if emitter.chunks else []),
        ("%output", emitter.output_type),
    ]
    positions = geo.batch * geo.out[0] * geo.out[1] * geo.out[2]
    return kernel_module(
        kernel,
        dispatch,
        args,
        emitter.tasks(),
        emitter.k,
        flops=2 * geo.kept_weights * positions,
        dense_flops=2 * geo.dense_weights * positions,
        scratch_floats=lanes * lanes
        if p.vector_dim == "filters" and (p.output_layout == "plain" or emitter.amx) else 0,
        declarations=AMX_DECLARATIONS if emitter.amx
        else [BF16_DOT_DECLARATION] if emitter.native_dot
        else [int8_dot_declaration(emitter.dot)] if emitter.dot else [],
    )
