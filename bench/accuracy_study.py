"""The accuracy study (issue 17): which sparsity scheme keeps the most accuracy at the same FLOPs
reduction and at the same measured latency, on the built-in synthetic motion set.

    .venv/bin/python bench/accuracy_study.py run      [--seeds 0,1,2] [--rates 2.6,4,8] [--arms ...]
    .venv/bin/python bench/accuracy_study.py latency  [--threads 2] [--rounds 7]
    .venv/bin/python bench/accuracy_study.py report

``run`` trains one dense model per seed (C3D-BN, the recipe below), then prunes it in every arm to
every conv FLOPs reduction: reweighted training (or another penalty), hard pruning, masked
retraining, the same epochs for every arm. Every arm of one seed starts from that seed's dense
weights. The study is resumable at every level: a finished run's report is kept in
``--results`` (committed) and skipped when run again; an interrupted run resumes from its last
epoch (its checkpoints live under ``--work``, not committed). What a later session needs is
committed in ``--results``, since a new session starts from a fresh checkout: each seed's dense
checkpoint (``dense_s0.pt``: every arm starts from it) and each finished run's masks
(``<run>.masks.npz``, one bit a weight: the ``latency`` step compiles the dense weights with these
zeros, which the generated code runs exactly as fast as the retrained weights: it skips pruned
groups whatever the kept values are). Runs go rate by rate (in ``--rates`` order), and at a
rate seed by seed, every arm of every seed at a rate before the next rate: a partial study
compares them. Several ``run`` processes on the same directories share the work: each claims a
run with a lock file and skips the runs another holds, and the runs of a seed whose dense model
another process is training come last (waiting for it only when nothing else is left), so two
processes of one torch thread each use this 2-core machine best.

Every penalty counts per weight (``--penalty-per weight``, the default here): with RT3D's
per-unit terms one lambda pulls a 4x4 KGS unit 64 times harder than a 16x16 one and 140 times
harder than a vanilla 4x4 one, and the study would compare penalty strengths, not schemes.

Arms (``--arms``, default all):

- ``kgs4x4``, ``kgs16x16``: KGS with ``position`` units, reweighted penalty (RT3D);
- ``vanilla4x4``: vanilla structured (whole 4x4 kernel groups), reweighted;
- ``filter``: whole output channels, reweighted; the FLOPs reduction is that of the slimmed model
  (a pruned filter also removes the next conv's input channel), so filter pruning keeps
  ``1/sqrt(rate)``-ish of each layer's filters, not ``1/rate``;
- ``unstructured``: single weights by magnitude (``torch.ao.pruning``'s sparsifier), no penalty:
  the accuracy ceiling;
- ``kgs4x4-group-lasso``, ``kgs4x4-magnitude``: KGS 4x4 with a plain group lasso of the same
  initial strength, and with no penalty (magnitude only), against the reweighted ``kgs4x4``;
- ``latency``: KGS with per-layer keep fractions and group shapes (4x4 or 16x16) chosen for a
  latency target (``rt3d-prune --latency-target``), the target being the latency the measured
  table predicts for ``kgs4x4`` at the same FLOPs reduction (uniform keep): the same latency,
  spent where it loses the least importance.

``latency`` compiles every finished run (host, ``--latency-threads``; its masks on its seed's dense
weights) and times all of them, and the dense models, in one interleaved run (filter: the slimmed
model; unstructured: as it is, which our compiler runs with dense kernels: it has no unstructured
ones). ``report``
prints the markdown table (mean and spread over the seeds) and writes the plots of accuracy
against FLOPs reduction and against measured latency.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fcntl
import json
import math
import os
import platform
import shutil
import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from rt3d_mlir.benchmarking import cpu_name
from rt3d_mlir.contracts.checkpoint import read_checkpoint
from rt3d_mlir.fileio import atomic_output
from rt3d_mlir.pruning.job import DENSE_FILE, PruneJob, PruneJobConfig
from rt3d_mlir.pruning.regularizer import DEFAULT_STRENGTH, PENALTY_PER
from rt3d_mlir.pruning.schemes import LayerConfig, PruningConfig, SparsityScheme, select_layers

KGS4 = SparsityScheme("kgs", (4, 4))
ARMS: dict[str, dict[str, Any]] = {
    "kgs4x4": {"scheme": KGS4},
    "kgs16x16": {"scheme": SparsityScheme("kgs", (16, 16))},
    "vanilla4x4": {"scheme": SparsityScheme("vanilla", (4, 4))},
    "filter": {"scheme": SparsityScheme("filter")},
    "unstructured": {"scheme": SparsityScheme("unstructured"), "regularizer": "none"},
    "kgs4x4-group-lasso": {"scheme": KGS4, "regularizer": "group_lasso"},
    "kgs4x4-magnitude": {"scheme": KGS4, "regularizer": "none"},
    "latency": {"scheme": KGS4, "group_shapes": [(16, 16)]},
}
LABELS = {
    "kgs4x4": "KGS 4x4", "kgs16x16": "KGS 16x16", "vanilla4x4": "vanilla 4x4", "filter": "filter",
    "unstructured": "unstructured (torch.ao)", "kgs4x4-group-lasso": "KGS 4x4, group lasso",
    "kgs4x4-magnitude": "KGS 4x4, magnitude only", "latency": "KGS, latency target (4x4/16x16)",
}
STUDY_FILE = "study.json"
LATENCY_FILE = "latency.json"
TABLE_FILE = "latency_table.json"
MASKS_SUFFIX = ".masks.npz"


def recipe(args: argparse.Namespace) -> dict[str, Any]:
    """The settings every run of the study shares (recorded; a resumed study must match)."""
    return {
        "arch": "c3d", "model_kwargs": {"width": args.width, "batch_norm": True, "dropout": 0.2},
        "data": "synthetic",
        "data_options": {"classes": args.classes, "samples": args.samples, "val_samples": args.val_samples},
        "optimizer": "adamw", "schedule": "onecycle", "lr": args.lr, "retrain_lr": args.retrain_lr,
        "weight_decay": 1e-4, "batch_size": 32, "penalty": args.penalty,
        "penalty_per": args.penalty_per,
        "dense_epochs": args.dense_epochs, "reweight_epochs": args.reweight_epochs,
        "retrain_epochs": args.retrain_epochs,
    }


@contextlib.contextmanager
def claimed(work: str, name: str, wait: bool) -> Iterator[bool]:
    """An exclusive claim on a run among the study's processes (a lock on ``work/name.lock``): True
    while held; False at once if another process holds it and not ``wait``. Processes sharing
    ``--work`` and ``--results`` split the runs between them."""
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, name + ".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_name(arm: str, rate: float, seed: int) -> str:
    return f"{arm}_{rate:g}x_s{seed}"


def _job(config: PruneJobConfig, measure=None) -> dict[str, Any]:
    return PruneJob(config, log=lambda msg: print("    " + msg, flush=True), measure_latency=measure).run()


def _base_config(study: dict[str, Any], output: str, seed: int, threads: int | None) -> dict[str, Any]:
    keys = ("arch", "model_kwargs", "data", "data_options", "optimizer", "schedule", "lr", "retrain_lr",
            "weight_decay", "batch_size", "penalty", "penalty_per", "dense_epochs", "reweight_epochs",
            "retrain_epochs")
    # The same training, faster (RESULTS): channels-last batches, and the clips rendered once per
    # run in the training process instead of every epoch in a worker.
    return {**{key: copy.deepcopy(study[key]) for key in keys}, "output": output, "seed": seed,
            "threads": threads, "workers": 0, "channels_last": True, "cache_data": True}


def dense_model(study: dict[str, Any], work: str, results: str, seed: int, threads: int | None,
                wait: bool = True) -> str | None:
    """The seed's dense checkpoint, kept in the results (trained once: a job with no pruning epochs
    keeps it); None, unless ``wait``, while another process trains it."""
    name = f"dense_s{seed}"
    path = os.path.join(results, name + ".pt")
    report_path = os.path.join(results, name + ".json")
    with claimed(work, name, wait=wait) as mine:
        if not mine:
            return None
        if os.path.exists(path) and os.path.exists(report_path):
            return path
        _train_dense(study, work, report_path, name, seed, threads)
        with atomic_output(path) as tmp:
            shutil.copyfile(os.path.join(work, name + ".pt.work", DENSE_FILE), tmp)
    return path


def in_turn(tasks: list[tuple[float, int, str]], dense) -> Iterator[tuple[float, int, str, str]]:
    """``(rate, seed, arm, dense checkpoint)`` in the order of ``tasks``, except that the tasks of a
    seed whose dense model is not to be had now (``dense(seed, wait=False)`` is None: another
    process trains it) come last, waiting for it."""
    deferred = []
    for rate, seed, arm in tasks:
        checkpoint = dense(seed, wait=False)
        if checkpoint is None:
            deferred.append((rate, seed, arm))
        else:
            yield rate, seed, arm, checkpoint
    for rate, seed, arm in deferred:
        yield rate, seed, arm, dense(seed, wait=True)


def _train_dense(study: dict[str, Any], work: str, report_path: str, name: str, seed: int,
                 threads: int | None) -> None:
    print(f"[dense] seed {seed}: {study['dense_epochs']} epochs", flush=True)
    config = PruneJobConfig(**{
        **_base_config(study, os.path.join(work, name + ".pt"), seed, threads),
        "flops_reduction": 2.0, "reweight_epochs": 0, "retrain_epochs": 0,
        "report": report_path,
    })
    _job(config)


def c3d_layers(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[list[str], dict[str, int]]:
    """The pruned convs (all but the first, as a FLOPs target prunes) and every conv's dense MACs."""
    from rt3d_mlir.pruning.flops import conv_flops

    pruned, _ = select_layers(model, PruningConfig(scheme=KGS4, flops_reduction=2.0))
    return pruned, {layer.name: layer.dense_macs for layer in conv_flops(model, input_shape)}


def filter_keep(model: nn.Module, input_shape: tuple[int, ...], rate: float) -> float:
    """The fraction of filters every pruned conv keeps so that the slimmed model's conv MACs are the
    dense ones over ``rate`` (a conv's MACs scale with its kept filters times its input's)."""
    pruned, macs = c3d_layers(model, input_shape)
    total = sum(macs.values())

    def kept(keep: float) -> float:
        return slimmed_macs([(dense, keep if name in pruned else 1.0) for name, dense in macs.items()])

    low, high = 1e-3, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if kept(middle) < total / rate else (low, middle)
    return (low + high) / 2


def slimmed_macs(convs: list[tuple[float, float]]) -> float:
    """The conv MACs of a chain of convs, each given as (dense MACs, fraction of its filters kept),
    once slimmed: a conv's MACs scale with its kept filters and with its input's."""
    kept, feed = 0.0, 1.0
    for dense, own in convs:
        kept += dense * own * feed
        feed = own
    return kept


def slim_c3d(model: nn.Module) -> nn.Module:
    """A filter-pruned C3D with its pruned filters removed: each conv (and its BatchNorm) keeps its
    nonzero filters, the next conv (and fc6) the matching input channels. The same speed as a
    filter-pruned model deployed narrow; its outputs differ where a pruned filter's BatchNorm shift
    survives the ReLU, so it is used for latency only."""
    model = copy.deepcopy(model).eval()
    positions = math.prod(_pooled_size(model))  # fc6's inputs per channel of the last conv
    alive = torch.arange(model.in_channels)
    for name, module in list(model.features.named_children()):
        if isinstance(module, nn.Conv3d):
            weight = module.weight.detach()
            kept = torch.nonzero(weight.flatten(1).abs().sum(1) > 0).flatten()
            kept = kept if len(kept) else torch.tensor([0])
            conv = nn.Conv3d(len(alive), len(kept), module.kernel_size, module.stride, module.padding)
            with torch.no_grad():
                conv.weight.copy_(weight[kept][:, alive])
                conv.bias.copy_(module.bias.detach()[kept])  # type: ignore[union-attr]
            setattr(model.features, name, conv)
            alive = kept
        elif isinstance(module, nn.BatchNorm3d):
            norm = nn.BatchNorm3d(len(alive)).eval()
            with torch.no_grad():
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(norm, key).copy_(getattr(module, key).detach()[alive])
            setattr(model.features, name, norm)
    fc6 = model.classifier.fc6
    columns = (alive[:, None] * positions + torch.arange(positions)[None]).flatten()
    linear = nn.Linear(len(columns), fc6.out_features)
    with torch.no_grad():
        linear.weight.copy_(fc6.weight.detach()[:, columns])
        linear.bias.copy_(fc6.bias.detach())
    model.classifier.fc6 = linear
    return model


def _pooled_size(model: nn.Module) -> tuple[int, int, int]:
    with torch.no_grad():
        shape = tuple(model.features(torch.zeros(1, model.in_channels, *model.input_size)).shape[2:])
    return shape  # type: ignore[return-value]


def latency_table(study: dict[str, Any], results: str, work: str, threads: int, rounds: int):
    """The host latency table of the ``latency`` arm: measured once, before any training (the
    timing needs a quiet machine), and kept in the results (every run of the study uses it)."""
    from rt3d_mlir.pruning.latency_budget import LatencyTable

    path = os.path.join(results, TABLE_FILE)
    with claimed(work, "latency_table", wait=True):  # one process measures, the others wait
        if os.path.exists(path):
            with open(path) as f:
                return LatencyTable.from_json(json.load(f))
        return _measure_latency_table(study, path, threads, rounds)


def _measure_latency_table(study: dict[str, Any], path: str, threads: int, rounds: int):
    from rt3d_mlir.data import build_dataset
    from rt3d_mlir.latency import measure_table
    from rt3d_mlir.models import build_model

    clips = build_dataset(study["data"], train=False, **study["data_options"])
    input_shape = (1, *clips[0][0].shape)
    model = build_model(study["arch"], **study["model_kwargs"], num_classes=clips.num_classes,
                        input_size=list(input_shape[2:]))
    pruned, _ = c3d_layers(model, input_shape)
    print(f"[latency table] host, {threads} threads (keep the machine quiet)", flush=True)
    table = measure_table(model, input_shape, KGS4, pruned, target="host", threads=threads, rounds=rounds,
                          group_shapes=list(ARMS["latency"]["group_shapes"]))
    with open(path, "w") as f:
        json.dump(table.to_json(), f, indent=1)
    return table


def save_masks(checkpoint_path: str, path: str) -> None:
    """A finished run's zeros, one bit a weight (``np.packbits``), for every weight that has zeros,
    and the group shape the compiler is told (none: it looks per layer)."""
    checkpoint = read_checkpoint(checkpoint_path)
    arrays = {}
    for key, tensor in checkpoint.state_dict.items():
        if key.endswith(".weight") and tensor.dim() >= 2 and bool((tensor == 0).any()):
            arrays[key] = np.packbits((tensor != 0).flatten().numpy())
            arrays[key + ".shape"] = np.array(tensor.shape, dtype=np.int64)
    arrays["group_shape"] = np.array(checkpoint.group_shape or (), dtype=np.int64)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def masked_model(dense: nn.Module, path: str) -> tuple[nn.Module, tuple[int, int] | None]:
    """The dense model with a run's zeros (:func:`save_masks`), and the run's group shape."""
    model = copy.deepcopy(dense).eval()
    state = model.state_dict()
    with np.load(path, allow_pickle=False) as masks:
        for key in masks.files:
            if key.endswith(".shape") or key == "group_shape":
                continue
            shape = tuple(int(n) for n in masks[key + ".shape"])
            if key not in state or tuple(state[key].shape) != shape:
                raise SystemExit(f"accuracy_study: error: {path}: {key} does not fit the dense model")
            keep = np.unpackbits(masks[key], count=math.prod(shape)).reshape(shape)
            state[key] = state[key] * torch.from_numpy(keep.astype(np.float32))
        group_shape = tuple(int(n) for n in masks["group_shape"])
    model.load_state_dict(state)
    return model, (group_shape[0], group_shape[1]) if group_shape else None


def prune_run(study: dict[str, Any], args: argparse.Namespace, arm: str, rate: float, seed: int,
              dense: str) -> None:
    name = run_name(arm, rate, seed)
    report_path = os.path.join(args.results, name + ".json")
    masks_path = os.path.join(args.results, name + MASKS_SUFFIX)

    def done() -> bool:  # a run from before the masks were kept runs again to keep them
        return os.path.exists(report_path) and os.path.exists(masks_path)

    if done():
        return
    with claimed(args.work, name, wait=False) as mine:
        if mine and not done():  # else another process runs (or ran) it
            _prune(study, args, arm, rate, seed, dense, name, report_path)
            save_masks(os.path.join(args.work, name + ".pt"), masks_path)


def _prune(study: dict[str, Any], args: argparse.Namespace, arm: str, rate: float, seed: int, dense: str,
           name: str, report_path: str) -> None:
    spec = ARMS[arm]
    base = _base_config(study, os.path.join(args.work, name + ".pt"), seed, args.threads)
    config = dict(base, scheme=spec["scheme"], regularizer=spec.get("regularizer", "reweighted"),
                  dense_checkpoint=dense, report=report_path)
    checkpoint = read_checkpoint(dense)
    model = checkpoint.build_module()
    input_shape = tuple(checkpoint.input_shape or ())
    measure = None
    if arm == "filter":
        keep = filter_keep(model, input_shape, rate)
        pruned, _ = c3d_layers(model, input_shape)
        config["layers"] = [LayerConfig(layer, 1.0 / keep) for layer in pruned]
    elif arm == "latency":
        from rt3d_mlir.pruning.flops import conv_flops
        from rt3d_mlir.pruning.hard_prune import rates_for_flops_target

        table = latency_table(study, args.results, args.work, args.latency_threads, args.rounds)
        pruned, _ = c3d_layers(model, input_shape)
        uniform = rates_for_flops_target(conv_flops(model, input_shape), pruned, rate)
        config["latency_target"] = table.predict({n: (KGS4.group_shape, 1.0 / r) for n, r in uniform.items()})

        def measure(_model, _shape, _pruned):
            return table
    else:
        config["flops_reduction"] = rate
    print(f"[{arm}] {rate:g}x, seed {seed}", flush=True)
    _job(PruneJobConfig(**config), measure)
    shutil.rmtree(os.path.join(args.work, name + ".pt.work"), ignore_errors=True)  # the run's epochs


def command_run(args: argparse.Namespace) -> None:
    os.makedirs(args.results, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    study = recipe(args)
    study_path = os.path.join(args.results, STUDY_FILE)
    if os.path.exists(study_path):
        with open(study_path) as f:
            recorded = json.load(f)
        if recorded["recipe"] != study:
            raise SystemExit(f"accuracy_study: error: {study_path} records another recipe; use other "
                             "--results and --work directories")
    else:
        with open(study_path, "w") as f:
            json.dump({"recipe": study, "started": time.strftime("%Y-%m-%d"), "machine": platform.node()}, f,
                      indent=1)
    rates = [float(text) for text in args.rates.split(",")]
    arms = args.arms.split(",")
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown:
        raise SystemExit(f"accuracy_study: error: unknown arms {', '.join(unknown)} "
                         f"(known: {', '.join(ARMS)})")
    if "latency" in arms:
        latency_table(study, args.results, args.work, args.latency_threads, args.rounds)
    seeds = [int(text) for text in args.seeds.split(",")]
    tasks = [(rate, seed, arm) for rate in rates for seed in seeds for arm in arms]

    def dense(seed: int, wait: bool) -> str | None:
        return dense_model(study, args.work, args.results, seed, args.threads, wait=wait)

    for rate, seed, arm, checkpoint in in_turn(tasks, dense):
        prune_run(study, args, arm, rate, seed, checkpoint)


def _reports(results: str) -> tuple[dict[int, dict], dict[str, dict]]:
    dense, runs = {}, {}
    for entry in sorted(os.listdir(results)):
        if not entry.endswith(".json") or entry in (STUDY_FILE, LATENCY_FILE, TABLE_FILE):
            continue
        with open(os.path.join(results, entry)) as f:
            report = json.load(f)
        name = entry[:-5]
        if name.startswith("dense_s"):
            dense[int(name[len("dense_s"):])] = report
        else:
            runs[name] = report
    return dense, runs


def _parse_name(name: str) -> tuple[str, float, int]:
    arm, rate, seed = name.rsplit("_", 2)
    return arm, float(rate[:-1]), int(seed[1:])


def command_latency(args: argparse.Namespace) -> None:
    """Compile every finished run and time them all in one interleaved run."""
    from rt3d_mlir.latency import measure_builds

    _dense, runs = _reports(args.results)
    models: dict[str, tuple[nn.Module, tuple[int, int] | None]] = {}
    dense_models, input_shape = {}, None
    for seed in sorted({_parse_name(name)[2] for name in runs}):
        checkpoint = read_checkpoint(os.path.join(args.results, f"dense_s{seed}.pt"))
        dense_models[seed] = checkpoint.build_module().eval()
        models[f"dense_s{seed}"] = (dense_models[seed], None)
        input_shape = tuple(checkpoint.input_shape or ())
    for name in sorted(runs):
        arm, _rate, seed = _parse_name(name)
        path = os.path.join(args.results, name + MASKS_SUFFIX)
        if not os.path.exists(path):
            print(f"skipped {name}: no masks {path} (run it again to keep them)", flush=True)
            continue
        model, group_shape = masked_model(dense_models[seed], path)
        models[name] = (slim_c3d(model) if arm == "filter" else model, group_shape)
    if input_shape is None:
        raise SystemExit("accuracy_study: error: no finished runs to time")
    table_cpu = None
    if os.path.exists(os.path.join(args.results, TABLE_FILE)):
        with open(os.path.join(args.results, TABLE_FILE)) as f:
            table_cpu = json.load(f)["machine"]["cpu"]
    if table_cpu not in (None, cpu_name()):  # the latency arm planned for another CPU's speeds
        print(f"accuracy_study: warning: the latency table was measured on {table_cpu}, this is "
              f"{cpu_name()}: the latency arm's runs planned for the other CPU", flush=True)
    seconds = measure_builds(models, input_shape, "host", args.latency_threads, args.rounds)
    record = {"threads": args.latency_threads, "rounds": args.rounds, "date": time.strftime("%Y-%m-%d %H:%M"),
              "cpu": cpu_name(), "table_cpu": table_cpu, "seconds": seconds}
    with open(os.path.join(args.results, LATENCY_FILE), "w") as f:
        json.dump(record, f, indent=1)
    for name, value in seconds.items():
        print(f"{name}: {value * 1e3:.2f} ms")


def _summary(values: list[float]) -> str:
    if not values:
        return "—"
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.1f} ± {100 * spread:.1f}" if len(values) > 1 else f"{100 * mean:.1f}"


def slim_reduction(report: dict[str, Any]) -> float:
    """A filter run's conv FLOPs reduction once slimmed: each conv's MACs scale with its kept filters
    and its input's (the report counts each layer's own kept weights)."""
    convs = [(layer["dense_macs"], layer["kept_weight_fraction"]) for layer in report["layers"]
             if len(layer["weight_shape"]) == 5]
    return sum(dense for dense, _ in convs) / slimmed_macs(convs)


def reduction_of(arm: str, report: dict[str, Any]) -> float:
    return slim_reduction(report) if arm == "filter" else report["flops"]["reduction"]


def command_report(args: argparse.Namespace) -> None:
    dense, runs = _reports(args.results)
    latency = {}
    latency_path = os.path.join(args.results, LATENCY_FILE)
    if os.path.exists(latency_path):
        with open(latency_path) as f:
            latency = json.load(f)["seconds"]
    groups: dict[tuple[str, float], list[tuple[int, dict]]] = {}
    for name, report in runs.items():
        arm, rate, seed = _parse_name(name)
        groups.setdefault((arm, rate), []).append((seed, report))
    dense_acc = [report["accuracy"]["dense"] for report in dense.values()]
    dense_ms = [latency[f"dense_s{seed}"] * 1e3 for seed in dense if f"dense_s{seed}" in latency]
    print("| arm | target | FLOPs reduction | seeds | top-1 after hard prune (%) | final top-1 (%) | "
          "change vs dense (points) | latency (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| dense | | 1x | {len(dense)} | | {_summary(dense_acc)} | | "
          f"{statistics.median(dense_ms):.2f} |" if dense_ms else
          f"| dense | | 1x | {len(dense)} | | {_summary(dense_acc)} | | — |")
    points = []
    for (arm, rate), entries in sorted(groups.items(), key=lambda item: (list(ARMS).index(item[0][0]),
                                                                          item[0][1])):
        finals = [report["accuracy"]["final"] for _, report in entries]
        pruned = [report["accuracy"]["after_hard_prune"] for _, report in entries]
        changes = [report["accuracy"]["final"] - dense[seed]["accuracy"]["dense"] for seed, report in entries]
        reductions = [reduction_of(arm, report) for _, report in entries]
        ms = [latency[run_name(arm, rate, seed)] * 1e3 for seed, _ in entries
              if run_name(arm, rate, seed) in latency]
        mean_change = statistics.mean(changes)
        spread = statistics.stdev(changes) if len(changes) > 1 else 0.0
        change = f"{100 * mean_change:+.1f}" + (f" ± {100 * spread:.1f}" if len(changes) > 1 else "")
        print(f"| {LABELS[arm]} | {rate:g}x | {statistics.mean(reductions):.2f}x | {len(entries)} | "
              f"{_summary(pruned)} | {_summary(finals)} | {change} | "
              f"{f'{statistics.median(ms):.2f}' if ms else '—'} |")
        points.append((arm, statistics.mean(reductions), finals, statistics.median(ms) if ms else None))
    if points:
        _plot(points, dense_acc, statistics.median(dense_ms) if dense_ms else None, args.figures)


def _plot(points, dense_acc: list[float], dense_ms: float | None, figures: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(figures, exist_ok=True)
    markers = dict(zip(ARMS, "osD^v<>x", strict=True))
    for axis, filename in (("flops", "accuracy_study_flops.png"), ("latency", "accuracy_study_latency.png")):
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
        for arm in ARMS:
            mine = sorted((p for p in points if p[0] == arm and (axis == "flops" or p[3] is not None)),
                          key=lambda p: p[1])
            if not mine:
                continue
            xs = [p[1] if axis == "flops" else p[3] for p in mine]
            means = [100 * statistics.mean(p[2]) for p in mine]
            spreads = [100 * statistics.stdev(p[2]) if len(p[2]) > 1 else 0.0 for p in mine]
            ax.errorbar(xs, means, yerr=spreads, marker=markers[arm], capsize=3, label=LABELS[arm])
        if dense_acc:
            ax.axhline(100 * statistics.mean(dense_acc), color="gray", linestyle="--", label="dense")
        if axis == "latency" and dense_ms is not None:
            ax.axvline(dense_ms, color="gray", linestyle=":", label="dense latency")
        ax.set_xlabel("conv FLOPs reduction (dense / kept)" if axis == "flops"
                      else "measured latency, host, one clip (ms)")
        ax.set_ylabel("top-1 accuracy (%), mean ± std over seeds")
        ax.set_title("C3D-BN (width 0.25) on the synthetic motion set")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(figures, filename))
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "latency", "report"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rates", default="2.6,4,8")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--results", default="bench/results/accuracy_study")
    parser.add_argument("--work", default="out/accuracy_study")
    parser.add_argument("--figures", default="bench/figures")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--val-samples", type=int, default=512)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--retrain-lr", type=float, default=2e-4)
    parser.add_argument("--penalty", type=float, default=None,
                        help="lambda (default: the product's default for --penalty-per)")
    parser.add_argument("--penalty-per", default="weight", choices=PENALTY_PER,
                        help="weight (default): one lambda pulls every scheme's units alike "
                        "(pruning.regularizer)")
    parser.add_argument("--dense-epochs", type=int, default=20)
    parser.add_argument("--reweight-epochs", type=int, default=5)
    parser.add_argument("--retrain-epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the training")
    parser.add_argument("--latency-threads", type=int, default=2,
                        help="threads of the compiled builds (the latency arm's table, the latency command)")
    parser.add_argument("--rounds", type=int, default=31,
                        help="interleaved timing rounds (the VM stalls a call for ~13 ms now and then)")
    args = parser.parse_args()
    # Absolute: a run's settings record its dense model's path, and a run resumes only with the
    # same settings (from any directory, a worktree included).
    args.results, args.work = os.path.abspath(args.results), os.path.abspath(args.work)
    if args.penalty is None:
        args.penalty = DEFAULT_STRENGTH[args.penalty_per]
    {"run": command_run, "latency": command_latency, "report": command_report}[args.command](args)


if __name__ == "__main__":
    main()
