"""Sparsity schemes as data: what a pruning unit is and which layers are pruned.

A scheme names the structure (``kgs``, ``vanilla``, ``block``, ``filter`` or
``unstructured``), its shape and its pruning unit:

- ``kgs``, group shape ``(gF, gC)``: a kernel position ``(kd, kh, kw)`` of a
  group (``position``) or a spatial position ``(kh, kw)`` through the whole
  temporal depth (``spatial``, as the published follow-up code does);
- ``vanilla``: a whole kernel group;
- ``block``, block shape ``(bR, bC)`` (the companion paper's block-based
  pruning, for any layer): the weight seen as a matrix, rows the output
  channels, columns the flattened (input channel, kd, kh, kw) pairs (a
  Linear layer's inputs), split into blocks of ``bR`` rows x ``bC``
  columns; the unit is a ``column`` of a block (its ``bR`` weights, pruned
  together; every block keeps the same number of its columns, so every
  block of filters does the same work) or a ``row`` of a block (one
  filter's ``bC`` weights);
- ``filter``: a whole output channel (``filter``; the usual structured
  baseline, which leaves a narrower dense layer; no shape);
- ``unstructured``: single weights (``weight``), chosen by magnitude with
  ``torch.ao.pruning``'s sparsifier (the accuracy ceiling; no shape).

KGS is the block scheme's column pruning with columns taken ``gC`` at a
time: a KGS unit is the ``gC`` columns of one kernel position over a
group's channels, a block column is one (channel, position) pair. Both are
unit masks over the same grouped view (:mod:`rt3d_mlir.pruning.units`;
block columns are kernel groups of ``bR x 1``), so the regularization,
hard pruning, masks and the compiler's sparsity recognition are shared.

Conv2d and Linear weights are taken as Conv3d weights of depth 1 and
1x1x1 kernels. Layer selection follows ``torch.ao.pruning``'s per-module config
list: ``[{"module": "features.conv2a", "rate": 3.0}, ...]`` where ``rate``
is the layer's FLOPs reduction (dense / kept); ``tensor_fqn`` of the weight
(``"features.conv2a.weight"``) is accepted in place of ``module``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

KINDS = ("kgs", "vanilla", "block", "filter", "unstructured")
UNITS = {"kgs": ("position", "spatial"), "vanilla": ("position", "spatial"), "block": ("column", "row"),
         "filter": ("filter",), "unstructured": ("weight",)}
SHAPELESS = ("filter", "unstructured")  # kinds whose units do not depend on a group shape
PRUNABLE = (nn.Conv3d, nn.Conv2d, nn.Linear)  # the layer types a scheme applies to
CONVS = (nn.Conv3d, nn.Conv2d)  # pruned by default; Linear layers when asked (PruningConfig.linear)


@dataclass(frozen=True)
class SparsityScheme:
    kind: str = "kgs"
    group_shape: tuple[int, int] = (4, 4)  # (gF, gC) of a kernel group; block: (bR, bC)
    unit: str = ""  # "": the kind's first unit (position; block: column)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown scheme '{self.kind}' (choose from {', '.join(KINDS)})")
        if not self.unit:
            object.__setattr__(self, "unit", UNITS[self.kind][0])
        if self.unit not in UNITS[self.kind]:
            choices = ", ".join(UNITS[self.kind])
            raise ValueError(f"unknown pruning unit '{self.unit}' for {self.kind} (choose from {choices})")
        if len(self.group_shape) != 2 or min(self.group_shape) < 1:
            raise ValueError(f"group shape must be two positive integers, got {self.group_shape}")

    @property
    def shaped(self) -> bool:
        """Whether the units depend on ``group_shape`` (not for ``filter`` and ``unstructured``)."""
        return self.kind not in SHAPELESS

    def to_dict(self) -> dict[str, Any]:
        shape = list(self.group_shape) if self.shaped else None
        return {"scheme": self.kind, "group_shape": shape, "unit": self.unit}

    @property
    def compiled_group_shape(self) -> tuple[int, int] | None:
        """The kernel-group shape the compiler finds this scheme's zeros in (a block scheme's pruned
        columns are kernel groups of ``bR x 1``; as ``contracts.checkpoint`` reads a checkpoint's);
        None where the compiler has no kernels for the scheme's zeros (it looks for groups itself)."""
        if not self.shaped:
            return None
        return (self.group_shape[0], 1) if self.kind == "block" else self.group_shape


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
    skip: tuple[str, ...] | None = None  # None: skip the first conv
    linear: bool = False  # a FLOPs target prunes the Linear layers too


def prunable_layers(model: nn.Module, linear: bool = True) -> dict[str, nn.Module]:
    """The Conv3d, Conv2d (and, if ``linear``, Linear) layers of ``model``, in model order."""
    kinds = PRUNABLE if linear else CONVS
    return {name: m for name, m in model.named_modules() if isinstance(m, kinds)}


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
    """(pruned layer names, skipped layer names), in model order. A config list may name any
    Conv3d, Conv2d or Linear layer; a FLOPs target prunes the convs (and the Linear layers if
    ``config.linear``) except those skipped, by default the first conv."""
    if config.layers is not None:
        every = prunable_layers(model)
        unknown = [layer.module for layer in config.layers if layer.module not in every]
        if unknown:
            raise ValueError(
                f"config names layers that are not Conv3d, Conv2d or Linear modules: {', '.join(unknown)}"
            )
        chosen = {layer.module for layer in config.layers}
        candidates = prunable_layers(model, config.linear)
        return [n for n in every if n in chosen], [n for n in candidates if n not in chosen]
    layers = prunable_layers(model, config.linear)
    convs = [name for name, m in layers.items() if isinstance(m, CONVS)]
    if not convs:
        raise ValueError("the model has no Conv3d or Conv2d layers to prune")
    names = list(layers)
    skip: Sequence[str] = config.skip if config.skip is not None else (convs[0],)
    unknown = [s for s in skip if s not in layers]
    if unknown:
        raise ValueError(f"cannot skip unknown prunable layers: {', '.join(unknown)}")
    return [n for n in names if n not in skip], [n for n in names if n in skip]
