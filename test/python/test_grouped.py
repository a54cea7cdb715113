"""Grouped and depthwise 3D convolutions, and X3D (built from them), on every target."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REL_TOL, randomize_batch_norms, relative_error, torch_output
from torch import nn

import rt3d_mlir
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning import apply_random_masks


class GroupedNet(nn.Module):
    """A pointwise conv, a depthwise 3x3x3 (+BN, ReLU), a depthwise with channel multiplier 2 and
    temporal stride, and a grouped (4 groups) conv with bias."""

    def __init__(self) -> None:
        super().__init__()
        self.pointwise = nn.Conv3d(3, 8, 1)
        self.depthwise = nn.Conv3d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn = nn.BatchNorm3d(8)
        self.multiplier = nn.Conv3d(8, 16, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0), groups=8)
        self.grouped = nn.Conv3d(16, 12, (1, 3, 3), padding=(0, 1, 1), groups=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.depthwise(self.pointwise(x))))
        return self.grouped(torch.relu(self.multiplier(x)))


@pytest.fixture
def grouped_net() -> tuple[nn.Module, torch.Tensor]:
    model = GroupedNet()
    randomize_batch_norms(model)
    return model.eval(), torch.randn(1, 3, 5, 9, 11)


@pytest.mark.parametrize("target", ["host", "aarch64", "spirv"])
def test_grouped_and_depthwise_convolutions_match_torch(grouped_net, target, tmp_path):
    model, x = grouped_net
    out = tmp_path / f"grouped.{target}"
    rt3d_mlir.compile(model, x, output=out, target=target)
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


def test_grouped_kernels_compute_only_the_groups(grouped_net, tmp_path):
    """Each grouped conv's kernel does its groups' multiply-adds, no more, and reports the grouped
    conv's own dense FLOPs (not those of the block-diagonal weight it is compiled as)."""
    model, x = grouped_net
    out = tmp_path / "grouped.so"
    rt3d_mlir.compile(model, x, output=out)
    compiled = rt3d_mlir.load(out)
    compiled.set_profiling(True)
    compiled(x.numpy())
    convs = [p for p in compiled.kernel_profile() if "conv" in p.name]
    expected = []
    shape = x.shape
    with torch.no_grad():
        for conv in (model.pointwise, model.depthwise, model.multiplier, model.grouped):
            y = conv(torch.zeros(shape))
            expected.append(2 * conv.weight.numel() * y[0, 0].numel())
            shape = y.shape
    assert sorted(p.flops for p in convs) == sorted(expected)
    assert sorted(p.dense_flops for p in convs) == sorted(expected)


def test_kgs_within_depthwise_groups(tmp_path):
    """A depthwise kernel group is a block of channels sharing kept positions: pruned that way, the
    compiled model still matches and its profile counts the kept multiply-adds. (The depthwise kernel
    visits the positions some filter keeps: it is memory-bound, and skipping a tap per channel group
    would not make it faster.)"""
    model = nn.Sequential(nn.Conv3d(16, 16, 3, padding=1, groups=16), nn.ReLU()).eval()
    masks = apply_random_masks(model, (4, 1), 0.4, "kgs", seed=3)
    assert masks and next(iter(masks.values())).shape == (4, 1, 3, 3, 3)
    x = torch.randn(1, 16, 4, 8, 8)
    out = tmp_path / "pruned.so"
    rt3d_mlir.compile(model, x, output=out)
    compiled = rt3d_mlir.load(out)
    assert relative_error(compiled(x.numpy()), torch_output(model, x)) <= REL_TOL
    compiled.set_profiling(True)
    compiled(x.numpy())
    (conv,) = [p for p in compiled.kernel_profile() if "conv" in p.name]
    kept = int((model[0].weight != 0).sum())
    assert conv.flops == 2 * kept * 4 * 8 * 8 and conv.flops < 0.7 * conv.dense_flops


DEPTHWISE_SHAPES = [
    # channels, multiplier, kernel, stride, padding, input (D, H, W): plane edges, W tails and
    # strides of X3D's depthwise layers, small planes, channel multipliers, no padding
    (8, 1, 3, 1, 1, (5, 9, 11)),
    (8, 1, 3, (1, 2, 2), 1, (4, 17, 40)),
    (6, 2, (3, 1, 1), (2, 1, 1), (1, 0, 0), (7, 6, 5)),
    (4, 1, (5, 1, 1), 1, (2, 0, 0), (6, 20, 37)),
    (4, 1, (1, 3, 3), 1, (0, 1, 1), (3, 33, 80)),
    (3, 1, 3, 2, 0, (7, 15, 19)),
    (5, 1, (3, 5, 5), (1, 2, 2), (1, 2, 2), (4, 13, 23)),
    (4, 3, 3, (1, 3, 3), 1, (3, 14, 50)),
]


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_depthwise_kernels_match_torch(target, tmp_path):
    """The dedicated depthwise kernel (rt3d-vectorize-depthwise), which reads the unpadded input and
    handles the padding itself, over the shapes above (batch 2, ReLU on every other)."""
    torch.manual_seed(0)
    for i, (channels, multiplier, kernel, stride, padding, size) in enumerate(DEPTHWISE_SHAPES):
        conv = nn.Conv3d(channels, channels * multiplier, kernel, stride, padding, groups=channels)
        model = (nn.Sequential(conv, nn.ReLU()) if i % 2 else nn.Sequential(conv)).eval()
        x = torch.randn(2, channels, *size)
        out = tmp_path / f"dw{i}.{target}"
        rt3d_mlir.compile(model, x, output=out, target=target)
        got = rt3d_mlir.load(out)(x.numpy())
        assert relative_error(got, torch_output(model, x)) <= REL_TOL, (i, target)


def test_depthwise_kernel_moves_the_unpadded_tensors(tmp_path):
    """One kernel call, no padded copy: its buffers are the input, the taps, the bias and the
    output, each once."""
    model = nn.Sequential(nn.Conv3d(6, 6, 3, padding=1, groups=6)).eval()
    x = torch.randn(1, 6, 4, 10, 12)
    out = tmp_path / "dw.so"
    rt3d_mlir.compile(model, x, output=out)
    compiled = rt3d_mlir.load(out)
    compiled.set_profiling(True)
    compiled(x.numpy())
    (kernel,) = compiled.kernel_profile()
    assert kernel.name.startswith("rt3d_dwconv_kernel")
    assert kernel.bytes == 4 * (2 * x.numel() + 6 * 27 + 6)


def tiny_x3d() -> tuple[nn.Module, torch.Tensor]:
    model = build_model("x3d", variant="xs", width=0.25, depth=0.2, input_size=(4, 32, 32), num_classes=5)
    randomize_batch_norms(model)
    return model.eval(), torch.randn(1, 3, 4, 32, 32)


def test_x3d_is_the_paper_layout():
    small, medium = build_model("x3d", variant="s"), build_model("x3d", variant="m")
    params = sum(p.numel() for p in small.parameters())
    assert 3.7e6 < params < 3.85e6  # X3D-S: 3.76 M (the paper's Table 3)
    assert small.input_size == (13, 160, 160) and medium.input_size == (16, 224, 224)
    blocks = [len(stage) for stage in small.stages]
    assert blocks == [3, 5, 11, 7]
    depthwise = [m for m in small.modules() if isinstance(m, nn.Conv3d) and m.groups > 1]
    assert len(depthwise) == 1 + sum(blocks) and all(m.groups == m.in_channels for m in depthwise)


@pytest.mark.parametrize("target", ["host", "aarch64", "spirv"])
def test_x3d_matches_torch(target, tmp_path):
    model, x = tiny_x3d()
    apply_random_masks(model, (4, 4), 0.5, "kgs", seed=2, skip=["stem.0"])
    out = tmp_path / f"x3d.{target}"
    rt3d_mlir.compile(model, x, output=out, target=target, group_shape=(4, 4))
    got = rt3d_mlir.load(out)(x.numpy())
    assert np.isfinite(got).all()
    assert relative_error(got, torch_output(model, x)) <= REL_TOL
