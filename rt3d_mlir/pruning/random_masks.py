"""Random kernel-group masks with per-layer keep rates (for tests and benchmarks).

Zeroes whole kernel-group positions (KGS) or whole kernel groups (vanilla)
of every ``Conv3d`` chosen, uniformly at random with a seeded generator, so
that each layer keeps about ``keep`` of its weights. Not a pruning
algorithm: it stands in for one where only the sparsity structure matters.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from rt3d_mlir.sparsity import expand_masks, mask_shape


def random_group_masks(
    weight_shape: tuple[int, ...],
    group_shape: tuple[int, int],
    keep: float,
    scheme: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """A ``(nGF, nGC, Kd, Kh, Kw)`` boolean mask keeping about ``keep`` of it.

    Every filter group keeps at least one position, so no output channel is
    dead (a dead channel would make the test trivially satisfied).
    """
    shape = mask_shape(weight_shape, group_shape)
    n_gf, n_gc = shape[:2]
    positions = int(np.prod(shape[2:]))
    if scheme == "vanilla":
        flat = rng.random((n_gf, n_gc)) < keep
        flat[np.arange(n_gf), rng.integers(0, n_gc, n_gf)] = True
        return np.broadcast_to(flat[:, :, None, None, None], shape).copy()
    if scheme != "kgs":
        raise ValueError(f"unknown scheme '{scheme}' (kgs or vanilla)")
    flat = rng.random((n_gf, n_gc, positions)) < keep
    for i in range(n_gf):
        if not flat[i].any():
            flat[i, rng.integers(0, n_gc), rng.integers(0, positions)] = True
    return flat.reshape(shape)


def apply_random_masks(
    model: nn.Module,
    group_shape: tuple[int, int],
    keep: float,
    scheme: str = "kgs",
    seed: int = 0,
    skip: Iterable[str] = (),
) -> dict[str, np.ndarray]:
    """Zero random kernel-group positions of each Conv3d (except ``skip``) in place.

    Returns the group mask applied to each layer, by module name.
    """
    rng = np.random.default_rng(seed)
    skipped = set(skip)
    masks: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            if not isinstance(module, nn.Conv3d) or name in skipped:
                continue
            shape = tuple(module.weight.shape)
            group = random_group_masks(shape, group_shape, keep, scheme, rng)
            full = expand_masks(group, shape, group_shape)
            module.weight.mul_(torch.from_numpy(full.astype(np.float32)))
            masks[name] = group
    return masks
