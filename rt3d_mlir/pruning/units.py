"""Pruning units of a layer's weight: their norms, sizes and masks (torch).

Every weight is seen as a Conv3d weight ``[F, C, Kd, Kh, Kw]`` (a Conv2d's
``[F, C, Kh, Kw]`` with depth 1, a Linear's ``[F, K]`` with 1x1x1 kernels;
:func:`as_conv3d`). With group shape ``(gF, gC)`` it is viewed as
``[nGF, gF, nGC, gC, Kd, Kh, Kw]`` (edge groups zero-padded). A unit is the
set of weights that are kept or removed together:

- KGS ``position``: ``(i, j, kd, kh, kw)`` -> unit grid ``[nGF, nGC, Kd, Kh, Kw]``
- KGS ``spatial``:  ``(i, j, kh, kw)`` through all ``kd`` -> ``[nGF, nGC, Kh, Kw]``
- vanilla:          ``(i, j)`` -> ``[nGF, nGC]``
- block ``column`` (block shape ``(bR, bC)``): KGS ``position`` with groups of
  ``bR x 1``, one (channel, position) column of ``bR`` rows -> ``[nBR, C, Kd, Kh, Kw]``
- block ``row``: the weight as the matrix ``[F, C x Kd x Kh x Kw]`` in groups
  of ``1 x bC``, one filter's ``bC`` consecutive columns -> ``[F, nBC]``
- ``filter``: one output channel, groups of ``1 x C`` -> ``[F, 1]``
- ``unstructured``: one weight, groups of ``1 x 1`` -> ``[F, C, Kd, Kh, Kw]``
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rt3d_mlir.pruning.schemes import SparsityScheme


def as_conv3d(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A Conv3d, Conv2d or Linear weight shape as a Conv3d one (depth 1, 1x1x1 kernels)."""
    if len(shape) not in (2, 4, 5):
        raise ValueError(f"expected a Conv3d, Conv2d or Linear weight, got shape {shape}")
    return (*shape[:2], *(1,) * (5 - len(shape)), *shape[2:])


def _base_shape(weight_shape: tuple[int, ...], scheme: SparsityScheme) -> tuple[int, ...]:
    """The shape that is split into groups: the Conv3d view, or (block rows) its matrix."""
    shape = as_conv3d(weight_shape)
    if scheme.kind == "block" and scheme.unit == "row":
        return (shape[0], math.prod(shape[1:]))
    return shape


def _group(scheme: SparsityScheme, base: tuple[int, ...]) -> tuple[int, int]:
    if scheme.kind == "filter":
        return (1, base[1])
    if scheme.kind == "unstructured":
        return (1, 1)
    if scheme.kind != "block":
        return scheme.group_shape
    rows, columns = scheme.group_shape
    return (1, columns) if scheme.unit == "row" else (rows, 1)


def _reduce_dims(scheme: SparsityScheme) -> tuple[int, ...]:
    # Dims of the grouped view [nGF, gF, nGC, gC, Kd, Kh, Kw] summed into one unit.
    if scheme.kind in ("vanilla", "filter"):
        return (1, 3, 4, 5, 6)
    if scheme.kind == "kgs" and scheme.unit == "spatial":
        return (1, 3, 4)
    return (1, 3)


def _grouped(weight: torch.Tensor, scheme: SparsityScheme) -> torch.Tensor:
    weight = weight.reshape(_base_shape(tuple(weight.shape), scheme))
    g_f, g_c = _group(scheme, tuple(weight.shape))
    f, c = weight.shape[:2]
    pad_f, pad_c = (-f) % g_f, (-c) % g_c
    if pad_f or pad_c:
        # F.pad pads the last dims first: (..., C, F) pairs.
        weight = F.pad(weight, (0, 0) * (weight.dim() - 2) + (0, pad_c, 0, pad_f))
    n_gf, n_gc = weight.shape[0] // g_f, weight.shape[1] // g_c
    return weight.reshape(n_gf, g_f, n_gc, g_c, *weight.shape[2:])


def unit_squared_norms(weight: torch.Tensor, scheme: SparsityScheme) -> torch.Tensor:
    """Sum of squares of each unit (differentiable)."""
    return _grouped(weight, scheme).pow(2).sum(dim=_reduce_dims(scheme))


def unit_norms(weight: torch.Tensor, scheme: SparsityScheme, eps: float = 0.0) -> torch.Tensor:
    return torch.sqrt(unit_squared_norms(weight, scheme) + eps)


def unit_sizes(weight_shape: tuple[int, ...], scheme: SparsityScheme) -> torch.Tensor:
    """Number of real (unpadded) weights in each unit."""
    return _grouped(torch.ones(weight_shape), scheme).sum(dim=_reduce_dims(scheme))


def expand_unit_mask(
    unit_mask: torch.Tensor, weight_shape: tuple[int, ...], scheme: SparsityScheme
) -> torch.Tensor:
    """Per-weight boolean mask (of ``weight_shape``) from a unit mask."""
    base = _base_shape(weight_shape, scheme)
    g_f, g_c = _group(scheme, base)
    f, c = base[:2]
    n_gf, n_gc = math.ceil(f / g_f), math.ceil(c / g_c)
    view = (n_gf, g_f, n_gc, g_c, *base[2:])
    dims = _reduce_dims(scheme)
    grid = unit_mask.reshape([1 if d in dims else size for d, size in enumerate(view)])
    full = grid.expand(view).reshape(n_gf * g_f, n_gc * g_c, *base[2:])
    return full[:f, :c].reshape(weight_shape).contiguous()


def balanced_columns(norms: torch.Tensor, scheme: SparsityScheme, rate: float) -> torch.Tensor | None:
    """Block columns (unit grid ``[nBR, C, Kd, Kh, Kw]``): the mask keeping, in every block of ``bC``
    columns of each row block, its largest-norm columns, ``columns / rate`` of them rounded down or
    up (at least one), so that blocks of filters do the same work to within one column and the layer
    keeps ``1 / rate`` of its columns; a block rounds up where its next column's norm is among the
    largest. None for other units."""
    if scheme.kind != "block" or scheme.unit != "column":
        return None
    block = scheme.group_shape[1]
    n_br = norms.shape[0]
    flat = norms.reshape(n_br, -1)
    columns = flat.shape[1]
    n_bc = math.ceil(columns / block)
    widths = torch.tensor([min(block, columns - j * block) for j in range(n_bc)])
    padded = F.pad(flat, (0, n_bc * block - columns), value=-1.0).reshape(n_br, n_bc, block)
    ranked = torch.sort(padded, dim=2, descending=True, stable=True)
    base = torch.clamp(torch.floor(widths / rate), min=1).long().expand(n_br, n_bc)
    # the blocks that keep one column more: those whose next column is the largest, until the layer
    # keeps the columns its rate asks for
    extra = round(n_br * columns / rate) - int(base.sum())
    room = base < widths
    if extra > 0:
        following = ranked.values.gather(2, torch.clamp(base, max=block - 1).unsqueeze(2)).squeeze(2)
        following = torch.where(room, following, torch.full_like(following, -2.0))
        order = torch.argsort(following.flatten(), descending=True, stable=True)
        chosen = order[: min(extra, int(room.sum()))]
        base = base.flatten().clone()
        base[chosen] += 1
        base = base.reshape(n_br, n_bc)
    positions = torch.arange(block).expand(n_br, n_bc, block)
    keep_sorted = positions < base.unsqueeze(2)
    keep = torch.zeros_like(keep_sorted).scatter(2, ranked.indices, keep_sorted)
    return keep.reshape(n_br, n_bc * block)[:, :columns].reshape(norms.shape)
