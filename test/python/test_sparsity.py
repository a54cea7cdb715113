"""The kernel-group sparsity definitions (rt3d_mlir.sparsity)."""

import numpy as np
import pytest

from rt3d_mlir.sparsity import (
    choose_group_shape,
    expand_masks,
    group_shape_fits,
    is_vanilla,
    kernel_group_masks,
    mask_shape,
    parse_group_shape,
)


def test_mask_shape_rounds_edge_groups_up():
    assert mask_shape((10, 7, 3, 3, 3), (4, 4)) == (3, 2, 3, 3, 3)
    assert mask_shape((16, 3, 1, 7, 7), (8, 4)) == (2, 1, 1, 7, 7)


def test_masks_and_expansion_round_trip_with_edge_groups():
    rng = np.random.default_rng(1)
    masks = rng.random((3, 2, 2, 1, 3)) < 0.5
    shape = (10, 7, 2, 1, 3)
    full = expand_masks(masks, shape, (4, 4))
    assert full.shape == shape
    weight = rng.standard_normal(shape).astype(np.float32) * full
    np.testing.assert_array_equal(kernel_group_masks(weight, (4, 4)), masks)
    # Filter 9 sits in the third (edge) filter group, channel 6 in the second.
    assert (full[9, 6] == masks[2, 1]).all()


def test_a_position_is_kept_if_any_kernel_of_the_group_uses_it():
    weight = np.zeros((2, 2, 1, 1, 2), np.float32)
    weight[1, 0, 0, 0, 1] = 3.0
    assert kernel_group_masks(weight, (2, 2)).tolist() == [[[[[False, True]]]]]


def test_fit_and_choice_of_group_shape():
    rng = np.random.default_rng(2)
    masks = rng.random((4, 3, 3, 3, 3)) < 0.4
    shape = (16, 12, 3, 3, 3)
    weight = rng.standard_normal(shape).astype(np.float32) * expand_masks(masks, shape, (4, 4))
    assert group_shape_fits(weight, (4, 4))
    assert group_shape_fits(weight, (2, 2))
    assert not group_shape_fits(weight, (8, 4))
    assert choose_group_shape(weight) == (4, 4)
    dense = rng.standard_normal((6, 5, 1, 3, 3)).astype(np.float32)
    assert choose_group_shape(dense) == (6, 5)  # largest candidate, clipped to the weight


def test_vanilla_detection():
    kgs = np.array([[[[[True, False]]]]])
    vanilla = np.array([[[[[True, True]]], [[[False, False]]]]])
    assert not is_vanilla(kgs)
    assert is_vanilla(vanilla)


@pytest.mark.parametrize("text", ["4", "4x", "0x4", "ax4", "4x4x4"])
def test_bad_group_shapes_are_rejected(text):
    with pytest.raises(ValueError):
        parse_group_shape(text)


def test_parse_group_shape():
    assert parse_group_shape("8x4") == (8, 4)


def test_a_few_incidental_zeros_do_not_force_tiny_groups():
    """A dense 512x512x3x3x3 weight with two exact zeros (as random init can give) stays 16x16."""
    weight = np.random.default_rng(0).standard_normal((512, 512, 3, 3, 3)).astype(np.float32)
    weight[3, 7, 0, 1, 2] = 0.0
    weight[300, 11, 2, 2, 2] = 0.0
    assert choose_group_shape(weight) == (16, 16)
    # Real structure still decides: a checkerboard of removed 4x4 group positions.
    f, c = np.meshgrid(np.arange(512), np.arange(512), indexing="ij")
    weight[..., 1, 1, 1][(f // 4 + c // 4) % 2 == 0] = 0.0
    assert choose_group_shape(weight) == (4, 4)
