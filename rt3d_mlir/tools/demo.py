"""rt3d-demo: the main job on a built-in default, end to end.

Prunes a small C3D (or another built-in architecture, ``--arch``) on the
built-in synthetic motion data set into 4x4 KGS
sparsity (dense training, reweighted training, hard pruning, masked
retraining), compiles the pruned checkpoint to a host shared object, runs it
on the validation clips, and prints accuracy and latency against PyTorch.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from rt3d_mlir.kernel_packing import MAX_RELATIVE_ERROR, PRECISIONS
from rt3d_mlir.tools.cli import ArgumentParser, bounded_float, bounded_int, group_shape, run_tool

DEMO_ARCHITECTURES = ("c3d", "r2plus1d", "s3d", "x3d", "x3d_xs", "x3d_s", "x3d_m")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="rt3d-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default="out/demo", help="where to write checkpoints and the .so")
    parser.add_argument(
        "--arch",
        choices=DEMO_ARCHITECTURES,
        default="c3d",
        help="built-in architecture (default c3d, with batch norms); x3d_xs/x3d_s: X3D",
    )
    parser.add_argument(
        "--width", type=bounded_float(0, 16, open_minimum=True), default=0.25, help="width multiplier"
    )
    parser.add_argument("--flops-reduction", type=bounded_float(1, 1e6), default=2.6)
    parser.add_argument(
        "--group-shape", type=group_shape, default=(4, 4), help="KGS group GFxGC (default 4x4)"
    )
    parser.add_argument(
        "--classes", type=bounded_int(2, 16), default=4, help="synthetic motion classes (2-16)"
    )
    parser.add_argument("--dense-epochs", type=bounded_int(0, 1 << 20), default=6)
    parser.add_argument("--reweight-epochs", type=bounded_int(0, 1 << 20), default=4)
    parser.add_argument("--retrain-epochs", type=bounded_int(0, 1 << 20), default=4)
    parser.add_argument("--repeat", type=bounded_int(1), default=5, help="timed runs (median reported)")
    parser.add_argument("--seed", type=bounded_int(0, (1 << 63) - 1), default=0)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="compile in this precision (rt3d-compile --precision; bf16 or fp16 is compared with fp32 too; "
        "int8 implies --int8 and is checked against the int8 scheme simulated in PyTorch)",
    )
    parser.add_argument(
        "--int8", action="store_true",
        help="also calibrate int8 scales after pruning and report the pruned model's top-1 with int8 "
        "simulated (rt3d-prune --int8)",
    )
    parser.add_argument("--qat-epochs", type=bounded_int(0, 1 << 20), default=0,
                        help="quantization-aware retraining epochs after calibration (implies --int8)")
    parser.add_argument("--restart", action="store_true", help="prune again even if a result exists")
    return parser


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    import shutil

    import torch

    import rt3d_mlir
    from rt3d_mlir.data import build_dataset
    from rt3d_mlir.frontend import load_model_file
    from rt3d_mlir.pruning.job import DENSE_FILE, PruneJob, PruneJobConfig
    from rt3d_mlir.pruning.schemes import SparsityScheme
    from rt3d_mlir.quantization import simulated_int8
    from rt3d_mlir.sparsity import format_group_shape

    os.makedirs(args.out_dir, exist_ok=True)
    pruned = os.path.join(args.out_dir, f"{args.arch}_kgs.pt")
    data_options = {"classes": args.classes}
    model_kwargs: dict[str, object] = {"width": args.width}
    if args.arch == "c3d":
        model_kwargs.update(batch_norm=True, dropout=0.2)
    config = PruneJobConfig(
        arch=args.arch, data="synthetic", output=pruned, data_options=data_options,
        model_kwargs=model_kwargs,
        scheme=SparsityScheme("kgs", args.group_shape),
        flops_reduction=args.flops_reduction, dense_epochs=args.dense_epochs,
        reweight_epochs=args.reweight_epochs, retrain_epochs=args.retrain_epochs,
        optimizer="adamw", schedule="onecycle", lr=5e-4, retrain_lr=2e-4, weight_decay=1e-4,
        batch_size=32, seed=args.seed, int8=args.int8 or args.qat_epochs > 0 or args.precision == "int8",
        qat_epochs=args.qat_epochs,
        qat_lr=2e-5,  # a tenth of the retraining's
    )
    if args.restart:
        shutil.rmtree(config.work_directory, ignore_errors=True)
    print(f"[1/3] pruning {args.arch} (width {args.width}) on the synthetic motion data set "
          f"({args.classes} classes) to a "
          f"{args.flops_reduction}x conv FLOPs reduction with {format_group_shape(args.group_shape)} KGS",
          flush=True)
    report = PruneJob(config, log=lambda msg: print("      " + msg, flush=True)).run()

    precisions = ["fp32"] + ([args.precision] if args.precision != "fp32" else [])
    artifacts = {p: os.path.join(args.out_dir, f"{args.arch}_kgs{'' if p == 'fp32' else '_' + p}.so")
                 for p in precisions}
    for precision, artifact in artifacts.items():
        print(f"[2/3] compiling {pruned} -> {artifact} ({precision})", flush=True)
        rt3d_mlir.compile(pruned, output=artifact, target="host", precision=precision)

    print("[3/3] running the compiled model on the validation clips", flush=True)
    builds = {p: rt3d_mlir.load(a, threads=2) for p, a in artifacts.items()}
    compiled = builds[args.precision]
    dense_model = load_model_file(os.path.join(config.work_directory, DENSE_FILE)).module.eval()
    loaded = load_model_file(pruned)
    pruned_model = loaded.module.eval()
    val = build_dataset("synthetic", train=False, **data_options)
    correct = {"dense": 0, "pruned": 0} | {p: 0 for p in builds}
    max_rel = {p: 0.0 for p in builds}
    with torch.no_grad():
        for index in range(len(val)):
            clip, label = val[index]
            x = clip.unsqueeze(0)
            reference = pruned_model(x).numpy()
            for precision, build in builds.items():
                ours = build(x.numpy())
                want = reference
                if precision == "int8":  # what an int8 build computes: the scheme
                    with simulated_int8(pruned_model, loaded.int8_scales or {}):
                        want = pruned_model(x).numpy()
                error = float(np.abs(ours - want).max() / np.abs(want).max())
                max_rel[precision] = max(max_rel[precision], error)
                correct[precision] += int(ours.argmax() == label)
            correct["pruned"] += int(reference.argmax() == label)
            correct["dense"] += int(dense_model(x).argmax() == label)
    x = val[0][0].unsqueeze(0)
    torch.set_num_threads(2)
    with torch.no_grad():
        dense_ms = _median_ms(lambda: dense_model(x), args.repeat)
        pruned_ms = _median_ms(lambda: pruned_model(x), args.repeat)
    ours_ms = _median_ms(lambda: compiled(x.numpy()), args.repeat)
    n = len(val)
    print()
    print(f"  conv FLOPs reduction         {report['flops']['reduction']:.2f}x")
    print(f"  top-1, PyTorch dense         {100 * correct['dense'] / n:.1f} %  ({n} validation clips)")
    print(f"  top-1, PyTorch pruned        {100 * correct['pruned'] / n:.1f} %")
    accuracy = report["accuracy"]
    if "int8_calibrated" in accuracy:
        print(f"  top-1, PyTorch pruned, int8  {100 * accuracy['int8_calibrated']:.1f} %  "
              "(simulated: calibrated scales)")
    if "int8_qat" in accuracy:
        print(f"  top-1, PyTorch pruned, int8  {100 * accuracy['int8_qat']:.1f} %  "
              f"(simulated: after {args.qat_epochs} quantization-aware epochs)")
    for precision in builds:
        against = "PyTorch, int8 simulated" if precision == "int8" else "PyTorch"
        print(f"  top-1, rt3d compiled {precision:6s}  {100 * correct[precision] / n:.1f} %  "
              f"(max relative difference to {against} {max_rel[precision]:.1e})")
    print(f"  latency, PyTorch dense       {dense_ms:.1f} ms  (eager, 2 threads, median of {args.repeat})")
    print(f"  latency, PyTorch pruned      {pruned_ms:.1f} ms  (same zeros, dense kernels)")
    print(
        f"  latency, rt3d compiled       {ours_ms:.1f} ms  (generated KGS kernels, {compiled.threads} "
        f"threads, median of {args.repeat}; {dense_ms / ours_ms:.1f}x PyTorch dense)"
    )
    return 0 if all(max_rel[p] <= MAX_RELATIVE_ERROR[p] for p in builds) else 1


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool("rt3d-demo", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
