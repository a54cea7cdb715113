"""NEON multiply-adds per inference of the AArch64 build, counted from the generated schedule.

    .venv/bin/python bench/aarch64_fma_counts.py [--rates 2.6] [--groups 16x16,4x4]

No AArch64 hardware is here and Debian's qemu 7.2 ships no instruction
counting plugin, so this counts statically what the generated code
executes: the model is imported and run through the AArch64 pass pipeline
up to ``rt3d-reorder-loops`` (the same passes and target parameters the
AArch64 build uses), and for every ``rt3d.packed_conv3d`` the number of
``fmla`` (4 x f32) instructions per inference follows from the packed
tables and the schedule:

* filters in the lanes (a block of 4 filters per vector): one ``fmla``
  per kept entry, channel and output position of each block;
* output columns in the lanes: one ``fmla`` per kept entry, channel,
  filter and group of 4 columns (rounded up per row: ``ceil(W/4)``).

The FC layers (packed matrix-vector, 4 lanes) add ``M*K*ceil(N/4)``.
The Cortex-A76 estimate divides by its NEON throughput: two 128-bit FMA
pipes, 2 ``fmla`` per cycle at 2.84 GHz (Snapdragon 855 prime core), i.e.
a lower bound that assumes the FMA pipes are never starved.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from torch_mlir import ir

from rt3d_mlir.backend.cpu import sparse_conv_pipeline
from rt3d_mlir.dialect import packed_conv3d_params
from rt3d_mlir.frontend import import_to_linalg
from rt3d_mlir.ir_matchers import constant_array, ops_named
from rt3d_mlir.models import build_model
from rt3d_mlir.passes import run_pipeline
from rt3d_mlir.pruning import apply_random_masks
from rt3d_mlir.runtime.emulated import CORE_MODEL

A76_GHZ = CORE_MODEL["ghz"]
A76_FMLA_PER_CYCLE = CORE_MODEL["multiply_adds_per_cycle"]


def fmla_counts(
    model: torch.nn.Module, x: torch.Tensor, group_shape, schedule: str = ""
) -> tuple[int, int, int]:
    """(conv fmla, FC fmla, kept conv MACs) per inference of the AArch64 build."""
    module = import_to_linalg(model, x)
    with module.context:
        steps = sparse_conv_pipeline(group_shape, target="aarch64", schedule=schedule)
        steps = steps.split(", rt3d-vectorize{")[0]  # packed convs, before their kernels
        run_pipeline(module, f"builtin.module({steps})")
        conv = kept = 0
        for op in ops_named(module.operation, "rt3d.packed_conv3d"):
            p = packed_conv3d_params(op)
            out = ir.RankedTensorType(op.results[0].type).shape
            n, d, h, w = out[0], out[2], out[3], out[4]
            starts = constant_array(op.operands[3])
            entries = int(starts[-1])
            weights = constant_array(op.operands[1])
            kept += int(np.count_nonzero(weights)) * n * d * h * w
            if p.vector_dim == "width":
                lanes = p.vector_lanes or 4
                conv += entries * p.channel_unroll * p.block_size * n * d * h * math.ceil(w / lanes)
            else:
                conv += entries * p.channel_unroll * n * d * h * w
        fc = 0
        for op in ops_named(module.operation, "linalg.matmul"):
            a, b = (ir.RankedTensorType(v.type).shape for v in op.operands[:2])
            fc += a[0] * a[1] * math.ceil(b[1] / 4)
    return conv, fc, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="2.6")
    parser.add_argument("--groups", default="16x16,4x4")
    args = parser.parse_args()
    torch.manual_seed(0)
    dense = build_model("c3d").eval()
    x = torch.zeros(1, 3, 16, 112, 112)
    rows = [("dense", dense, None)]
    for rate in (float(r) for r in args.rates.split(",")):
        for text in args.groups.split(","):
            group = tuple(int(v) for v in text.split("x"))
            model = build_model("c3d").eval()
            model.load_state_dict(dense.state_dict())
            apply_random_masks(model, group, 1 / rate, "kgs", seed=0)
            rows.append((f"KGS {text} {rate:g}x", model, group))
    print(
        "| C3D build (AArch64, cortex-a76) | conv fmla / inference | FC fmla | kept conv MACs | "
        "lane use (MACs / 4 fmla) | vs dense (conv fmla) | A76 lower bound (ms, 1 core) |"
    )
    print("|---|---|---|---|---|---|---|")
    base = None
    for label, model, group in rows:
        conv, fc, kept = fmla_counts(model, x, group)
        base = base or conv
        ms = (conv + fc) / (A76_FMLA_PER_CYCLE * A76_GHZ * 1e9) * 1e3
        print(
            f"| {label} | {conv / 1e9:.2f} G | {fc / 1e6:.1f} M | {kept / 1e9:.2f} G | "
            f"{kept / (4 * conv):.0%} | {base / conv:.2f}x | {ms:.0f} |"
        )


if __name__ == "__main__":
    main()
