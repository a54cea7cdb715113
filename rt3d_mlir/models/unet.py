"""A 2D U-Net for segmentation (of the slices of a volume, :mod:`rt3d_mlir.data.segmentation`).

``depth`` encoder stages of two 3x3 Conv-BN-ReLU each, 2x2 max pools between them; a bottleneck
stage; ``depth`` decoder stages, each a nearest 2x upsampling, a 1x1 conv halving the channels,
the concatenation with the encoder stage of the same size (the skip) and two 3x3 Conv-BN-ReLU;
a 1x1 conv to ``num_classes`` logits per pixel. Channels 16, 32, 64, ... at width 1, times
``width``. The input size must be a multiple of ``2 ** depth``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rt3d_mlir.models.common import scaled

BASE_CHANNELS = 16


class DoubleConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        )


class Up(nn.Module):
    """Upsample 2x (nearest), halve the channels (1x1 conv), concatenate the skip, two convs."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.reduce = nn.Conv2d(c_in, c_skip, 1)
        self.convs = DoubleConv(2 * c_skip, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([skip, self.reduce(self.up(x))], 1))


class UNet2d(nn.Module):
    def __init__(
        self, num_classes: int = 3, in_channels: int = 1, width: float = 1.0, depth: int = 3,
        input_size: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if input_size is not None and any(int(s) % 2**depth for s in input_size):
            raise ValueError(f"input size must be multiples of {2**depth}, got {tuple(input_size)}")
        channels = [scaled(BASE_CHANNELS * 2**i, width) for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList([DoubleConv(in_channels, channels[0])])
        self.down.extend(DoubleConv(channels[i], channels[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(Up(channels[i + 1], channels[i], channels[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, stage in enumerate(self.down):
            x = stage(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return self.head(x)
