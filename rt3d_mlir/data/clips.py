"""A data set of labelled video files, one clip per video per access."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from rt3d_mlir.data.transforms import KINETICS_MEAN, KINETICS_STD, ClipTransform, pair
from rt3d_mlir.data.video import VideoDecoder, clip_indices


class VideoClipDataset(Dataset):
    """``(clip, label)`` pairs from a list of ``(video path, label)``.

    Each access decodes one clip of ``frames`` frames, ``step`` apart
    (random start when training, the centred clip otherwise; short videos
    loop, see :func:`rt3d_mlir.data.video.clip_indices`), resizes the frames
    to ``resize`` (height, width) in the decoder, then crops, normalises and
    returns float32 ``[3, frames, crop_h, crop_w]`` (see
    :class:`rt3d_mlir.data.transforms.ClipTransform`).

    The defaults are C3D's: 16 consecutive frames, resize to 128x171, crop
    112x112.
    """

    def __init__(
        self,
        samples: Sequence[tuple[str, int]],
        classes: Sequence[str],
        train: bool = False,
        frames: int = 16,
        step: int = 1,
        resize: int | Sequence[int] = (128, 171),
        crop: int | Sequence[int] = 112,
        hflip: bool = False,
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
    ) -> None:
        if frames < 1 or step < 1:
            raise ValueError(f"frames and step must be positive, got {frames} and {step}")
        self.samples = list(samples)
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.train = train
        self.frames = frames
        self.step = step
        self.resize = pair(resize, "resize")
        self.transform = ClipTransform(crop, train=train, hflip=hflip, mean=mean, std=std)
        crop_h, crop_w = self.transform.crop
        if crop_h > self.resize[0] or crop_w > self.resize[1]:
            raise ValueError(f"crop {crop_h}x{crop_w} is larger than the resized frames {self.resize}")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        with VideoDecoder(path, size=self.resize) as decoder:
            indices = clip_indices(decoder.num_frames, self.frames, self.step, self.train)
            frames = decoder.read(indices)
        return self.transform(frames), label

    @property
    def targets(self) -> list[int]:
        """The label of every sample, in order (without decoding anything)."""
        return [label for _, label in self.samples]


def require_path(path: str, what: str, directory: bool = False) -> str:
    """``path`` if it exists (as a directory when ``directory``), else a one-line FileNotFoundError."""
    exists = os.path.isdir(path) if directory else os.path.isfile(path)
    if not exists:
        raise FileNotFoundError(f"{what} '{path}' does not exist")
    return path


def require_videos(samples: Sequence[tuple[str, int]], list_file: str, root: str) -> None:
    """Raise a one-line FileNotFoundError if any listed video is missing."""
    missing = [path for path, _ in samples if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} video(s) listed in '{list_file}' are missing under '{root}', e.g. '{missing[0]}'"
        )


def check_split_number(split: int) -> int:
    """The official splits are numbered 1 to 3."""
    if split not in (1, 2, 3):
        raise ValueError(f"split must be 1, 2 or 3, got {split!r}")
    return split
