"""rt3d-prune: prune a 3D CNN into KGS or vanilla structured sparsity (or block, filter, unstructured).

Trains the dense model (or loads it with --dense), trains with the
reweighted group penalty (or --regularizer), hard-prunes to the target, and retrains with the
masks fixed; with --int8, calibrates int8 scales and optionally retrains
with int8 simulated (--qat-epochs). Checkpoints every epoch in the work directory and resumes from
it when run again with the same settings. Runs under
``torchrun --nproc_per_node=N`` with DistributedDataParallel.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.fileio import check_output_path
from rt3d_mlir.tools.cli import (
    ArgumentParser,
    bounded_float,
    bounded_int,
    duration,
    group_shape,
    reduction,
    run_tool,
)


def _group_shapes(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(group_shape(part) for part in text.split(",") if part.strip())


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="rt3d-prune", description=__doc__.split("\n\n")[0])
    model = p.add_argument_group("model")
    model.add_argument("--arch", default="c3d",
                       help="c3d, r2plus1d, s3d, x3d (X3D-S), x3d_xs, x3d_s, x3d_m, tv:r3d_18, ... "
                       "(default: c3d)")
    model.add_argument("--width", type=bounded_float(0, 16, open_minimum=True), default=1.0,
                       help="channel width multiplier")
    model.add_argument("--batch-norm", action="store_true",
                       help="C3D with BatchNorm after each conv (trains from scratch more easily)")
    model.add_argument("--dense", metavar="CHECKPOINT", help="start from this dense rt3d checkpoint")
    data = p.add_argument_group("data")
    data.add_argument("--data", default="synthetic",
                      help="synthetic | ucf101:PATH | hmdb51:PATH (default: synthetic)")
    data.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                      help="data set option, e.g. samples=2000 or split=2 (repeatable)")
    data.add_argument("--batch-size", type=bounded_int(1, 1 << 20), default=16)
    data.add_argument("--workers", type=bounded_int(0, 1024), default=2, help="data loader worker processes")
    data.add_argument("--threads", type=bounded_int(1, 4096),
                      help="torch threads per process (default: cores / processes)")
    data.add_argument("--channels-last", action="store_true",
                      help="feed batches with channels-last strides (faster CPU training for some "
                      "models, C3D among them; slower for others: try both)")
    data.add_argument("--cache-data", action="store_true",
                      help="render the built-in data sets once and keep them in memory (loaded in this "
                      "process: --workers is not used)")
    sparsity = p.add_argument_group("sparsity")
    sparsity.add_argument("--scheme", default="kgs",
                          help="kgs, vanilla, block (block-based: columns of bR x bC blocks of the weight "
                          "matrix, any layer), filter (whole output channels) or unstructured (single "
                          "weights by magnitude, torch.ao.pruning); default: kgs")
    sparsity.add_argument("--group-shape", type=group_shape, default=(4, 4),
                          help="kernel group GFxGC; block: block rows x columns bRxbC (default: 4x4)")
    sparsity.add_argument("--unit", default="",
                          help="pruning unit: KGS position (kd,kh,kw; default) or spatial (kh,kw through "
                          "depth); block column (default) or row")
    sparsity.add_argument("--prune-linear", action="store_true",
                          help="a --flops-reduction prunes the Linear layers too (a --config may name them)")
    sparsity.add_argument("--flops-reduction", type=bounded_float(1, 1e6),
                          help="whole-model conv FLOPs reduction target, e.g. 2.6")
    latency = p.add_argument_group("latency (instead of --flops-reduction)")
    latency.add_argument("--latency-target", type=duration, metavar="TIME",
                         help="per-layer keep fractions chosen to meet this latency on --target, e.g. 150ms, "
                         "from a table measured by building and timing the model (cached)")
    latency.add_argument("--latency-reduction", type=reduction, metavar="FACTOR",
                         help="the same, as a reduction of the dense model's measured latency, e.g. 3x")
    latency.add_argument("--target", default="host", choices=("host", "spirv", "aarch64"),
                         help="where the latency is measured (default: host); aarch64: counted under qemu "
                         "on one core of a Cortex-A76 model, not timed")
    latency.add_argument("--latency-group-shapes", type=_group_shapes, default=(), metavar="GFxGC,...",
                         help="group shapes a layer may take besides --group-shape, e.g. 8x8,16x16 (each "
                         "measured; a checkpoint with several leaves each layer's to the compiler)")
    latency.add_argument("--latency-threads", type=bounded_int(1, 1024),
                         help="threads the builds run on (default: $RT3D_NUM_THREADS, else all CPUs)")
    sparsity.add_argument("--config", metavar="JSON",
                          help='per-layer config list: [{"module": "features.conv2a", "rate": 3}, ...]')
    sparsity.add_argument("--skip", action="append", metavar="MODULE",
                          help="Conv3d to keep dense (repeatable; default: the first conv)")
    train = p.add_argument_group("training")
    train.add_argument("--dense-epochs", type=bounded_int(0, 1 << 20), default=10)
    train.add_argument("--reweight-epochs", type=bounded_int(0, 1 << 20), default=8)
    train.add_argument("--reweight-every", type=bounded_int(1, 1 << 20), default=2,
                       help="recompute the reweighting factors every N epochs")
    train.add_argument("--regularizer", default="reweighted", choices=("reweighted", "group-lasso", "none"),
                       help="the penalty of the reweighting epochs: RT3D's reweighted group penalty "
                       "(default), a plain group lasso of the same initial strength, or none (magnitude "
                       "only)")
    train.add_argument("--penalty", type=bounded_float(0), default=None,
                       help="group penalty strength lambda (default: 1e-4 per unit, 3e-7 per weight)")
    train.add_argument("--penalty-per", default="unit", choices=("unit", "weight"),
                       help="what one term of the penalty weighs: a unit (RT3D; the same lambda pulls "
                       "small units harder) or a weight (a unit counts by its size: one lambda pulls "
                       "every group shape and scheme alike)")
    train.add_argument("--retrain-epochs", type=bounded_int(0, 1 << 20), default=8)
    train.add_argument("--optimizer", default="sgd", choices=("sgd", "adamw"))
    train.add_argument("--schedule", default="cosine", choices=("cosine", "onecycle"),
                       help="learning-rate schedule within each phase")
    train.add_argument("--lr", type=bounded_float(0, open_minimum=True), default=0.05)
    train.add_argument("--weight-decay", type=bounded_float(0), default=5e-4)
    train.add_argument("--retrain-lr", type=bounded_float(0, open_minimum=True), default=0.01)
    train.add_argument("--distill", action="store_true", help="distil from the dense model when retraining")
    quant = p.add_argument_group("int8")
    quant.add_argument("--int8", action="store_true",
                       help="after retraining, calibrate int8 input scales (per-tensor; weights per "
                       "channel) and record them in the checkpoint")
    quant.add_argument("--calibration-clips", type=bounded_int(1, 1 << 20), default=64,
                       help="training clips the int8 calibration runs (default: 64)")
    quant.add_argument("--qat-epochs", type=bounded_int(0, 1 << 20), default=0,
                       help="quantization-aware retraining epochs after calibration (implies --int8)")
    quant.add_argument("--qat-lr", type=bounded_float(0, open_minimum=True), default=1e-3)
    train.add_argument("--seed", type=bounded_int(0, (1 << 63) - 1), default=0)
    out = p.add_argument_group("output")
    out.add_argument("-o", "--output", required=True, help="pruned rt3d checkpoint to write")
    out.add_argument("--report", help="JSON report (default: OUTPUT with .json)")
    out.add_argument("--work-dir", help="checkpoints for resuming (default: OUTPUT.work)")
    out.add_argument("--restart", action="store_true", help="ignore an existing work directory")
    return p


def _data_options(items: list[str]) -> dict[str, object]:
    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Rt3dError(f"--data-option expects KEY=VALUE, got '{item}'")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _model_kwargs(args) -> dict[str, object]:
    kwargs: dict[str, object] = {}
    if args.width != 1.0:
        kwargs["width"] = args.width
    if args.batch_norm:
        if args.arch != "c3d":
            raise Rt3dError("--batch-norm applies to c3d (r2plus1d and s3d always have BatchNorm)")
        kwargs["batch_norm"] = True
    return kwargs


def config_from_args(args) -> object:
    import shutil

    from rt3d_mlir.pruning.job import PruneJobConfig
    from rt3d_mlir.pruning.schemes import SparsityScheme, parse_layer_config

    try:
        scheme = SparsityScheme(args.scheme, args.group_shape, args.unit)
        layers = None
        if args.config:
            try:
                with open(args.config) as f:
                    layers = parse_layer_config(json.load(f))
            except OSError as err:
                raise Rt3dError(f"cannot read --config '{args.config}': {err.strerror}") from None
            except json.JSONDecodeError as err:
                raise Rt3dError(f"--config '{args.config}' is not valid JSON: {err}") from None
    except ValueError as err:
        raise Rt3dError(str(err)) from None
    targets = [name for name, value in (("--flops-reduction", args.flops_reduction),
                                        ("--latency-target", args.latency_target),
                                        ("--latency-reduction", args.latency_reduction)) if value is not None]
    if len(targets) > 1:
        raise Rt3dError(f"give one target, not {' and '.join(targets)}")
    if not targets and not (layers and all(layer.rate for layer in layers)):
        raise Rt3dError("give --flops-reduction, --latency-target, --latency-reduction or a --config with a "
                        "rate for every layer")
    config = PruneJobConfig(
        arch=args.arch, data=args.data, output=args.output,
        model_kwargs=_model_kwargs(args),
        data_options=_data_options(args.data_option), scheme=scheme,
        flops_reduction=args.flops_reduction, layers=layers,
        latency_target=args.latency_target, latency_reduction=args.latency_reduction,
        skip=tuple(args.skip) if args.skip else None, linear=args.prune_linear, dense_checkpoint=args.dense,
        dense_epochs=args.dense_epochs, reweight_epochs=args.reweight_epochs,
        reweight_every=args.reweight_every, regularizer=args.regularizer.replace("-", "_"),
        penalty=args.penalty, penalty_per=args.penalty_per,
        retrain_epochs=args.retrain_epochs,
        distill=args.distill, int8=args.int8 or args.qat_epochs > 0,
        calibration_clips=args.calibration_clips, qat_epochs=args.qat_epochs, qat_lr=args.qat_lr,
        batch_size=args.batch_size, optimizer=args.optimizer,
        schedule=args.schedule, lr=args.lr,
        retrain_lr=args.retrain_lr, weight_decay=args.weight_decay,
        workers=args.workers, threads=args.threads, channels_last=args.channels_last,
        cache_data=args.cache_data, seed=args.seed,
        work_dir=args.work_dir,
        report=args.report,
    )
    if args.restart:
        shutil.rmtree(config.work_directory, ignore_errors=True)
    return config


def _latency_measurer(args, config):
    """What the job calls to measure its latency table (None without a latency target)."""
    if args.latency_target is None and args.latency_reduction is None:
        return None

    def measure(model, input_shape, pruned):
        from rt3d_mlir.backend.tuning import default_threads
        from rt3d_mlir.latency import measure_table

        return measure_table(model, input_shape, config.scheme, pruned, target=args.target,
                             threads=args.latency_threads or default_threads(),
                             group_shapes=args.latency_group_shapes)

    return measure


def _check_latency(args, config, job, report: dict) -> None:
    """Build the pruned model and the dense one, time both in the same rounds, and add the measured
    latencies (whole and per layer) to the report beside the predictions."""
    from rt3d_mlir.backend.tuning import default_threads
    from rt3d_mlir.fileio import write_text
    from rt3d_mlir.latency import COUNTED, measure_model
    from rt3d_mlir.models import build_model
    from rt3d_mlir.pruning.latency_budget import compiled_group_shape

    latency = report["latency"]
    pruned = list(latency["layers"])
    dense = build_model(config.arch, **job.model_kwargs)
    used = [tuple(entry["group_shape"]) for entry in latency["layers"].values() if entry["keep"] < 1.0]
    group_shape = compiled_group_shape(config.scheme, used)
    measured = measure_model(job.model, job.input_shape, pruned, args.target,
                             args.latency_threads or default_threads(), group_shape, baseline=dense)
    # the VM's speed drifts: the prediction scaled by how fast the dense build runs now
    speed = measured["baseline_seconds"] / (latency["table"]["dense_ms"] * 1e-3)
    expected = latency["predicted_ms"] * speed
    latency.update({
        "measured_ms": measured["seconds"] * 1e3, "dense_measured_ms": measured["baseline_seconds"] * 1e3,
        "predicted_ms_at_current_speed": expected,
        "prediction_error": measured["seconds"] * 1e3 / expected - 1.0,
    })
    for name, seconds in measured["layers"].items():
        latency["layers"][name]["measured_ms"] = seconds * 1e3
    write_text(config.report_path, json.dumps(report, indent=2))
    how = "counted (Cortex-A76 model, 1 core)" if args.target in COUNTED else "measured"
    print(
        f"latency on {args.target}: {how} {latency['measured_ms']:.1f} ms (dense "
        f"{latency['dense_measured_ms']:.1f} ms in the same rounds), predicted {expected:.1f} ms at this "
        f"speed ({latency['predicted_ms']:.1f} ms when measured): {latency['prediction_error']:+.1%}",
        file=sys.stderr,
    )


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from rt3d_mlir.models import architecture_names, known_architecture

    if not known_architecture(args.arch):
        raise Rt3dError(
            f"unknown architecture '{args.arch}' (choose from {', '.join(architecture_names())})"
        )
    config = config_from_args(args)
    check_output_path(config.output)  # before hours of training
    check_output_path(config.report_path)
    from tqdm import tqdm

    from rt3d_mlir.pruning.distributed import setup_distributed, teardown_distributed
    from rt3d_mlir.pruning.job import PruneJob

    env = setup_distributed()
    try:
        try:
            job = PruneJob(config, env, log=lambda msg: tqdm.write(msg, file=sys.stderr),
                           measure_latency=_latency_measurer(args, config))
            report = job.run()
            if report.get("latency") and env.is_main:
                _check_latency(args, config, job, report)
        except (ValueError, FileNotFoundError) as err:
            raise Rt3dError(str(err).strip().splitlines()[0]) from None
    finally:
        teardown_distributed(env)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool("rt3d-prune", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
