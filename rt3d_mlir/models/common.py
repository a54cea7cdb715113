"""Small helpers shared by the model definitions."""

from __future__ import annotations

import math


def scaled(channels: int, width: float) -> int:
    """A channel count multiplied by a width multiplier, at least 1."""
    return max(1, round(channels * width))


def pooled_size(
    size: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
) -> tuple[int, ...]:
    """Output size of a (floor-mode) pooling or convolution window."""
    return tuple(
        math.floor((s + 2 * p - k) / st) + 1
        for s, k, st, p in zip(size, kernel, stride, padding, strict=True)
    )
