"""Pruning masks as module buffers, and training that keeps pruned weights zero.

A pruned layer (``Conv3d``, ``Conv2d``, ``Linear``) carries a boolean buffer ``kgs_mask`` of its weight's
shape, so ``torch.save(model)`` / ``load_state_dict`` keep it. Masked
training zeroes the gradients of pruned weights (a tensor hook) and re-zeroes
the weights after every optimizer step (momentum and weight decay cannot
revive them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

MASK_BUFFER = "kgs_mask"


def set_mask(module: nn.Module, mask: torch.Tensor) -> None:
    """Attach (or replace) a layer's mask and zero its pruned weights."""
    mask = mask.to(device=module.weight.device, dtype=torch.bool)
    if mask.shape != module.weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(module.weight.shape)}")
    if hasattr(module, MASK_BUFFER):
        getattr(module, MASK_BUFFER).copy_(mask)
    else:
        module.register_buffer(MASK_BUFFER, mask.clone())
    with torch.no_grad():
        module.weight.mul_(mask)


def masked_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, module in model.named_modules():
        if isinstance(getattr(module, MASK_BUFFER, None), torch.Tensor):
            yield name, module


def add_mask_buffers(model: nn.Module, names: list[str]) -> None:
    """Give the named modules all-true masks (so a saved pruned state loads)."""
    for name in names:
        module = model.get_submodule(name)
        if not hasattr(module, MASK_BUFFER):
            module.register_buffer(MASK_BUFFER, torch.ones_like(module.weight, dtype=torch.bool))


def apply_masks(model: nn.Module) -> None:
    """Zero every pruned weight (call after each optimizer step)."""
    with torch.no_grad():
        for _, module in masked_modules(model):
            module.weight.mul_(getattr(module, MASK_BUFFER))


@contextmanager
def masked_gradients(model: nn.Module) -> Iterator[None]:
    """While active, gradients of pruned weights are zero."""
    handles = []
    for _, module in masked_modules(model):
        mask = getattr(module, MASK_BUFFER)
        handles.append(module.weight.register_hook(lambda grad, mask=mask: grad * mask))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def state_dict_without_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The plain weights (pruned entries are exact zeros), without mask buffers."""
    return {
        key: value for key, value in model.state_dict().items()
        if not key.endswith("." + MASK_BUFFER)
    }
