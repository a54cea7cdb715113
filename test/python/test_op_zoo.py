"""The operators of the video models users bring (torchvision's, X3D, MoViNet-like blocks), in one
small network, on every target: temporal strides, channel split and concat, squeeze-excitation
with 1x1x1 convolutions and with Linear + hardsigmoid, hardswish, SiLU, GELU (erf), adaptive
average pools with uneven windows, adaptive max pooling, mean."""

from __future__ import annotations

import pytest
import torch
from conftest import REL_TOL, kernel_profile, randomize_batch_norms, relative_error, torch_output
from torch import nn
from torch.nn import functional as F

import rt3d_mlir
from rt3d_mlir.errors import UnsupportedModelError


class OpZoo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv3d(3, 8, (3, 3, 3), stride=(2, 1, 1), padding=1)
        self.bn = nn.BatchNorm3d(8)
        self.left = nn.Conv3d(4, 4, (1, 3, 3), padding=(0, 1, 1))
        self.right = nn.Conv3d(4, 4, (3, 1, 1), padding=(1, 0, 0))
        self.se_reduce = nn.Conv3d(8, 4, 1)
        self.se_expand = nn.Conv3d(4, 8, 1)
        self.fc_reduce = nn.Linear(8, 4)
        self.fc_expand = nn.Linear(4, 8)
        self.head = nn.Linear(8 * 3 + 8 * 9 + 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.hardswish(self.bn(self.stem(x)))
        a, b = torch.split(x, 4, dim=1)
        x = torch.cat([F.silu(self.left(a)), F.gelu(self.right(b))], dim=1)
        se = F.adaptive_avg_pool3d(x, 1)
        x = x * torch.sigmoid(self.se_expand(F.relu(self.se_reduce(se))))
        squeeze = x.mean(dim=(2, 3, 4))
        x = x * F.hardsigmoid(self.fc_expand(F.relu(self.fc_reduce(squeeze))))[:, :, None, None, None]
        uneven = F.adaptive_avg_pool3d(x, (1, 3, 3))  # 7x7 -> 3x3: windows of 3 overlapping by 1
        peak = F.adaptive_max_pool3d(x, (1, 1, 1))
        features = [F.adaptive_avg_pool3d(x, (3, 1, 1)), uneven, peak]
        return self.head(torch.cat([f.flatten(1) for f in features], dim=1))


@pytest.mark.parametrize("target", ["host", "aarch64", "spirv"])
def test_video_model_operators_match_torch(target, tmp_path):
    model = OpZoo()
    randomize_batch_norms(model)
    x = torch.randn(1, 3, 6, 7, 7)
    out = tmp_path / f"zoo.{target}"
    rt3d_mlir.compile(model.eval(), x, output=out, target=target)
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


class Pools(nn.Module):
    """Global pools large enough for the reduction kernel: a keepdim mean gating the input (a
    squeeze-excitation pool), a mean over (H, W); and a max over (D, H, W), which torch-mlir
    lowers one dim at a time with indices (not a kernel: the default lowering)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gated = x * torch.sigmoid(x.mean(dim=(2, 3, 4), keepdim=True))
        return torch.cat([gated.mean(dim=(3, 4)).flatten(1), x.amax(dim=(2, 3, 4))], dim=1)


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_trailing_reductions_match_torch(target, tmp_path):
    model = Pools().eval()
    x = torch.randn(2, 16, 5, 20, 21)
    out = tmp_path / f"pools.{target}"
    rt3d_mlir.compile(model, x, output=out, target=target)
    compiled = rt3d_mlir.load(out)
    assert relative_error(compiled(x.numpy()), torch_output(model, x)) <= REL_TOL
    if target == "host":
        reductions = [p for p in kernel_profile(compiled, x) if p.name.startswith("rt3d_reduction_kernel")]
        assert len(reductions) == 2


class Upsamplings(nn.Module):
    """Nearest upsamplings by whole factors, each a broadcasting copy, the first read by a conv: for
    5-D inputs, 3D ones (a 3D U-Net's decoder; the (1, 2, 3) one has a row, 7, that is not a
    multiple of the vector); for 4-D inputs, 2D ones (the model is lifted to 3D of depth 1 first)."""

    def __init__(self, conv: type[nn.Module]) -> None:
        super().__init__()
        self.conv = conv(8, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
        factors = (1, 2, 3) if x.dim() == 5 else (3, 1)
        b = F.interpolate(x, scale_factor=factors, mode="nearest")
        return torch.cat([a.flatten(1), b.flatten(1)], dim=1)


@pytest.mark.parametrize("target", ["host", "aarch64", "spirv"])
@pytest.mark.parametrize("dims", [3, 2])
def test_nearest_upsamplings_match_torch(dims, target, tmp_path):
    model = Upsamplings(nn.Conv3d if dims == 3 else nn.Conv2d).eval()
    x = torch.randn(1, 8, 4, 6, 7) if dims == 3 else torch.randn(1, 8, 16, 14)
    out = tmp_path / f"up.{target}"
    rt3d_mlir.compile(model, x, output=out, target=target)
    compiled = rt3d_mlir.load(out)
    assert relative_error(compiled(x.numpy()), torch_output(model, x)) <= REL_TOL
    if target == "host":
        # both are copy kernels; the conv after an upsampling stays a kernel (in 2D: reads a
        # lifted activation)
        names = [p.name for p in kernel_profile(compiled, x)]
        assert sum(n.startswith("rt3d_broadcast_kernel") for n in names) == 2
        assert sum(n.startswith("rt3d_conv_kernel") for n in names) == 1


def test_a_fractional_3d_upsampling_is_refused_in_one_line(tmp_path):
    class Fractional(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, scale_factor=1.5, mode="nearest")

    with pytest.raises(UnsupportedModelError, match="fractional factors"):
        rt3d_mlir.compile(Fractional().eval(), torch.randn(1, 2, 4, 4, 4), output=tmp_path / "f.so")
    assert not (tmp_path / "f.so").exists()
