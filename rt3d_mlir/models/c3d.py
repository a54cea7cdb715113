"""C3D (Tran et al., ICCV 2015): eight 3x3x3 convolutions, five pools, three FC layers."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from rt3d_mlir.models.common import pooled_size, scaled


class C3D(nn.Module):
    """C3D with the published layer layout.

    ``width`` scales every channel count and the hidden FC width, and
    ``input_size`` (frames, height, width) sets the FC input size, so tests can
    build tiny versions with the same structure. The default is the published
    model: 101 classes, input 3x16x112x112. ``batch_norm`` adds a BatchNorm3d
    after every convolution (the common "C3D-BN" variant, which trains from
    scratch far more easily; the compiler folds it into the convolutions).
    """

    CONV_CHANNELS = (
        ("conv1a", 64),
        ("conv2a", 128),
        ("conv3a", 256),
        ("conv3b", 256),
        ("conv4a", 512),
        ("conv4b", 512),
        ("conv5a", 512),
        ("conv5b", 512),
    )
    # Pool after these convs: (kernel, stride, padding).
    POOLS: ClassVar[dict[str, tuple[tuple[int, int, int], ...]]] = {
        "conv1a": ((1, 2, 2), (1, 2, 2), (0, 0, 0)),
        "conv2a": ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
        "conv3b": ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
        "conv4b": ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
        "conv5b": ((2, 2, 2), (2, 2, 2), (0, 1, 1)),
    }

    def __init__(
        self,
        num_classes: int = 101,
        width: float = 1.0,
        input_size: tuple[int, int, int] = (16, 112, 112),
        in_channels: int = 3,
        dropout: float = 0.5,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.input_size = tuple(input_size)
        self.in_channels = in_channels
        layers: list[tuple[str, nn.Module]] = []
        channels = in_channels
        size = tuple(input_size)
        for name, out in self.CONV_CHANNELS:
            out = scaled(out, width)
            layers.append((name, nn.Conv3d(channels, out, 3, padding=1)))
            if batch_norm:
                layers.append((name.replace("conv", "bn"), nn.BatchNorm3d(out)))
            layers.append((name.replace("conv", "relu"), nn.ReLU()))
            channels = out
            if name in self.POOLS:
                kernel, stride, padding = self.POOLS[name]
                pool_name = "pool" + name[4]
                layers.append((pool_name, nn.MaxPool3d(kernel, stride, padding)))
                size = pooled_size(size, kernel, stride, padding)
        if min(size) < 1:
            raise ValueError(f"input size {tuple(input_size)} is too small for C3D's five pools")
        self.features = nn.Sequential()
        for name, layer in layers:
            self.features.add_module(name, layer)
        hidden = scaled(4096, width)
        flat = channels * size[0] * size[1] * size[2]
        self.classifier = nn.Sequential()
        self.classifier.add_module("fc6", nn.Linear(flat, hidden))
        self.classifier.add_module("relu6", nn.ReLU())
        self.classifier.add_module("drop6", nn.Dropout(dropout))
        self.classifier.add_module("fc7", nn.Linear(hidden, hidden))
        self.classifier.add_module("relu7", nn.ReLU())
        self.classifier.add_module("drop7", nn.Dropout(dropout))
        self.classifier.add_module("fc8", nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))
