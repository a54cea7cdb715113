"""Latency tables measured from the compiler itself, for pruning to a latency target.

``rt3d-prune --latency-target 150ms --target host`` needs each pruned layer's
time on the target at every keep fraction it may choose. :func:`measure_table`
gets them from the model itself: it builds the model once per keep fraction
of a grid (every pruned layer hard-pruned to that fraction with the group
shape, by its own weights' unit norms), loads the builds side by side, times
each whole (interleaved rounds, ``benchmarking.interleaved_medians``) and
each kernel (the artifact's per-kernel profile), and attributes the kernels
to layers in model order by their dense FLOPs. What the pruned layers do not
take of the dense build's time is fixed (layers kept dense, pads, pools, the
glue). Each build's kernel times are scaled to its wall time (the profile's
clock reads and the glue between kernels take time too), so its parts add up
to its whole. The table records how well ``fixed + sum of layers`` predicts
each uniform build (``fit_error``): not exactly, where a sparse layer changes
what the layers kept dense around it cost. Tables are cached on disk
(``latency.json`` in ``fileio.cache_directory()``), keyed by the layers'
shapes, the input shape, the group shape, the grid, the target, the thread
count, the CPU and a digest of the code generator's sources.

Targets: ``host`` (times on this CPU), ``spirv`` (GPU timestamps on the
first Vulkan device, lavapipe here) and ``aarch64``. AArch64 builds run under
qemu here, whose times say nothing of a phone: they are counted instead, one
call each on one core (``runtime.emulated``: the executed instructions of
each kernel, turned into seconds on a Cortex-A76 model, a lower bound), so an
AArch64 table ranks layers and builds by the work their code executes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence

import torch
from torch import nn

from rt3d_mlir.benchmarking import cpu_name, interleaved_medians
from rt3d_mlir.compiler import compile_model
from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.fileio import cache_directory, write_text
from rt3d_mlir.pruning.flops import conv_flops
from rt3d_mlir.pruning.hard_prune import hard_prune
from rt3d_mlir.pruning.latency_budget import LatencyTable, LayerLatency, shape_text, with_shape
from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.runtime import load

DEFAULT_KEEPS = (0.125, 0.25, 0.375, 0.5, 0.75, 1.0)
TARGETS = ("host", "spirv", "aarch64")
COUNTED = ("aarch64",)  # targets whose builds are counted under an emulator, not timed
CACHE_FILE = "latency.json"
PADDING_SLACK = 1.5  # how many times its layer's dense FLOPs a layer's kernels may do
_CODE = ("codegen", "passes", "backend", "dialect")  # whose sources decide the kernels (and this file)


class LatencyError(Rt3dError):
    pass


def _code_digest() -> str:
    digest = hashlib.sha256()
    root = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.abspath(__file__), "rb") as f:  # how the table is measured
        digest.update(f.read())
    for part in _CODE:
        for directory, _, files in sorted(os.walk(os.path.join(root, part))):
            for name in sorted(files):
                if name.endswith((".py", ".c", ".h")):
                    with open(os.path.join(directory, name), "rb") as f:
                        digest.update(name.encode() + f.read())
    return digest.hexdigest()[:16]


def table_key(
    model: nn.Module, input_shape: Sequence[int], scheme: SparsityScheme, pruned: Sequence[str],
    target: str, threads: int, keeps: Sequence[float], group_shapes: Sequence[tuple[int, int]] = (),
) -> str:
    """The cache key of a table: everything its times depend on."""
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv3d, nn.Conv2d, nn.Linear)):
            settings = [str(getattr(module, key, "")) for key in ("stride", "padding", "dilation", "groups")]
            layers.append([name, list(module.weight.shape), type(module).__name__, *settings, name in pruned])
    what = {
        "layers": layers, "input_shape": list(input_shape), "scheme": scheme.to_dict(), "target": target,
        "threads": threads, "keeps": list(keeps), "group_shapes": [list(g) for g in group_shapes],
        "cpu": cpu_name(), "code": _code_digest(),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]


def _read_cache(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _layer_seconds(profile, layers, names: set[str]) -> dict[str, float]:
    """Per-call seconds of the named layers. A layer is the kernels with its FLOPs, in model order
    (summed until its dense FLOPs are accounted for: a layer may run as several kernels, and with
    its channels padded), and the
    kernels without FLOPs just before them: the pads and layout changes that feed it, which a
    sparse layer may need where a dense one does not."""
    seconds: dict[str, float] = {}
    entries = list(profile)
    i = 0
    for layer in layers:
        want, have, spent = 2.0 * layer.dense_macs, 0.0, 0.0
        while have < want * 0.999 and i < len(entries):
            have += entries[i].dense_flops
            spent += entries[i].seconds / max(entries[i].calls, 1)
            i += 1
        # a kernel may do more than its layer: channel counts padded to the vector width (45 -> 48)
        if have < 0.999 * want or have > PADDING_SLACK * want:
            raise LatencyError(
                f"cannot attribute the build's kernels to layer '{layer.name}' ({have:.4g} FLOPs found, "
                f"{want:.4g} expected)"
            )
        if layer.name in names:
            seconds[layer.name] = spent
    return seconds


def measure_table(
    model: nn.Module,
    input_shape: Sequence[int],
    scheme: SparsityScheme,
    pruned: Sequence[str],
    target: str = "host",
    threads: int = 2,
    keeps: Sequence[float] = DEFAULT_KEEPS,
    rounds: int = 7,
    cache: str | None = "",
    progress: bool = True,
    group_shapes: Sequence[tuple[int, int]] = (),
) -> LatencyTable:
    """The latency table of ``model`` (see the module's text) for the scheme's group shape and any
    other ``group_shapes``. ``cache``: a JSON file, "" for the default one, None for none."""
    if target not in TARGETS:
        raise LatencyError(f"latency tables are measured on {', '.join(TARGETS)}, not '{target}'")
    if target in COUNTED:
        threads = 1  # one core of the model
    grid = tuple(sorted({float(k) for k in keeps} | {1.0}))
    if grid[0] <= 0:
        raise LatencyError(f"keep fractions must be in (0, 1], got {grid[0]}")
    shapes = list(dict.fromkeys([tuple(scheme.group_shape), *(tuple(s) for s in group_shapes)]))
    key = table_key(model, input_shape, scheme, pruned, target, threads, grid, shapes)
    cache_path = os.path.join(cache_directory(), CACHE_FILE) if cache == "" else cache
    if cache_path:
        entry = _read_cache(cache_path).get(key)
        if entry is not None:
            try:
                return LatencyTable.from_json(entry)
            except ValueError:
                pass  # measured again below
    model = copy.deepcopy(model).eval()
    layers = conv_flops(model, tuple(input_shape), linear=True)
    builds: dict[str, tuple[nn.Module, tuple[int, int] | None]] = {"dense": (model, None)}
    for shape in shapes:
        shaped = with_shape(scheme, shape)
        for keep in grid[:-1][::-1]:
            pruned_model = copy.deepcopy(model)
            hard_prune(pruned_model, shaped, {name: 1.0 / keep for name in pruned})
            builds[f"{shape_text(shape)}@{keep}"] = (pruned_model, shaped.compiled_group_shape)
    walls, profiled = _time_builds(
        builds, input_shape, layers, set(pruned), target, threads, rounds, progress
    )
    dense_seconds = walls["dense"]
    fixed = dense_seconds - sum(profiled["dense"].values())

    def label(shape: tuple[int, int], keep: float) -> str:
        return "dense" if keep >= 1.0 else f"{shape_text(shape)}@{keep}"

    table_layers = {
        name: {
            shape: LayerLatency(grid, tuple(profiled[label(shape, k)][name] for k in grid))
            for shape in shapes
        }
        for name in pruned
    }
    fit = max(abs(fixed + sum(profiled[b].values()) - walls[b]) / walls[b] for b in builds)
    table = LatencyTable(
        target, threads, tuple(scheme.group_shape), tuple(input_shape), dense_seconds, fixed, table_layers,
        {"cpu": _core_model() if target in COUNTED else cpu_name(), "walls": walls, "fit_error": fit},
    )
    if cache_path:
        data = _read_cache(cache_path)
        data[key] = table.to_json()
        os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
        write_text(cache_path, json.dumps(data, indent=1) + "\n")
    return table


def _time_builds(
    models: dict[str, tuple[nn.Module, tuple[int, int] | None]], input_shape: Sequence[int], layers,
    names: set[str], target: str, threads: int, rounds: int, progress: bool,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Build each (model, group shape to compile with: None finds each layer's) for ``target`` and
    load them side by side; (median seconds per call of each, timed in interleaved rounds; per
    model, the named layers' seconds per call from its profile)."""
    from tqdm import tqdm

    x = torch.randn(*input_shape)
    array = x.numpy()
    built = {}
    with tempfile.TemporaryDirectory(prefix="rt3d-latency-") as tmp:
        bar = tqdm(models.items(), desc="latency: builds", disable=not progress)
        for label, (model, group_shape) in bar:
            path = os.path.join(tmp, f"{len(built)}.{'spv' if target == 'spirv' else 'so'}")
            compile_model(model, x, output=path, target=target, group_shape=group_shape)
            built[label] = load(path, threads=threads)
        if target in COUNTED:  # one counted call each (runtime.emulated), modeled seconds
            walls = {label: _counted_seconds(model, array) for label, model in built.items()}
            rounds = 0  # the counted call's profile is the one
        else:
            walls = interleaved_medians({k: (lambda m=m: m(array)) for k, m in built.items()}, rounds, 1)
        per_layer: dict[str, dict[str, float]] = {}
        for label, model in built.items():
            per_layer[label] = _profiled_layers(model, array, walls[label], layers, names, rounds) \
                if names else {}  # else wall times only
            close = getattr(model, "close", None)
            if close is not None:
                close()
    return walls, per_layer


def _core_model() -> str:
    from rt3d_mlir.runtime.emulated import CORE_MODEL

    return f"{CORE_MODEL['cpu']} model at {CORE_MODEL['ghz']} GHz (qemu instruction counts)"


def _counted_seconds(model, array) -> float:
    """An emulated build's whole call, counted, in modeled seconds (``EmulatedModel.seconds``)."""
    model.set_profiling(True)
    model(array)
    return float(model.seconds)


def _profiled_layers(model, array, wall: float, layers, names: set[str], rounds: int) -> dict[str, float]:
    """The named layers' seconds per call in ``model``'s kernel profile, scaled to its wall time
    (``rounds`` profiled calls; 0: the profile of the calls made before)."""
    if rounds:
        model.set_profiling(True)
        for _ in range(rounds):
            model(array)
    profile = model.kernel_profile()
    # the profile's clock reads cost time of their own, and the glue between kernels some
    # more: scale the kernels to the build's wall time, so the parts add up to the whole
    total = sum(k.seconds / max(k.calls, 1) for k in profile)
    scale = wall / total if total > 0 else 1.0
    return {name: seconds * scale for name, seconds in _layer_seconds(profile, layers, names).items()}


def measure_builds(
    models: dict[str, tuple[nn.Module, tuple[int, int] | None]], input_shape: Sequence[int], target: str,
    threads: int, rounds: int = 7, progress: bool = True,
) -> dict[str, float]:
    """Each (model, group shape to compile with; None: each layer's own) built for ``target`` and
    timed side by side in the same interleaved rounds: median seconds per call."""
    models = {label: (copy.deepcopy(model).eval(), shape) for label, (model, shape) in models.items()}
    walls, _ = _time_builds(models, input_shape, [], set(), target, threads, rounds, progress)
    return walls


def measure_model(
    model: nn.Module, input_shape: Sequence[int], pruned: Sequence[str], target: str, threads: int,
    group_shape: tuple[int, int] | None, baseline: nn.Module | None = None, rounds: int = 7,
    progress: bool = True,
) -> dict[str, object]:
    """``model`` built for ``target`` (with ``group_shape``; None: each layer's own): its seconds
    per call, its pruned layers' seconds (as a table attributes them) and, if given, the
    ``baseline``'s seconds in the same interleaved rounds."""
    model = copy.deepcopy(model).eval()
    layers = conv_flops(model, tuple(input_shape), linear=True)
    models: dict[str, tuple[nn.Module, tuple[int, int] | None]] = {"model": (model, group_shape)}
    if baseline is not None:
        models["baseline"] = (copy.deepcopy(baseline).eval(), None)
    walls, per_layer = _time_builds(
        models, input_shape, layers, set(pruned), target, threads, rounds, progress
    )
    return {"seconds": walls["model"], "baseline_seconds": walls.get("baseline"),
            "layers": per_layer["model"]}
