"""Per-layer keep fractions for a latency target, from a measured latency table.

A :class:`LatencyTable` holds, for one model, input shape, scheme, target
and thread count, each pruned layer's kernel time for every group shape
measured and every keep fraction of a grid (measured by
:mod:`rt3d_mlir.latency` from builds of the model itself, on the target), and
the time of everything else (the layers kept dense, pads, pools, the glue),
which pruning does not change. A model's predicted latency is that fixed time
plus each layer's time at its group shape and keep fraction (linear between
grid points; keep 1 is the dense layer, whatever the shape).

:func:`allocate` chooses each layer's group shape and keep fraction: a greedy
multiple-choice knapsack. Every layer starts dense; each step moves one layer
to another (group shape, keep fraction) of the table that is faster than
where it is, the move that loses the least weight importance per second
saved (among all layers and all faster options, so a grid point slower than
a sparser one is jumped over, and a layer may change its group shape); it
stops once the prediction meets the target, and the last move, if it kept
its group shape, is then interpolated between its two grid points to meet it
exactly. A layer's importance loss at a group shape and keep ``k`` is the
share of its squared unit norms (units of that shape) that hard pruning at
rate ``1/k`` removes (the same units :func:`hard_prune` drops), so every
layer counts alike whatever its scale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rt3d_mlir.pruning.hard_prune import unit_mask_for_rate
from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.pruning.units import unit_squared_norms

TABLE_FORMAT = "rt3d-latency-table"
TABLE_VERSION = 2  # 2: per-layer times for several group shapes


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


def shape_text(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


@dataclass(frozen=True)
class LatencyTable:
    target: str
    threads: int
    group_shape: tuple[int, int]  # the run's scheme's; a layer may take any shape of ``layers``
    input_shape: tuple[int, ...]
    dense_seconds: float  # the dense model, measured whole
    fixed_seconds: float  # what the layers in ``layers`` do not take of it
    layers: dict[str, dict[tuple[int, int], LayerLatency]]  # layer -> group shape -> times
    machine: dict[str, Any] = field(default_factory=dict)  # what the times were measured on

    @property
    def group_shapes(self) -> list[tuple[int, int]]:
        """Every group shape some layer has times for (the scheme's first)."""
        shapes = [self.group_shape, *(shape for layer in self.layers.values() for shape in layer)]
        return list(dict.fromkeys(shapes))

    def seconds(self, name: str, shape: tuple[int, int] | None, keep: float) -> float:
        """A layer's time at a group shape and keep fraction (keep 1: dense)."""
        shapes = self.layers[name]
        return shapes[shape if shape in shapes else next(iter(shapes))].at(keep) if keep < 1.0 \
            else next(iter(shapes.values())).at(1.0)

    def predict(self, choices: dict[str, tuple[tuple[int, int] | None, float]]) -> float:
        """The model's latency with these (group shape, keep fraction) per layer (not named: dense)."""
        return self.fixed_seconds + sum(
            self.seconds(name, *choices.get(name, (None, 1.0))) for name in self.layers
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT, "version": TABLE_VERSION, "target": self.target, "threads": self.threads,
            "group_shape": list(self.group_shape), "input_shape": list(self.input_shape),
            "dense_seconds": self.dense_seconds, "fixed_seconds": self.fixed_seconds, "machine": self.machine,
            "layers": {
                name: {
                    shape_text(shape): {"keeps": list(layer.keeps), "seconds": list(layer.seconds)}
                    for shape, layer in shapes.items()
                }
                for name, shapes in self.layers.items()
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
            layers: dict[str, dict[tuple[int, int], LayerLatency]] = {}
            for name, shapes in data["layers"].items():
                layers[str(name)] = {}
                for text, entry in shapes.items():
                    rows, columns = (int(v) for v in str(text).split("x"))
                    keeps = tuple(float(k) for k in entry["keeps"])
                    seconds = tuple(float(s) for s in entry["seconds"])
                    if len(keeps) != len(seconds) or not keeps or list(keeps) != sorted(set(keeps)) \
                            or keeps[-1] != 1.0 or keeps[0] <= 0 or min(seconds) < 0:
                        raise ValueError(f"layer '{name}' has an invalid grid")
                    layers[str(name)][(rows, columns)] = LayerLatency(keeps, seconds)
                if not layers[str(name)]:
                    raise ValueError(f"layer '{name}' has no times")
            shape = data["group_shape"]
            return LatencyTable(
                str(data["target"]), int(data["threads"]), (int(shape[0]), int(shape[1])),
                tuple(int(d) for d in data["input_shape"]), float(data["dense_seconds"]),
                float(data["fixed_seconds"]), layers, dict(data.get("machine", {})),
            )
        except (KeyError, TypeError, IndexError, AttributeError) as err:
            raise ValueError(f"a latency table entry is missing or malformed ({err})") from None


@dataclass(frozen=True)
class Allocation:
    keeps: dict[str, float]  # per pruned layer
    group_shapes: dict[str, tuple[int, int]]  # per pruned layer (its own where it stays dense)
    predicted_seconds: float
    layer_seconds: dict[str, float]  # predicted per layer at its choice
    importance_lost: dict[str, float]  # share of the layer's squared unit norms pruned


def importance_lost(weight: torch.Tensor, scheme: SparsityScheme, keep: float) -> float:
    """The share of ``weight``'s squared unit norms that hard pruning keeping ``keep`` removes."""
    if keep >= 1.0:
        return 0.0
    squared = unit_squared_norms(weight.detach(), scheme)
    kept = unit_mask_for_rate(weight, scheme, 1.0 / keep, norms=squared.sqrt())
    total = float(squared.sum())
    return float(squared[~kept].sum()) / total if total > 0 else 0.0


def with_shape(scheme: SparsityScheme, shape: tuple[int, int]) -> SparsityScheme:
    """The run's scheme (kind, unit) with another group shape."""
    return SparsityScheme(scheme.kind, shape, scheme.unit)


def compiled_group_shape(scheme: SparsityScheme, used: Iterable[tuple[int, int]]) -> tuple[int, int] | None:
    """The group shape to compile a model with whose pruned layers took the shapes ``used``: the
    scheme's when they all took it, else None (the compiler finds each layer's groups)."""
    return scheme.compiled_group_shape if set(used) <= {scheme.group_shape} else None


def check_reachable(table: LatencyTable, pruned: list[str], target_seconds: float) -> None:
    """ValueError, before any training, if even the table's fastest choices miss the target."""
    fastest = {}
    for name in pruned:
        if name in table.layers:
            options = [(shape, k) for shape, layer in table.layers[name].items() for k in layer.keeps]
            fastest[name] = min(options, key=lambda option, n=name: table.seconds(n, *option))
    floor = min(table.predict(fastest), table.dense_seconds)
    if floor > target_seconds:
        sparsest = min((k for _, k in fastest.values()), default=1.0)
        raise ValueError(
            f"a latency of {target_seconds * 1e3:.1f} ms is out of reach on {table.target}: the model is "
            f"predicted at {floor * 1e3:.1f} ms at best (dense {table.dense_seconds * 1e3:.1f} ms, "
            f"group shapes {', '.join(shape_text(s) for s in table.group_shapes)}, the pruned layers "
            f"keeping down to {sparsest:.3g} of their weights)"
        )


def allocate(
    model: nn.Module, scheme: SparsityScheme, table: LatencyTable, pruned: list[str], target_seconds: float
) -> Allocation:
    """Group shapes and keep fractions of the ``pruned`` layers whose predicted latency meets
    ``target_seconds`` (greedy, see the module's text); ValueError if the table cannot reach it."""
    missing = [name for name in pruned if name not in table.layers]
    if missing:
        raise ValueError(f"the latency table has no times for {', '.join(missing)}")
    loss: dict[str, dict[tuple[tuple[int, int], float], float]] = {}
    for name in pruned:
        weight = model.get_submodule(name).weight
        loss[name] = {
            (shape, k): importance_lost(weight, with_shape(scheme, shape), k)
            for shape, layer in table.layers[name].items() for k in layer.keeps
        }
    choice: dict[str, tuple[tuple[int, int], float]] = {name: (scheme.group_shape, 1.0) for name in pruned}
    predicted = table.predict(choice)
    last: tuple[str, tuple[tuple[int, int], float], tuple[tuple[int, int], float]] | None = None
    while predicted > target_seconds:
        best = None
        for name in pruned:
            now = table.seconds(name, *choice[name])
            lost = 0.0 if choice[name][1] >= 1.0 else _loss_at(loss[name], *choice[name])
            for shape, k in loss[name]:
                saved = now - table.seconds(name, shape, k)
                if saved <= 0:
                    continue
                ratio = (loss[name][(shape, k)] - lost) / saved
                if best is None or ratio < best[0] or (ratio == best[0] and saved > best[3]):
                    best = (ratio, name, (shape, k), saved)
        if best is None:
            check_reachable(table, pruned, target_seconds)
            raise ValueError("no choice of the table saves time")  # unreachable: the check raises
        _, name, option, _ = best
        last = (name, choice[name], option)
        choice[name] = option
        predicted = table.predict(choice)
    if last is not None and (last[1][0] == last[2][0] or last[1][1] >= 1.0):
        # give back what the last move overshot: interpolate it, in its new shape, to meet the target
        name, (_, before), (shape, after) = last
        others = predicted - table.seconds(name, shape, after)
        low, high = after, before
        for _ in range(50):
            middle = (low + high) / 2
            if others + table.seconds(name, shape, middle) <= target_seconds:
                low = middle
            else:
                high = middle
        choice[name] = (shape, low)
        predicted = table.predict(choice)
    keeps = {name: k for name, (_, k) in choice.items()}
    shapes = {name: (shape if k < 1.0 else scheme.group_shape) for name, (shape, k) in choice.items()}
    seconds = {name: table.seconds(name, *choice[name]) for name in pruned}
    lost = {
        name: importance_lost(model.get_submodule(name).weight, with_shape(scheme, shapes[name]), keeps[name])
        for name in pruned
    }
    return Allocation(keeps, shapes, predicted, seconds, lost)


def _loss_at(
    losses: dict[tuple[tuple[int, int], float], float], shape: tuple[int, int], keep: float
) -> float:
    """A layer's importance loss at a group shape and keep fraction (linear between grid points)."""
    grid = sorted(k for s, k in losses if s == shape)
    if (shape, keep) in losses:
        return losses[(shape, keep)]
    for i in range(1, len(grid)):
        if keep <= grid[i]:
            share = (keep - grid[i - 1]) / (grid[i] - grid[i - 1])
            low, high = losses[(shape, grid[i - 1])], losses[(shape, grid[i])]
            return low + share * (high - low)
    return losses[(shape, grid[-1])]
