"""The 3D CNNs the toolkit prunes and compiles, by architecture name."""

from __future__ import annotations

from typing import Any

from torch import nn

from rt3d_mlir.models.c3d import C3D
from rt3d_mlir.models.r2plus1d import R2Plus1D
from rt3d_mlir.models.s3d import S3D
from rt3d_mlir.models.x3d import X3D

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "c3d": C3D,
    "r2plus1d": R2Plus1D,
    "s3d": S3D,
    "x3d": X3D,
}


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """Build an architecture by name (``c3d``, ``r2plus1d``, ``s3d``, ``x3d``)."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture '{arch}' (known: {known})") from None
    return cls(**kwargs)


__all__ = ["ARCHITECTURES", "C3D", "S3D", "X3D", "R2Plus1D", "build_model"]
