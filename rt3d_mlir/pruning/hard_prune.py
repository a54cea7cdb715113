"""Hard pruning: keep the largest-norm units of each layer to reach its rate.

A layer's FLOPs scale with its number of nonzero weights, so a rate ``r``
(dense / kept FLOPs) keeps ``1/r`` of the weights: the units are taken in
order of decreasing norm until their weight count is closest to that (block
columns: the same number in every block, ``units.balanced_columns``;
unstructured: ``torch.ao.pruning``'s weight-norm sparsifier, blocks of one). A
whole-model target becomes one keep fraction for all pruned layers, with
skipped layers counted as dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rt3d_mlir.pruning.flops import LayerFlops
from rt3d_mlir.pruning.masking import set_mask
from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.pruning.units import balanced_columns, expand_unit_mask, unit_norms, unit_sizes


@dataclass(frozen=True)
class LayerPlan:
    name: str
    rate: float  # requested FLOPs reduction of this layer


def rates_for_flops_target(
    layers: list[LayerFlops], pruned: list[str], target: float
) -> dict[str, float]:
    """Per-layer rates (one keep fraction for all pruned layers) for a whole-model target."""
    if target < 1.0:
        raise ValueError(f"FLOPs reduction must be >= 1, got {target}")
    total = sum(layer.dense_macs for layer in layers)
    prunable = sum(layer.dense_macs for layer in layers if layer.name in pruned)
    fixed = total - prunable
    budget = total / target
    if prunable == 0:
        raise ValueError("no layer to prune")
    keep = (budget - fixed) / prunable
    if keep <= 0:
        limit = total / fixed if fixed else float("inf")
        raise ValueError(
            f"a {target:g}x FLOPs reduction is out of reach: the layers kept dense alone allow at most "
            f"{limit:.2f}x"
        )
    keep = min(keep, 1.0)
    return {name: 1.0 / keep for name in pruned}


def unit_mask_for_rate(
    weight: torch.Tensor, scheme: SparsityScheme, rate: float, norms: torch.Tensor | None = None
) -> torch.Tensor:
    """Unit mask keeping the largest-norm units whose weights total closest to 1/rate."""
    norms = unit_norms(weight.detach(), scheme) if norms is None else norms
    if scheme.kind == "unstructured":
        return sparsifier_mask(weight, rate).reshape(norms.shape)
    balanced = balanced_columns(norms, scheme, rate)
    if balanced is not None:
        return balanced
    sizes = unit_sizes(tuple(weight.shape), scheme)
    flat_norms, flat_sizes = norms.flatten(), sizes.flatten()
    order = torch.argsort(flat_norms, descending=True, stable=True)
    cumulative = torch.cumsum(flat_sizes[order], 0)
    target = float(flat_sizes.sum()) / rate
    # Number of units whose cumulative size is closest to the target (at least one).
    count = int(torch.argmin((cumulative - target).abs())) + 1
    keep = torch.zeros_like(flat_norms, dtype=torch.bool)
    keep[order[:count]] = True
    return keep.reshape(norms.shape)


def sparsifier_mask(weight: torch.Tensor, rate: float) -> torch.Tensor:
    """Unstructured magnitude pruning by ``torch.ao.pruning.WeightNormSparsifier`` (blocks of one
    weight): the mask keeping ``1/rate`` of ``weight``. The sparsifier takes 2-D weights, so it
    prunes the weight seen as the matrix ``[F, C x Kd x Kh x Kw]`` (the same weights: blocks of one
    do not see the shape)."""
    from torch.ao.pruning import WeightNormSparsifier

    matrix = weight.detach().reshape(weight.shape[0], -1).float().cpu()
    holder = nn.Module()
    holder.layer = nn.Linear(matrix.shape[1], matrix.shape[0], bias=False)
    with torch.no_grad():
        holder.layer.weight.copy_(matrix)
    sparsifier = WeightNormSparsifier(sparsity_level=1.0 - 1.0 / rate, sparse_block_shape=(1, 1),
                                      zeros_per_block=1)
    sparsifier.prepare(holder, [{"tensor_fqn": "layer.weight"}])
    sparsifier.step()
    mask = holder.layer.parametrizations.weight[0].mask  # type: ignore[union-attr,index]
    return mask.bool().reshape(weight.shape).to(weight.device)


def hard_prune(
    model: nn.Module, scheme: SparsityScheme, rates: dict[str, float]
) -> dict[str, torch.Tensor]:
    """Attach masks to the named layers (Conv3d, Conv2d, Linear) and zero their pruned weights."""
    masks = {}
    for name, rate in rates.items():
        module = model.get_submodule(name)
        unit_mask = unit_mask_for_rate(module.weight, scheme, rate)
        mask = expand_unit_mask(unit_mask, tuple(module.weight.shape), scheme)
        set_mask(module, mask)
        masks[name] = unit_mask
    return masks
