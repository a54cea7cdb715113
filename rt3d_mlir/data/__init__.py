"""Data sets and loaders for training video models (PyTorch only; no MLIR).

Data set specs (the ``--data`` strings of the tools)::

    synthetic[:KEY=VALUE...]          the built-in procedural motion data set
    ucf101:PATH[:KEY=VALUE...]        UCF101 at PATH, official split files
    hmdb51:PATH[:KEY=VALUE...]        HMDB51 at PATH, official split files
    detection[:KEY=VALUE...]          the built-in detection images (boxes; task "detection")
    coco:ROOT:train=F:val=F[:...]     COCO-style annotation files F over images under ROOT
    volumes[:KEY=VALUE...]            the built-in volumes, as their slices (task "segmentation")

``KEY=VALUE`` parts (e.g. ``ucf101:/data/UCF-101:split=2``) and keyword
options of :func:`build_dataset` are the same options; a value is read as
JSON when it parses (``2``, ``[128,171]``, ``true``), else as a string.

Options of ``synthetic``: ``samples`` (training clips, default 2048),
``val_samples`` (evaluation clips, default 512), ``frames`` (16), ``size``
(32, or ``[height, width]``), ``classes`` (8), ``noise`` (0.05),
``objects`` (at most 3 per clip), ``seed`` (0). Training and evaluation
sets come from disjoint random streams.

Options of ``detection``: ``samples`` (2048), ``val_samples`` (256),
``size`` (64), ``classes`` (5), ``objects`` (4), ``noise`` (0.05),
``seed`` (0). Options of ``volumes``: ``samples`` (volumes, 64),
``val_samples`` (16), ``depth`` (16), ``size`` (64), ``lesions`` (3),
``noise`` (0.15), ``seed`` (0); an item is one slice and its label map.

Options of ``coco``: ``train`` and ``val`` (annotation JSON files, relative to
ROOT or absolute; required), ``size`` (64, or ``[height, width]``). NIfTI
volumes load through :class:`~rt3d_mlir.data.formats.NiftiVolumes` (Python).

Options of ``ucf101`` and ``hmdb51``: ``split`` (1), ``frames`` (16),
``step`` (1), ``resize`` (``[128, 171]``), ``crop`` (112), ``hflip``
(false), ``mean``/``std`` (Kinetics-400 RGB), ``split_dir`` (the published
folder inside PATH), ``check_files`` (true).
"""

from __future__ import annotations

import json
import os
from typing import Any

from torch.utils.data import Dataset

from rt3d_mlir.data.clips import VideoClipDataset
from rt3d_mlir.data.detection import SyntheticDetection
from rt3d_mlir.data.formats import CocoDetection
from rt3d_mlir.data.hmdb51 import HMDB51
from rt3d_mlir.data.loader import InMemory, make_loader, seed_worker
from rt3d_mlir.data.segmentation import SyntheticVolumes, VolumeSlices
from rt3d_mlir.data.synthetic import CLASS_NAMES, MOTIONS, SyntheticActions, synthetic_splits
from rt3d_mlir.data.transforms import KINETICS_MEAN, KINETICS_STD, ClipTransform
from rt3d_mlir.data.ucf101 import UCF101
from rt3d_mlir.data.video import VideoDecodeError, VideoDecoder, clip_indices, read_clip

DATASETS = ("synthetic", "ucf101", "hmdb51", "detection", "volumes", "coco")
_BUILT_IN = ("synthetic", "detection", "volumes")  # take no path
_SYNTHETIC_OPTIONS = ("samples", "val_samples", "frames", "size", "classes", "noise", "objects", "seed")
_DETECTION_OPTIONS = ("samples", "val_samples", "size", "classes", "objects", "noise", "seed")
_COCO_OPTIONS = ("train", "val", "size")
_VOLUME_OPTIONS = ("samples", "val_samples", "depth", "size", "lesions", "noise", "seed")
_VIDEO_OPTIONS = (
    "split", "frames", "step", "resize", "crop", "hflip", "mean", "std", "split_dir", "check_files",
)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """Split a data set spec into ``(name, path or None, options)``.

    Trailing ``:KEY=VALUE`` parts are options; what lies between the name and
    them is the path (which may itself contain ``:``).
    """
    name, _, rest = spec.partition(":")
    if name not in DATASETS:
        raise ValueError(f"unknown data set '{name}' in '{spec}' (choose from {', '.join(DATASETS)})")
    parts = rest.split(":") if rest else []
    options: dict[str, Any] = {}
    while parts and "=" in parts[-1] and parts[-1].partition("=")[0].isidentifier():
        key, _, value = parts.pop().partition("=")
        options[key] = _value(value)
    path = ":".join(parts) or None
    if name in _BUILT_IN and path is not None:
        raise ValueError(f"the {name} data set takes no path, got '{spec}' (options are KEY=VALUE)")
    if name not in _BUILT_IN and path is None:
        raise ValueError(f"'{name}' needs a path: {name}:PATH")
    return name, path, options


def build_dataset(spec: str, train: bool, **options: Any) -> Dataset:
    """The training (``train=True``) or evaluation set a spec names.

    The result has ``num_classes`` and ``classes`` attributes and yields
    ``(clip [3, T, H, W] float32, label int)``. Options given both in the
    spec and as keywords must agree.
    """
    name, path, spec_options = parse_spec(spec)
    for key, value in spec_options.items():
        if key in options and options[key] != value:
            raise ValueError(f"option '{key}' is {value!r} in '{spec}' but {options[key]!r} as a keyword")
    options = {**options, **spec_options}
    known = {
        "synthetic": _SYNTHETIC_OPTIONS, "detection": _DETECTION_OPTIONS, "volumes": _VOLUME_OPTIONS,
        "coco": _COCO_OPTIONS,
    }.get(name, _VIDEO_OPTIONS)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown {name} option(s) {', '.join(unknown)} (known: {', '.join(known)})")
    if name == "synthetic":
        return _synthetic(train, **options)
    if name == "detection":
        return _detection(train, **options)
    if name == "volumes":
        return _volumes(train, **options)
    if name == "coco":
        return _coco(path, train, options)  # type: ignore[arg-type]
    cls = UCF101 if name == "ucf101" else HMDB51
    return cls(path, train=train, **options)


def _synthetic(
    train: bool,
    samples: int = 2048,
    val_samples: int = 512,
    frames: int = 16,
    size: int | list[int] = 32,
    classes: int = 8,
    noise: float = 0.05,
    objects: int = 3,
    seed: int = 0,
) -> SyntheticActions:
    height, width = (size, size) if isinstance(size, int) else size
    return SyntheticActions(
        num_samples=samples if train else val_samples,
        num_frames=frames,
        height=height,
        width=width,
        num_classes=classes,
        noise=noise,
        max_objects=objects,
        seed=seed,
        split="train" if train else "val",
    )


def _detection(
    train: bool, samples: int = 2048, val_samples: int = 256, size: int | list[int] = 64, classes: int = 5,
    objects: int = 4, noise: float = 0.05, seed: int = 0,
) -> SyntheticDetection:
    height, width = (size, size) if isinstance(size, int) else size
    return SyntheticDetection(
        num_samples=samples if train else val_samples, height=height, width=width, num_classes=classes,
        max_objects=objects, noise=noise, seed=seed, split="train" if train else "val",
    )


def _coco(root: str, train: bool, options: dict[str, Any]) -> CocoDetection:
    annotations = options.get("train" if train else "val")
    if not annotations:
        raise ValueError("coco needs its annotation files: coco:ROOT:train=FILE:val=FILE")
    size = options.get("size", 64)
    height, width = (size, size) if isinstance(size, int) else size
    return CocoDetection(root, os.path.join(root, annotations), (height, width))


def _volumes(
    train: bool, samples: int = 64, val_samples: int = 16, depth: int = 16, size: int | list[int] = 64,
    lesions: int = 3, noise: float = 0.15, seed: int = 0,
) -> VolumeSlices:
    height, width = (size, size) if isinstance(size, int) else size
    volumes = SyntheticVolumes(
        num_samples=samples if train else val_samples, depth=depth, height=height, width=width,
        max_lesions=lesions, noise=noise, seed=seed, split="train" if train else "val",
    )
    return VolumeSlices(volumes)


__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "HMDB51",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "MOTIONS",
    "UCF101",
    "ClipTransform",
    "InMemory",
    "SyntheticActions",
    "VideoClipDataset",
    "VideoDecodeError",
    "VideoDecoder",
    "build_dataset",
    "clip_indices",
    "make_loader",
    "parse_spec",
    "read_clip",
    "seed_worker",
    "synthetic_splits",
]
