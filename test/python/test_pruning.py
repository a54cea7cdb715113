"""The pruning library: units, masks, penalty, hard pruning, masked training."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from rt3d_mlir.models import build_model
from rt3d_mlir.pruning.distributed import Distributed
from rt3d_mlir.pruning.flops import conv_flops, flops_reduction
from rt3d_mlir.pruning.hard_prune import hard_prune, rates_for_flops_target, unit_mask_for_rate
from rt3d_mlir.pruning.masking import MASK_BUFFER, masked_modules, state_dict_without_masks
from rt3d_mlir.pruning.regularizer import GroupPenalty
from rt3d_mlir.pruning.schemes import PruningConfig, SparsityScheme, parse_layer_config, select_layers
from rt3d_mlir.pruning.training import train_epoch
from rt3d_mlir.pruning.units import expand_unit_mask, unit_norms, unit_sizes
from rt3d_mlir.sparsity import group_shape_fits, is_vanilla, kernel_group_masks

GROUP_SHAPES = [(1, 1), (2, 2), (4, 4), (8, 4), (4, 8), (3, 5), (16, 16)]
ODD_WEIGHT = (10, 7, 3, 3, 3)


@pytest.mark.parametrize("group_shape", GROUP_SHAPES)
@pytest.mark.parametrize("kind, unit", [("kgs", "position"), ("kgs", "spatial"), ("vanilla", "position")])
def test_masks_have_exactly_the_schemes_structure(group_shape, kind, unit):
    scheme = SparsityScheme(kind, group_shape, unit)
    weight = torch.randn(ODD_WEIGHT)
    unit_mask = unit_mask_for_rate(weight, scheme, 2.5)
    mask = expand_unit_mask(unit_mask, ODD_WEIGHT, scheme)
    assert mask.shape == ODD_WEIGHT
    pruned = (weight * mask).numpy()
    group_masks = kernel_group_masks(pruned, group_shape)
    # Every kernel of a group shares the group's positions: the per-weight mask is
    # exactly the expansion of the group mask.
    g_f, g_c = group_shape
    for i, j in itertools.product(range(group_masks.shape[0]), range(group_masks.shape[1])):
        block = mask[i * g_f:(i + 1) * g_f, j * g_c:(j + 1) * g_c].numpy()
        assert (block == group_masks[i, j][None, None]).all()
    if kind == "vanilla":
        assert is_vanilla(group_masks)
    if kind == "kgs" and unit == "spatial":  # a (kh, kw) is kept through the whole depth
        assert (group_masks == group_masks[:, :, :1]).all()
    kept = float(mask.float().mean())
    if unit_mask.numel() > 1:
        assert 0 < kept < 1


def test_unit_sizes_count_edge_groups_correctly():
    scheme = SparsityScheme("kgs", (4, 4))
    sizes = unit_sizes(ODD_WEIGHT, scheme)
    assert sizes.shape == (3, 2, 3, 3, 3)
    assert float(sizes.sum()) == np.prod(ODD_WEIGHT)
    assert sizes[0, 0, 0, 0, 0] == 16 and sizes[2, 1, 0, 0, 0] == 2 * 3


def test_unit_norms_match_a_direct_computation():
    scheme = SparsityScheme("kgs", (2, 3), "spatial")
    weight = torch.randn(4, 6, 3, 2, 2)
    norms = unit_norms(weight, scheme)
    direct = weight[2:4, 3:6, :, 1, 0].pow(2).sum().sqrt()
    assert torch.isclose(norms[1, 1, 1, 0], direct)


def test_hard_pruning_keeps_the_largest_units():
    scheme = SparsityScheme("kgs", (2, 2))
    weight = torch.ones(2, 2, 1, 1, 4)
    weight[..., 0] *= 5
    weight[..., 1] *= 0.1
    weight[..., 2] *= 3
    weight[..., 3] *= 0.2
    unit_mask = unit_mask_for_rate(weight, scheme, 2.0)
    assert unit_mask.flatten().tolist() == [True, False, True, False]


@pytest.mark.parametrize("arch, target", [("c3d", 2.6), ("c3d", 4.0), ("r2plus1d", 2.6), ("s3d", 3.0)])
@pytest.mark.parametrize("group_shape", [(4, 4), (8, 4)])
def test_hard_pruning_reaches_the_flops_target_within_2_percent(arch, target, group_shape):
    size = {"c3d": (16, 32, 32), "r2plus1d": (8, 32, 32), "s3d": (8, 64, 64)}[arch]
    model = build_model(arch, width=0.25, input_size=size).eval()
    shape = (1, 3, *size)
    pruned, skipped = select_layers(model, PruningConfig())
    assert len(skipped) == 1
    layers = conv_flops(model, shape)
    rates = rates_for_flops_target(layers, pruned, target)
    hard_prune(model, SparsityScheme("kgs", group_shape), rates)
    achieved = flops_reduction(conv_flops(model, shape))
    assert abs(achieved - target) / target < 0.02, achieved


def test_unreachable_target_is_an_error():
    model = build_model("c3d", width=0.25, input_size=(16, 32, 32))
    layers = conv_flops(model, (1, 3, 16, 32, 32))
    pruned = [layer.name for layer in layers[1:2]]
    with pytest.raises(ValueError, match="out of reach"):
        rates_for_flops_target(layers, pruned, 10.0)


def test_layer_config_list():
    layers = parse_layer_config([{"module": "features.conv2a", "rate": 3},
                                 {"tensor_fqn": "features.conv3a.weight", "rate": 2}])
    assert [(layer.module, layer.rate) for layer in layers] == [("features.conv2a", 3.0),
                                                                ("features.conv3a", 2.0)]
    model = build_model("c3d", width=0.25, input_size=(16, 32, 32))
    pruned, skipped = select_layers(model, PruningConfig(layers=layers))
    assert pruned == ["features.conv2a", "features.conv3a"] and len(skipped) == 6
    with pytest.raises(ValueError, match="not Conv3d, Conv2d or Linear"):
        select_layers(model, PruningConfig(layers=parse_layer_config([{"module": "features.pool1"}])))
    # Linear layers are pruned when named, or with a FLOPs target when asked
    pruned, _ = select_layers(model, PruningConfig(layers=parse_layer_config([{"module": "classifier.fc6"}])))
    assert pruned == ["classifier.fc6"]
    default, _ = select_layers(model, PruningConfig())
    with_linear, _ = select_layers(model, PruningConfig(linear=True))
    assert with_linear == [*default, "classifier.fc6", "classifier.fc7", "classifier.fc8"]


def test_reweighted_penalty_pushes_small_units_harder():
    model = nn.Sequential(nn.Conv3d(4, 4, (1, 1, 2), bias=False))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].weight[:, :, :, :, 1] = 0.01
    scheme = SparsityScheme("kgs", (4, 4))
    penalty = GroupPenalty(model, ["0"], scheme, strength=1.0)
    penalty().backward()
    grad = model[0].weight.grad
    # Per weight, the gradient is P_u * w / ||W_u||: much larger for the small unit.
    assert float(grad[0, 0, 0, 0, 1]) > 100 * float(grad[0, 0, 0, 0, 0])
    before = penalty.factors["0"].clone()
    with torch.no_grad():
        model[0].weight.mul_(2)
    penalty.update_factors()
    assert torch.allclose(penalty.factors["0"], before / 4, rtol=1e-3)


def test_pruned_weights_stay_exactly_zero_through_retraining():
    torch.manual_seed(0)
    model = build_model("c3d", width=1 / 8, input_size=(16, 16, 16), num_classes=4)
    pruned, _ = select_layers(model, PruningConfig())
    rates = {name: 3.0 for name in pruned}
    hard_prune(model, SparsityScheme("kgs", (4, 4)), rates)
    kept_before = {name: m.weight.detach().clone() for name, m in masked_modules(model)}
    data = torch.utils.data.TensorDataset(torch.randn(16, 3, 16, 16, 16), torch.randint(0, 4, (16,)))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(2):
        train_epoch(model, loader, optimizer, Distributed(), masked=True)
    for name, module in masked_modules(model):
        mask = getattr(module, MASK_BUFFER)
        assert bool((module.weight[~mask] == 0).all()), name  # pruned: exactly zero
        assert not torch.equal(module.weight[mask], kept_before[name][mask]), name  # kept: trained
    state = state_dict_without_masks(model)
    assert not any(key.endswith(MASK_BUFFER) for key in state)


def test_x3d_depthwise_convs_prune_with_the_same_schemes():
    """X3D's depthwise convs take KGS like any conv (a kernel group is a block of channels sharing
    kept positions) and can be skipped by name; the model reaches the FLOPs target."""
    size = (4, 32, 32)
    model = build_model("x3d", variant="xs", width=0.5, input_size=size, num_classes=4).eval()
    shape = (1, 3, *size)
    modules = dict(model.named_modules())
    depthwise = [n for n, m in modules.items() if isinstance(m, nn.Conv3d) and 1 < m.groups == m.in_channels]
    pruned, skipped = select_layers(model, PruningConfig(skip=(depthwise[0],)))
    assert skipped == [depthwise[0]] and set(depthwise[1:]) <= set(pruned)
    rates = rates_for_flops_target(conv_flops(model, shape), pruned, 2.0)
    hard_prune(model, SparsityScheme("kgs", (4, 4)), rates)
    assert abs(flops_reduction(conv_flops(model, shape)) - 2.0) / 2.0 < 0.02
    assert bool((modules[depthwise[0]].weight != 0).all())
    weight = modules[depthwise[1]].weight.detach()  # (C, 1, 3, 3, 3)
    assert 0 < int((weight != 0).sum()) < weight.numel()
    for start in range(0, weight.shape[0] - 3, 4):
        kept = (weight[start : start + 4] != 0).reshape(4, -1)
        assert bool((kept == kept[0]).all())  # four channels, one set of kept positions


# Weights of the three layer types, odd sizes (edge blocks): Conv3d, Conv2d (7x7, 1x1), Linear.
LAYER_WEIGHTS = [(10, 7, 3, 3, 3), (12, 5, 7, 7), (9, 6, 1, 1), (11, 37)]


@pytest.mark.parametrize("shape", LAYER_WEIGHTS)
@pytest.mark.parametrize("block", [(4, 8), (3, 5), (16, 16)])
def test_block_columns_are_pruned_whole_and_balanced(shape, block):
    """Block-based pruning: every column of a bR x bC block of the weight matrix (rows: filters,
    columns: flattened (channel, kernel position)) is kept or pruned for all its rows; every
    block keeps its columns / rate rounded down or up (at least one), and the layer 1 / rate of
    its columns. Its zeros are KGS groups of bR x 1: the compiler recognizes them as such."""
    scheme = SparsityScheme("block", block)
    assert scheme.unit == "column"
    weight = torch.randn(shape)
    rate = 2.5
    mask = expand_unit_mask(unit_mask_for_rate(weight, scheme, rate), shape, scheme)
    assert mask.shape == shape
    rows, columns = block
    matrix = mask.reshape(shape[0], -1)
    width = matrix.shape[1]
    for r0 in range(0, shape[0], rows):
        part = matrix[r0 : r0 + rows]
        assert bool((part == part[:1]).all())  # whole columns
        for c0 in range(0, width, columns):
            kept = int(part[0, c0 : c0 + columns].sum())
            least = max(1, int(min(columns, width - c0) / rate))
            assert kept in (least, least + 1)
    row_blocks = len(range(0, shape[0], rows))
    least = row_blocks * sum(max(1, int(min(columns, width - c0) / rate)) for c0 in range(0, width, columns))
    assert int(matrix[::rows].sum()) == max(least, round(row_blocks * width / rate))
    pruned = (weight * mask).reshape(*shape[:2], *(1,) * (5 - len(shape)), *shape[2:]).numpy()
    assert group_shape_fits(pruned, (rows, 1))


@pytest.mark.parametrize("shape", LAYER_WEIGHTS)
def test_block_rows_are_pruned_whole(shape):
    scheme = SparsityScheme("block", (4, 6), "row")
    weight = torch.randn(shape)
    unit_mask = unit_mask_for_rate(weight, scheme, 2.0)
    assert unit_sizes(shape, scheme).sum() == np.prod(shape)
    matrix = expand_unit_mask(unit_mask, shape, scheme).reshape(shape[0], -1)
    for c0 in range(0, matrix.shape[1], 6):
        part = matrix[:, c0 : c0 + 6]
        assert bool((part == part[:, :1]).all())  # a filter's run of 6 columns together
    assert 0.3 < float(matrix.float().mean()) < 0.7


def test_schemes_name_their_units():
    assert SparsityScheme("kgs").unit == "position"
    with pytest.raises(ValueError, match="unknown pruning unit 'column' for kgs"):
        SparsityScheme("kgs", (4, 4), "column")
    with pytest.raises(ValueError, match="choose from column, row"):
        SparsityScheme("block", (4, 4), "position")


def test_block_pruning_applies_to_conv2d_and_linear_with_the_same_machinery():
    """A 2D model with a Linear head: its layers take the reweighted penalty, hard pruning to a
    FLOPs target counting the Linear layers, and masked retraining keeps the pruned weights zero."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 5, padding=2, stride=2), nn.ReLU(),
        nn.Conv2d(32, 32, 1), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 4),
    )
    shape = (1, 3, 16, 16)
    scheme = SparsityScheme("block", (8, 16))
    pruned, skipped = select_layers(model, PruningConfig(scheme=scheme, linear=True))
    assert skipped == ["0"] and pruned == ["2", "4", "7", "9"]
    layers = conv_flops(model, shape, linear=True)
    assert [layer.name for layer in layers] == ["0", "2", "4", "7", "9"]
    assert layers[3].dense_macs == 32 * 8 * 8 * 64
    penalty = GroupPenalty(model, pruned, scheme, strength=1.0)
    penalty().backward()
    assert all(model.get_submodule(name).weight.grad is not None for name in pruned)
    model.zero_grad()
    rates = rates_for_flops_target(layers, pruned, 2.0)
    hard_prune(model, scheme, rates)
    achieved = flops_reduction(conv_flops(model, shape, linear=True))
    assert abs(achieved - 2.0) / 2.0 < 0.05, achieved
    data = torch.utils.data.TensorDataset(torch.randn(8, *shape[1:]), torch.randint(0, 4, (8,)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_epoch(model, torch.utils.data.DataLoader(data, batch_size=4), optimizer, Distributed(), masked=True)
    for name, module in masked_modules(model):
        assert bool((module.weight[~getattr(module, MASK_BUFFER)] == 0).all()), name


def test_group_lasso_starts_at_the_reweighted_strength_and_stays_fixed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(4, 8, 3), nn.Conv3d(8, 8, 3))
    scheme = SparsityScheme("kgs", (4, 4))
    reweighted = GroupPenalty(model, ["0", "1"], scheme, strength=1e-3)
    lasso = GroupPenalty(model, ["0", "1"], scheme, strength=1e-3, kind="group_lasso")
    assert float(lasso().detach()) == pytest.approx(float(reweighted().detach()), rel=1e-5)
    factors = {name: value.unique() for name, value in lasso.factors.items()}
    assert all(len(value) == 1 for value in factors.values())  # one factor for every unit
    assert torch.equal(factors["0"], factors["1"])
    with torch.no_grad():
        model[0].weight.mul_(3)
    lasso.update_factors()
    assert torch.equal(lasso.factors["0"].unique(), factors["0"])  # fixed after the start
    with pytest.raises(ValueError, match="unknown group penalty 'none'"):
        GroupPenalty(model, ["0"], scheme, 1.0, kind="none")


@pytest.mark.parametrize("kind", ["reweighted", "group_lasso"])
def test_penalty_per_weight_pulls_every_unit_size_alike(kind):
    # Equal weights everywhere (c): per weight, each weight's gradient is the same whatever the
    # size of its unit (edge units of 20 channels in 16-wide groups included), and the penalty
    # starts at the same value for every scheme; per unit, small units are pulled much harder.
    c, strength = 0.5, 1e-3
    schemes = [SparsityScheme("kgs", (4, 4)), SparsityScheme("kgs", (16, 16)),
               SparsityScheme("vanilla", (4, 4))]
    grads, values = {}, {}
    for per in ("unit", "weight"):
        for index, scheme in enumerate(schemes):
            model = nn.Sequential(nn.Conv3d(20, 20, 3, bias=False))
            nn.init.constant_(model[0].weight, c)
            penalty = GroupPenalty(model, ["0"], scheme, strength, eps=1e-12, kind=kind, per=per)
            value = penalty()
            value.backward()
            grads[per, index] = model[0].weight.grad
            values[per, index] = float(value.detach())
    reference = values["weight", 0]
    expected = strength / c**2 if kind == "reweighted" else None
    for index in range(len(schemes)):
        grad = grads["weight", index]
        assert values["weight", index] == pytest.approx(reference, rel=1e-5)
        assert torch.allclose(grad, torch.full_like(grad, float(grad.flatten()[0])), rtol=1e-5)
        if expected is not None:
            assert float(grad.flatten()[0]) == pytest.approx(expected, rel=1e-4)
    if kind == "reweighted":  # 16 and 256 weights per unit: (256 / 16) ** 1.5 = 64 times
        ratio = grads["unit", 0][0, 0, 0, 0, 0] / grads["unit", 1][0, 0, 0, 0, 0]
        assert float(ratio) == pytest.approx(64, rel=1e-4)
    with pytest.raises(ValueError, match="unknown penalty weighting 'layer'"):
        GroupPenalty(model, ["0"], schemes[0], 1.0, per="layer")


def test_penalty_takes_a_scheme_per_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(16, 32, 3), nn.Conv3d(32, 32, 3))
    small, large = SparsityScheme("kgs", (4, 4)), SparsityScheme("kgs", (16, 16))
    both = GroupPenalty(model, ["0", "1"], {"0": small, "1": large}, 1e-3, per="weight")
    alone = [GroupPenalty(model, ["0"], small, 1e-3, per="weight"),
             GroupPenalty(model, ["1"], large, 1e-3, per="weight")]
    assert float(both().detach()) == pytest.approx(sum(float(p().detach()) for p in alone), rel=1e-5)
    assert both.factors["0"].shape == alone[0].factors["0"].shape  # 4x4 units in layer 0
    assert both.factors["1"].shape == alone[1].factors["1"].shape  # 16x16 units in layer 1


def test_filter_pruning_removes_whole_output_channels():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(6, 12, 3), nn.Conv2d(4, 10, 3), nn.Linear(12, 8))
    scheme = SparsityScheme("filter")
    assert scheme.unit == "filter" and scheme.to_dict()["group_shape"] is None
    assert scheme.compiled_group_shape is None  # the compiler has no filter kernels: it looks itself
    norms = {name: model.get_submodule(name).weight.detach().flatten(1).norm(dim=1)
             for name in ("0", "1", "2")}
    hard_prune(model, scheme, {"0": 3.0, "1": 2.0, "2": 4.0})
    for name, kept in (("0", 4), ("1", 5), ("2", 2)):
        weight = model.get_submodule(name).weight.detach().flatten(1)
        alive = weight.abs().sum(1) > 0
        assert int(alive.sum()) == kept
        assert torch.equal(alive, torch.isin(torch.arange(len(alive)), norms[name].topk(kept).indices))
        assert bool(((weight != 0) | ~alive[:, None]).all())  # a kept filter keeps every weight


def test_unstructured_pruning_is_torch_ao_magnitude_pruning():
    from torch.ao.pruning import WeightNormSparsifier

    torch.manual_seed(0)
    weight = torch.randn(ODD_WEIGHT)
    scheme = SparsityScheme("unstructured")
    unit_mask = unit_mask_for_rate(weight, scheme, 4.0)
    mask = expand_unit_mask(unit_mask, ODD_WEIGHT, scheme)
    kept = weight[mask].abs()
    assert float(kept.min()) >= float(weight[~mask].abs().max())  # by magnitude
    assert int(mask.sum()) == pytest.approx(weight.numel() / 4, abs=1)
    # the mask is the one the sparsifier itself gives the weight as a matrix
    holder = nn.Module()
    holder.layer = nn.Linear(weight[0].numel(), weight.shape[0], bias=False)
    with torch.no_grad():
        holder.layer.weight.copy_(weight.flatten(1))
    sparsifier = WeightNormSparsifier(sparsity_level=0.75, sparse_block_shape=(1, 1), zeros_per_block=1)
    sparsifier.prepare(holder, [{"tensor_fqn": "layer.weight"}])
    sparsifier.step()
    assert torch.equal(holder.layer.parametrizations.weight[0].mask.bool().reshape(ODD_WEIGHT), mask)
