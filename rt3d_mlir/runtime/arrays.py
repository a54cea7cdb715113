"""Checks every runtime applies to a call's input and optional output array."""

from __future__ import annotations

import numpy as np

from rt3d_mlir.errors import ArtifactError


def checked_input(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` as an array of the model's input shape and a floating dtype (not yet converted)."""
    x = np.asarray(x)
    if x.shape != shape:
        raise ArtifactError(f"input has shape {x.shape}, but the model was compiled for {shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ArtifactError(f"input must be floating point, got {x.dtype}")
    return x


def output_array(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``out`` if it can receive the output, else a new float32 array of ``shape``."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if (
        not isinstance(out, np.ndarray)
        or out.shape != shape
        or out.dtype != np.float32
        or not out.flags.c_contiguous
        or not out.flags.writeable
    ):
        raise ArtifactError(f"out must be a writable C-contiguous float32 array of shape {shape}")
    return out
