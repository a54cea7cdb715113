"""The CPU kernel of a depthwise 3D convolution (called by ``rt3d-vectorize-depthwise``).

A depthwise convolution (``groups`` = input channels, each filter reading
one channel; ``multiplier`` filters per channel) does ``kD*kH*kW`` multiply-
adds per output and reads each input once: it is memory-bound. The kernel
therefore reads the *unpadded* input (no padded copy is made before the
call) and writes the output once, and keeps the arithmetic in registers:

- one task per (batch, filter, output depth); the filter's taps are
  scalars broadcast from a small table, the valid depth taps of a task
  (``kd`` whose input plane exists: zero padding in D) a loop carrying the
  accumulators;
- the output plane is cut into register tiles of ``rows`` rows and
  ``vectors`` vectors of output columns (W in the lanes); each input row
  vector a tile needs is loaded once and feeds every output row of the tile
  that uses it (``kh`` = input row - output row x stride), so a 3x3 window
  over 4 rows costs 6 row loads per kernel column instead of 12;
- a W stride > 1 loads ``stride`` consecutive vectors and keeps every
  ``stride``-th element with a ``vector.shuffle``;
- tiles whose window lies inside the input (most of the plane) are loops
  with plain vector loads; tiles at the plane's edges are emitted with
  static offsets: taps on padding rows are skipped, and padding columns
  are zero lanes (masked loads and a shuffle with a zero vector), so the
  padding is never materialized.

Kernel positions (kh, kw) that no filter keeps (pruned at every ``kd``) are
not visited. Bias and ReLU are applied in registers; each accumulator is a
contiguous run of one output row (the last vector of a row masked).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rt3d_mlir.codegen.activations import activation_text
from rt3d_mlir.codegen.cpu.kernel import TASK, kernel_module, memref_type
from rt3d_mlir.codegen.text import KernelText

ACCUMULATORS = 8  # register tile size (rows x vectors) when not given


@dataclass(frozen=True)
class DepthwiseShape:
    batch: int
    channels: int
    input: tuple[int, int, int]  # D, H, W (not padded)
    filters: int  # channels x multiplier
    out: tuple[int, int, int]
    kernel: tuple[int, int, int]
    strides: tuple[int, int, int]
    padding_low: tuple[int, int, int]
    positions: frozenset[tuple[int, int]]  # (kh, kw) kept by some filter at some kd
    activation: str = "none"
    kept_weights: int = 0

    @property
    def multiplier(self) -> int:
        return self.filters // self.channels


def depthwise_tile(shape: DepthwiseShape, lanes: int, rows: int = 0, vectors: int = 0) -> tuple[int, int]:
    """(rows, vectors) of the register tile: ``ACCUMULATORS`` accumulators, rows preferred (input
    row loads are shared by the rows of a tile), at most the output plane."""
    _, h_o, w_o = shape.out
    row_vectors = -(-w_o // lanes)
    vectors = min(vectors or 2, row_vectors)
    rows = min(rows or max(1, ACCUMULATORS // vectors), h_o)
    return rows, vectors


@dataclass(frozen=True)
class _Span:
    """Tiles along one output axis: a loop over tiles that need no edge handling, or one static tile."""

    start: int
    size: int  # outputs per tile
    count: int = 1  # tiles (> 1 or looped: a loop)
    looped: bool = False


def _spans(extent: int, tile: int, inside: Callable[[int], bool]) -> list[_Span]:
    """Cut ``[0, extent)`` into tiles of ``tile`` outputs; consecutive full tiles for which
    ``inside(start)`` holds become one looped span, the others static spans."""
    spans: list[_Span] = []
    for start in range(0, extent, tile):
        size = min(tile, extent - start)
        if size == tile and inside(start):
            last = spans[-1] if spans else None
            if last is not None and last.looped:
                spans[-1] = _Span(last.start, tile, last.count + 1, True)
                continue
            spans.append(_Span(start, tile, 1, True))
        else:
            spans.append(_Span(start, size))
    return spans


class _DepthwiseKernel:
    def __init__(self, shape: DepthwiseShape, lanes: int, rows: int, vectors: int) -> None:
        self.s, self.lanes = shape, lanes
        self.rows, self.vectors = depthwise_tile(shape, lanes, rows, vectors)
        self.k = KernelText()
        d_i, h_i, w_i = shape.input
        d_o, h_o, w_o = shape.out
        self.in_plane, self.out_plane = h_i * w_i, h_o * w_o
        self.taps = math.prod(shape.kernel)
        self.vec = f"vector<{lanes}xf32>"
        self.input_type = memref_type(shape.batch * shape.channels * d_i * self.in_plane, "f32")
        self.output_type = memref_type(shape.batch * shape.filters * d_o * self.out_plane, "f32")
        self.weights_type = memref_type(shape.filters * self.taps, "f32")
        self.bias_type = memref_type(shape.filters, "f32")
        self.zero = self.k.vconst(0.0, lanes, "f32")

    # -- structure ---------------------------------------------------------

    def emit(self) -> None:
        k, s = self.k, self.s
        d_o = s.out[0]
        sd = s.strides[0]
        plane = k.op(f"arith.divui {TASK}, {k.const(d_o)} : index")  # n * F + f
        d = k.op(f"arith.remui {TASK}, {k.const(d_o)} : index")
        n = k.op(f"arith.divui {plane}, {k.const(s.filters)} : index")
        f = k.op(f"arith.remui {plane}, {k.const(s.filters)} : index")
        channel = k.op(f"arith.divui {f}, {k.const(s.multiplier)} : index") if s.multiplier > 1 else f
        d_i = s.input[0]
        self.in_base = k.index((n, s.channels * d_i * self.in_plane), (channel, d_i * self.in_plane))
        self.out_base = k.index((plane, d_o * self.out_plane), (d, self.out_plane))
        self.weight_base = k.index((f, self.taps))
        bias = k.op(f"memref.load %bias[{f}] : {self.bias_type}")
        self.bias = k.op(f"vector.broadcast {bias} : f32 to {self.vec}")
        # the input depth of tap kd is first_depth + kd; valid taps: 0 <= first_depth + kd < D_in
        self.first_depth = k.index((d, sd), (-s.padding_low[0], 1))
        below = k.op(f"arith.subi {k.const(0)}, {self.first_depth} : index")
        self.kd_lo = k.op(f"arith.maxsi {below}, {k.const(0)} : index")
        room = k.op(f"arith.subi {k.const(d_i)}, {self.first_depth} : index")
        self.kd_hi = k.op(f"arith.minsi {room}, {k.const(s.kernel[0])} : index")

        _, sh, sw = s.strides
        _, kh, kw = s.kernel
        _, ph, pw = s.padding_low
        _, h_i, w_i = s.input
        lanes = self.lanes
        rows = self.rows
        row_spans = _spans(
            s.out[1], rows, lambda h0: h0 * sh - ph >= 0 and (h0 + rows - 1) * sh + kh - 1 - ph < h_i
        )
        width = self.vectors * lanes
        # a looped tile's last load (sw vectors from its last vector's first column) stays in the row
        col_spans = _spans(
            s.out[2],
            width,
            lambda w0: w0 * sw - pw >= 0 and (w0 + width - lanes) * sw + kw - 1 - pw + sw * lanes <= w_i,
        )
        for rs in row_spans:

            def row_group(h0: str | int, rs: _Span = rs) -> None:
                for cs in col_spans:
                    self.over(cs, lambda w0, cs=cs: self.tile_at(h0, rs.size, w0, cs.size))

            self.over(rs, row_group)

    def over(self, span: _Span, body: Callable[[str | int], None]) -> None:
        """Run ``body(start)`` for each tile of ``span``: a loop, or once at a static start."""
        if not span.looped:
            body(span.start)
            return
        k = self.k
        i = k.fresh("t")
        end = span.start + span.count * span.size
        with k.region(f"scf.for {i} = {k.const(span.start)} to {k.const(end)} step {k.const(span.size)} {{"):
            body(i)

    # -- one register tile -------------------------------------------------

    def tile_at(self, h0: str | int, rows: int, w0: str | int, columns: int) -> None:
        k, s, lanes, vec = self.k, self.s, self.lanes, self.vec
        sh = s.strides[1]
        _, kh, kw = s.kernel
        _, ph, pw = s.padding_low
        _, h_i, w_i = s.input
        vectors = -(-columns // lanes)
        count = rows * vectors
        accs = [k.fresh("acc") for _ in range(count)]
        results = k.fresh("tile")
        kd = k.fresh("kd")
        types = ", ".join([vec] * count)
        carried = ", ".join(f"{a} = {self.bias}" for a in accs)
        with k.region(
            f"{results}:{count} = scf.for {kd} = {self.kd_lo} to {self.kd_hi} step {k.const(1)} "
            f"iter_args({carried}) -> ({types}) {{"
        ):
            depth = k.index((self.first_depth, 1), (kd, 1))
            plane_base = k.index((self.in_base, 1), (depth, self.in_plane))
            weight_at = k.index((self.weight_base, 1), (kd, kh * kw))
            weights: dict[tuple[int, int], str] = {}

            def weight(a: int, b: int) -> str:
                if (a, b) not in weights:
                    at = k.index((weight_at, 1), (a * kw + b, 1))
                    w = k.op(f"memref.load %weights[{at}] : {self.weights_type}")
                    weights[a, b] = k.op(f"vector.broadcast {w} : f32 to {vec}")
                return weights[a, b]

            current = list(accs)
            for ir in range((rows - 1) * sh + kh):
                if isinstance(h0, int) and not 0 <= h0 * sh + ir - ph < h_i:
                    continue  # a padding row
                users = [(r, ir - r * sh) for r in range(rows) if 0 <= ir - r * sh < kh]
                row_base = k.index((plane_base, 1), (h0, sh * w_i), (ir - ph, w_i))
                for b in range(kw):
                    used = [(r, a) for r, a in users if (a, b) in s.positions]
                    if not used:
                        continue
                    for v in range(vectors):
                        valid = min(lanes, columns - v * lanes)
                        x = self.row_vector(row_base, w0, v * lanes, b - pw, valid)
                        if x is None:
                            continue  # every lane on padding
                        for r, a in used:
                            i = r * vectors + v
                            current[i] = k.op(f"vector.fma {weight(a, b)}, {x}, {current[i]} : {vec}")
            k.emit(f"scf.yield {', '.join(current)} : {types}")
        w_o = s.out[2]
        for r in range(rows):
            for v in range(vectors):
                value = f"{results}#{r * vectors + v}"
                value = activation_text(k, s.activation, value, vec)
                at = k.index((self.out_base, 1), (h0, w_o), (r * w_o, 1), (w0, 1), (v * lanes, 1))
                valid = min(lanes, columns - v * lanes)
                if valid < lanes:
                    mask = k.op(f"vector.constant_mask [{valid}] : vector<{lanes}xi1>")
                    k.emit(
                        f"vector.maskedstore %output[{at}], {mask}, {value} : "
                        f"{self.output_type}, vector<{lanes}xi1>, {vec}"
                    )
                else:
                    k.emit(f"vector.store {value}, %output[{at}] : {self.output_type}, {vec}")

    def row_vector(self, row_base: str, w0: str | int, first: int, offset: int, valid: int) -> str | None:
        """Lanes ``j < valid``: input column ``(w0 + first + j) * sw + offset`` of the row at
        ``row_base``, zero where that column is padding; None if every lane is padding.

        A looped tile (``w0`` an SSA value) lies inside the row: ``sw`` plain loads. A static tile
        loads the span of valid columns (masked at its end) and picks lanes with a shuffle.
        """
        k, lanes, vec = self.k, self.lanes, self.vec
        sw = self.s.strides[2]
        w_i = self.s.input[2]
        if not isinstance(w0, int):
            start = k.index((row_base, 1), (w0, sw), (first * sw + offset, 1))
            chunks = [
                k.op(f"vector.load %input[{k.index((start, 1), (c * lanes, 1))}] : {self.input_type}, {vec}")
                for c in range(sw)
            ]
            return self._pick(chunks, [j * sw for j in range(lanes)])
        columns = [(w0 + first + j) * sw + offset for j in range(valid)]
        inside = [c for c in columns if 0 <= c < w_i]
        if not inside:
            return None
        lo, hi = inside[0], inside[-1]
        chunks = []
        for c0 in range(lo, hi + 1, lanes):
            at = k.index((row_base, 1), (c0, 1))
            length = min(lanes, hi + 1 - c0)
            if length < lanes:
                mask = k.op(f"vector.constant_mask [{length}] : vector<{lanes}xi1>")
                chunks.append(k.op(
                    f"vector.maskedload %input[{at}], {mask}, {self.zero} : {self.input_type}, "
                    f"vector<{lanes}xi1>, {vec} into {vec}"
                ))
            else:
                chunks.append(k.op(f"vector.load %input[{at}] : {self.input_type}, {vec}"))
        picks = [c - lo if 0 <= c < w_i else -1 for c in columns] + [-1] * (lanes - valid)
        loaded = hi + 1 - lo
        if loaded <= lanes and picks == list(range(loaded)) + [-1] * (lanes - loaded):
            return chunks[0]  # the masked load already zeroed the other lanes
        return self._pick(chunks, picks)

    def _pick(self, chunks: list[str], picks: list[int]) -> str:
        """Lanes ``picks`` of the chunks laid end to end (-1: a zero lane).

        Chunks are joined pairwise (shuffles of equal-length operands, which LLVM lowers to single
        shuffles), then one shuffle picks the lanes.
        """
        k, lanes = self.k, self.lanes
        width = lanes
        while len(chunks) > 1:
            if len(chunks) % 2:
                chunks = [*chunks, k.vconst(0.0, width, "f32")]
            indices = ", ".join(str(i) for i in range(2 * width))
            chunks = [
                k.op(f"vector.shuffle {a}, {b} [{indices}] : vector<{width}xf32>, vector<{width}xf32>")
                for a, b in zip(chunks[::2], chunks[1::2], strict=True)
            ]
            width *= 2
        (joined,) = chunks
        if width == lanes and picks == list(range(lanes)):
            return joined
        second = k.vconst(0.0, width, "f32") if -1 in picks else joined
        indices = ", ".join(str(width if i < 0 else i) for i in picks)
        vec = f"vector<{width}xf32>"
        return k.op(f"vector.shuffle {joined}, {second} [{indices}] : {vec}, {vec}")


def depthwise_kernel_text(
    kernel: str,
    dispatch: str,
    shape: DepthwiseShape,
    lanes: int,
    rows: int = 0,
    vectors: int = 0,
) -> str:
    """MLIR text of the kernel function and its dispatch declaration."""
    emitter = _DepthwiseKernel(shape, lanes, rows, vectors)
    emitter.emit()
    args = [
        ("%input", emitter.input_type),
        ("%weights", emitter.weights_type),
        ("%bias", emitter.bias_type),
        ("%output", emitter.output_type),
    ]
    outputs = shape.batch * math.prod(shape.out)
    return kernel_module(
        kernel,
        dispatch,
        args,
        shape.batch * shape.filters * shape.out[0],
        emitter.k,
        flops=2 * shape.kept_weights * outputs,
        dense_flops=2 * shape.filters * emitter.taps * outputs,
    )
