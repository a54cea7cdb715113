"""The packed layout of rt3d-pack-kernel-groups, checked by unpacking it (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from rt3d_mlir.kernel_packing import (
    bf16_bits,
    bf16_pairs,
    bf16_values,
    channel_unroll_for,
    chunk_starts,
    pack_kernel_groups,
)
from rt3d_mlir.pruning.random_masks import random_group_masks
from rt3d_mlir.sparsity import expand_masks


def unpack(packed, weight_shape, padded_spatial) -> np.ndarray:
    """Rebuild the dense masked FCDHW weight from the packed tables."""
    d_p, h_p, w_p = padded_spatial
    plane = d_p * h_p * w_p
    dense = np.zeros(weight_shape, dtype=np.float32)
    lanes, unroll = packed.block_size, packed.channel_unroll
    weights = packed.weights.reshape(-1, unroll, lanes)
    for b in range(packed.blocks):
        channels = packed.out_channels[b * lanes : (b + 1) * lanes]
        for e in range(packed.block_starts[b], packed.block_starts[b + 1]):
            offset = int(packed.entry_offsets[e])
            c0, rest = divmod(offset, plane)
            z, rest = divmod(rest, h_p * w_p)
            y, x = divmod(rest, w_p)
            for lane, filt in enumerate(channels):
                if filt < 0:
                    assert not weights[e, :, lane].any()
                    continue
                dense[filt, c0 : c0 + unroll, z, y, x] += weights[e, :, lane]
    return dense


@pytest.mark.parametrize(
    "weight_shape, group_shape, lanes, keep",
    [
        ((32, 16, 3, 3, 3), (16, 16), 16, 0.4),  # one group per block
        ((32, 16, 3, 3, 3), (4, 4), 16, 0.4),  # four groups share a block
        ((24, 8, 3, 3, 3), (8, 4), 16, 0.3),  # a partly filled last block
        ((10, 3, 3, 3, 3), (4, 4), 8, 0.5),  # odd filter and channel counts
        ((16, 8, 1, 3, 3), (16, 8), 4, 1.0),  # dense, groups wider than the vector
    ],
)
def test_packing_keeps_exactly_the_masked_weight(weight_shape, group_shape, lanes, keep):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal(weight_shape).astype(np.float32)
    masks = random_group_masks(weight_shape, group_shape, keep, "kgs", rng)
    bias = rng.standard_normal(weight_shape[0]).astype(np.float32)
    padded = (6, 7, 8)
    packed = pack_kernel_groups(weight, masks, group_shape, bias, padded, (1, 1, 1), lanes)
    expected = np.where(expand_masks(masks, weight_shape, group_shape), weight, 0)
    np.testing.assert_array_equal(unpack(packed, weight_shape, padded), expected)
    # Every filter has exactly one lane, and its bias goes with it.
    used = packed.out_channels[packed.out_channels >= 0]
    assert sorted(used.tolist()) == list(range(weight_shape[0]))
    np.testing.assert_array_equal(packed.bias[packed.out_channels >= 0], bias[used])
    assert packed.weights.size == packed.entries * packed.channel_unroll * lanes


def test_clustering_reduces_the_union_of_positions():
    """Groups with two alternating position sets: clustering puts like with like."""
    shape, group = (64, 16, 3, 3, 3), (4, 16)
    rng = np.random.default_rng(1)
    a = rng.random(27) < 0.3
    b = ~a
    masks = np.stack([np.broadcast_to((a if i % 2 else b).reshape(3, 3, 3), (1, 3, 3, 3)) for i in range(16)])
    weight = rng.standard_normal(shape).astype(np.float32)
    args = (weight, masks, group, None, (5, 5, 5), (1, 1, 1), 16)
    clustered = pack_kernel_groups(*args, reorder=True)
    in_order = pack_kernel_groups(*args, reorder=False)
    kept = int(np.count_nonzero(expand_masks(masks, shape, group)))
    assert clustered.lane_macs_per_output() == kept  # no lane multiplies a removed weight
    assert in_order.lane_macs_per_output() == 27 * 16 * 64  # every block needs all 27 positions
    assert not np.array_equal(clustered.out_channels, np.arange(64))


def test_channel_unroll_divides_group_and_channels():
    assert channel_unroll_for(64, 16) == 16
    assert channel_unroll_for(64, 4) == 4
    assert channel_unroll_for(3, 16) == 3  # the group covers all channels
    assert channel_unroll_for(12, 8) == 4
    assert channel_unroll_for(128, 32) == 16


@pytest.mark.parametrize("chunk", [4, 8, 12, 64])
def test_chunk_starts_split_each_blocks_entries_by_input_channel(chunk):
    """Each block's entries of channel chunk k are exactly its entries whose channel lies in
    [k * chunk, (k + 1) * chunk), and the chunks of a block cover its entries in order."""
    weight_shape, group_shape = (24, 20, 3, 3, 3), (4, 4)
    rng = np.random.default_rng(1)
    weight = rng.standard_normal(weight_shape).astype(np.float32)
    masks = random_group_masks(weight_shape, group_shape, 0.4, "kgs", rng)
    padded = (6, 7, 8)
    plane = 6 * 7 * 8
    packed = pack_kernel_groups(weight, masks, group_shape, None, padded, (1, 1, 1), 4)
    table = chunk_starts(packed.entry_offsets, packed.block_starts, plane, 20, chunk)
    chunks = -(-20 // chunk)
    assert table.dtype == np.int32 and table.shape == (packed.blocks * (chunks + 1),)
    for b in range(packed.blocks):
        row = table[b * (chunks + 1) : (b + 1) * (chunks + 1)]
        assert row[0] == packed.block_starts[b] and row[-1] == packed.block_starts[b + 1]
        assert np.all(np.diff(row) >= 0)
        for k in range(chunks):
            channels = packed.entry_offsets[row[k] : row[k + 1]] // plane
            assert np.all((channels >= k * chunk) & (channels < (k + 1) * chunk))


def test_chunk_starts_refuse_entries_out_of_channel_order():
    offsets = np.array([2 * 100, 0], dtype=np.int32)  # channel 2, then channel 0
    with pytest.raises(ValueError, match="not ordered by input channel"):
        chunk_starts(offsets, np.array([0, 2], dtype=np.int32), 100, 4, 2)


def test_bf16_rounding_is_torchs_to_nearest_even():
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(0).standard_normal(100_000).astype(np.float32) * 1e3
    values[:6] = [np.inf, -np.inf, 0.0, -0.0, 3.4e38, 1e-40]  # overflow rounds to inf, denormals kept
    want = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(bf16_bits(values), want)
    assert np.isnan(bf16_values(bf16_bits(np.array([np.nan], np.float32))))
    assert np.array_equal(bf16_values(bf16_bits(values)), torch.from_numpy(values).to(torch.bfloat16).float())


def test_bf16_pairs_put_each_filters_two_channels_side_by_side():
    # 2 entries x 4 channels x 3 lanes: weight[e, c, f] = 100 e + 10 c + f (exact in bf16)
    e, c, f = np.meshgrid(np.arange(2), np.arange(4), np.arange(3), indexing="ij")
    weights = (100 * e + 10 * c + f).astype(np.float32).reshape(-1)
    pairs = bf16_values(bf16_pairs(weights, 4, 3)).reshape(2, 2, 3, 2)  # entry, pair, lane, channel
    for entry, pair, lane, half in np.ndindex(pairs.shape):
        assert pairs[entry, pair, lane, half] == 100 * entry + 10 * (2 * pair + half) + lane
    with pytest.raises(ValueError, match="pairs"):
        bf16_pairs(weights, 3, 4)
