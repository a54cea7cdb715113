"""A procedural volumetric segmentation data set: structures in noisy volumes.

Each sample is a one-channel volume ``[1, D, H, W]`` and its label map ``[D, H, W]``:

- label 1, *lesions*: one to ``max_lesions`` ellipsoids (random centre, radii and
  orientation in the plane), brighter than the tissue around them;
- label 2, *vessels*: one or two tubes along a random smooth curve through the
  volume (a sum of a few sines per axis), darker than the tissue;
- label 0, the background: tissue of random mean intensity.

Intensities get a smooth multiplicative bias field (as MR scanners give) and
Gaussian noise; a lesion's and a vessel's contrast to the tissue is drawn per
structure, from a range that makes some of them faint. A sample is a pure
function of ``(seed, split, index)``. A 2D network segments it slice by slice
(:func:`volume_slices`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from rt3d_mlir.data.synthetic import SPLITS

STRUCTURES = ("background", "lesion", "vessel")


class SyntheticVolumes(Dataset):
    """``dataset[i]`` is ``(volume, labels)``: float32 ``[1, D, H, W]`` (about zero mean, unit
    variance) and int64 ``[D, H, W]`` with the indices of :data:`STRUCTURES`."""

    deterministic = True  # an item is a pure function of its index (data.loader.InMemory)

    def __init__(
        self,
        num_samples: int = 256,
        depth: int = 16,
        height: int = 64,
        width: int = 64,
        max_lesions: int = 3,
        noise: float = 0.15,
        seed: int = 0,
        split: str = "train",
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        if min(depth, height, width) < 8:
            raise ValueError(f"volumes must be at least 8x8x8, got {depth}x{height}x{width}")
        if max_lesions < 1 or noise < 0 or seed < 0:
            raise ValueError("max_lesions must be positive, noise and seed non-negative")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got '{split}'")
        self.num_samples, self.shape = num_samples, (depth, height, width)
        self.max_lesions, self.noise, self.seed, self.split = max_lesions, noise, seed, split
        self._z, self._y, self._x = np.meshgrid(
            *(np.arange(n, dtype=np.float32) + 0.5 for n in self.shape), indexing="ij"
        )

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        index %= self.num_samples
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 20 + SPLITS.index(self.split), index]))
        volume, labels = self.render(rng)
        return torch.from_numpy(volume[None]), torch.from_numpy(labels)

    def render(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        tissue = rng.uniform(0.35, 0.6)
        intensity = np.full(self.shape, tissue, np.float32)
        labels = np.zeros(self.shape, np.int64)
        for _ in range(int(rng.integers(1, 3))):  # vessels first: lesions are drawn over them
            inside = self._tube(rng)
            intensity[inside] = tissue - rng.uniform(0.12, 0.3)
            labels[inside] = 2
        for _ in range(int(rng.integers(1, self.max_lesions + 1))):
            inside = self._ellipsoid(rng)
            intensity[inside] = tissue + rng.uniform(0.1, 0.35)
            labels[inside] = 1
        coarse = rng.normal(0.0, 0.08, size=(1, 1, 3, 3, 3)).astype(np.float32)
        bias = F.interpolate(torch.from_numpy(coarse), size=self.shape, mode="trilinear", align_corners=False)
        intensity *= 1.0 + bias[0, 0].numpy()
        intensity += rng.standard_normal(self.shape, dtype=np.float32) * np.float32(self.noise)
        return ((intensity - 0.45) / 0.2).astype(np.float32), labels

    def _ellipsoid(self, rng: np.random.Generator) -> np.ndarray:
        d, h, w = self.shape
        radii = rng.uniform(0.08, 0.18, size=3) * np.array([max(d, 8) * 1.5, h, w]) / 1.5
        radii[0] = min(radii[0], d / 3)
        centre = [rng.uniform(r, n - r) for r, n in zip(radii, self.shape, strict=True)]
        angle = rng.uniform(0.0, math.pi)
        dy, dx = self._y - centre[1], self._x - centre[2]
        u = math.cos(angle) * dx + math.sin(angle) * dy
        v = math.cos(angle) * dy - math.sin(angle) * dx
        f = ((self._z - centre[0]) / radii[0]) ** 2 + (u / radii[2]) ** 2 + (v / radii[1]) ** 2
        return f <= 1.0

    def _tube(self, rng: np.random.Generator) -> np.ndarray:
        """A tube of random radius along ``x`` with ``y``, ``z`` smooth functions of ``x``."""
        d, h, w = self.shape
        t = self._x / w
        y = np.full_like(t, rng.uniform(0.25, 0.75) * h)
        z = np.full_like(t, rng.uniform(0.3, 0.7) * d)
        for _ in range(2):
            frequency, phase = rng.uniform(0.5, 2.0), rng.uniform(0.0, 2 * math.pi)
            y += rng.uniform(0.05, 0.15) * h * np.sin(2 * math.pi * frequency * t + phase)
            z += rng.uniform(0.05, 0.15) * d * np.sin(2 * math.pi * frequency * t + phase + 1.0)
        radius = rng.uniform(0.03, 0.06) * h
        return (self._y - y) ** 2 + ((self._z - z) * h / max(d, 1) * 0.5) ** 2 <= radius**2


class VolumeSlices(Dataset):
    """The slices of a volume set, one item each: ``(slice [1, H, W], labels [H, W])``, slice ``i %
    D`` of volume ``i // D`` (for a 2D segmentation net; the last volume rendered is kept)."""

    deterministic = True  # an item is a pure function of its index (data.loader.InMemory)

    task = "segmentation"

    def __init__(self, volumes: SyntheticVolumes) -> None:
        self.volumes = volumes
        self.num_classes = len(STRUCTURES)
        self.classes = list(STRUCTURES)
        self._cached: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.volumes) * self.volumes.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} slices")
        volume_index, depth = divmod(index % len(self), self.volumes.shape[0])
        if self._cached is None or self._cached[0] != volume_index:
            self._cached = (volume_index, *self.volumes[volume_index])
        _, volume, labels = self._cached
        return volume[:, depth], labels[depth]


def volume_slices(volume: torch.Tensor) -> torch.Tensor:
    """A volume ``[C, D, H, W]`` as the batch of its slices ``[D, C, H, W]`` (a 2D net's input)."""
    return volume.permute(1, 0, 2, 3).contiguous()
