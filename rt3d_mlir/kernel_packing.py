"""Pack a kernel-group sparse Conv3d weight for the vectorized kernel (numpy only).

The generated kernel computes ``block_size`` filters at once, one per vector
lane. Filters are therefore regrouped into *blocks* of ``block_size`` lanes:
a kernel group's filters share one position set, so a block made of whole
groups (or of a slice of one group when ``gF > block_size``) has lanes that
never diverge. When groups are narrower than the vector (``gF <
block_size``, e.g. the paper's 4x4 groups on AVX-512), several groups share
a block and the block loops over the *union* of their kept positions; the
lanes of a group that does not keep a position multiply zeros. To keep that
waste small, ``reorder=True`` clusters groups with similar position sets
into the same block (a greedy smallest-union-growth clustering) and records
the resulting filter permutation.

A block's work is a list of *entries*: a run of ``channel_unroll`` input
channels (``U``, which divides both ``gC`` and ``C``) at one kernel position.
For each entry the packed weights hold ``U x block_size`` values (channel
major, lane minor) and an int32 table holds the offset of the entry's first
input element in the zero-padded NCDHW input (or, for an input in the
channel-blocked layout, in that: :func:`blocked_offsets`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rt3d_mlir.sparsity import expand_masks

MAX_CHANNEL_UNROLL = 16


@dataclass(frozen=True)
class PackedKernel:
    weights: np.ndarray  # float32 [entries * channel_unroll * block_size]
    entry_offsets: np.ndarray  # int32 [entries]
    block_starts: np.ndarray  # int32 [blocks + 1]
    out_channels: np.ndarray  # int32 [blocks * block_size], -1 for an unused lane
    bias: np.ndarray  # float32 [blocks * block_size]
    block_size: int
    channel_unroll: int

    @property
    def blocks(self) -> int:
        return len(self.block_starts) - 1

    @property
    def entries(self) -> int:
        return len(self.entry_offsets)

    def lane_macs_per_output(self) -> int:
        """Multiply-adds the kernel issues per output position (all lanes, zeros included)."""
        return self.entries * self.channel_unroll * self.block_size


def channel_unroll_for(channels: int, group_channels: int) -> int:
    """The largest run of channels that divides both ``gC`` and ``C`` (at most 16)."""
    unroll = math.gcd(channels, min(group_channels, channels))
    while unroll > MAX_CHANNEL_UNROLL:
        unroll = max(d for d in range(1, MAX_CHANNEL_UNROLL + 1) if unroll % d == 0)
    return unroll


def _filter_units(filters: int, group_filters: int, block_size: int) -> list[list[int]]:
    """Whole filter groups, split into slices of at most ``block_size`` filters."""
    units = []
    for start in range(0, filters, group_filters):
        group = list(range(start, min(start + group_filters, filters)))
        for s in range(0, len(group), block_size):
            units.append(group[s : s + block_size])
    return units


def _cluster_units(patterns: np.ndarray, sizes: list[int], block_size: int, reorder: bool) -> list[list[int]]:
    """Assign units to blocks of ``block_size`` lanes.

    Without ``reorder``, units fill blocks in order. With it, each block is
    seeded with the unit keeping the most entries and grown with the unit
    whose positions add the fewest new entries to the block's union.
    """
    order = list(range(len(sizes)))
    blocks: list[list[int]] = []
    if not reorder:
        current: list[int] = []
        used = 0
        for unit in order:
            if used + sizes[unit] > block_size:
                blocks.append(current)
                current, used = [], 0
            current.append(unit)
            used += sizes[unit]
        if current:
            blocks.append(current)
        return blocks
    remaining = sorted(order, key=lambda u: (-int(patterns[u].sum()), u))
    while remaining:
        seed = remaining.pop(0)
        block = [seed]
        used = sizes[seed]
        union = patterns[seed].copy()
        while remaining:
            fitting = [u for u in remaining if used + sizes[u] <= block_size]
            if not fitting:
                break
            growth = (patterns[fitting] & ~union).sum(axis=1)
            best = fitting[int(np.argmin(growth))]
            remaining.remove(best)
            block.append(best)
            used += sizes[best]
            union |= patterns[best]
        blocks.append(block)
    return blocks


def pack_kernel_groups(
    weight: np.ndarray,
    masks: np.ndarray,
    group_shape: Sequence[int],
    bias: np.ndarray | None,
    padded_spatial: Sequence[int],
    dilations: Sequence[int],
    block_size: int,
    reorder: bool = True,
) -> PackedKernel:
    """Pack ``weight`` (FCDHW) with its kernel-group ``masks`` for the vector kernel.

    ``padded_spatial`` is the (D, H, W) of the zero-padded input the kernel
    reads; entry offsets index into it.
    """
    filters, channels = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    positions = int(np.prod(kernel))
    g_f, g_c = int(group_shape[0]), int(group_shape[1])
    keep = expand_masks(masks, weight.shape, group_shape)
    masked = np.where(keep, weight, np.float32(0)).astype(np.float32).reshape(filters, channels, positions)
    unroll = channel_unroll_for(channels, g_c)
    chunks = channels // unroll

    units = _filter_units(filters, g_f, block_size)
    # A unit's pattern: which (channel run, position) entries its filters keep.
    keep_runs = keep.reshape(filters, channels, positions)[:, ::unroll, :]
    patterns = np.stack([keep_runs[unit[0]].reshape(-1) for unit in units])
    blocks = _cluster_units(patterns, [len(u) for u in units], block_size, reorder)

    d_p, h_p, w_p = (int(v) for v in padded_spatial)
    plane = d_p * h_p * w_p
    kd, kh, kw = np.unravel_index(np.arange(positions), kernel)
    position_offset = kd * dilations[0] * h_p * w_p + kh * dilations[1] * w_p + kw * dilations[2]

    weight_parts, offset_parts, starts = [], [], [0]
    out_channels = np.full(len(blocks) * block_size, -1, dtype=np.int32)
    lane_bias = np.zeros(len(blocks) * block_size, dtype=np.float32)
    for b, block in enumerate(blocks):
        lanes = [f for unit in block for f in units[unit]]
        out_channels[b * block_size : b * block_size + len(lanes)] = lanes
        if bias is not None:
            lane_bias[b * block_size : b * block_size + len(lanes)] = bias[lanes]
        union = np.any(patterns[block], axis=0).reshape(chunks, positions)
        run, pos = np.nonzero(union)  # run-major: consecutive entries share a channel run
        first_channel = run * unroll
        offset_parts.append((first_channel * plane + position_offset[pos]).astype(np.int64))
        # [entries, U, lanes] from masked[lane, first_channel + u, pos]
        channel_index = first_channel[:, None] + np.arange(unroll)[None, :]
        values = masked[np.array(lanes)[None, None, :], channel_index[:, :, None], pos[:, None, None]]
        packed = np.zeros((len(run), unroll, block_size), dtype=np.float32)
        packed[:, :, : len(lanes)] = values
        weight_parts.append(packed.reshape(-1))
        starts.append(starts[-1] + len(run))
    offsets = np.concatenate(offset_parts) if offset_parts else np.zeros(0, np.int64)
    if offsets.size and offsets.max() >= 2**31:
        raise ValueError("the padded input is too large for 32-bit entry offsets")
    return PackedKernel(
        weights=np.concatenate(weight_parts).astype(np.float32),
        entry_offsets=offsets.astype(np.int32),
        block_starts=np.asarray(starts, dtype=np.int32),
        out_channels=out_channels,
        bias=lane_bias,
        block_size=block_size,
        channel_unroll=unroll,
    )


def chunk_starts(
    entry_offsets: np.ndarray, block_starts: np.ndarray, plane: int, channels: int, chunk: int
) -> np.ndarray:
    """Where each block's entries of each run of ``chunk`` input channels start: int32
    ``[blocks * (chunks + 1)]``, block ``b``'s entries of chunk ``k`` being
    ``[t[b * (chunks + 1) + k], t[b * (chunks + 1) + k + 1])``.

    An entry's channel is its offset divided by the padded input's ``plane``
    (D x H x W; a kernel position's offset is less than a plane); a block's
    entries are ordered by channel run (:func:`pack_kernel_groups`), so a
    chunk's entries are consecutive.
    """
    chunks = -(-channels // chunk)
    bounds = np.arange(chunks + 1, dtype=np.int64) * chunk
    table = np.empty((len(block_starts) - 1, chunks + 1), dtype=np.int64)
    for b in range(len(block_starts) - 1):
        first, last = int(block_starts[b]), int(block_starts[b + 1])
        channel = np.asarray(entry_offsets[first:last], dtype=np.int64) // plane
        if np.any(np.diff(channel) < 0):
            raise ValueError(f"block {b}'s entries are not ordered by input channel")
        table[b] = first + np.searchsorted(channel, bounds, side="left")
    table[:, -1] = np.asarray(block_starts[1:], dtype=np.int64)
    return table.reshape(-1).astype(np.int32)


# The channel-blocked activation layout: an (N, C, D, H, W) activation stored as
# (N, C / L, D, H, W, L), ``L`` channels (a vector of the target) innermost, so that a vector of
# ``L`` consecutive channels at one position is one contiguous load or store.


def blocked_shape(shape: Sequence[int], lanes: int) -> tuple[int, ...]:
    """The blocked (N, C / L, D, H, W, L) shape of an (N, C, D, H, W) activation."""
    n, c, d, h, w = (int(v) for v in shape)
    if c % lanes:
        raise ValueError(f"{c} channels do not split into blocks of {lanes}")
    return (n, c // lanes, d, h, w, lanes)


def plain_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """The (N, C, D, H, W) shape of a blocked (N, C / L, D, H, W, L) activation."""
    n, blocks, d, h, w, lanes = (int(v) for v in shape)
    return (n, blocks * lanes, d, h, w)


def runs_fit_blocks(unroll: int, lanes: int) -> bool:
    """Whether runs of ``unroll`` channels (starting at multiples of it) read from a blocked input
    stay within one block or cover whole blocks: ``unroll`` divides ``lanes`` or is a multiple of
    it (channel ``u`` of a run is then ``(u // L) * L * plane + u % L`` past its first)."""
    return lanes >= 2 and (lanes % unroll == 0 or unroll % lanes == 0)


def blocked_offsets(offsets: np.ndarray, plane: int, lanes: int) -> np.ndarray:
    """Entry offsets into a plain input (channel x ``plane`` + position) as offsets into the same
    input in the blocked layout (channel block x L x plane + position x L + channel within block)."""
    channel, position = np.divmod(np.asarray(offsets, dtype=np.int64), plane)
    blocked = (channel // lanes) * lanes * plane + position * lanes + channel % lanes
    if blocked.size and blocked.max() >= 2**31:
        raise ValueError("the padded input is too large for 32-bit entry offsets")
    return blocked.astype(np.int32)


def plain_offsets(offsets: np.ndarray, plane: int, lanes: int) -> np.ndarray:
    """The inverse of :func:`blocked_offsets` (int64)."""
    block, rest = np.divmod(np.asarray(offsets, dtype=np.int64), lanes * plane)
    position, lane = np.divmod(rest, lanes)
    return (block * lanes + lane) * plane + position


# Reduced precision (``precision="bf16"`` or ``"fp16"``): activations of blocked components and the
# weights of the convs that read them are bfloat16 or IEEE half. A bf16 value is the upper half of an
# f32's bits; numpy has no such type, so arrays of them are uint16 bit patterns (IR constants: i16);
# halves are numpy float16 (IR: f16).

PRECISIONS = ("fp32", "bf16", "fp16", "int8")  # what the CPU targets build
GPU_PRECISIONS = ("fp32", "fp16", "int8")  # what the spirv target builds (bf16: GPUs compute in fp32 or fp16)
# the element type of the blocked activations in each precision (MLIR's names); int8 builds keep
# them in f32, and each int8 conv reads its input through an rt3d.quantize (rt3d-quantize-convs),
# which the conv before it stores where it is its only reader (rt3d-vectorize)
ACTIVATION_ELEMENT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
HALF_ELEMENTS = ("bf16", "f16")  # 16-bit activation elements (widened to f32 to compute)
# the largest relative deviation (max |got - want| / max |want|) a build in each precision may have
# from the float32 model; the tests and rt3d-demo enforce it (bench/RESULTS.md: measured deviations)
# (int8: from the int8 scheme run in PyTorch, quantization.simulated_int8, which is what it computes;
# usually 1e-7, but where f32 rounding moves a value across a grid midpoint one layer's input differs
# by a grid step: over rt3d-demo's 512 validation clips the largest deviation measured 4.3e-2, on a
# clip with small outputs, with the same top-1)
MAX_RELATIVE_ERROR = {"fp32": 1e-4, "bf16": 2e-2, "fp16": 5e-3, "int8": 1e-1}


def bf16_bits(values: np.ndarray) -> np.ndarray:
    """``values`` rounded to bfloat16 (to nearest, ties to even; NaN stays a quiet NaN), as uint16
    bit patterns."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(values, dtype=np.float32))
    return np.where(nan, ((bits >> 16) | 0x40).astype(np.uint16), rounded)


def bf16_values(bits: np.ndarray) -> np.ndarray:
    """The float32 values of bfloat16 bit patterns."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def bf16_pairs(weights: np.ndarray, channel_unroll: int, block_size: int) -> np.ndarray:
    """Packed weights (per entry ``U x B``, channel major, lane minor) as bf16 bit patterns with the
    channels of each pair side by side (per entry ``U/2 x B x 2``): the operand of a dot product of
    channel pairs (``vdpbf16ps``: lane ``f`` adds ``w[f][2p] x[2p] + w[f][2p+1] x[2p+1]``)."""
    if channel_unroll % 2:
        raise ValueError(f"channel runs of {channel_unroll} do not split into pairs")
    runs = np.asarray(weights, dtype=np.float32).reshape(-1, channel_unroll // 2, 2, block_size)
    return bf16_bits(runs.transpose(0, 1, 3, 2)).reshape(-1)


# int8 (``precision="int8"``, rt3d-quantize-convs): an int8 conv reads its input quantized into the
# blocked layout with blocks of INT8_QUAD channels (four int8s, one 32-bit word per position), and
# its weights as quads of the same channels per lane (:func:`int8_quads`): the operands of a dot
# product of four channels per lane (AVX-512 VNNI ``vpdpbusd``, AArch64 ``sdot``). int8 arrays are
# numpy int8 (IR: i8); an input encoded with a zero point z holds q + z (z = 128: unsigned bytes).
INT8_QUAD = 4
# the encodings of int8 inputs the kernels take (q + z as a byte): signed (AArch64 sdot, SPIR-V), and
# unsigned (x86 vpdpbusd multiplies unsigned input bytes by signed weights)
INT8_ZERO_POINTS = (0, 128)
INT8_MAX = 127  # int8 values of the scheme (rt3d_mlir.quantization) lie in [-INT8_MAX, INT8_MAX]


def quantized_lanes(
    weights: np.ndarray, block_starts: np.ndarray, channel_unroll: int, block_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Packed f32 weights (per entry ``U x B``, channel major, lane minor; the entries of block ``b``
    are ``block_starts[b]:block_starts[b+1]``) quantized by the int8 scheme, symmetric per lane
    (output channel: ``s = max |w| / 127``, 1 for an empty lane): (the int8 weights in the same
    layout; each lane's scale, f32; each lane's sum of its int8 weights, int64: what an input zero
    point adds to the lane's dot products)."""
    runs = np.asarray(weights, dtype=np.float32).reshape(-1, channel_unroll, block_size)
    starts = np.asarray(block_starts, dtype=np.int64)
    blocks = len(starts) - 1
    block_of_entry = np.repeat(np.arange(blocks), np.diff(starts))
    peak = np.zeros((blocks, block_size), np.float32)
    if len(runs):
        np.maximum.at(peak, block_of_entry, np.abs(runs).max(axis=1))
    scales = np.where(peak > 0, peak / INT8_MAX, 1).astype(np.float32)
    q = np.clip(np.rint(runs / scales[block_of_entry][:, None, :]), -INT8_MAX, INT8_MAX).astype(np.int8)
    sums = np.zeros((blocks, block_size), np.int64)
    if len(runs):
        np.add.at(sums, block_of_entry, q.astype(np.int64).sum(axis=1))
    return q.reshape(-1), scales.reshape(-1), sums.reshape(-1)


def int8_grid_weights(
    weights: np.ndarray, block_starts: np.ndarray, channel_unroll: int, block_size: int
) -> np.ndarray:
    """Packed f32 weights moved onto their per-lane int8 grids (:func:`quantized_lanes`), as f32: what
    a conv computes in f32 when no int8 kernel takes it."""
    q, scales, _ = quantized_lanes(weights, block_starts, channel_unroll, block_size)
    entry_scales = np.repeat(scales.reshape(-1, block_size), np.diff(block_starts), axis=0)
    runs = q.reshape(-1, channel_unroll, block_size) * entry_scales[:, None, :]
    return runs.reshape(-1).astype(np.float32)


def int8_quads(q: np.ndarray, channel_unroll: int, block_size: int) -> np.ndarray:
    """Packed int8 weights (per entry ``U x B``) with the channels of each quad side by side (per
    entry ``U/4 x B x 4``): the operand of a dot product of four channels per lane."""
    if channel_unroll % INT8_QUAD:
        raise ValueError(f"channel runs of {channel_unroll} do not split into quads")
    quads = np.asarray(q, dtype=np.int8).reshape(-1, channel_unroll // INT8_QUAD, INT8_QUAD, block_size)
    return np.ascontiguousarray(quads.transpose(0, 1, 3, 2)).reshape(-1)
