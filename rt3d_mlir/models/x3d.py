"""X3D (Feichtenhofer, CVPR 2020): an efficient video network built from depthwise 3D convolutions.

The layout follows the paper's X3D-XS/S/M (which share widths and depths and
differ in the input clip): a stem of a (1,3,3) convolution and a depthwise
(5,1,1) temporal one; four stages of bottleneck blocks, each a 1x1x1
expansion (2.25x), a depthwise 3x3x3 convolution, squeeze-and-excitation on
every other block, swish, and a 1x1x1 projection, with residual additions;
a head of a 1x1x1 convolution, global average pooling and two linear
layers. ``width`` scales every channel count and ``depth`` the number of
blocks per stage (the paper's depth factor 2.2 is the default, ``depth=1``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rt3d_mlir.models.common import scaled

# Default input clip (frames, height, width) of each variant.
VARIANTS = {"xs": (4, 160, 160), "s": (13, 160, 160), "m": (16, 224, 224)}
STAGE_CHANNELS = (24, 48, 96, 192)
STAGE_BLOCKS = (1, 2, 5, 3)
DEPTH_FACTOR = 2.2
BOTTLENECK = 2.25
SE_RATIO = 0.0625


def _se_channels(channels: int) -> int:
    """Squeeze-and-excitation width: ``SE_RATIO`` of the channels, a multiple of 8 (at least 8)."""
    return max(8, round(channels * SE_RATIO / 8) * 8)


class SqueezeExcitation(nn.Module):
    """Channel gates from global context: avg pool, 1x1x1 conv, ReLU, 1x1x1 conv, sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = _se_channels(channels)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.reduce = nn.Conv3d(channels, hidden, 1)
        self.expand = nn.Conv3d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.expand(torch.relu(self.reduce(self.pool(x)))))
        return x * gate


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, inner: int, stride: int, squeeze: bool) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv3d(cin, inner, 1, bias=False), nn.BatchNorm3d(inner), nn.ReLU())
        self.depthwise = nn.Sequential(
            nn.Conv3d(inner, inner, 3, (1, stride, stride), 1, groups=inner, bias=False),
            nn.BatchNorm3d(inner),
        )
        self.squeeze = SqueezeExcitation(inner) if squeeze else nn.Identity()
        self.swish = nn.SiLU()
        self.project = nn.Sequential(nn.Conv3d(inner, cout, 1, bias=False), nn.BatchNorm3d(cout))
        self.shortcut: nn.Module = nn.Identity()
        if cin != cout or stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False), nn.BatchNorm3d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.swish(self.squeeze(self.depthwise(self.expand(x)))))
        return torch.relu(y + self.shortcut(x))


class X3D(nn.Module):
    def __init__(
        self,
        num_classes: int = 400,
        variant: str = "s",
        width: float = 1.0,
        depth: float = 1.0,
        in_channels: int = 3,
        input_size: tuple[int, int, int] | None = None,
        head_channels: int = 2048,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown X3D variant '{variant}' (known: {', '.join(VARIANTS)})")
        self.input_size = tuple(input_size or VARIANTS[variant])
        self.in_channels = in_channels
        stem = scaled(STAGE_CHANNELS[0], width)
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, stem, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False),
            nn.Conv3d(stem, stem, (5, 1, 1), 1, (2, 0, 0), groups=stem, bias=False),
            nn.BatchNorm3d(stem),
            nn.ReLU(),
        )
        stages = []
        channels = stem
        for index, (base, blocks) in enumerate(zip(STAGE_CHANNELS, STAGE_BLOCKS, strict=True)):
            cout = scaled(base, width)
            inner = scaled(round(base * BOTTLENECK), width)
            count = max(1, math.ceil(blocks * DEPTH_FACTOR * depth))
            layers = [
                Bottleneck(channels if b == 0 else cout, cout, inner, 2 if b == 0 else 1, squeeze=b % 2 == 0)
                for b in range(count)
            ]
            stages.append((f"stage{index + 2}", nn.Sequential(*layers)))
            channels = cout
        self.stages = nn.Sequential()
        for name, stage in stages:
            self.stages.add_module(name, stage)
        head = scaled(round(STAGE_CHANNELS[-1] * BOTTLENECK), width)
        self.head_conv = nn.Sequential(
            nn.Conv3d(channels, head, 1, bias=False), nn.BatchNorm3d(head), nn.ReLU()
        )
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc1 = nn.Linear(head, scaled(head_channels, width))
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(scaled(head_channels, width), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.head_conv(self.stages(self.stem(x)))).flatten(1)
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))
