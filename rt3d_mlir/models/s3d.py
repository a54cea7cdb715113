"""S3D (Xie et al., ECCV 2018): Inception blocks with separable 3D convolutions.

Every 3D convolution of I3D's Inception-v1 layout is replaced by a (1,k,k)
spatial convolution followed by a (k,1,1) temporal one. No feature gating
(that is S3D-G). The head averages over space-time and applies a linear layer.
"""

from __future__ import annotations

import torch
from torch import nn

from rt3d_mlir.models.common import scaled


class BasicConv3d(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel=1, stride=1, padding=0) -> None:
        super().__init__(
            nn.Conv3d(cin, cout, kernel, stride, padding, bias=False),
            nn.BatchNorm3d(cout),
            nn.ReLU(inplace=True),
        )


class SepConv3d(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(
            nn.Conv3d(cin, cout, (1, k, k), (1, stride, stride), (0, padding, padding), bias=False),
            nn.BatchNorm3d(cout),
            nn.ReLU(inplace=True),
            nn.Conv3d(cout, cout, (k, 1, 1), (stride, 1, 1), (padding, 0, 0), bias=False),
            nn.BatchNorm3d(cout),
            nn.ReLU(inplace=True),
        )


class Mixed(nn.Module):
    """An Inception block: 1x1x1, 1x1x1+sep3, 1x1x1+sep3 and pool+1x1x1 branches."""

    def __init__(self, cin: int, b0: int, b1a: int, b1b: int, b2a: int, b2b: int, b3: int) -> None:
        super().__init__()
        self.branch0 = BasicConv3d(cin, b0)
        self.branch1 = nn.Sequential(BasicConv3d(cin, b1a), SepConv3d(b1a, b1b, 3, padding=1))
        self.branch2 = nn.Sequential(BasicConv3d(cin, b2a), SepConv3d(b2a, b2b, 3, padding=1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), BasicConv3d(cin, b3))
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1
        )


# (b0, b1a, b1b, b2a, b2b, b3) of each Inception block, from Inception-v1.
MIXED_CHANNELS = {
    "mixed_3b": (64, 96, 128, 16, 32, 32),
    "mixed_3c": (128, 128, 192, 32, 96, 64),
    "mixed_4b": (192, 96, 208, 16, 48, 64),
    "mixed_4c": (160, 112, 224, 24, 64, 64),
    "mixed_4d": (128, 128, 256, 24, 64, 64),
    "mixed_4e": (112, 144, 288, 32, 64, 64),
    "mixed_4f": (256, 160, 320, 32, 128, 128),
    "mixed_5b": (256, 160, 320, 32, 128, 128),
    "mixed_5c": (384, 192, 384, 48, 128, 128),
}


class S3D(nn.Module):
    def __init__(
        self,
        num_classes: int = 400,
        width: float = 1.0,
        in_channels: int = 3,
        input_size: tuple[int, int, int] = (16, 112, 112),
    ) -> None:
        super().__init__()
        self.input_size = tuple(input_size)
        self.in_channels = in_channels
        c64, c192 = scaled(64, width), scaled(192, width)
        features: list[tuple[str, nn.Module]] = [
            ("conv1", SepConv3d(in_channels, c64, 7, stride=2, padding=3)),
            ("pool1", nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))),
            ("conv2", BasicConv3d(c64, c64)),
            ("conv3", SepConv3d(c64, c192, 3, padding=1)),
            ("pool3", nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))),
        ]
        channels = c192
        for name, widths in MIXED_CHANNELS.items():
            block = Mixed(channels, *(scaled(c, width) for c in widths))
            features.append((name, block))
            channels = block.out_channels
            if name == "mixed_3c":
                features.append(("pool4", nn.MaxPool3d(3, 2, 1)))
            elif name == "mixed_4f":
                features.append(("pool5", nn.MaxPool3d(2, 2, 0)))
        self.features = nn.Sequential()
        for name, module in features:
            self.features.add_module(name, module)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3, 4)))
