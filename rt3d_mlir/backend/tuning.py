"""Per-layer schedules chosen by measurement on this machine (host target, ``tune=True``).

For every ``rt3d.packed_conv3d`` whose layer has no cached choice, the
candidate schedules of :func:`rt3d_mlir.passes.reorder_loops.candidate_schedules`
(the fixed rules' choice first) are timed in the model itself: build ``k``
gives every untuned layer its ``k``-th candidate (its rules' choice where it
has fewer), the builds are loaded side by side and run in interleaved
rounds, and each layer's kernel time is read from the artifacts' per-call-site
profiles. A layer keeps the candidate with the lowest median; layers of one
key (shape, strides, block shape, density in steps of 0.05) share one
choice, judged on their summed times. Choices go to a JSON cache
(``schedules.json`` under ``$XDG_CACHE_HOME/rt3d-mlir`` unless a path is
given) keyed by the layer, the CPU, the clang CPU choice and the thread
count (``RT3D_NUM_THREADS`` or the CPUs: what the artifact runs with by
default), so later builds of any model with such a layer reuse them without
timing; each entry keeps every candidate's time and the rules' choice. ``rt3d-reorder-loops`` keeps the
attributes set here; its options (``--schedule``) still override them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from torch_mlir import ir

from rt3d_mlir import runtime
from rt3d_mlir.dialect.attributes import DENSE_WEIGHTS_ATTR, KEPT_WEIGHTS_ATTR
from rt3d_mlir.dialect.rt3d import LOOP_ORDERS, VECTOR_DIMS, packed_conv3d_params
from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.fileio import cache_directory, write_text
from rt3d_mlir.ir_matchers import int_attr, ops_named
from rt3d_mlir.passes.kernel_calls import symbol_prefix
from rt3d_mlir.passes.quantize_convs import int8_schedule
from rt3d_mlir.passes.reorder_loops import Schedule, candidate_schedules, default_accumulators
from rt3d_mlir.passes.vectorize import CONV_STEM
from rt3d_mlir.targets import Target

CACHE_FORMAT = "rt3d-schedules 1"
# Part of every layer key; bumped when the candidates or the kernels change enough that cached
# timings no longer say which schedule wins (entries of other versions are never looked up).
SCHEDULE_SPACE = 5
ROUNDS = 5


class TuneCacheError(Rt3dError):
    pass


def default_cache_path() -> str:
    return os.path.join(cache_directory(), "schedules.json")


def default_threads() -> int:
    """The thread count artifacts run with by default (as the C glue picks it): ``RT3D_NUM_THREADS``
    if a positive number, else the online CPUs."""
    try:
        threads = int(os.environ.get("RT3D_NUM_THREADS", ""))
    except ValueError:
        threads = 0
    return threads if threads > 0 else (os.cpu_count() or 1)


def machine_identity(cpu: str, triple: str) -> str:
    """The CPU model (as /proc/cpuinfo names it), the target triple and the clang CPU choice."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}|{triple}|{cpu}"


def _density_bucket(op: ir.Operation) -> float:
    """The kept fraction of the conv's weights in steps of 0.05: layers pruned to about the same
    rate share their measurements (random masks at one rate give 0.36-0.41 per layer)."""
    density = int_attr(op, KEPT_WEIGHTS_ATTR) / max(int_attr(op, DENSE_WEIGHTS_ATTR), 1)
    return round(20 * density) / 20


def layer_key(op: ir.Operation, machine: str, threads: int, precision: str = "fp32") -> str:
    """What a layer's best schedule depends on: shapes, window, block shape, density, machine, and
    the build's precision (16-bit builds compute differently; fp32 keys stay as they were)."""
    p = packed_conv3d_params(op)
    shapes = [ir.RankedTensorType(op.operands[0].type).shape, ir.RankedTensorType(op.results[0].type).shape]
    density = _density_bucket(op)
    layer = (
        f"in={shapes[0]} out={shapes[1]} k={p.kernel_size} s={p.strides} lo={p.padding_low} "
        f"hi={p.padding_high} d={p.dilations} block={p.block_size}x{p.channel_unroll} "
        f"act={p.activation} density={density:.2f}"
    )
    if precision != "fp32":
        layer += f" precision={precision}"
    text = f"{SCHEDULE_SPACE}|{machine}|threads={threads}|{layer}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _schedule_from_json(value: object, path: str) -> Schedule:
    try:
        assert isinstance(value, dict)
        rows, cols = value["tile_sizes"]
        dim, order, lanes = str(value["vector_dim"]), str(value["loop_order"]), int(value["vector_lanes"])
        schedule = Schedule(
            dim, order, (int(rows), int(cols)), lanes, int(value["tile_filters"]), int(value["block_group"]),
            int(value.get("channel_chunk", 0)), int(value.get("row_bands", 1)),
        )
    except (AssertionError, KeyError, TypeError, ValueError):
        raise TuneCacheError(f"schedule cache '{path}' holds a malformed schedule: {value!r:.200}") from None
    sizes = (*schedule.tile_sizes, schedule.vector_lanes, schedule.tile_filters, schedule.block_group)
    if (
        schedule.vector_dim not in VECTOR_DIMS
        or schedule.loop_order not in LOOP_ORDERS
        or min(sizes) < 1
        or max(sizes) > 4096
        or not 0 <= schedule.channel_chunk <= 4096
        or not 1 <= schedule.row_bands <= 4096
    ):
        raise TuneCacheError(f"schedule cache '{path}' holds an invalid schedule: {value!r:.200}")
    return schedule


@dataclass
class ScheduleCache:
    path: str
    entries: dict[str, dict]

    @classmethod
    def open(cls, path: str) -> ScheduleCache:
        if not os.path.exists(path):
            return cls(path, {})
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise TuneCacheError(f"cannot read the schedule cache '{path}': {err}") from None
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            raise TuneCacheError(f"'{path}' is not an rt3d schedule cache ({CACHE_FORMAT})")
        entries = data.get("layers")
        if not isinstance(entries, dict):
            raise TuneCacheError(f"schedule cache '{path}' has no layers table")
        return cls(path, entries)

    def schedule(self, key: str) -> Schedule | None:
        """The cached schedule of a layer key (checked: the file may be old or edited)."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        return _schedule_from_json(entry.get("schedule") if isinstance(entry, dict) else entry, self.path)

    def save(self) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        data = {"format": CACHE_FORMAT, "layers": self.entries}
        write_text(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")


BuildCandidate = Callable[[ir.Operation, str], None]  # (module clone, artifact path): lowers and emits


def tune_schedules(
    module: ir.Module,
    machine: Target,
    identity: str,
    build: BuildCandidate,
    cache_path: str | None = None,
    threads: int | None = None,
    rounds: int = ROUNDS,
    precision: str = "fp32",
) -> list[Schedule]:
    """Set a measured schedule on every packed conv of ``module`` (timing those not cached, on
    ``threads`` threads: by default what the artifact will run with); the schedules in the convs'
    order. ``precision``: the build's, which ``build`` makes the candidates in (cached apart)."""
    threads = threads or default_threads()
    cache = ScheduleCache.open(cache_path or default_cache_path())
    ops = ops_named(module.operation, "rt3d.packed_conv3d")
    keys = [layer_key(op, identity, threads, precision) for op in ops]
    untuned = [i for i, key in enumerate(keys) if cache.schedule(key) is None]
    if untuned:
        accumulators = default_accumulators(machine)
        half = precision != "fp32"
        candidates = {i: candidate_schedules(ops[i], machine, accumulators, half) for i in untuned}
        if precision == "int8":  # the schedules of int8 kernels (the others would time f32 fallbacks)
            candidates = {
                i: [s for s in found if int8_schedule(s.vector_dim, s.channel_chunk)] or found[:1]
                for i, found in candidates.items()
            }
        times = _time_candidates(module, candidates, build, threads, rounds)
        for key in dict.fromkeys(keys[i] for i in untuned):
            members = [i for i in untuned if keys[i] == key]
            op = ops[members[0]]
            totals = _summed_times(members, candidates, times)
            best = min(totals, key=totals.__getitem__)
            cache.entries[key] = {
                "layer": f"{ir.RankedTensorType(op.operands[0].type).shape} -> "
                f"{ir.RankedTensorType(op.results[0].type).shape} "
                f"k={list(packed_conv3d_params(op).kernel_size)} density="
                f"{_density_bucket(op):.2f} "
                f"threads={threads}",
                "schedule": asdict(best),
                "rules": candidates[members[0]][0].describe(),
                "measured_ms": {s.describe(): round(1e3 * t, 4) for s, t in totals.items()},
            }
        cache.save()
    chosen = []
    for op, key in zip(ops, keys, strict=True):
        schedule = cache.schedule(key)
        assert schedule is not None
        schedule.set_on(op)
        chosen.append(schedule)
    return chosen


def _summed_times(
    members: list[int], candidates: dict[int, list[Schedule]], times: list[dict[int, float]]
) -> dict[Schedule, float]:
    """Seconds per call of each schedule every one of ``members`` (convs of one key) was timed with,
    summed over them (a candidate list can differ between them, e.g. where only some blocks can
    share tiles); the first member's own times if they have none in common."""
    per_member = [{s: times[k][i] for k, s in enumerate(candidates[i])} for i in members]
    common = [s for s in per_member[0] if all(s in m for m in per_member[1:])]
    if not common:
        return per_member[0]
    return {s: sum(m[s] for m in per_member) for s in common}


def _time_candidates(
    module: ir.Module,
    candidates: dict[int, list[Schedule]],
    build: BuildCandidate,
    threads: int,
    rounds: int,
) -> list[dict[int, float]]:
    """Median seconds per call of conv ``i`` under its ``k``-th candidate: ``[k][i]``."""
    from tqdm import tqdm

    count = max(len(c) for c in candidates.values())
    with tempfile.TemporaryDirectory(prefix="rt3d-tune-") as tmp:
        models = []
        for k in tqdm(range(count), desc="tuning: build candidates", leave=False, unit="build"):
            clone = module.operation.clone()
            try:
                for i, op in enumerate(ops_named(clone, "rt3d.packed_conv3d")):
                    if i in candidates:
                        options = candidates[i]
                        options[k if k < len(options) else 0].set_on(op)
                path = os.path.join(tmp, f"candidate{k}.so")
                build(clone, path)
            finally:
                clone.erase()
            models.append(runtime.load(path, threads=threads))
        x = np.random.default_rng(0).standard_normal(models[0].input_shape).astype(np.float32)
        outputs = [np.empty(m.output_shape, np.float32) for m in models]
        prefix = symbol_prefix(CONV_STEM, "kernel")
        samples: list[dict[int, list[float]]] = [{i: [] for i in candidates} for _ in models]
        for model, out in zip(models, outputs, strict=True):
            model(x, out=out)  # warm-up: pages mapped, threads started
        for _ in tqdm(range(rounds), desc="tuning: time candidates", leave=False, unit="round"):
            for k, (model, out) in enumerate(zip(models, outputs, strict=True)):
                model.set_profiling(True)
                model(x, out=out)
                # call sites in call order, so the j-th conv call is the j-th packed conv's
                convs = [e for e in model.kernel_profile() if e.name.startswith(prefix)]
                for i in candidates:
                    if i < len(convs) and convs[i].calls:
                        samples[k][i].append(convs[i].seconds / convs[i].calls)
                model.set_profiling(False)
        del models
        shutil.rmtree(tmp, ignore_errors=True)
    missing = [i for i in candidates if not samples[0][i]]
    if missing:
        raise Rt3dError(f"tuning: no profile entry for convolution call sites {missing}")
    return [{i: statistics.median(s[i]) for i in candidates} for s in samples]
