"""Group regularization of the pruning units: ``lambda * sum_u P_u * ||W_u||_2``.

- ``reweighted`` (RT3D): the factors ``P_u = 1 / (||W_u||^2 + eps)`` are
  recomputed from the current weights at chosen epochs and held fixed in
  between, so units that are already small are pushed harder toward zero.
- ``group_lasso``: one factor for every unit, fixed, chosen so that the
  penalty starts at the value the reweighted one would have (the same
  ``lambda`` means the same initial pull; only its distribution differs).
- ``none``: no penalty (magnitude-only pruning: the same epochs, then the
  hard pruning keeps the largest units).

What one unit weighs (``per``):

- ``unit`` (RT3D as written): every unit's term counts once. A weight's pull
  then falls with its unit's size ``n``: a unit shrinks at the relative rate
  ``lambda / ||W_u||^3 ~ lambda / (n^1.5 sigma^3)``, so the same ``lambda``
  pulls a 4x4 KGS unit (16 weights) 64 times harder than a 16x16 one, and a
  vanilla 4x4 unit (all 27 positions) 140 times more weakly than a KGS 4x4 one.
- ``weight``: every weight counts once. A unit's term is ``n_u * f(rms_u)``
  with ``rms_u = ||W_u|| / sqrt(n_u)`` (reweighted: ``f(r) = r / (r^2 + eps)``;
  group lasso: ``f(r) = r``, which is the ``sqrt(n_u)``-weighted group lasso of
  Yuan and Lin). Every unit shrinks at ``lambda / rms_u^3``, whatever its
  size, and the penalty starts near ``lambda * weights / sigma`` for every
  scheme: one ``lambda`` compares group shapes and schemes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.pruning.units import unit_norms, unit_sizes, unit_squared_norms

REGULARIZERS = ("reweighted", "group_lasso", "none")
PENALTY_PER = ("unit", "weight")
# The default lambda of each: per unit RT3D's; per weight the one the accuracy study chose on
# its probe (bench/RESULTS.md, "The penalty per weight"; 1e-4 per weight would pull 64 times
# harder than 1e-4 per unit does on 4x4 KGS units).
DEFAULT_STRENGTH = {"unit": 1e-4, "weight": 3e-7}


class GroupPenalty:
    def __init__(
        self,
        model: nn.Module,
        layers: list[str],
        scheme: SparsityScheme | Mapping[str, SparsityScheme],
        strength: float,
        eps: float = 1e-6,
        kind: str = "reweighted",
        per: str = "unit",
    ) -> None:
        if kind not in REGULARIZERS[:2]:
            raise ValueError(f"unknown group penalty '{kind}' (choose from {', '.join(REGULARIZERS[:2])})")
        if per not in PENALTY_PER:
            raise ValueError(f"unknown penalty weighting '{per}' (choose from {', '.join(PENALTY_PER)})")
        self.model = model
        self.layers = list(layers)
        # One scheme, or one per layer (a latency target's group shapes differ by layer).
        self.schemes = {name: scheme[name] if isinstance(scheme, Mapping) else scheme for name in self.layers}
        self.strength = strength
        self.eps = eps
        self.kind = kind
        self.per = per
        # Per weight: the term n * f(||W|| / sqrt(n)) is the unit-count term's ||W|| times the
        # factor n^1.5 / (||W||^2 + n eps) (reweighted) or sqrt(n) (group lasso).
        self.sizes = {
            name: unit_sizes(tuple(model.get_submodule(name).weight.shape), self.schemes[name])
            if per == "weight" else None for name in self.layers
        }
        self.factors: dict[str, torch.Tensor] = {}
        self.update_factors()

    def update_factors(self) -> None:
        """Recompute ``P_u`` from the current weights (group lasso: set once, then fixed)."""
        if self.kind == "group_lasso" and self.factors:
            return
        with torch.no_grad():
            squared = {
                name: unit_squared_norms(self.model.get_submodule(name).weight, self.schemes[name])
                for name in self.layers
            }
            reweighted, plain = {}, {}
            for name, value in squared.items():
                sizes = self.sizes[name]
                if sizes is None:
                    reweighted[name], plain[name] = 1.0 / (value + self.eps), torch.ones_like(value)
                else:
                    sizes = sizes.to(value)
                    reweighted[name], plain[name] = sizes.pow(1.5) / (value + sizes * self.eps), sizes.sqrt()
            if self.kind == "reweighted":
                self.factors = reweighted
                return
            pulled = sum(float((reweighted[n] * squared[n].sqrt()).sum()) for n in self.layers)
            total = sum(float((plain[n] * squared[n].sqrt()).sum()) for n in self.layers)
            scale = pulled / total if total > 0 else 1.0
            self.factors = {name: plain[name] * scale for name in self.layers}

    def __call__(self) -> torch.Tensor:
        total = None
        for name in self.layers:
            weight = self.model.get_submodule(name).weight
            # A tiny eps inside the sqrt keeps the gradient finite at zero.
            factors = self.factors[name].to(weight.device)
            term = (factors * unit_norms(weight, self.schemes[name], eps=1e-12)).sum()
            total = term if total is None else total + term
        assert total is not None
        return self.strength * total

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: factor.clone() for name, factor in self.factors.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.factors = {name: state[name].clone() for name in self.layers}
