"""Measure compiled models against PyTorch (and IREE) in one process run.

Used by ``rt3d-bench``. Every latency is the median of ``repeat`` calls
after ``warmup`` calls; the candidates of one model are timed in
interleaved rounds (one call of each per round) so that slow drifts of the
machine affect them alike. Sparse variants come from
:func:`rt3d_mlir.pruning.apply_random_masks` (seeded, every Conv3d keeps
``1/rate`` of its kernel-group positions or groups), a stand-in for a
pruning run where only the sparsity structure matters.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from rt3d_mlir import Rt3dError

# Practical FP32 ceiling of one core of this machine class (DESIGN.md).
CORE_CEILING_GFLOPS = 140.0


@dataclass(frozen=True)
class Variant:
    """``dense``, or a scheme, group shape and conv FLOPs reduction (``kgs:4x4:2.6``)."""

    scheme: str  # "dense", "kgs" or "vanilla"
    group_shape: tuple[int, int] | None = None
    rate: float = 1.0

    @property
    def label(self) -> str:
        if self.scheme == "dense":
            return "dense"
        g_f, g_c = self.group_shape or (0, 0)
        return f"{self.scheme} {g_f}x{g_c} {self.rate:g}x"

    @staticmethod
    def parse(text: str) -> Variant:
        parts = text.strip().split(":")
        if parts == ["dense"]:
            return Variant("dense")
        if len(parts) != 3 or parts[0] not in ("kgs", "vanilla"):
            raise ValueError(f"variant must be 'dense' or SCHEME:GFxGC:RATE (e.g. kgs:4x4:2.6), got '{text}'")
        from rt3d_mlir.sparsity import parse_group_shape

        rate = float(parts[2])
        if rate <= 1.0:
            raise ValueError(f"the FLOPs reduction rate must be > 1, got {rate}")
        return Variant(parts[0], parse_group_shape(parts[1]), rate)


@dataclass
class Build:
    """One compiled variant: compile cost and measurements."""

    variant: str
    flops_reduction: float  # dense conv FLOPs / kept conv FLOPs, measured on the weights
    compile_seconds: float
    compile_peak_rss_mib: float
    latency_ms: float = 0.0
    torch_zeroed_ms: float = 0.0  # PyTorch on the same (zeroed) weights
    max_rel_error: float = 0.0  # against PyTorch on the same weights
    layers: list[dict] = field(default_factory=list)


@dataclass
class PeerRun:
    """Another engine on one variant's weights (see :data:`PEERS`)."""

    peer: str
    variant: str
    precision: str  # what the engine computed in
    setup_seconds: float  # conversion or export, and compilation
    max_rel_error: float
    latency_ms: float = 0.0


@dataclass
class ModelReport:
    model: str
    input_shape: tuple[int, ...]
    threads: int
    repeat: int
    torch_dense_ms: float = 0.0
    builds: list[Build] = field(default_factory=list)
    peers: list[PeerRun] = field(default_factory=list)


def conv_flops(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(dense, kept) FLOPs of the model's Conv3d layers on input ``x``."""
    totals = [0.0, 0.0]

    def hook(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        positions = output[0, 0].numel() * output.shape[0]
        weight = module.weight
        totals[0] += 2.0 * weight.numel() * positions
        totals[1] += 2.0 * float((weight != 0).sum()) * positions

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv3d)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return totals[0], totals[1]


def sparse_variant(model: nn.Module, variant: Variant, seed: int) -> nn.Module:
    """A copy of ``model`` with random masks for ``variant`` (the model itself if dense)."""
    if variant.scheme == "dense":
        return model
    from rt3d_mlir.pruning import apply_random_masks

    pruned = copy.deepcopy(model)
    assert variant.group_shape is not None
    apply_random_masks(pruned, variant.group_shape, 1.0 / variant.rate, variant.scheme, seed=seed)
    return pruned.eval()


_COMPILE_CHILD = """
import json, sys, time
import rt3d_mlir
from rt3d_mlir.processes import peak_rss_mib
start = time.perf_counter()
tune = json.loads(sys.argv[6])
rt3d_mlir.compile(sys.argv[1], output=sys.argv[2], group_shape=json.loads(sys.argv[3]),
                  input_shape=json.loads(sys.argv[4]), trust_pickle=json.loads(sys.argv[5]),
                  tune=tune is not None, tune_cache=tune or None, precision=sys.argv[7])
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mib": peak_rss_mib()}))
"""

SCHEDULE_CHOICES = ("rules", "tuned")  # rt3d-reorder-loops' fixed rules, or measured (tune=True)

# The model files rt3d-bench compiles from: an rt3d checkpoint, an exported program, a pickled
# nn.Module (which the bench itself wrote, so it is trusted).
FORMATS = ("checkpoint", "pt2", "pt")


def save_model_file(
    model: nn.Module, arch: str, kwargs: dict, x: torch.Tensor, fmt: str, path_stem: str,
    int8_scales: dict[str, float] | None = None,
) -> str:
    """Write ``model`` as ``fmt`` (one of :data:`FORMATS`; with ``int8_scales``: a checkpoint, which
    carries them); the file's path."""
    from rt3d_mlir.contracts.checkpoint import save_checkpoint
    from rt3d_mlir.quantization import SCHEME

    if int8_scales is not None and fmt != "checkpoint":
        raise Rt3dError("int8 builds are benchmarked from checkpoints, which carry the int8 scales")
    if fmt == "checkpoint":
        path = f"{path_stem}.pt"
        quantization = {"scheme": SCHEME, "input_scales": int8_scales} if int8_scales is not None else None
        save_checkpoint(path, arch, kwargs, model, quantization=quantization)
    elif fmt == "pt2":
        path = f"{path_stem}.pt2"
        with torch.no_grad():
            torch.export.save(torch.export.export(model, (x,)), path)
    elif fmt == "pt":
        path = f"{path_stem}.module.pt"
        torch.save(model, path)
    else:
        raise ValueError(f"unknown model file format '{fmt}' (known: {', '.join(FORMATS)})")
    return path


def compile_in_subprocess(
    model: nn.Module,
    arch: str,
    kwargs: dict,
    group_shape: tuple[int, int] | None,
    workdir: str,
    name: str,
    fmt: str = "checkpoint",
    x: torch.Tensor | None = None,
    tune: str | None = None,
    threads: int | None = None,
    precision: str = "fp32",
    int8_scales: dict[str, float] | None = None,
) -> tuple[str, float, float]:
    """Compile ``model`` (an ``arch`` built with ``kwargs``) from a file of format ``fmt`` in a
    fresh process (``x``: the example input): (artifact, seconds with import, peak RSS MiB).
    ``tune``: measure the schedules (``""``: in the default cache, else in that cache file), timed
    on ``threads`` threads; ``precision``: the build's (int8: with ``int8_scales``)."""
    if x is None:
        x = torch.randn(1, 3, *kwargs["input_size"])
    path = save_model_file(model, arch, kwargs, x, fmt, os.path.join(workdir, name), int8_scales)
    out = os.path.join(workdir, f"{name}.so")
    shape, trusted = json.dumps(list(x.shape)), json.dumps(fmt == "pt")  # the bench wrote the pickle
    result = subprocess.run(
        [sys.executable, "-c", _COMPILE_CHILD, path, out, json.dumps(group_shape), shape, trusted,
         json.dumps(tune), precision],
        capture_output=True,
        text=True,
        env={**os.environ, "RT3D_NUM_THREADS": str(threads)} if threads else None,
    )
    if result.returncode != 0:
        raise RuntimeError(f"compiling {name} failed: {result.stderr.strip()[-2000:]}")
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    return out, stats["seconds"], stats["peak_rss_mib"]


# rest before each timed candidate (see interleaved_medians): long enough for spinning threads to
# park, short enough not to let the CPU's clocks drop (after 200 ms the detector took 3.6 ms)
SETTLE_SECONDS = 0.01


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), for reports and cache keys."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def interleaved_medians(
    candidates: dict[str, Callable[[], object]], repeat: int, warmup: int
) -> dict[str, float]:
    """Median seconds per call of each candidate, timed in interleaved rounds (the VM drifts over
    minutes: every candidate sees the same phases). In each round a candidate waits
    ``SETTLE_SECONDS``, is called twice and the second call timed: the previous candidate's
    threads spin for a while after a call, on the cores the next one needs (PyTorch's OpenMP
    threads kept our YOLO-style detector at 3.4 ms against 2.9 ms after 5-20 ms of rest), and the
    first call warms the candidate's caches, as in a stream of calls to one model."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for round_index in range(warmup + repeat):
        for name, call in candidates.items():
            time.sleep(SETTLE_SECONDS)
            call()
            start = time.perf_counter()
            call()
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def memory_bandwidth(threads: int, mib: int = 256, repeat: int = 7) -> dict[str, float]:
    """STREAM-like copy (c = a) and triad (c = a + 3 b) over ``mib`` MiB arrays with PyTorch's threaded
    elementwise kernels on ``threads`` threads: GB/s, counting bytes read and written as STREAM does."""
    torch.set_num_threads(threads)
    n = mib * (1 << 20) // 4
    a, b, c = torch.rand(n), torch.rand(n), torch.empty(n)
    medians = interleaved_medians(
        {"copy": lambda: c.copy_(a), "triad": lambda: torch.add(a, b, alpha=3.0, out=c)}, repeat, 2
    )
    return {
        "bandwidth_mib": mib,
        "copy_gbps": 2 * 4 * n / medians["copy"] / 1e9,
        "triad_gbps": 3 * 4 * n / medians["triad"] / 1e9,
    }


def layer_profile(compiled, x: np.ndarray, out: np.ndarray, calls: int, threads: int) -> list[dict]:
    """Per kernel call: milliseconds, GFLOP/s on kept FLOPs (and that per core vs the ceiling), GB/s
    on the bytes of its buffers."""
    compiled.set_profiling(True)
    for _ in range(calls):
        compiled(x, out=out)
    rows = []
    for p in compiled.kernel_profile():
        rate = p.gflops_per_second
        rows.append(
            {
                "kernel": p.name,
                "ms": 1e3 * p.seconds / max(p.calls, 1),
                "gflop": p.flops / 1e9,
                "dense_gflop": p.dense_flops / 1e9,
                "mbytes": p.bytes / 1e6,
                "gbps": p.gigabytes_per_second,
                "gflops": rate,
                "fraction_of_ceiling": rate / threads / CORE_CEILING_GFLOPS,
            }
        )
    compiled.set_profiling(False)
    return rows


# --- peers: what a user would pick instead (the optional [peers] dependencies) --------------

# OpenVINO in its default precision for this CPU (bf16 where the CPU has it) and in f32, and ONNX
# Runtime (f32), each in latency mode on the bench's threads.
PEERS = ("openvino", "openvino-f32", "onnxruntime")
_PEER_MODULES = {"openvino": "openvino", "openvino-f32": "openvino", "onnxruntime": "onnxruntime"}


def installed_peers() -> list[str]:
    """The peers whose engine imports here."""
    import importlib.util

    return [p for p in PEERS if importlib.util.find_spec(_PEER_MODULES[p]) is not None]


def peer_session(
    peer: str, model: nn.Module, x: torch.Tensor, threads: int, path: str
) -> tuple[Callable[[], object], Callable[[], np.ndarray], str]:
    """(timed call, call returning the output, precision) of ``peer`` running ``model`` on ``x``.

    OpenVINO converts the module itself (``openvino.convert_model``); ONNX Runtime loads it exported
    with ``torch.onnx.export`` to ``path``, its threads told not to spin after a run (they would
    take the cores from the next candidate of the interleaved rounds).
    """
    xn = x.numpy()
    if peer in ("openvino", "openvino-f32"):
        import openvino as ov

        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
        if peer == "openvino-f32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        compiled = ov.Core().compile_model(ov.convert_model(model, example_input=x), "CPU", config)
        request = compiled.create_infer_request()
        precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        return (lambda: request.infer({0: xn})), (lambda: np.asarray(request.infer({0: xn})[0])), precision
    if peer == "onnxruntime":
        import onnxruntime as ort

        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["x"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return (lambda: session.run(None, {"x": xn})), (lambda: session.run(None, {"x": xn})[0]), "f32"
    raise ValueError(f"unknown peer '{peer}' (known: {', '.join(PEERS)})")


def _peer_candidates(
    report: ModelReport,
    models: dict[str, nn.Module],
    peers: Sequence[str],
    x: torch.Tensor,
    threads: int,
    workdir: str,
    log: Callable[[str], None],
) -> dict[str, Callable[[], object]]:
    """Set up every peer on every variant's weights (recorded in ``report.peers``); their calls."""
    candidates: dict[str, Callable[[], object]] = {}
    for label, model in models.items():
        with torch.no_grad():
            expected = model(x).numpy()
        for peer in peers:
            log(f"{report.model}: setting up {peer} on {label}")
            start = time.perf_counter()
            name = f"{report.model}-{label}-{peer}.onnx".replace(" ", "-").replace(":", "-")
            path = os.path.join(workdir, name)
            call, output, precision = peer_session(peer, model, x, threads, path)
            got = output()
            seconds = time.perf_counter() - start
            error = float(np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-30))
            report.peers.append(PeerRun(peer, label, precision, seconds, error))
            candidates[f"{peer} {label}"] = call
    return candidates


def benchmark_model(
    arch: str,
    variants: Sequence[Variant],
    *,
    input_size: tuple[int, int, int],
    num_classes: int,
    threads: int,
    repeat: int,
    warmup: int,
    seed: int,
    workdir: str,
    width: float = 1.0,
    formats: Sequence[str] = ("checkpoint",),
    peers: Sequence[str] = (),
    schedule_choices: Sequence[str] = ("rules",),
    tune_cache: str | None = None,
    precisions: Sequence[str] = ("fp32",),
    log: Callable[[str], None],
) -> ModelReport:
    """Build and time every variant of one model; PyTorch alongside. ``schedule_choices``: build
    with the fixed rules' schedules ("rules"), measured ones ("tuned", kept in ``tune_cache`` or the
    default cache), or both, side by side; each in every one of ``precisions`` (labelled by the
    reduced ones: "bf16")."""
    import rt3d_mlir
    from rt3d_mlir.models import build_model

    torch.manual_seed(seed)
    kwargs = {"num_classes": num_classes, "input_size": list(input_size), "width": width}
    try:
        dense = build_model(arch, **kwargs).eval()
    except ValueError as err:  # e.g. a clip too small for the model's pools: the user's choice
        raise Rt3dError(f"{arch}: {err}") from None
    x = torch.randn(1, 3, *input_size)
    xn = x.numpy()
    report = ModelReport(arch, tuple(x.shape), threads, repeat)
    torch.set_num_threads(threads)

    models: dict[str, nn.Module] = {}
    artifacts = {}
    variant_of: dict[str, str] = {}  # build label -> its variant's label (the same weights)
    dense_flops, _ = conv_flops(dense, x)
    for variant in variants:
        model = sparse_variant(dense, variant, seed)
        _, kept = conv_flops(model, x)
        with torch.no_grad():
            expected = model(x).numpy()
        # int8 builds: scales calibrated on the timed clip (they set the numbers, not the work), and
        # checked against the int8 scheme simulated in PyTorch
        scales, expected_int8 = None, expected
        if "int8" in precisions:
            from rt3d_mlir.quantization import calibrate, simulated_int8

            scales = calibrate(model, [x])
            with torch.no_grad(), simulated_int8(model, scales):
                expected_int8 = model(x).numpy()
        models[variant.label] = model
        for fmt in formats:
            for schedules, precision in itertools.product(schedule_choices, precisions):
                label = variant.label if fmt == "checkpoint" else f"{variant.label} .{fmt}"
                label += " tuned" if schedules == "tuned" else ""
                label += f" {precision}" if precision != "fp32" else ""
                log(f"{arch}: compiling {label}")
                name = f"{arch}-{label.replace(' ', '-').replace('.', '')}".replace(":", "-")
                path, seconds, rss = compile_in_subprocess(
                    model, arch, kwargs, variant.group_shape, workdir, name, fmt, x,
                    tune=(tune_cache or "") if schedules == "tuned" else None, threads=threads,
                    precision=precision, int8_scales=scales if precision == "int8" else None,
                )
                compiled = rt3d_mlir.load(path, threads=threads)
                want = expected_int8 if precision == "int8" else expected
                error = float(np.abs(compiled(xn) - want).max() / max(np.abs(want).max(), 1e-30))
                report.builds.append(Build(label, dense_flops / kept, seconds, rss, max_rel_error=error))
                artifacts[label] = compiled
                variant_of[label] = variant.label

    outputs = {label: np.empty(c.output_shape, np.float32) for label, c in artifacts.items()}
    candidates: dict[str, Callable[[], object]] = {}
    with torch.no_grad():
        candidates["torch dense"] = lambda: dense(x)
        for label, model in models.items():
            if label != "dense":
                candidates[f"torch {label}"] = lambda m=model: m(x)
        for label, compiled in artifacts.items():
            candidates[f"rt3d {label}"] = lambda c=compiled, o=outputs[label]: c(xn, out=o)
        candidates.update(_peer_candidates(report, models, peers, x, threads, workdir, log))
        log(f"{arch}: timing {len(candidates)} candidates x {repeat} rounds")
        medians = interleaved_medians(candidates, repeat, warmup)
    report.torch_dense_ms = 1e3 * medians["torch dense"]
    for run in report.peers:
        run.latency_ms = 1e3 * medians[f"{run.peer} {run.variant}"]
    for build in report.builds:
        build.latency_ms = 1e3 * medians[f"rt3d {build.variant}"]
        zeroed = f"torch {variant_of[build.variant]}"
        build.torch_zeroed_ms = 1e3 * medians.get(zeroed, medians["torch dense"])
        build.layers = layer_profile(artifacts[build.variant], xn, outputs[build.variant], repeat, threads)
    return report


# --- IREE on representative layers (subprocess: its own threads and memory) ---------

_IREE_CHILD = """
import json, sys, time
import numpy as np
import iree.compiler as ic
import iree.runtime as rt
mlir_path, vmfb_path, threads, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
start = time.perf_counter()
ic.compile_file(mlir_path, output_file=vmfb_path, target_backends=["llvm-cpu"],
                extra_args=["--iree-llvmcpu-target-cpu=host", "--iree-input-type=none"])
compile_seconds = time.perf_counter() - start
rt.flags.parse_flags(f"--task_topology_max_group_count={threads}")
config = rt.Config("local-task")
ctx = rt.SystemContext(config=config)
with open(vmfb_path, "rb") as f:
    ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, f.read()))
fn = ctx.modules.module["forward"]
x = np.load(sys.argv[5])
out = np.asarray(fn(x))
times = []
for _ in range(repeat):
    t = time.perf_counter(); np.asarray(fn(x)); times.append(time.perf_counter() - t)
np.save(sys.argv[6], out)
print(json.dumps({"compile_seconds": compile_seconds, "seconds": sorted(times)[len(times) // 2]}))
"""


def iree_available() -> bool:
    result = subprocess.run(
        [sys.executable, "-c", "import iree.compiler, iree.runtime"], capture_output=True, text=True
    )
    return result.returncode == 0


def iree_layer(
    layer: nn.Module, x: torch.Tensor, threads: int, repeat: int, workdir: str
) -> dict[str, float]:
    """Compile one layer with IREE (llvm-cpu, host CPU) and time it: median seconds."""
    from rt3d_mlir.frontend import import_to_linalg

    module = import_to_linalg(layer, x)
    mlir_path = os.path.join(workdir, "layer.mlir")
    with open(mlir_path, "w") as f:
        module.operation.print(file=f, large_elements_limit=None)
    x_path, y_path = os.path.join(workdir, "x.npy"), os.path.join(workdir, "y.npy")
    np.save(x_path, x.numpy())
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _IREE_CHILD,
            mlir_path,
            os.path.join(workdir, "layer.vmfb"),
            str(threads),
            str(repeat),
            x_path,
            y_path,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"IREE failed: {result.stderr.strip()[-1500:]}")
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    with torch.no_grad():
        expected = layer(x).numpy()
    got = np.load(y_path)
    stats["max_rel_error"] = float(np.abs(got - expected).max() / np.abs(expected).max())
    return stats


def c3d_representative_layers(input_size: tuple[int, int, int]) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """Dense single-conv (+ReLU) layers with C3D's shapes at 16x112x112 input."""
    d, h, w = input_size
    shapes = [
        ("conv2a", 64, 128, (d, h // 2, w // 2)),
        ("conv3a", 128, 256, (d // 2, h // 4, w // 4)),
        ("conv4a", 256, 512, (d // 4, h // 8, w // 8)),
        ("conv5a", 512, 512, (d // 8, h // 16, w // 16)),
    ]
    layers = []
    for name, c_in, c_out, size in shapes:
        torch.manual_seed(0)
        layer = nn.Sequential(nn.Conv3d(c_in, c_out, 3, padding=1), nn.ReLU()).eval()
        layers.append((name, layer, torch.randn(1, c_in, *size)))
    return layers


def compare_layers_with_iree(
    input_size: tuple[int, int, int], threads: int, repeat: int, warmup: int, log: Callable[[str], None]
) -> list[dict]:
    """Representative C3D layers: PyTorch, our dense build and IREE, same threads."""
    import rt3d_mlir

    rows = []
    torch.set_num_threads(threads)
    for name, layer, x in c3d_representative_layers(input_size):
        with tempfile.TemporaryDirectory(prefix="rt3d-bench-") as tmp:
            log(f"layers: {name} (ours, torch, IREE)")
            out = os.path.join(tmp, "layer.so")
            rt3d_mlir.compile(layer, x, output=out)
            compiled = rt3d_mlir.load(out, threads=threads)
            xn = x.numpy()
            y = np.empty(compiled.output_shape, np.float32)
            with torch.no_grad():
                candidates = {
                    "torch": lambda net=layer, inp=x: net(inp),
                    "rt3d": lambda c=compiled, inp=xn, o=y: c(inp, out=o),
                }
                medians = interleaved_medians(candidates, repeat, warmup)
            iree = iree_layer(layer, x, threads, max(1, repeat // 3), tmp)
            weight = layer[0].weight
            flops = 2.0 * weight.numel() * y[0, 0].size
            rows.append(
                {
                    "layer": name,
                    "gflop": flops / 1e9,
                    "torch_ms": 1e3 * medians["torch"],
                    "rt3d_ms": 1e3 * medians["rt3d"],
                    "iree_ms": 1e3 * iree["seconds"],
                    "iree_compile_s": iree["compile_seconds"],
                    "iree_max_rel_error": iree["max_rel_error"],
                    "iree_repeat": max(1, repeat // 3),
                }
            )
    return rows


def report_json(reports: Sequence[ModelReport], layers: list[dict], meta: dict) -> str:
    return json.dumps({"meta": meta, "models": [asdict(r) for r in reports], "iree_layers": layers}, indent=2)
