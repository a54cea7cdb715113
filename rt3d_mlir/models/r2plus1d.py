"""R(2+1)D-18 (Tran et al., CVPR 2018) in torchvision's layout.

Each 3x3x3 convolution is factorised into a (1,3,3) spatial and a (3,1,1)
temporal convolution with ``midplanes`` channels in between, chosen so the
parameter count matches the full 3D convolution. Written here from the paper
and torchvision's documented architecture; torchvision is not imported.
"""

from __future__ import annotations

import torch
from torch import nn

from rt3d_mlir.models.common import scaled


def midplanes(inplanes: int, planes: int) -> int:
    """torchvision's formula for the (2+1)D intermediate channel count."""
    return (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)


class Conv2Plus1D(nn.Sequential):
    def __init__(self, inplanes: int, planes: int, mid: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv3d(inplanes, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
        )


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        mid = midplanes(inplanes, planes)
        self.conv1 = nn.Sequential(
            Conv2Plus1D(inplanes, planes, mid, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(Conv2Plus1D(planes, planes, mid), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv3d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm3d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class R2Plus1D(nn.Module):
    """R(2+1)D with ``layers`` basic blocks per stage (18 layers by default)."""

    def __init__(
        self,
        num_classes: int = 400,
        width: float = 1.0,
        layers: tuple[int, int, int, int] = (2, 2, 2, 2),
        in_channels: int = 3,
        input_size: tuple[int, int, int] = (16, 112, 112),
    ) -> None:
        super().__init__()
        self.input_size = tuple(input_size)
        self.in_channels = in_channels
        stem_mid, stem_out = scaled(45, width), scaled(64, width)
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, stem_mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, stem_out, (3, 1, 1), 1, (1, 0, 0), bias=False),
            nn.BatchNorm3d(stem_out),
            nn.ReLU(inplace=True),
        )
        inplanes = stem_out
        stages = []
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            planes = scaled(planes, width)
            stride = 1 if i == 0 else 2
            stage = []
            for b in range(blocks):
                stage.append(BasicBlock(inplanes, planes, stride if b == 0 else 1))
                inplanes = planes
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3, 4)))
