"""Checks every runtime applies to a call's input and optional output array, and to thread counts."""

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


INT32_MAX = (1 << 31) - 1


def checked_threads(count: int) -> int:
    """A thread count as the C ABI takes it: an int32 >= 1 (the glue caps it at MAX_THREADS)."""
    if isinstance(count, bool) or not isinstance(count, int | np.integer):
        raise ArtifactError(f"the thread count must be an integer, got {count!r}")
    if not 1 <= int(count) <= INT32_MAX:
        raise ArtifactError(f"the thread count must be between 1 and {INT32_MAX}, got {count}")
    return int(count)
