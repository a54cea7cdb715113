"""Reweighted group regularization (RT3D): ``lambda * sum_u P_u * ||W_u||_2``.

The reweighting factors ``P_u = 1 / (||W_u||^2 + eps)`` are recomputed from
the current weights at chosen epochs and held fixed in between, so units
that are already small are pushed harder toward zero.
"""

from __future__ import annotations

import torch
from torch import nn

from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.pruning.units import unit_norms, unit_squared_norms


class ReweightedGroupPenalty:
    def __init__(
        self,
        model: nn.Module,
        layers: list[str],
        scheme: SparsityScheme,
        strength: float,
        eps: float = 1e-6,
    ) -> None:
        self.model = model
        self.layers = list(layers)
        self.scheme = scheme
        self.strength = strength
        self.eps = eps
        self.factors: dict[str, torch.Tensor] = {}
        self.update_factors()

    def update_factors(self) -> None:
        """Recompute ``P_u`` from the current weights."""
        with torch.no_grad():
            for name in self.layers:
                weight = self.model.get_submodule(name).weight
                self.factors[name] = 1.0 / (unit_squared_norms(weight, self.scheme) + self.eps)

    def __call__(self) -> torch.Tensor:
        total = None
        for name in self.layers:
            weight = self.model.get_submodule(name).weight
            # A tiny eps inside the sqrt keeps the gradient finite at zero.
            factors = self.factors[name].to(weight.device)
            term = (factors * unit_norms(weight, self.scheme, eps=1e-12)).sum()
            total = term if total is None else total + term
        assert total is not None
        return self.strength * total

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: factor.clone() for name, factor in self.factors.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.factors = {name: state[name].clone() for name in self.layers}
