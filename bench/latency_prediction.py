"""How well the measured latency table predicts a model pruned to a latency target.

    .venv/bin/python bench/latency_prediction.py [--models c3d,r2plus1d] [--reductions 1.5,2,3]
        [--group-shape 4x4] [--threads 2] [--rounds 7] [--target host|aarch64]
        [--input-size 16,112,112] [--width 1.0]

For each model (full size by default; random weights; the first conv kept dense, as rt3d-prune does): measure
its latency table on the host (``rt3d_mlir.latency.measure_table``, cached), and for each latency
reduction let ``pruning.latency_budget.allocate`` choose per-layer keep fractions, hard-prune the
model to them, build it and time it against the dense build in the same interleaved rounds
(``measure_model``). Prints a markdown table: the target, the prediction (scaled by how fast the
dense build runs now against when the table was measured: the VM drifts), the measurement, their
difference, and the keep fractions chosen. The table's own fit (how well its parts add up to
each uniform build) is printed per model. ``--target aarch64``: the builds are counted under qemu
on the Cortex-A76 model (``rt3d_mlir.runtime.emulated``), not timed.
"""

from __future__ import annotations

import argparse
import copy

import torch

from rt3d_mlir.latency import measure_model, measure_table
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning.hard_prune import hard_prune
from rt3d_mlir.pruning.latency_budget import allocate, compiled_group_shape, shape_text, with_shape
from rt3d_mlir.pruning.schemes import PruningConfig, SparsityScheme, select_layers
from rt3d_mlir.sparsity import parse_group_shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="c3d,r2plus1d")
    parser.add_argument("--reductions", default="1.5,2,3")
    parser.add_argument("--group-shape", default="4x4")
    parser.add_argument("--group-shapes", default="", help="other group shapes a layer may take, e.g. 16x16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--target", default="host", choices=("host", "spirv", "aarch64"))
    parser.add_argument("--input-size", default="16,112,112", help="frames,height,width")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    args = parser.parse_args()
    size = [int(v) for v in args.input_size.split(",")]
    input_shape = (1, 3, *size)
    scheme = SparsityScheme("kgs", parse_group_shape(args.group_shape))
    rows = []
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = build_model(name, width=args.width, input_size=size).eval()
        pruned, _ = select_layers(model, PruningConfig(scheme=scheme, flops_reduction=2.0))
        others = [parse_group_shape(text) for text in args.group_shapes.split(",") if text.strip()]
        table = measure_table(model, input_shape, scheme, pruned, target=args.target, threads=args.threads,
                              rounds=args.rounds, group_shapes=others)
        print(f"{name}: dense {table.dense_seconds * 1e3:.1f} ms, fixed {table.fixed_seconds * 1e3:.1f} ms, "
              f"fit error of the uniform builds {table.machine['fit_error']:.1%}", flush=True)
        for text in args.reductions.split(","):
            target = table.dense_seconds / float(text)
            allocation = allocate(model, scheme, table, pruned, target)
            candidate = copy.deepcopy(model)
            for shape in set(allocation.group_shapes.values()):
                hard_prune(candidate, with_shape(scheme, shape), {
                    n: 1.0 / k for n, k in allocation.keeps.items() if allocation.group_shapes[n] == shape
                })
            used = [s for n, s in allocation.group_shapes.items() if allocation.keeps[n] < 1]
            compiled = compiled_group_shape(scheme, used)
            measured = measure_model(candidate, input_shape, pruned, args.target, args.threads, compiled,
                                     baseline=model, rounds=args.rounds)
            speed = measured["baseline_seconds"] / table.dense_seconds
            predicted = allocation.predicted_seconds * speed
            error = measured["seconds"] / predicted - 1.0
            keeps = " ".join(
                f"{k:.2f}" + (f" ({shape_text(allocation.group_shapes[n])})" if others and k < 1 else "")
                for n, k in allocation.keeps.items()
            )
            rows.append(
                f"| {name} | {text}x | {target * speed * 1e3:.1f} | {predicted * 1e3:.1f} | "
                f"{measured['seconds'] * 1e3:.1f} | {error:+.1%} | "
                f"{measured['baseline_seconds'] * 1e3:.1f} | {keeps} |"
            )
            print(rows[-1], flush=True)
    print("| model | latency reduction | target (ms) | predicted (ms) | measured (ms) | error "
          "| dense now (ms) | keep fractions |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
