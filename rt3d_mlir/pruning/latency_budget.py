"""Per-layer keep fractions for a latency target, from a measured latency table.

A :class:`LatencyTable` holds, for one model, input shape, group shape,
target and thread count, each pruned layer's kernel time at a grid of keep
fractions (measured by :mod:`rt3d_mlir.latency` from builds of the model
itself, on the target) and the time of everything else (the layers kept
dense, pads, pools, the glue), which pruning does not change. A model's
predicted latency is that fixed time plus each layer's time at its keep
fraction (linear between grid points).

:func:`allocate` chooses the keep fractions: a greedy multiple-choice
knapsack. Every layer starts dense; each step moves one layer to a lower
keep fraction of the grid, the move that loses the least weight importance
per second saved (among all layers and all lower grid points, so a grid
point slower than a sparser one is jumped over); it stops once the
prediction meets the target, and the last move is then interpolated between
its two grid points to meet it exactly. A layer's importance loss at keep
``k`` is the share of its squared unit norms that hard pruning at rate
``1/k`` removes (the same units :func:`hard_prune` drops), so every layer
counts alike whatever its scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rt3d_mlir.pruning.hard_prune import unit_mask_for_rate
from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.pruning.units import unit_squared_norms

TABLE_FORMAT = "rt3d-latency-table"
TABLE_VERSION = 1


@dataclass(frozen=True)
class LayerLatency:
    keeps: tuple[float, ...]  # ascending; the last is 1.0 (the dense layer)
    seconds: tuple[float, ...]  # the layer's kernel time at each keep fraction

    def at(self, keep: float) -> float:
        """Seconds at ``keep`` (linear between grid points; clamped to the grid)."""
        keeps, seconds = self.keeps, self.seconds
        if keep <= keeps[0]:
            return seconds[0]
        for i in range(1, len(keeps)):
            if keep <= keeps[i]:
                share = (keep - keeps[i - 1]) / (keeps[i] - keeps[i - 1])
                return seconds[i - 1] + share * (seconds[i] - seconds[i - 1])
        return seconds[-1]


@dataclass(frozen=True)
class LatencyTable:
    target: str
    threads: int
    group_shape: tuple[int, int]
    input_shape: tuple[int, ...]
    dense_seconds: float  # the dense model, measured whole
    fixed_seconds: float  # what the layers in ``layers`` do not take of it
    layers: dict[str, LayerLatency]
    machine: dict[str, Any] = field(default_factory=dict)  # what the times were measured on

    def predict(self, keeps: dict[str, float]) -> float:
        """The model's latency with these keep fractions (layers not named: dense)."""
        return self.fixed_seconds + sum(layer.at(keeps.get(name, 1.0)) for name, layer in self.layers.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT, "version": TABLE_VERSION, "target": self.target, "threads": self.threads,
            "group_shape": list(self.group_shape), "input_shape": list(self.input_shape),
            "dense_seconds": self.dense_seconds, "fixed_seconds": self.fixed_seconds, "machine": self.machine,
            "layers": {
                name: {"keeps": list(layer.keeps), "seconds": list(layer.seconds)}
                for name, layer in self.layers.items()
            },
        }

    @staticmethod
    def from_json(data: Any) -> LatencyTable:
        """A table written by :meth:`to_json` (ValueError naming the problem otherwise)."""
        if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
            raise ValueError("not an rt3d latency table")
        if data.get("version") != TABLE_VERSION:
            raise ValueError(f"latency table version {data.get('version')!r}; this reads {TABLE_VERSION}")
        try:
            layers = {}
            for name, entry in data["layers"].items():
                keeps = tuple(float(k) for k in entry["keeps"])
                seconds = tuple(float(s) for s in entry["seconds"])
                if len(keeps) != len(seconds) or not keeps or list(keeps) != sorted(set(keeps)) \
                        or keeps[-1] != 1.0 or keeps[0] <= 0 or min(seconds) < 0:
                    raise ValueError(f"layer '{name}' has an invalid grid")
                layers[str(name)] = LayerLatency(keeps, seconds)
            shape = data["group_shape"]
            return LatencyTable(
                str(data["target"]), int(data["threads"]), (int(shape[0]), int(shape[1])),
                tuple(int(d) for d in data["input_shape"]), float(data["dense_seconds"]),
                float(data["fixed_seconds"]), layers, dict(data.get("machine", {})),
            )
        except (KeyError, TypeError, IndexError) as err:
            raise ValueError(f"a latency table entry is missing or malformed ({err})") from None


@dataclass(frozen=True)
class Allocation:
    keeps: dict[str, float]  # per pruned layer
    predicted_seconds: float
    layer_seconds: dict[str, float]  # predicted per layer at its keep fraction
    importance_lost: dict[str, float]  # share of the layer's squared unit norms pruned


def importance_lost(weight: torch.Tensor, scheme: SparsityScheme, keep: float) -> float:
    """The share of ``weight``'s squared unit norms that hard pruning keeping ``keep`` removes."""
    if keep >= 1.0:
        return 0.0
    squared = unit_squared_norms(weight.detach(), scheme)
    kept = unit_mask_for_rate(weight, scheme, 1.0 / keep, norms=squared.sqrt())
    total = float(squared.sum())
    return float(squared[~kept].sum()) / total if total > 0 else 0.0


def check_reachable(table: LatencyTable, pruned: list[str], target_seconds: float) -> None:
    """ValueError, before any training, if even the grid's sparsest keep fractions miss the target."""
    sparsest = {name: min(table.layers[name].keeps) for name in pruned if name in table.layers}
    floor = min(table.predict(sparsest), table.dense_seconds)
    if floor > target_seconds:
        raise ValueError(
            f"a latency of {target_seconds * 1e3:.1f} ms is out of reach on {table.target}: the model is "
            f"predicted at {floor * 1e3:.1f} ms at best (dense {table.dense_seconds * 1e3:.1f} ms, the "
            f"pruned layers keeping {min(sparsest.values(), default=1.0):.3g} of their weights)"
        )


def allocate(
    model: nn.Module, scheme: SparsityScheme, table: LatencyTable, pruned: list[str], target_seconds: float
) -> Allocation:
    """Keep fractions of the ``pruned`` layers whose predicted latency meets ``target_seconds``
    (greedy, see the module's text); ValueError if the table's grid cannot reach it."""
    missing = [name for name in pruned if name not in table.layers]
    if missing:
        raise ValueError(f"the latency table has no times for {', '.join(missing)}")
    loss: dict[str, dict[float, float]] = {}
    for name in pruned:
        weight = model.get_submodule(name).weight
        loss[name] = {k: importance_lost(weight, scheme, k) for k in table.layers[name].keeps}
    keeps = {name: 1.0 for name in pruned}
    predicted = table.predict(keeps)
    last: tuple[str, float, float] | None = None  # (layer, keep before, keep after)
    while predicted > target_seconds:
        best = None
        for name in pruned:
            layer, now = table.layers[name], keeps[name]
            for k in layer.keeps:
                saved = layer.at(now) - layer.at(k)
                if k >= now or saved <= 0:
                    continue
                ratio = (loss[name][k] - _loss_at(loss[name], now)) / saved
                if best is None or ratio < best[0] or (ratio == best[0] and saved > best[3]):
                    best = (ratio, name, k, saved)
        if best is None:
            check_reachable(table, pruned, target_seconds)
            raise ValueError("no keep fraction of the grid saves time")  # unreachable: the check raises
        _, name, k, _ = best
        last = (name, keeps[name], k)
        keeps[name] = k
        predicted = table.predict(keeps)
    if last is not None:  # give back what the last move overshot: interpolate it to meet the target
        name, before, after = last
        layer = table.layers[name]
        others = predicted - layer.at(after)
        low, high = after, before
        for _ in range(50):
            middle = (low + high) / 2
            if others + layer.at(middle) <= target_seconds:
                low = middle
            else:
                high = middle
        keeps[name] = low
        predicted = table.predict(keeps)
    seconds = {name: table.layers[name].at(keeps[name]) for name in pruned}
    lost = {
        name: importance_lost(model.get_submodule(name).weight, scheme, keeps[name]) for name in pruned
    }
    return Allocation(keeps, predicted, seconds, lost)


def _loss_at(losses: dict[float, float], keep: float) -> float:
    """A layer's importance loss at ``keep`` (linear between grid points)."""
    grid = sorted(losses)
    if keep in losses:
        return losses[keep]
    for i in range(1, len(grid)):
        if keep <= grid[i]:
            share = (keep - grid[i - 1]) / (grid[i] - grid[i - 1])
            return losses[grid[i - 1]] + share * (losses[grid[i]] - losses[grid[i - 1]])
    return losses[grid[-1]]
