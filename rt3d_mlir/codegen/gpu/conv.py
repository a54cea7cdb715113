"""The GPU kernel of ``rt3d.packed_conv3d`` (called by the ``rt3d-gpu-conv`` pass).

The kernel-group sparse convolution gives each invocation up to 8 output
positions (64 apart) of one filter *block* (grid y): the invocation keeps
the block's filters for each position in ``vector<4xf32>`` accumulators and
loops over the block's kept entries only, reading the packed weights as
``vector<4xf32>`` (uniform across the workgroup, shared by the positions)
and one input value per channel and position (consecutive across the
workgroup's invocations). On lavapipe, R(2+1)D-18's convolutions ran about
2x faster with up to 8 positions per invocation than with one
(bench/RESULTS.md). Bias, ReLU and the filter permutation are applied in
the epilogue; the output may be the interior of a zero-padded buffer its
consumers read as is (pad elision).

With ``precision=fp16`` (``rt3d-gpu-conv``) a conv read only by convs
stores its output in f16, and a conv reading an f16 input takes f16
weights (``vector<4xf16>``): each kept entry's channels are summed by f16
FMAs (Float16 arithmetic, twice the f32 rate on mobile GPUs) into a partial
sum per accumulator, which is widened and added to the f32 accumulators
once per entry, as the CPU kernels do (``rt3d_mlir.codegen.cpu.conv``).

With ``input_element="i8"`` (``precision=int8``) the input is the int8
scheme's quantized activation, packed by :mod:`rt3d_mlir.codegen.gpu.quantize`
(one 32-bit word per channel quad and position), and the weights are int8
quads of the same channels, one word per filter, four filters to a
``vector<4xi32>``: each kept entry adds one integer dot product of four
channels per filter (:meth:`~rt3d_mlir.codegen.gpu.kernel.GpuKernel.dot4x8`)
to the filter's int32 accumulator, exact; the epilogue scales each sum by
the filter's dequantization factor (input scale x weight scale, stored after
the biases) before adding the bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rt3d_mlir.codegen.activations import activation_text
from rt3d_mlir.codegen.gpu.kernel import WORKGROUP, Binding, GpuKernel, Kernel
from rt3d_mlir.codegen.gpu.quantize import packed_quad
from rt3d_mlir.kernel_packing import INT8_QUAD


@dataclass(frozen=True)
class ConvShape:
    in_padded: tuple[int, int, int, int, int]  # N, C, Dp, Hp, Wp
    out: tuple[int, int, int, int, int]  # N, F, D, H, W
    strides: tuple[int, int, int]
    weights: int  # packed weights (floats; int8: bytes)
    entries: int
    blocks: int
    block_size: int
    channel_unroll: int
    activation: str  # rt3d_mlir.codegen.activations
    per_invocation: int = 1  # output positions each invocation computes
    out_low: tuple[int, int, int] = (0, 0, 0)  # write into a zero-padded output (pad elision)
    out_high: tuple[int, int, int] = (0, 0, 0)
    input_element: str = "f32"  # f16: f16 weights too, each entry summed in f16; i8: int8 quads
    output_element: str = "f32"
    # > 0: the output is the next conv's int8 input, quantized with this scale and packed four
    # channels to an i32 word (N, F / 4, padded D, H, W), as codegen/gpu/quantize.py packs it; the
    # block's filters are whole, in-order channel quads
    output_scale: float = 0.0


def positions_per_invocation(positions: int, most: int = 8) -> int:
    """Output positions per conv invocation: the most (up to ``most``, a power of
    two) whose last, partly idle tile wastes at most 12.5% more slots than one
    position per invocation does."""
    one = math.ceil(positions / WORKGROUP) * WORKGROUP
    per = most
    while per > 1:
        tile = WORKGROUP * per
        if math.ceil(positions / tile) * tile <= 1.125 * one:
            return per
        per //= 2
    return 1


def packed_conv_kernel(name: str, s: ConvShape) -> Kernel:
    """``rt3d.packed_conv3d`` on a zero-padded input.

    Bindings: padded input, packed weights (vec4), entry offsets, block
    starts, out channels, bias, output. Grid: x over tiles of
    ``64 * per_invocation`` output positions, y over filter blocks. Each
    invocation computes ``per_invocation`` positions 64 apart (so every load
    of the input stays consecutive across the workgroup) and shares each
    weight vector and the epilogue's lane lookups between them.
    """
    n, _c, dp, hp, wp = s.in_padded
    _, f, d, h, w = s.out
    quads = s.block_size // 4
    per = s.per_invocation
    positions = d * h * w
    ds, hs, ws = (size + lo + hi for size, lo, hi in zip((d, h, w), s.out_low, s.out_high, strict=True))
    plane = ds * hs * ws  # output channel stride: the (padded) output plane
    half = s.input_element == "f16"  # f16 input and weights, entries summed in f16
    int8 = s.input_element == "i8"  # packed quads in, one int32 sum per filter
    if int8 and (s.channel_unroll % INT8_QUAD or s.in_padded[1] % INT8_QUAD):
        raise ValueError("an int8 conv reads whole channel quads")
    bindings = [
        Binding(math.prod(s.in_padded) // INT8_QUAD, "i32") if int8
        else Binding(math.prod(s.in_padded), s.input_element),
        Binding(s.weights // (4 * INT8_QUAD), "vector<4xi32>") if int8
        else Binding(s.weights // 4, f"vector<4x{s.input_element}>"),
        Binding(s.entries, "i32"),
        Binding(s.blocks + 1, "i32"),
        Binding(s.blocks * s.block_size, "i32"),
        Binding(s.blocks * s.block_size * (2 if int8 else 1)),  # int8: the biases, then the factors
        Binding(n * f * plane // INT8_QUAD, "i32") if s.output_scale
        else Binding(n * f * plane, s.output_element),
    ]
    k = GpuKernel(name, bindings)
    bx = k.op("gpu.block_id x")
    block = k.op("gpu.block_id y")
    tx = k.op("gpu.thread_id x")
    first_position = k.add(k.mul(bx, WORKGROUP * per), tx)
    # Both grid axes are guarded: a larger grid than the kernel was built for stays in bounds.
    in_plane = k.op(f"arith.cmpi ult, {first_position}, {k.const(positions)} : index")
    in_blocks = k.op(f"arith.cmpi ult, {block}, {k.const(s.blocks)} : index")
    ok = k.op(f"arith.andi {in_plane}, {in_blocks} : i1")
    vec = "vector<4xf32>"
    channel_stride = dp * hp * wp  # int8: words from one channel quad to the next

    def float_entry(iv: str, starts: list[str], carried: list[str]) -> list[str]:
        """One kept entry's multiply-adds into the [position][quad] vector accumulators."""
        wrow = k.mul(iv, s.channel_unroll * quads)
        # the accumulators, or (f16) the entry's partial sums
        values: list[str | None] = [None] * len(carried) if half else list(carried)
        element = s.input_element
        vec_u = f"vector<4x{element}>"
        for u in range(s.channel_unroll):
            weights = [k.load(1, k.add(wrow, k.const(u * quads + q))) for q in range(quads)]
            for j, start in enumerate(starts):
                x = k.load(0, k.add(start, k.const(u * channel_stride)) if u else start)
                xs = k.op(f"vector.broadcast {x} : {element} to {vec_u}")
                for q in range(quads):
                    slot = j * quads + q
                    value = values[slot]
                    values[slot] = k.op(
                        f"arith.mulf {xs}, {weights[q]} : {vec_u}" if value is None
                        else f"vector.fma {xs}, {weights[q]}, {value} : {vec_u}"
                    )
        if half:
            for slot, partial in enumerate(values):
                wide = k.op(f"arith.extf {partial} : {vec_u} to {vec}")
                values[slot] = k.op(f"arith.addf {carried[slot]}, {wide} : {vec}")
        return values  # type: ignore[return-value]

    def int8_entry(iv: str, starts: list[str], carried: list[str]) -> list[str]:
        """One kept entry's dot products of channel quads into the [position][filter] int32 sums."""
        runs = s.channel_unroll // INT8_QUAD
        wrow = k.mul(iv, runs * quads)
        values = list(carried)
        for r in range(runs):
            words = [k.load(1, k.add(wrow, k.const(r * quads + q))) for q in range(quads)]
            weights = [
                k.op(f"vector.extract {words[q]}[{lane}] : i32 from vector<4xi32>")
                for q in range(quads) for lane in range(4)
            ]
            for j, start in enumerate(starts):
                x = k.load(0, k.add(start, k.const(r * channel_stride)) if r else start)
                for lane, weight in enumerate(weights):
                    slot = j * s.block_size + lane
                    values[slot] = k.dot4x8(x, weight, values[slot])
        return values

    def body() -> None:
        targets, valid, bases = [], [], []
        for j in range(per):
            point = k.add(first_position, k.const(j * WORKGROUP))
            inside = k.op(f"arith.cmpi ult, {point}, {k.const(positions)} : index") if j else None
            # positions past the end compute on the last one (loads stay in bounds), never stored
            safe = k.op(f"arith.minui {point}, {k.const(positions - 1)} : index") if j else point
            od, oh, ow = k.delinearize(safe, [d, h, w])
            bases.append(
                k.add(
                    k.add(k.mul(od, s.strides[0] * hp * wp), k.mul(oh, s.strides[1] * wp)),
                    k.mul(ow, s.strides[2]),
                )
            )
            if plane == positions:
                targets.append(point)
            else:
                lo_d, lo_h, lo_w = s.out_low
                targets.append(
                    k.linearize(
                        [k.add(od, k.const(lo_d)), k.add(oh, k.const(lo_h)), k.add(ow, k.const(lo_w))],
                        (ds, hs, ws),
                    )
                )
            valid.append(inside)
        first = k.op(f"arith.index_cast {k.load(3, block)} : i32 to index")
        after = k.add(block, k.const(1))
        last = k.op(f"arith.index_cast {k.load(3, after)} : i32 to index")
        zero = k.const(0, "i32") if int8 else k.vconst(0.0, 4, "f32")
        count = (s.block_size if int8 else quads) * per  # int8: one scalar sum per filter
        batch_words = _c * channel_stride // (INT8_QUAD if int8 else 1)
        for batch in range(n):
            result = k.fresh()
            iv = k.fresh()
            carried = [k.fresh() for _ in range(count)]
            inits = ", ".join(f"{c} = {zero}" for c in carried)
            types = ", ".join(["i32" if int8 else vec] * count)
            head = result if count == 1 else f"{result}:{count}"
            header = (
                f"{head} = scf.for {iv} = {first} to {last} step {k.const(1)} "
                f"iter_args({inits}) -> ({types}) {{"
            )
            with k.region(header):
                offset = k.op(f"arith.index_cast {k.load(2, iv)} : i32 to index")
                offset = k.add(offset, k.const(batch * batch_words))
                starts = [k.add(offset, base) for base in bases]
                entry = int8_entry if int8 else float_entry
                k.emit(f"scf.yield {', '.join(entry(iv, starts, carried))} : {types}")
            results = [result] if count == 1 else [f"{result}#{i}" for i in range(count)]
            lane_base = k.mul(block, s.block_size)

            def terms(slot: str) -> tuple[str, str | None]:
                """A lane's bias and (int8) dequantization factor, loaded once for its positions."""
                factor = k.load(5, k.add(slot, k.const(s.blocks * s.block_size))) if int8 else None
                return k.load(5, slot), factor

            def value(q: int, lane: int, j: int, loaded: tuple[str, str | None], results=results) -> str:
                """The output of lane ``lane`` of quad ``q`` at position ``j``: activated sum + bias."""
                bias, factor = loaded
                if int8:  # the exact int32 sum, dequantized
                    total = k.op(f"arith.sitofp {results[j * s.block_size + q * 4 + lane]} : i32 to f32")
                    total = k.op(f"arith.mulf {total}, {factor} : f32")
                else:
                    total = k.op(f"vector.extract {results[j * quads + q]}[{lane}] : f32 from {vec}")
                total = k.op(f"arith.addf {total}, {bias} : f32")
                total = activation_text(k, s.activation, total, "f32")
                return total

            def store(j: int, out: str, stored: str) -> None:
                if valid[j] is None:
                    k.store(stored, 6, out)
                else:
                    with k.region(f"scf.if {valid[j]} {{"):
                        k.store(stored, 6, out)

            for q in range(quads):
                if s.output_scale:  # the quad's four channels, quantized, one word
                    slots = [k.add(lane_base, k.const(q * 4 + lane)) for lane in range(4)]
                    oc = k.op(f"arith.index_cast {k.load(4, slots[0])} : i32 to index")
                    row = k.index((k.op(f"arith.divui {oc}, {k.const(INT8_QUAD)} : index"), plane),
                                  (batch * (f // INT8_QUAD) * plane, 1))
                    loaded = [terms(slot) for slot in slots]
                    for j in range(per):
                        values = [value(q, lane, j, loaded[lane]) for lane in range(4)]
                        store(j, k.add(row, targets[j]), packed_quad(k, values, s.output_scale))
                    continue
                for lane in range(4):
                    slot = k.add(lane_base, k.const(q * 4 + lane))
                    channel = k.load(4, slot)
                    used = k.op(f"arith.cmpi sge, {channel}, {k.const(0, 'i32')} : i32")
                    with k.region(f"scf.if {used} {{"):
                        loaded = terms(slot)
                        oc = k.op(f"arith.index_cast {channel} : i32 to index")
                        row = k.index((oc, plane), (batch * f * plane, 1))
                        for j in range(per):
                            stored = value(q, lane, j, loaded)
                            if s.output_element != "f32":
                                stored = k.op(f"arith.truncf {stored} : f32 to {s.output_element}")
                            store(j, k.add(row, targets[j]), stored)

    with k.region(f"scf.if {ok} {{"):
        body()
    groups = (math.ceil(positions / (WORKGROUP * per)), s.blocks, 1)
    flops = 2 * n * positions * s.entries * s.channel_unroll * s.block_size
    return k.kernel(groups, flops)
