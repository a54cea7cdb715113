"""2D models (4-D inputs): computed as 3D models of depth 1, on every target, pruned or not."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    REL_TOL,
    compile_checked,
    kernel_profile,
    randomize_batch_norms,
    relative_error,
    torch_output,
)
from torch import nn

import rt3d_mlir
from rt3d_mlir.pruning.hard_prune import hard_prune
from rt3d_mlir.pruning.schemes import SparsityScheme


class Net2d(nn.Module):
    """The 2D ops of detection and segmentation nets: 3x3, strided 5x5, dilated and 1x1 convs with
    batch norms, ReLU and SiLU, a nearest upsampling and a skip concatenation, a max pool, a
    sigmoid head scaled as a YOLO head is, and a classifier on the global mean (one output: the
    head's map flattened, then the class scores)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.down = nn.Conv2d(16, 32, 5, stride=2, padding=2)
        self.dilated = nn.Conv2d(32, 32, 3, padding=2, dilation=2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = nn.Conv2d(48, 16, 1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn(self.stem(x)))
        b = F.silu(self.dilated(F.silu(self.down(a))))
        c = self.fuse(torch.cat([a, self.up(b)], 1))
        boxes = torch.sigmoid(c) * 2 - 0.5
        pooled = F.max_pool2d(F.relu(c), 2)
        return torch.cat([boxes.flatten(1), self.fc(F.adaptive_avg_pool2d(pooled, 1).flatten(1))], 1)


@pytest.fixture
def net2d() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = Net2d()
    randomize_batch_norms(model)
    return model.eval(), torch.randn(1, 3, 24, 20)


@pytest.mark.parametrize("target", ["host", "aarch64", "spirv"])
def test_2d_models_match_torch(net2d, target, tmp_path):
    model, x = net2d
    out = tmp_path / f"net2d.{target}"
    rt3d_mlir.compile(model, x, output=out, target=target)
    got, want = rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)
    assert got.shape == want.shape
    assert relative_error(got, want) <= REL_TOL


def test_a_2d_conv_is_the_3d_conv_of_depth_1(tmp_path):
    """The same conv kernel (its text, by digest) serves a Conv2d and the Conv3d of depth 1 with
    the same weights: a 2D conv is no slower than its 3D form."""
    torch.manual_seed(0)
    conv2d = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU()).eval()
    conv3d = nn.Sequential(nn.Conv3d(16, 32, (1, 3, 3), padding=(0, 1, 1)), nn.ReLU()).eval()
    with torch.no_grad():
        conv3d[0].weight.copy_(conv2d[0].weight.unsqueeze(2))
        conv3d[0].bias.copy_(conv2d[0].bias)
    x = torch.randn(1, 16, 28, 28)
    kernels = []
    for name, model, example in (("2d", conv2d, x), ("3d", conv3d, x.unsqueeze(2))):
        ir_dir = tmp_path / name
        rt3d_mlir.compile(model, example, output=tmp_path / f"{name}.so", keep_intermediates=str(ir_dir))
        text = (ir_dir / "model.llvm.mlir").read_text()
        kernels.append(sorted(re.findall(r'rt3d.kernel_source = "([0-9a-f]+)"', text)))
        got = rt3d_mlir.load(tmp_path / f"{name}.so")(example.numpy())
        assert relative_error(got, torch_output(model, example)) <= REL_TOL
    assert kernels[0] and kernels[0] == kernels[1]


def test_block_pruned_2d_models_compute_only_the_kept_columns(net2d, tmp_path):
    """Block-pruned Conv2d layers (16 x 8 blocks, columns pruned) compile to kernels whose FLOPs are
    those of the kept weights, and compute what the pruned model does."""
    model, x = net2d
    scheme = SparsityScheme("block", (16, 8))
    hard_prune(model, scheme, {"down": 2.5, "dilated": 2.5, "fuse": 2.0})
    compiled = compile_checked(model, x, tmp_path / "pruned.so", group_shape=(16, 1))
    convs = [p for p in kernel_profile(compiled, x) if p.name.startswith("rt3d_conv")]
    sparse = [p for p in convs if p.flops < p.dense_flops]
    assert len(sparse) == 3
    for p in sparse:
        assert 0.3 < p.flops / p.dense_flops < 0.55


def test_torchvision_resnet18_compiles_as_a_2d_model(tmp_path):
    """A 2D model nobody here wrote: torchvision's ResNet-18 (random weights, 64x64)."""
    from rt3d_mlir.models.torchvision_video import import_torchvision

    torchvision = import_torchvision()
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    randomize_batch_norms(model)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    out = tmp_path / "resnet18.so"
    rt3d_mlir.compile(model, x, output=out)
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


class Classifier2d(nn.Module):
    """A 2D conv, its global mean, and two fully connected layers (the first one block-pruned)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1)
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1).flatten(1)
        return self.fc2(F.relu(self.fc1(x)))


@pytest.mark.parametrize("target", ["host", "aarch64", "spirv"])
def test_block_pruned_linear_layers_run_as_sparse_kernels(target, tmp_path):
    """A Linear layer pruned in 16 x 4 blocks (whole columns) runs as a kernel over its kept
    columns on every target (a 1x1x1 conv of its input); the dense one stays a matrix product."""
    torch.manual_seed(0)
    model = Classifier2d().eval()
    hard_prune(model, SparsityScheme("block", (16, 4)), {"fc1": 3.0})
    x = torch.randn(1, 3, 12, 12)
    compiled = compile_checked(model, x, tmp_path / f"fc.{target}", target=target)
    if target == "host":
        profile = kernel_profile(compiled, x)
        names = [p.name for p in profile]
        convs = [p for p in profile if p.name.startswith("rt3d_conv")]
        assert len(convs) == 2 and convs[1].flops * 2.5 < convs[1].dense_flops  # the conv, then fc1
        assert sum(name.startswith("rt3d_matmul") for name in names) == 1  # fc2
