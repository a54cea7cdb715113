"""Pruning units of a Conv3d weight: their norms, sizes and masks (torch).

With group shape ``(gF, gC)`` the weight ``[F, C, Kd, Kh, Kw]`` is viewed
as ``[nGF, gF, nGC, gC, Kd, Kh, Kw]`` (edge groups zero-padded). A unit is
the set of weights that are kept or removed together:

- KGS ``position``: ``(i, j, kd, kh, kw)`` -> unit grid ``[nGF, nGC, Kd, Kh, Kw]``
- KGS ``spatial``:  ``(i, j, kh, kw)`` through all ``kd`` -> ``[nGF, nGC, Kh, Kw]``
- vanilla:          ``(i, j)`` -> ``[nGF, nGC]``
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rt3d_mlir.pruning.schemes import SparsityScheme


def _grouped(weight: torch.Tensor, group_shape: tuple[int, int]) -> torch.Tensor:
    g_f, g_c = group_shape
    f, c = weight.shape[:2]
    pad_f, pad_c = (-f) % g_f, (-c) % g_c
    if pad_f or pad_c:
        # F.pad pads the last dims first: (Kw, Kh, Kd, C, F) pairs.
        weight = F.pad(weight, (0, 0, 0, 0, 0, 0, 0, pad_c, 0, pad_f))
    n_gf, n_gc = weight.shape[0] // g_f, weight.shape[1] // g_c
    return weight.reshape(n_gf, g_f, n_gc, g_c, *weight.shape[2:])


def _reduce_dims(scheme: SparsityScheme) -> tuple[int, ...]:
    # Dims of the grouped view [nGF, gF, nGC, gC, Kd, Kh, Kw] summed into one unit.
    if scheme.kind == "vanilla":
        return (1, 3, 4, 5, 6)
    if scheme.unit == "spatial":
        return (1, 3, 4)
    return (1, 3)


def unit_squared_norms(weight: torch.Tensor, scheme: SparsityScheme) -> torch.Tensor:
    """Sum of squares of each unit (differentiable)."""
    return _grouped(weight, scheme.group_shape).pow(2).sum(dim=_reduce_dims(scheme))


def unit_norms(weight: torch.Tensor, scheme: SparsityScheme, eps: float = 0.0) -> torch.Tensor:
    return torch.sqrt(unit_squared_norms(weight, scheme) + eps)


def unit_sizes(weight_shape: tuple[int, ...], scheme: SparsityScheme) -> torch.Tensor:
    """Number of real (unpadded) weights in each unit."""
    ones = torch.ones(weight_shape)
    return _grouped(ones, scheme.group_shape).sum(dim=_reduce_dims(scheme))


def expand_unit_mask(
    unit_mask: torch.Tensor, weight_shape: tuple[int, ...], scheme: SparsityScheme
) -> torch.Tensor:
    """Per-weight boolean mask from a unit mask."""
    g_f, g_c = scheme.group_shape
    f, c, kd, kh, kw = weight_shape
    n_gf, n_gc = math.ceil(f / g_f), math.ceil(c / g_c)
    if scheme.kind == "vanilla":
        grid = unit_mask.reshape(n_gf, 1, n_gc, 1, 1, 1, 1)
    elif scheme.unit == "spatial":
        grid = unit_mask.reshape(n_gf, 1, n_gc, 1, 1, kh, kw)
    else:
        grid = unit_mask.reshape(n_gf, 1, n_gc, 1, kd, kh, kw)
    full = grid.expand(n_gf, g_f, n_gc, g_c, kd, kh, kw).reshape(n_gf * g_f, n_gc * g_c, kd, kh, kw)
    return full[:f, :c].contiguous()
