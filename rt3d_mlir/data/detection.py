"""A procedural object-detection data set: textured shapes with boxes on textured backgrounds.

Every image shows one to ``max_objects`` objects drawn as the motion set draws
them (:func:`~rt3d_mlir.data.synthetic.shape_coverage`, random size, aspect,
orientation, texture and colours) over a random textured background
(:func:`~rt3d_mlir.data.synthetic.textured_background`), with Gaussian pixel
noise. An object's class is its shape (:data:`~rt3d_mlir.data.synthetic.SHAPES`,
``num_classes`` of them); its box is the tight box of the pixels it covers more
than half, in pixels, ``(x0, y0, x1, y1)`` with ``x1``, ``y1`` exclusive.
Objects lie inside the frame and overlap little (a placement whose box has an
IoU above :data:`MAX_OVERLAP` with an earlier one is drawn again), so every
box is visible.

An image is a pure function of ``(seed, split, index)``, like the motion set.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from rt3d_mlir.boxes import box_iou
from rt3d_mlir.data.synthetic import (
    MEAN,
    SHAPES,
    SPLITS,
    STD,
    TEXTURES,
    shape_coverage,
    texture_mix,
    textured_background,
)

MAX_OVERLAP = 0.3  # largest IoU between the boxes of two objects of one image
_SIZE = (0.08, 0.22)  # semi-major axis, as fractions of min(height, width)
_PLACEMENTS = 20  # tries to place an object before the image has fewer


class SyntheticDetection(Dataset):
    """Procedural detection images, generated on the fly.

    ``dataset[i]`` is ``(image, target)``: ``image`` a float32 tensor ``[3, H, W]``
    normalised as the motion set's clips, ``target`` a dict with ``"boxes"``
    (float32 ``[K, 4]``, pixels) and ``"labels"`` (int64 ``[K]``, the shape's
    index). Batch with :func:`detection_collate`.
    """

    deterministic = True  # an item is a pure function of its index (data.loader.InMemory)

    task = "detection"

    def __init__(
        self,
        num_samples: int = 2048,
        height: int = 64,
        width: int = 64,
        num_classes: int = len(SHAPES),
        max_objects: int = 4,
        noise: float = 0.05,
        seed: int = 0,
        split: str = "train",
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        if min(height, width) < 16:
            raise ValueError(f"images must be at least 16x16, got {height}x{width}")
        if not 1 <= num_classes <= len(SHAPES):
            raise ValueError(f"num_classes must be between 1 and {len(SHAPES)}, got {num_classes}")
        if max_objects < 1:
            raise ValueError(f"max_objects must be at least 1, got {max_objects}")
        if noise < 0 or seed < 0:
            raise ValueError("noise and seed must be non-negative")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got '{split}'")
        self.num_samples, self.height, self.width = num_samples, height, width
        self.num_classes, self.max_objects, self.noise = num_classes, max_objects, noise
        self.seed, self.split = seed, split
        self.classes = list(SHAPES[:num_classes])
        self._ys, self._xs = np.meshgrid(
            np.arange(height, dtype=np.float32) + 0.5, np.arange(width, dtype=np.float32) + 0.5, indexing="ij"
        )

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        index %= self.num_samples
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 10 + SPLITS.index(self.split), index]))
        image, boxes, labels = self.render(rng)
        target = {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)}
        return torch.from_numpy((image - MEAN) / STD), target

    def render(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One image ``[3, H, W]`` in about [0, 1], its boxes ``[K, 4]`` and labels ``[K]``."""
        image = textured_background(rng, self.height, self.width)
        boxes: list[np.ndarray] = []
        labels: list[int] = []
        for _ in range(int(rng.integers(1, self.max_objects + 1))):
            for _ in range(_PLACEMENTS):
                label = int(rng.integers(self.num_classes))
                alpha, colour = self._object(rng, SHAPES[label])
                rows, cols = np.nonzero(alpha > 0.5)
                if rows.size == 0:
                    continue
                box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float32)
                if boxes and box_iou(box, np.stack(boxes)).max() > MAX_OVERLAP:
                    continue
                image += alpha[None] * (colour - image)
                boxes.append(box)
                labels.append(label)
                break
        if self.noise > 0:
            image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(self.noise)
        return image, np.stack(boxes).astype(np.float32), np.array(labels, np.int64)

    def _object(self, rng: np.random.Generator, shape: str) -> tuple[np.ndarray, np.ndarray]:
        """An object's coverage ``[H, W]`` and colour ``[3, H, W]``, inside the frame."""
        h, w = self.height, self.width
        size = rng.uniform(*_SIZE) * min(h, w)
        aspect, angle = rng.uniform(0.45, 0.8), rng.uniform(0.0, 2 * math.pi)
        cx, cy = rng.uniform(size, w - size), rng.uniform(size, h - size)
        texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
        colours = rng.uniform(0.0, 1.0, size=(2, 3)).astype(np.float32)
        frequency, phase = rng.uniform(1.0, 2.2), rng.uniform(0.0, 2 * math.pi)
        dx, dy = self._xs - np.float32(cx), self._ys - np.float32(cy)
        cos, sin = np.float32(math.cos(angle)), np.float32(math.sin(angle))
        u = (cos * dx + sin * dy) / np.float32(size)
        v = (cos * dy - sin * dx) / np.float32(size)
        alpha = shape_coverage(shape, u, v, aspect, np.float32(size)).astype(np.float32)
        mix = texture_mix(texture, u, v, frequency, phase)
        colour = colours[0][:, None, None] + mix[None] * (colours[1] - colours[0])[:, None, None]
        return alpha, colour.astype(np.float32)


def detection_collate(
    batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Images stacked into ``[B, 3, H, W]``, targets kept as a list (their box counts differ)."""
    return torch.stack([image for image, _ in batch]), [target for _, target in batch]
