"""Sparsity schemes as data: what a pruning unit is and which layers are pruned.

A scheme names the structure (``kgs`` or ``vanilla``), the kernel-group
shape ``(gF, gC)`` and, for KGS, the pruning unit: a kernel position
``(kd, kh, kw)`` of a group (``position``) or a spatial position ``(kh, kw)``
through the whole temporal depth (``spatial``, as the published follow-up
code does). Layer selection follows ``torch.ao.pruning``'s per-module config
list: ``[{"module": "features.conv2a", "rate": 3.0}, ...]`` where ``rate``
is the layer's FLOPs reduction (dense / kept); ``tensor_fqn`` of the weight
(``"features.conv2a.weight"``) is accepted in place of ``module``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

KINDS = ("kgs", "vanilla")
UNITS = ("position", "spatial")


@dataclass(frozen=True)
class SparsityScheme:
    kind: str = "kgs"
    group_shape: tuple[int, int] = (4, 4)
    unit: str = "position"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown scheme '{self.kind}' (choose from {', '.join(KINDS)})")
        if self.unit not in UNITS:
            raise ValueError(f"unknown pruning unit '{self.unit}' (choose from {', '.join(UNITS)})")
        if len(self.group_shape) != 2 or min(self.group_shape) < 1:
            raise ValueError(f"group shape must be two positive integers, got {self.group_shape}")

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.kind, "group_shape": list(self.group_shape), "unit": self.unit}


@dataclass
class LayerConfig:
    """One prunable layer: its module name and its FLOPs reduction (None: from the model target)."""

    module: str
    rate: float | None = None


@dataclass
class PruningConfig:
    """What to prune and how much.

    Either ``layers`` give per-layer rates, or ``flops_reduction`` is one
    whole-model conv FLOPs target (dense / kept) that is turned into
    per-layer rates; layers named in ``skip`` (by default the first conv)
    stay dense and count toward the FLOPs.
    """

    scheme: SparsityScheme = field(default_factory=SparsityScheme)
    flops_reduction: float | None = None
    layers: list[LayerConfig] | None = None
    skip: tuple[str, ...] | None = None  # None: skip the first Conv3d


def conv_layers(model: nn.Module) -> dict[str, nn.Conv3d]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv3d)}


def parse_layer_config(entries: Iterable[Mapping[str, Any]]) -> list[LayerConfig]:
    """Parse a ``torch.ao.pruning``-style config list."""
    layers = []
    for entry in entries:
        name = entry.get("module") or entry.get("tensor_fqn")
        if not name:
            raise ValueError(f"config entry {dict(entry)} names no 'module' or 'tensor_fqn'")
        if "tensor_fqn" in entry and name.endswith(".weight"):
            name = name[: -len(".weight")]
        rate = entry.get("rate")
        if rate is not None and float(rate) < 1.0:
            raise ValueError(f"rate of '{name}' must be >= 1 (dense / kept FLOPs), got {rate}")
        layers.append(LayerConfig(name, float(rate) if rate is not None else None))
    return layers


def select_layers(model: nn.Module, config: PruningConfig) -> tuple[list[str], list[str]]:
    """(pruned layer names, skipped layer names), in model order."""
    convs = conv_layers(model)
    if not convs:
        raise ValueError("the model has no Conv3d layers to prune")
    names = list(convs)
    if config.layers is not None:
        unknown = [layer.module for layer in config.layers if layer.module not in convs]
        if unknown:
            raise ValueError(f"config names layers that are not Conv3d modules: {', '.join(unknown)}")
        chosen = {layer.module for layer in config.layers}
        return [n for n in names if n in chosen], [n for n in names if n not in chosen]
    skip: Sequence[str] = config.skip if config.skip is not None else (names[0],)
    unknown = [s for s in skip if s not in convs]
    if unknown:
        raise ValueError(f"cannot skip unknown Conv3d layers: {', '.join(unknown)}")
    return [n for n in names if n not in skip], [n for n in names if n in skip]
