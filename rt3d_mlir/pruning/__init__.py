"""Pruning into kernel-group structured sparsity (PyTorch only; no MLIR)."""

from rt3d_mlir.pruning.random_masks import apply_random_masks, random_group_masks

__all__ = ["apply_random_masks", "random_group_masks"]
