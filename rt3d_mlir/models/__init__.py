"""The CNNs the toolkit prunes and compiles, by architecture name: the 3D video CNNs, and the 2D
detector (``yolo``) and segmentation net (``unet``) of the companion paper's applications."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from torch import nn

from rt3d_mlir.models import torchvision_video
from rt3d_mlir.models.c3d import C3D
from rt3d_mlir.models.r2plus1d import R2Plus1D
from rt3d_mlir.models.s3d import S3D
from rt3d_mlir.models.unet import UNet2d
from rt3d_mlir.models.x3d import X3D
from rt3d_mlir.models.yolo import TinyYolo

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "c3d": C3D,
    "r2plus1d": R2Plus1D,
    "s3d": S3D,
    "x3d": X3D,  # X3D-S unless variant= says otherwise
    "x3d_xs": partial(X3D, variant="xs"),
    "x3d_s": partial(X3D, variant="s"),
    "x3d_m": partial(X3D, variant="m"),
    "yolo": TinyYolo,  # 2D: trains on the detection set
    "unet": UNet2d,  # 2D: segments the volume set's slices
}
TWO_D = ("yolo", "unet")  # the built-ins with 2D (N, C, H, W) inputs
TASKS = {"yolo": "detection", "unet": "segmentation"}  # what they train for; the others classify


def architecture_task(arch: str) -> str:
    """What an architecture trains for: classification, detection or segmentation."""
    return TASKS.get(arch, "classification")


def architecture_names() -> list[str]:
    """The names :func:`build_model` takes: the built-ins, and torchvision's video CNNs
    (``tv:r3d_18``, ...) where torchvision is installed."""
    names = sorted(ARCHITECTURES)
    if torchvision_video.torchvision_installed():
        names += [torchvision_video.PREFIX + name for name in torchvision_video.VIDEO_CNNS]
    return names


def known_architecture(arch: str) -> bool:
    if not isinstance(arch, str):
        return False
    return arch in ARCHITECTURES or (
        torchvision_video.is_torchvision_arch(arch) and arch in architecture_names()
    )


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """Build an architecture by name (``c3d``, ``r2plus1d``, ``s3d``, ``x3d``, ``tv:r3d_18``, ...).

    torchvision's models take ``num_classes`` only; the built-ins' other
    arguments (``width``, ``input_size``) do not apply to them and are ignored.
    """
    if arch in ARCHITECTURES:
        return ARCHITECTURES[arch](**kwargs)
    if known_architecture(arch):
        return torchvision_video.torchvision_video_model(arch, **kwargs)
    raise ValueError(f"unknown architecture '{arch}' (known: {', '.join(architecture_names())})")


__all__ = [
    "ARCHITECTURES",
    "C3D",
    "S3D",
    "TASKS",
    "TWO_D",
    "X3D",
    "R2Plus1D",
    "TinyYolo",
    "UNet2d",
    "architecture_names",
    "architecture_task",
    "build_model",
    "known_architecture",
]
