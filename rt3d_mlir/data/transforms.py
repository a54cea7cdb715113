"""C3D-style clip transforms: crop, optional horizontal flip, normalisation, channels first.

Frames arrive already resized (the decoder resizes them to 128x171 while
converting to RGB, see :class:`rt3d_mlir.data.video.VideoDecoder`), as uint8
``[T, H, W, 3]``; the transform returns float32 ``[3, T, crop_h, crop_w]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: RGB mean and standard deviation (of [0, 1] intensities) of Kinetics-400, as
#: used by torchvision's video classification models. Applied by default.
KINETICS_MEAN: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
KINETICS_STD: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)


def pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """``n`` or ``(h, w)`` as ``(h, w)``, both positive."""
    if isinstance(value, int):
        value = (value, value)
    if len(value) != 2 or any(int(v) < 1 for v in value):
        raise ValueError(f"{name} must be a positive int or a (height, width) pair, got {value!r}")
    return int(value[0]), int(value[1])


class ClipTransform:
    """Crop (random for training, centred for evaluation), flip, normalise.

    Args:
        crop: output ``(height, width)`` (or one int for a square).
        train: random crop position (and random flips if ``hflip``) when
            true; centre crop otherwise.
        hflip: flip the whole clip left-right with probability 0.5 when
            training (off by default: it turns left-moving into
            right-moving, which matters for direction-sensitive classes).
        mean, std: per-channel RGB statistics of [0, 1] intensities;
            the output is ``(x / 255 - mean) / std``.

    Randomness comes from ``generator`` if given, else from torch's global
    RNG (seeded per data loader worker by :func:`rt3d_mlir.data.make_loader`).
    """

    def __init__(
        self,
        crop: int | Sequence[int] = 112,
        train: bool = False,
        hflip: bool = False,
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
    ) -> None:
        self.crop = pair(crop, "crop")
        self.train = train
        self.hflip = hflip
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need three values (std positive), got {mean!r} and {std!r}")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)

    def crop_origin(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[int, int]:
        """Top-left corner of the crop in a ``height x width`` frame."""
        ch, cw = self.crop
        if ch > height or cw > width:
            raise ValueError(f"crop {ch}x{cw} is larger than the frames ({height}x{width})")
        if self.train:
            top = int(torch.randint(0, height - ch + 1, (), generator=generator))
            left = int(torch.randint(0, width - cw + 1, (), generator=generator))
            return top, left
        return (height - ch) // 2, (width - cw) // 2

    def __call__(
        self, frames: np.ndarray | torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """uint8 ``[T, H, W, 3]`` → float32 ``[3, T, crop_h, crop_w]``."""
        frames = torch.as_tensor(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames [T, H, W, 3], got shape {tuple(frames.shape)}")
        top, left = self.crop_origin(frames.shape[1], frames.shape[2], generator)
        ch, cw = self.crop
        clip = frames[:, top : top + ch, left : left + cw].permute(3, 0, 1, 2)
        if self.train and self.hflip and bool(torch.rand((), generator=generator) < 0.5):
            clip = clip.flip(-1)
        clip = clip.to(torch.float32).div_(255.0)
        return clip.sub_(self.mean).div_(self.std).contiguous()
