"""Kernel-group sparsity of a Conv3d weight, defined once (numpy only).

A weight ``W[F, C, Kd, Kh, Kw]`` with group shape ``(gF, gC)`` is split into
kernel groups ``W[i*gF:(i+1)*gF, j*gC:(j+1)*gC]``; edge groups may be smaller.
A KGS mask has one boolean per (filter group, channel group, kd, kh, kw):
``False`` means that position is zero in every kernel of the group. Vanilla
structured sparsity is the special case where each group's mask is all
``True`` or all ``False``.

Used by the compiler passes (to discover masks from a weight's exact zeros),
by the frontend (to choose a group shape) and by the pruning library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

GroupShape = tuple[int, int]

# Largest first: the group shape chosen for a weight is the first that fits.
DEFAULT_GROUP_SHAPE_CANDIDATES: tuple[GroupShape, ...] = (
    (16, 16),
    (16, 8),
    (8, 16),
    (16, 4),
    (8, 8),
    (4, 16),
    (8, 4),
    (4, 8),
    (4, 4),
    (16, 1),  # block-based pruning's columns (rt3d_mlir.pruning.schemes): groups of bR x 1
    (4, 2),
    (2, 4),
    (8, 1),
    (2, 2),
    (4, 1),
    (2, 1),
    (1, 2),
    (1, 1),
)


MAX_GROUP_EXTENT = 1 << 16  # filters or channels in one kernel group (a larger group is the whole layer)


def parse_group_shape(text: str) -> GroupShape:
    """Parse ``"8x4"`` into ``(8, 4)``."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"group shape must look like 8x4, got '{text}'")
    g_f, g_c = int(parts[0]), int(parts[1])
    if not (1 <= g_f <= MAX_GROUP_EXTENT and 1 <= g_c <= MAX_GROUP_EXTENT):
        raise ValueError(f"group shape entries must be between 1 and {MAX_GROUP_EXTENT}, got '{text}'")
    return g_f, g_c


def format_group_shape(group_shape: Sequence[int]) -> str:
    return f"{group_shape[0]}x{group_shape[1]}"


def mask_shape(weight_shape: Sequence[int], group_shape: Sequence[int]) -> tuple[int, ...]:
    """Shape of the kernel-group mask of a weight: ``(nGF, nGC, Kd, Kh, Kw)``."""
    f, c = weight_shape[0], weight_shape[1]
    return (math.ceil(f / group_shape[0]), math.ceil(c / group_shape[1]), *weight_shape[2:])


def _pad_to_groups(array: np.ndarray, group_shape: Sequence[int]) -> np.ndarray:
    g_f, g_c = group_shape
    f, c = array.shape[:2]
    pad_f, pad_c = (-f) % g_f, (-c) % g_c
    if pad_f or pad_c:
        widths = [(0, pad_f), (0, pad_c)] + [(0, 0)] * (array.ndim - 2)
        array = np.pad(array, widths)
    return array


def _grouped(array: np.ndarray, group_shape: Sequence[int]) -> np.ndarray:
    """View ``[F, C, ...]`` as ``[nGF, gF, nGC, gC, ...]`` (zero-padded edges)."""
    g_f, g_c = group_shape
    padded = _pad_to_groups(array, group_shape)
    f, c = padded.shape[:2]
    return padded.reshape(f // g_f, g_f, c // g_c, g_c, *padded.shape[2:])


def kernel_group_masks(weight: np.ndarray, group_shape: Sequence[int]) -> np.ndarray:
    """The KGS mask a weight's exact zeros imply: a position is kept in a group
    if any kernel of the group is nonzero there."""
    if weight.ndim != 5:
        raise ValueError(f"expected a 5-D Conv3d weight, got shape {weight.shape}")
    nonzero = _grouped(weight != 0, group_shape)
    return nonzero.any(axis=(1, 3))


def expand_masks(
    masks: np.ndarray, weight_shape: Sequence[int], group_shape: Sequence[int]
) -> np.ndarray:
    """Per-element boolean mask of the weight from a kernel-group mask."""
    g_f, g_c = group_shape
    full = np.repeat(np.repeat(masks, g_f, axis=0), g_c, axis=1)
    return full[: weight_shape[0], : weight_shape[1]]


def explained_zeros(weight: np.ndarray, group_shape: Sequence[int]) -> int:
    """How many zero weights lie in positions the group mask removes."""
    removed = ~expand_masks(kernel_group_masks(weight, group_shape), weight.shape, group_shape)
    return int(removed.sum())


def group_shape_fits(
    weight: np.ndarray,
    group_shape: Sequence[int],
    tolerance: float = 1e-3,
    incidental: float = 1e-4,
) -> bool:
    """Whether the weight's zeros form whole kernel-group positions.

    True when the group mask removes all of the weight's zeros except for at
    most ``tolerance`` of them plus ``incidental`` of the weight's size:
    exact zeros in kept positions, such as the one or two a 7 M-element
    randomly initialized weight holds, which must not force 1x1 groups.
    """
    zeros = int((weight == 0).sum())
    allowed = tolerance * zeros + incidental * weight.size
    return explained_zeros(weight, group_shape) >= zeros - allowed


def choose_group_shape(
    weight: np.ndarray,
    candidates: Sequence[GroupShape] = DEFAULT_GROUP_SHAPE_CANDIDATES,
) -> GroupShape:
    """The first (largest) candidate group shape that the weight's zeros fit,
    clipped to the weight's filter and channel counts."""
    for g_f, g_c in candidates:
        if group_shape_fits(weight, (g_f, g_c)):
            return min(g_f, weight.shape[0]), min(g_c, weight.shape[1])
    return (1, 1)


def diagonal_groups(weight: np.ndarray) -> int:
    """The most groups ``G`` (dividing both filter and channel counts) such that the weight is zero
    outside its ``G`` diagonal blocks: the ``groups`` of the grouped convolution it came from
    (1 for an ordinary convolution)."""
    filters, channels = weight.shape[:2]
    nonzero = np.abs(weight).reshape(filters, channels, -1).max(axis=2) != 0
    for groups in sorted((g for g in range(2, math.gcd(filters, channels) + 1)
                          if filters % g == 0 and channels % g == 0), reverse=True):
        f, c = filters // groups, channels // groups
        blocks = nonzero.reshape(groups, f, groups, c).any(axis=(1, 3))
        if not blocks[~np.eye(groups, dtype=bool)].any():
            return groups
    return 1


def kept_fraction(masks: np.ndarray, weight_shape: Sequence[int], group_shape: Sequence[int]) -> float:
    """Fraction of the weight's multiply-accumulates that the mask keeps."""
    full = expand_masks(masks, weight_shape, group_shape)
    return float(full.mean()) if full.size else 1.0


def is_vanilla(masks: np.ndarray) -> bool:
    """Whether every kernel group is kept whole or removed whole."""
    per_group = masks.reshape(masks.shape[0], masks.shape[1], -1)
    return bool(np.all(per_group.all(axis=2) | ~per_group.any(axis=2)))
