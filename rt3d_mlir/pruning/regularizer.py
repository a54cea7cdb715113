"""Group regularization of the pruning units: ``lambda * sum_u P_u * ||W_u||_2``.

- ``reweighted`` (RT3D): the factors ``P_u = 1 / (||W_u||^2 + eps)`` are
  recomputed from the current weights at chosen epochs and held fixed in
  between, so units that are already small are pushed harder toward zero.
- ``group_lasso``: one factor for every unit, fixed, chosen so that the
  penalty starts at the value the reweighted one would have (the same
  ``lambda`` means the same initial pull; only its distribution differs).
- ``none``: no penalty (magnitude-only pruning: the same epochs, then the
  hard pruning keeps the largest units).
"""

from __future__ import annotations

import torch
from torch import nn

from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.pruning.units import unit_norms, unit_squared_norms

REGULARIZERS = ("reweighted", "group_lasso", "none")


class GroupPenalty:
    def __init__(
        self,
        model: nn.Module,
        layers: list[str],
        scheme: SparsityScheme,
        strength: float,
        eps: float = 1e-6,
        kind: str = "reweighted",
    ) -> None:
        if kind not in REGULARIZERS[:2]:
            raise ValueError(f"unknown group penalty '{kind}' (choose from {', '.join(REGULARIZERS[:2])})")
        self.model = model
        self.layers = list(layers)
        self.scheme = scheme
        self.strength = strength
        self.eps = eps
        self.kind = kind
        self.factors: dict[str, torch.Tensor] = {}
        self.update_factors()

    def update_factors(self) -> None:
        """Recompute ``P_u`` from the current weights (group lasso: set once, then fixed)."""
        if self.kind == "group_lasso" and self.factors:
            return
        with torch.no_grad():
            squared = {
                name: unit_squared_norms(self.model.get_submodule(name).weight, self.scheme)
                for name in self.layers
            }
            reweighted = {name: 1.0 / (value + self.eps) for name, value in squared.items()}
            if self.kind == "reweighted":
                self.factors = reweighted
                return
            pulled = sum(float((reweighted[n] * squared[n].sqrt()).sum()) for n in self.layers)
            total = sum(float(squared[n].sqrt().sum()) for n in self.layers)
            scale = pulled / total if total > 0 else 1.0
            self.factors = {name: torch.full_like(value, scale) for name, value in squared.items()}

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
