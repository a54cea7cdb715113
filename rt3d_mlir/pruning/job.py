"""The pruning job: dense training, reweighted training, hard pruning, masked retraining,
and optionally int8 calibration and quantization-aware retraining.

Every finished epoch (and the hard-pruning step) is checkpointed atomically
in the work directory, so an interrupted job resumes where it stopped and
ends with the same result as an uninterrupted one: each epoch reseeds the
RNGs from (seed, phase, epoch) and the data order depends only on those.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

from rt3d_mlir.contracts.checkpoint import read_checkpoint, save_checkpoint
from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.fileio import seal, unseal, write_bytes, write_text
from rt3d_mlir.models import architecture_task, build_model
from rt3d_mlir.pruning.distributed import Distributed
from rt3d_mlir.pruning.flops import LayerFlops, conv_flops, flops_reduction
from rt3d_mlir.pruning.hard_prune import hard_prune, rates_for_flops_target
from rt3d_mlir.pruning.latency_budget import (
    LatencyTable,
    allocate,
    check_reachable,
    compiled_group_shape,
    shape_text,
    with_shape,
)
from rt3d_mlir.pruning.masking import MASK_BUFFER, add_mask_buffers, state_dict_without_masks
from rt3d_mlir.pruning.regularizer import DEFAULT_STRENGTH, PENALTY_PER, REGULARIZERS, GroupPenalty
from rt3d_mlir.pruning.schemes import LayerConfig, PruningConfig, SparsityScheme, select_layers
from rt3d_mlir.pruning.tasks import task_of
from rt3d_mlir.pruning.training import Distillation, evaluate, train_epoch
from rt3d_mlir.quantization import SCHEME, calibrate, simulated_int8

INT8_SETTINGS = ("int8", "calibration_clips", "qat_epochs", "qat_lr")
PHASES = ("dense", "reweight", "prune", "retrain", "done", "quantize")  # index seeds the RNGs
STATE_FILE = "state.pt"
DENSE_FILE = "dense.pt"
LOG_FILE = "log.jsonl"


@dataclass
class PruneJobConfig:
    arch: str
    data: str
    output: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)
    scheme: SparsityScheme = field(default_factory=SparsityScheme)
    flops_reduction: float | None = None
    layers: list[LayerConfig] | None = None
    skip: tuple[str, ...] | None = None
    linear: bool = False  # a FLOPs target prunes the Linear layers too (their FLOPs then count)
    # a latency target on a measured table's target, in seconds or as a reduction of the dense
    # model's measured latency: per-layer keep fractions from the table (pruning.latency_budget),
    # which PruneJob's ``measure_latency`` measures when the run starts
    latency_target: float | None = None
    latency_reduction: float | None = None
    dense_checkpoint: str | None = None
    dense_epochs: int = 10
    reweight_epochs: int = 8
    reweight_every: int = 2
    regularizer: str = "reweighted"  # or "group_lasso", or "none" (magnitude only; pruning.regularizer)
    penalty: float | None = None  # None: the default of penalty_per (regularizer.DEFAULT_STRENGTH)
    penalty_per: str = "unit"  # or "weight": what one term of the penalty weighs (pruning.regularizer)
    penalty_eps: float = 1e-6
    retrain_epochs: int = 8
    distill: bool = False
    distill_alpha: float = 0.5
    distill_temperature: float = 3.0
    int8: bool = False  # calibrate int8 scales after retraining, record them in the checkpoint
    calibration_clips: int = 64
    qat_epochs: int = 0  # quantization-aware retraining epochs (with int8)
    qat_lr: float = 1e-3
    batch_size: int = 16
    optimizer: str = "sgd"  # or "adamw"
    schedule: str = "cosine"  # per-epoch cosine decay, or "onecycle" (per-step warm-up and decay)
    lr: float = 0.05
    retrain_lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    workers: int = 2
    threads: int | None = None  # torch intra-op threads per process (default: cores / processes)
    channels_last: bool = False  # batches with channels-last strides (data.loader.make_loader)
    cache_data: bool = False  # keep the built-in sets' rendered items (data.loader.InMemory)
    seed: int = 0
    work_dir: str | None = None
    report: str | None = None

    @property
    def work_directory(self) -> str:
        return self.work_dir or self.output + ".work"

    @property
    def report_path(self) -> str:
        return self.report or os.path.splitext(self.output)[0] + ".json"

    def __post_init__(self) -> None:
        if self.penalty is None and self.penalty_per in DEFAULT_STRENGTH:
            self.penalty = DEFAULT_STRENGTH[self.penalty_per]

    def fingerprint(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues.

        The int8 settings are not among them: a finished run may be resumed
        with ``int8`` to quantize it (:meth:`int8_settings` is checked once
        quantization has started).
        """
        data = asdict(self)
        for key in ("output", "work_dir", "report", "workers", "threads", "channels_last", "cache_data",
                    *INT8_SETTINGS):
            data.pop(key)
        if data["regularizer"] == "reweighted":
            data.pop("regularizer")  # the runs from before the choice existed resume
        if data["penalty_per"] == "unit":
            data.pop("penalty_per")  # likewise
        return json.loads(json.dumps(data, default=str))

    def int8_settings(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in INT8_SETTINGS}


@dataclass
class JobState:
    phase: str = "dense"
    epoch: int = 0  # epochs finished in this phase
    model: dict[str, torch.Tensor] | None = None
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    penalty_factors: dict[str, torch.Tensor] | None = None
    teacher: dict[str, torch.Tensor] | None = None
    pruned_layers: list[str] = field(default_factory=list)
    int8_scales: dict[str, float] | None = None
    int8_settings: dict[str, Any] | None = None
    rates: dict[str, float] = field(default_factory=dict)
    latency_table: dict[str, Any] | None = None  # the table the run started with
    latency: dict[str, Any] | None = None  # the allocation for a latency target (report)
    accuracy: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def load_state_file(path: str, map_location: Any = "cpu") -> dict[str, Any]:
    """A job's resume state (``STATE_FILE``): checksummed, and read without unpickling code.

    Raises ValueError with one line naming the file and suggesting ``--restart``.
    """
    hint = "delete it or run again with --restart"
    try:
        with open(path, "rb") as f:
            data = unseal(f.read(), path)
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Rt3dError as err:
        raise ValueError(f"cannot resume: {err}; {hint}") from None
    except Exception as err:  # torch raises many kinds for a bad payload
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"cannot resume from '{path}' ({first}); {hint}") from None
    names = {f.name for f in fields(JobState)} | {"fingerprint"}
    if not isinstance(payload, dict) or not set(payload) <= names:
        raise ValueError(f"cannot resume: '{path}' is not a pruning job state; {hint}")
    return payload


class Interrupted(Exception):
    """The job stopped early on request (``stop_after_epochs``)."""


class PruneJob:
    def __init__(
        self,
        config: PruneJobConfig,
        env: Distributed | None = None,
        log: Callable[[str], None] | None = None,
        measure_latency: Callable[[nn.Module, tuple[int, ...], list[str]], LatencyTable] | None = None,
    ) -> None:
        """``measure_latency(model, input_shape, pruned layers)``: the latency table of a latency
        target (``rt3d_mlir.latency.measure_table`` on the chosen target; the pruning layer cannot
        build or run models itself)."""
        from rt3d_mlir.data import InMemory, build_dataset

        self.config = config
        self.env = env or Distributed()
        self._log = log or print
        self._measure_latency = measure_latency
        cores = os.cpu_count() or 1
        torch.set_num_threads(config.threads or max(1, cores // self.env.world_size))
        options = dict(config.data_options)
        self.train_set = build_dataset(config.data, train=True, **options)
        self.val_set = build_dataset(config.data, train=False, **options)
        if config.cache_data:
            self.train_set, self.val_set = InMemory(self.train_set), InMemory(self.val_set)
        self.task = task_of(self.train_set)
        wanted = architecture_task(config.arch)
        if self.task.name != wanted:
            raise ValueError(
                f"'{config.arch}' trains for {wanted}, but data set '{config.data}' is one for "
                f"{self.task.name}"
            )
        if config.regularizer not in REGULARIZERS:
            raise ValueError(f"unknown regularizer '{config.regularizer}' "
                             f"(choose from {', '.join(REGULARIZERS)})")
        if config.penalty_per not in PENALTY_PER:
            raise ValueError(f"unknown penalty weighting '{config.penalty_per}' "
                             f"(choose from {', '.join(PENALTY_PER)})")
        if (config.latency_target is not None or config.latency_reduction is not None) \
                and config.scheme.compiled_group_shape is None:
            raise ValueError(f"a latency target needs a scheme the compiler has kernels for (kgs, vanilla or "
                             f"block), not {config.scheme.kind}")
        if self.task.name != "classification" and config.distill:
            raise ValueError(f"--distill applies to classification, not to {self.task.name}")
        clip = self.train_set[0][0]
        self.input_shape = (1, *clip.shape)
        kwargs = dict(config.model_kwargs)
        kwargs.setdefault("num_classes", self.train_set.num_classes)
        kwargs.setdefault("input_size", list(clip.shape[1:]))
        self.model_kwargs = kwargs
        torch.manual_seed(config.seed)  # the initial weights depend only on the seed
        self.model = build_model(config.arch, **kwargs).to(self.env.device)
        self.state = JobState()
        self.epochs_run = 0

    # ----------------------------------------------------------------- utils
    def log(self, message: str) -> None:
        if self.env.is_main:
            self._log(message)

    def _path(self, name: str) -> str:
        return os.path.join(self.config.work_directory, name)

    def _seed(self, phase: str, epoch: int) -> None:
        torch.manual_seed(self.config.seed * 100_003 + PHASES.index(phase) * 1009 + epoch)

    def _loader(self, dataset, train: bool, epoch: int):
        from rt3d_mlir.data import make_loader

        if train:
            sampler = torch.utils.data.DistributedSampler(
                dataset, num_replicas=self.env.world_size, rank=self.env.rank,
                shuffle=True, seed=self.config.seed, drop_last=True,
            )
            sampler.set_epoch(epoch)
        else:
            indices = list(range(self.env.rank, len(dataset), self.env.world_size))
            sampler = indices
        if not train and self.task.name != "classification":
            sampler = list(range(len(dataset)))  # mAP and Dice need the whole set on every rank
        workers = 0 if self.config.cache_data else self.config.workers  # the items live here
        return make_loader(dataset, self.config.batch_size, train=train, workers=workers,
                           sampler=sampler, collate=self.task.collate,
                           channels_last=self.config.channels_last)

    def _optimizer(self, lr: float, epochs: int):
        if self.config.optimizer == "adamw":
            optimizer: torch.optim.Optimizer = torch.optim.AdamW(
                self.model.parameters(), lr=lr, weight_decay=self.config.weight_decay
            )
        elif self.config.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                self.model.parameters(), lr=lr, momentum=self.config.momentum,
                weight_decay=self.config.weight_decay,
            )
        else:
            raise ValueError(f"unknown optimizer '{self.config.optimizer}' (sgd or adamw)")
        if self.config.schedule == "onecycle":
            steps = max(len(self._loader(self.train_set, True, 0)), 1)
            scheduler: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=lr, total_steps=max(epochs, 1) * steps
            )
        elif self.config.schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
        else:
            raise ValueError(f"unknown schedule '{self.config.schedule}' (cosine or onecycle)")
        return optimizer, scheduler

    def _evaluate(self, description: str) -> float:
        self._seed("done", 0)
        return evaluate(self.model, self._loader(self.val_set, False, 0), self.env, description, self.task)

    # ------------------------------------------------------------- persistence
    def _save_state(self) -> None:
        self.state.model = self.model.state_dict()
        if self.env.is_main:
            os.makedirs(self.config.work_directory, exist_ok=True)
            payload = {f.name: getattr(self.state, f.name) for f in fields(self.state)}
            payload["fingerprint"] = self.config.fingerprint()
            buffer = io.BytesIO()
            torch.save(payload, buffer)
            write_bytes(self._path(STATE_FILE), seal(buffer.getvalue()))
        self.env.barrier()

    def _load_state(self) -> bool:
        path = self._path(STATE_FILE)
        # Every rank looks before any rank can write: rank 0 saves the state
        # right after a fresh start, and a slower rank that saw that file would
        # resume while the others start fresh, and their collectives would no
        # longer pair up (a hang until the timeout). The collective below only
        # completes once all ranks have looked.
        present = self.env.all_sum([float(os.path.exists(path))])[0]
        if present == 0:
            return False
        if present != self.env.world_size:
            raise ValueError(f"ranks disagree on whether '{path}' exists; give all ranks one work directory")
        payload = load_state_file(path, self.env.device)
        if payload.pop("fingerprint", None) != self.config.fingerprint():
            raise ValueError(
                f"work directory '{self.config.work_directory}' holds a run with different settings; "
                "use another --work-dir or --restart"
            )
        self.state = JobState(**payload)
        if self.state.int8_settings not in (None, self.config.int8_settings()):
            raise ValueError(
                f"work directory '{self.config.work_directory}' holds a run quantized with different "
                "int8 settings; use another --work-dir or --restart"
            )
        masked = [name for name in self.state.pruned_layers if f"{name}.{MASK_BUFFER}" in self.state.model]
        add_mask_buffers(self.model, masked)
        self.model.load_state_dict(self.state.model)
        self.log(f"resuming from {path}: phase {self.state.phase}, {self.state.epoch} epoch(s) done")
        return True

    def _record(self, entry: dict[str, Any]) -> None:
        self.state.history.append(entry)
        if self.env.is_main:
            os.makedirs(self.config.work_directory, exist_ok=True)
            with open(self._path(LOG_FILE), "a") as f:
                f.write(json.dumps(entry) + "\n")
        parts = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items()]
        self.log("  ".join(parts))

    def _tick(self, stop_after_epochs: int | None) -> None:
        self.epochs_run += 1
        if stop_after_epochs is not None and self.epochs_run >= stop_after_epochs:
            raise Interrupted(f"stopped after {self.epochs_run} epoch(s)")

    # ------------------------------------------------------------------ phases
    def _train_phase(self, phase: str, epochs: int, lr: float, stop_after: int | None) -> None:
        config = self.config
        net = self.env.wrap(self.model)
        optimizer, scheduler = self._optimizer(lr, epochs)
        per_step = config.schedule == "onecycle"
        if self.state.optimizer is not None:
            optimizer.load_state_dict(self.state.optimizer)
            scheduler.load_state_dict(self.state.scheduler)
        penalty = None
        if phase == "reweight" and config.regularizer != "none":
            penalty = GroupPenalty(
                self.model, self.state.pruned_layers, self._layer_schemes(), config.penalty,
                config.penalty_eps, config.regularizer, config.penalty_per,
            )
            if self.state.penalty_factors is not None:
                penalty.load_state_dict(self.state.penalty_factors)
        distillation = None
        if phase == "retrain" and config.distill and self.state.teacher is not None:
            teacher = build_model(config.arch, **self.model_kwargs).to(self.env.device)
            teacher.load_state_dict(self.state.teacher)
            distillation = Distillation(teacher.eval(), config.distill_alpha, config.distill_temperature)
        while self.state.epoch < epochs:
            epoch = self.state.epoch
            if penalty is not None and epoch > 0 and epoch % max(config.reweight_every, 1) == 0:
                penalty.update_factors()
            self._seed(phase, epoch)
            start = time.perf_counter()
            stats = train_epoch(
                net, self._loader(self.train_set, True, epoch), optimizer, self.env,
                penalty=penalty, masked=phase in ("retrain", "quantize"), distillation=distillation,
                description=f"{phase} {epoch + 1}/{epochs}",
                after_step=scheduler.step if per_step else None, task=self.task,
            )
            if not per_step:
                scheduler.step()
            accuracy = self._evaluate(f"eval {phase} {epoch + 1}/{epochs}")
            seconds = time.perf_counter() - start
            self.state.seconds += seconds
            self.state.epoch = epoch + 1
            self.state.optimizer = optimizer.state_dict()
            self.state.scheduler = scheduler.state_dict()
            self.state.penalty_factors = penalty.state_dict() if penalty is not None else None
            self._record({
                "phase": phase, "epoch": epoch + 1, "epochs": epochs, "loss": stats.loss,
                "penalty": stats.penalty, "train_acc": stats.accuracy, "val_acc": accuracy,
                "lr": scheduler.get_last_lr()[0], "seconds": round(seconds, 2),
            })
            self._save_state()
            self._tick(stop_after)

    def _next_phase(self, phase: str) -> None:
        self.state.phase = phase
        self.state.epoch = 0
        self.state.optimizer = self.state.scheduler = self.state.penalty_factors = None

    def _select_layers(self) -> None:
        config = self.config
        pruned, _skipped = select_layers(
            self.model,
            PruningConfig(scheme=config.scheme, flops_reduction=config.flops_reduction,
                          layers=config.layers, skip=config.skip, linear=config.linear),
        )
        self.state.pruned_layers = pruned
        if config.latency_target is not None or config.latency_reduction is not None:
            if self._measure_latency is None:
                raise ValueError("a latency target needs a way to measure the model (measure_latency)")
            if self.env.world_size > 1:
                raise ValueError("a latency target is measured in one process: run without torchrun")
            table = self._measure_latency(self.model, self.input_shape, pruned)
            check_reachable(table, pruned, self._latency_target(table))  # before hours of training
            self.state.latency_table = table.to_json()  # a resumed run keeps the table it started with

    def _flops(self, model: nn.Module) -> list[LayerFlops]:
        """FLOPs of the convs, and of the Linear layers if any is pruned."""
        linear = self.config.linear or any(
            isinstance(self.model.get_submodule(name), nn.Linear) for name in self.state.pruned_layers
        )
        return conv_flops(model, self.input_shape, linear)

    def _layer_schemes(self) -> dict[str, SparsityScheme]:
        """Each pruned layer's scheme: the job's, with the group shape a latency target chose."""
        chosen = (self.state.latency or {}).get("layers", {})
        return {
            name: with_shape(self.config.scheme, tuple(chosen[name]["group_shape"])) if name in chosen
            else self.config.scheme
            for name in self.state.pruned_layers
        }

    def _prune(self) -> None:
        config = self.config
        layers = self._flops(self.model)
        shapes: dict[str, tuple[int, int]] = {}
        if self.state.latency_table is not None:
            rates, shapes = self._latency_rates()
        elif config.layers is not None and all(layer.rate is not None for layer in config.layers):
            rates = {layer.module: float(layer.rate) for layer in config.layers}  # type: ignore[arg-type]
        else:
            if config.flops_reduction is None:
                raise ValueError("give a whole-model FLOPs reduction or a rate for every layer")
            rates = rates_for_flops_target(layers, self.state.pruned_layers, config.flops_reduction)
        self.state.accuracy["after_reweighting"] = self._evaluate("eval before hard pruning")
        for shape in dict.fromkeys([config.scheme.group_shape, *shapes.values()]):  # per group shape
            layer_rates = {
                name: rate for name, rate in rates.items()
                if shapes.get(name, config.scheme.group_shape) == shape
            }
            hard_prune(self.model, with_shape(config.scheme, shape), layer_rates)
        self.state.rates = rates
        self.state.accuracy["after_hard_prune"] = self._evaluate("eval after hard pruning")
        reduction = flops_reduction(self._flops(self.model))
        self.log(
            f"hard-pruned {len(rates)} layers to a {reduction:.3g}x conv FLOPs reduction: "
            f"accuracy {self.state.accuracy['after_reweighting']:.4f} -> "
            f"{self.state.accuracy['after_hard_prune']:.4f}"
        )

    def _latency_target(self, table: LatencyTable) -> float:
        """Seconds: the target given, or the table's dense latency over the reduction given."""
        if self.config.latency_target is not None:
            return self.config.latency_target
        assert self.config.latency_reduction is not None
        return table.dense_seconds / self.config.latency_reduction

    def _latency_rates(self) -> tuple[dict[str, float], dict[str, tuple[int, int]]]:
        """Per-layer rates and group shapes that meet the latency target by the measured table, chosen
        by the weights' importance (pruning.latency_budget) before the penalty epochs, so that the
        penalty pulls each layer toward its own group shape; kept in the state and reused."""
        config = self.config
        if self.state.latency_table is None:
            raise ValueError("a latency target needs a measured latency table")
        if self.state.latency is not None:  # planned before the penalty epochs
            chosen = self.state.latency["layers"]
            return ({name: 1.0 / layer["keep"] for name, layer in chosen.items()},
                    {name: tuple(layer["group_shape"]) for name, layer in chosen.items()})
        table = LatencyTable.from_json(self.state.latency_table)
        target = self._latency_target(table)
        allocation = allocate(self.model, config.scheme, table, self.state.pruned_layers, target)
        self.state.latency = {
            "target_ms": target * 1e3,
            "target_reduction": config.latency_reduction,
            "predicted_ms": allocation.predicted_seconds * 1e3,
            "table": {
                "target": table.target, "threads": table.threads, "dense_ms": table.dense_seconds * 1e3,
                "fixed_ms": table.fixed_seconds * 1e3, "fit_error": table.machine.get("fit_error"),
                "keeps": list(next(iter(next(iter(table.layers.values())).values())).keeps),
                "group_shapes": [list(shape) for shape in table.group_shapes],
            },
            "layers": {
                name: {"keep": allocation.keeps[name], "group_shape": list(allocation.group_shapes[name]),
                       "predicted_ms": allocation.layer_seconds[name] * 1e3,
                       "dense_ms": table.seconds(name, None, 1.0) * 1e3,
                       "importance_lost": allocation.importance_lost[name]}
                for name in self.state.pruned_layers
            },
        }
        self.log(
            f"latency target {target * 1e3:.1f} ms on {table.target}: predicted "
            f"{allocation.predicted_seconds * 1e3:.1f} ms (dense {table.dense_seconds * 1e3:.1f} ms), keeps "
            + ", ".join(
                f"{name} {keep:.3g}" + (f" ({shape_text(allocation.group_shapes[name])})" if keep < 1 else "")
                for name, keep in allocation.keeps.items()
            )
        )
        rates = {name: 1.0 / keep for name, keep in allocation.keeps.items()}
        return rates, dict(allocation.group_shapes)

    def run(self, stop_after_epochs: int | None = None) -> dict[str, Any]:
        """Run (or resume) the job; returns the report. Raises Interrupted if stopped early."""
        config = self.config
        started = time.perf_counter()
        if not self._load_state():
            self._select_layers()
            if config.dense_checkpoint:
                self._load_dense(config.dense_checkpoint)
                self._next_phase("reweight")
            self._save_state()
        if self.state.phase == "dense":
            self._train_phase("dense", config.dense_epochs, config.lr, stop_after_epochs)
            self._finish_dense()
            self._next_phase("reweight")
            self._save_state()
        if self.state.phase == "reweight":
            if "dense" not in self.state.accuracy:
                self._finish_dense()
            if self.state.latency_table is not None and self.state.latency is None:
                self._latency_rates()  # the plan: each layer's keep and group shape
                self._save_state()
            self._train_phase("reweight", config.reweight_epochs, config.lr, stop_after_epochs)
            self._next_phase("prune")
            self._save_state()
        if self.state.phase == "prune":
            self._prune()
            self._next_phase("retrain")
            self._save_state()
        if self.state.phase == "retrain":
            self._train_phase("retrain", config.retrain_epochs, config.retrain_lr, stop_after_epochs)
            self.state.accuracy["final"] = self.state.history[-1]["val_acc"] if config.retrain_epochs \
                else self.state.accuracy["after_hard_prune"]
            self._next_phase("quantize" if config.int8 else "done")
            self._save_state()
        if self.state.phase == "done" and config.int8 and self.state.int8_settings is None:
            self._next_phase("quantize")  # a finished run, quantized now
        if self.state.phase == "quantize":
            self._quantize(stop_after_epochs)
            self._next_phase("done")
            self._save_state()
        report = self._report(time.perf_counter() - started)
        if self.env.is_main:
            self._write_outputs(report)
        self.env.barrier()
        return report

    def _quantize(self, stop_after: int | None) -> None:
        """int8: calibrate the input scales once, then (optionally) retrain with int8 simulated."""
        config = self.config
        self.state.int8_settings = config.int8_settings()
        if self.state.int8_scales is None:
            count = min(max(config.calibration_clips, 1), len(self.train_set))
            clips = torch.utils.data.Subset(self.train_set, list(range(count)))
            loader = self._loader(clips, False, 0)
            self._seed("quantize", 0)
            self.state.int8_scales = calibrate(
                self.model, (batch[0].to(self.env.device) for batch in loader)
            )
            with simulated_int8(self.model, self.state.int8_scales):
                self.state.accuracy["int8_calibrated"] = self._evaluate("eval int8 (calibrated)")
            self.log(f"int8 scales calibrated on {count} training clips: accuracy "
                     f"{self.state.accuracy.get('final', math.nan):.4f} -> "
                     f"{self.state.accuracy['int8_calibrated']:.4f}")
            self._save_state()
        if config.qat_epochs:
            with simulated_int8(self.model, self.state.int8_scales):
                self._train_phase("quantize", config.qat_epochs, config.qat_lr, stop_after)
            self.state.accuracy["int8_qat"] = self.state.history[-1]["val_acc"]

    def _load_dense(self, path: str) -> None:
        checkpoint = read_checkpoint(path)
        if checkpoint.arch != self.config.arch:
            raise ValueError(f"dense checkpoint '{path}' is a {checkpoint.arch}, not a {self.config.arch}")
        try:
            self.model.load_state_dict(checkpoint.state_dict)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise ValueError(f"dense checkpoint '{path}' does not fit this model: {first}") from None
        self.log(f"loaded dense weights from {path}")

    def _finish_dense(self) -> None:
        self.state.accuracy["dense"] = self._evaluate("eval dense")
        self.state.teacher = copy.deepcopy(self.model.state_dict())
        if self.env.is_main:
            save_checkpoint(
                self._path(DENSE_FILE), self.config.arch, self.model_kwargs, self.model,
                sparsity={"scheme": "dense"}, input_shape=self.input_shape,
            )
        self.log(f"dense accuracy {self.state.accuracy['dense']:.4f} (saved {self._path(DENSE_FILE)})")

    # ----------------------------------------------------------------- outputs
    def _report(self, seconds: float) -> dict[str, Any]:
        config = self.config
        dense_model = build_model(config.arch, **self.model_kwargs)
        dense_layers = {layer.name: layer for layer in self._flops(dense_model)}
        layers = self._flops(self.model)
        per_layer = []
        for layer in layers:
            module = self.model.get_submodule(layer.name)
            mask = getattr(module, MASK_BUFFER, None)
            per_layer.append({
                "name": layer.name,
                "weight_shape": list(module.weight.shape),
                "pruned": layer.name in self.state.rates,
                "requested_rate": self.state.rates.get(layer.name, 1.0),
                "rate": dense_layers[layer.name].dense_macs / max(layer.kept_macs, 1),
                "dense_macs": layer.dense_macs,
                "kept_macs": layer.kept_macs,
                "kept_weight_fraction": float(mask.float().mean()) if mask is not None else 1.0,
            })
        dense = sum(layer.dense_macs for layer in layers)
        kept = sum(layer.kept_macs for layer in layers)
        return {
            "arch": config.arch,
            "model_kwargs": self.model_kwargs,
            "data": config.data,
            "input_shape": list(self.input_shape),
            **config.scheme.to_dict(),
            "regularizer": config.regularizer,
            "penalty": config.penalty if config.regularizer != "none" else None,
            "penalty_per": config.penalty_per,
            "task": self.task.name,
            "metric": self.task.metric,  # what the accuracy figures measure
            "target_flops_reduction": config.flops_reduction,
            "latency": self.state.latency,
            "flops": {"dense_macs": dense, "kept_macs": kept, "reduction": dense / max(kept, 1)},
            "layers": per_layer,
            "accuracy": self.state.accuracy,
            "epochs": {"dense": 0 if config.dense_checkpoint else config.dense_epochs,
                       "reweight": config.reweight_epochs, "retrain": config.retrain_epochs,
                       "qat": config.qat_epochs if config.int8 else 0},
            "distill": config.distill,
            "int8": {"scheme": SCHEME, "calibration_clips": config.calibration_clips,
                     "qat_epochs": config.qat_epochs} if config.int8 else None,
            "world_size": self.env.world_size,
            "history": self.state.history,
            "train_seconds": round(self.state.seconds, 1),
            "wall_seconds_this_run": round(seconds, 1),
        }

    def _write_outputs(self, report: dict[str, Any]) -> None:
        config = self.config
        layers = {
            layer["name"]: {"rate": layer["rate"], "kept_weight_fraction": layer["kept_weight_fraction"]}
            for layer in report["layers"] if layer["pruned"]
        }
        sparsity = {**config.scheme.to_dict(), "layers": layers,
                    "flops_reduction": report["flops"]["reduction"]}
        allocated = (self.state.latency or {}).get("layers", {})
        chosen = [tuple(entry["group_shape"]) for entry in allocated.values() if entry["keep"] < 1.0]
        if compiled_group_shape(config.scheme, chosen) is None:  # the compiler finds each layer's
            sparsity["group_shape"] = None
            for name, entry in allocated.items():
                if name in layers:
                    layers[name]["group_shape"] = entry["group_shape"]
        state = state_dict_without_masks(self.model)
        fresh = build_model(config.arch, **self.model_kwargs)
        fresh.load_state_dict(state)
        quantization = None
        if self.state.int8_scales is not None:
            quantization = {"scheme": SCHEME, "input_scales": self.state.int8_scales}
        save_checkpoint(config.output, config.arch, self.model_kwargs, fresh, sparsity=sparsity,
                        input_shape=self.input_shape, quantization=quantization)
        write_text(config.report_path, json.dumps(report, indent=2))
        self.log(
            f"wrote {config.output} ({report['flops']['reduction']:.3g}x conv FLOPs reduction, "
            f"{self.task.metric} dense {report['accuracy'].get('dense', math.nan):.4f} -> "
            f"pruned {report['accuracy'].get('final', math.nan):.4f}) and {config.report_path}"
        )

