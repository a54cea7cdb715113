"""Loaders for the standard formats of the 2D applications: COCO-style detection annotations (JSON,
images through Pillow) and NIfTI volumes with label maps (through nibabel).

Both readers are optional dependencies (the ``formats`` extra); a missing one is a one-line error.
The loaders give what the built-in sets give (:mod:`rt3d_mlir.data.detection`,
:mod:`rt3d_mlir.data.segmentation`), so the same training, metrics and compiled models apply.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rt3d_mlir.data.synthetic import MEAN, STD
from rt3d_mlir.errors import Rt3dError


def _require(module: str, extra: str = "formats") -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise Rt3dError(f"reading this format needs '{module}': pip install 'rt3d-mlir[{extra}]'") from None


class CocoDetection(Dataset):
    """A COCO-style detection set: ``annotations`` (a JSON file with ``images``, ``annotations``
    and ``categories``) over image files under ``root``. Each image is resized to ``size``
    (height, width) and its boxes with it; categories become labels 0.. in id order; crowd
    annotations and images without boxes are left out. Items are the built-in set's:
    ``(image [3, H, W], {"boxes": [K, 4] pixels (x0, y0, x1, y1), "labels": [K]})``."""

    task = "detection"

    def __init__(self, root: str, annotations: str, size: Sequence[int] = (64, 64)) -> None:
        try:
            with open(annotations) as f:
                data = json.load(f)
        except OSError as err:
            raise Rt3dError(f"cannot read COCO annotations '{annotations}': {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise Rt3dError(f"'{annotations}' is not valid JSON: {err}") from None
        try:
            categories = sorted(int(c["id"]) for c in data["categories"])
            names = {int(c["id"]): str(c.get("name", c["id"])) for c in data["categories"]}
            images = {int(i["id"]): str(i["file_name"]) for i in data["images"]}
            boxes: dict[int, list[tuple[list[float], int]]] = {}
            for a in data["annotations"]:
                if a.get("iscrowd", 0):
                    continue
                x, y, w, h = (float(v) for v in a["bbox"])
                if w <= 0 or h <= 0:
                    continue
                boxes.setdefault(int(a["image_id"]), []).append(
                    ([x, y, x + w, y + h], categories.index(int(a["category_id"])))
                )
        except (KeyError, TypeError, ValueError) as err:
            kind = type(err).__name__
            raise Rt3dError(f"'{annotations}' is not a COCO annotation file ({kind}: {err})") from None
        self.root, self.size = root, (int(size[0]), int(size[1]))
        self.items = [(images[i], boxes[i]) for i in sorted(boxes) if i in images]
        self.classes = [names[c] for c in categories]
        self.num_classes = len(categories)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image_module = _require("PIL.Image")
        name, objects = self.items[index]
        path = os.path.join(self.root, name)
        try:
            with image_module.Image.open(path) as image:
                width, height = image.size
                rgb = image.convert("RGB").resize((self.size[1], self.size[0]), image_module.Image.BILINEAR)
        except OSError as err:
            raise Rt3dError(f"cannot read image '{path}': {err}") from None
        pixels = np.asarray(rgb, np.float32).transpose(2, 0, 1) / 255.0
        scale = np.array([self.size[1] / width, self.size[0] / height] * 2, np.float32)
        boxes = np.array([b for b, _ in objects], np.float32) * scale
        labels = np.array([label for _, label in objects], np.int64)
        target = {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)}
        return torch.from_numpy((pixels - MEAN) / STD), target


def read_nifti(path: str) -> np.ndarray:
    """A NIfTI image's data as a float32 array (D, H, W): the file's (x, y, z) axes reversed."""
    nibabel = _require("nibabel")
    try:
        data = np.asarray(nibabel.load(path).get_fdata(dtype=np.float32))
    except Exception as err:  # nibabel raises many kinds for a bad file
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise Rt3dError(f"cannot read NIfTI '{path}': {first}") from None
    if data.ndim != 3:
        raise Rt3dError(f"'{path}' holds a {data.ndim}-D image; a volume is 3-D")
    return np.ascontiguousarray(data.transpose(2, 1, 0))


class NiftiVolumes(Dataset):
    """Volumes and their label maps from NIfTI files (pairs of paths), as the built-in volume set
    gives them: ``(volume [1, D, H, W] standardized per volume, labels [D, H, W] int64)``."""

    task = "segmentation"

    def __init__(self, pairs: Sequence[tuple[str, str]], num_classes: int) -> None:
        if not pairs:
            raise Rt3dError("no NIfTI volumes given")
        self.pairs, self.num_classes = list(pairs), num_classes
        self.classes = [str(c) for c in range(num_classes)]
        self.shape = read_nifti(self.pairs[0][0]).shape

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, label_path = self.pairs[index]
        volume, labels = read_nifti(image_path), read_nifti(label_path)
        if volume.shape != labels.shape:
            raise Rt3dError(
                f"'{image_path}' {volume.shape} and '{label_path}' {labels.shape} differ in shape"
            )
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise Rt3dError(f"'{label_path}' holds labels outside 0..{self.num_classes - 1}")
        volume = standardized(volume)
        return torch.from_numpy(volume[None].astype(np.float32)), torch.from_numpy(labels.astype(np.int64))


def standardized(volume: np.ndarray) -> np.ndarray:
    """A volume with zero mean and unit standard deviation (how a segmentation net sees it)."""
    return (volume - volume.mean()) / max(float(volume.std()), 1e-6)
