"""Schedules side by side on one model's weights: interleaved latency medians and per-layer times.

    .venv/bin/python bench/schedule_ab.py MODEL VARIANT SCHEDULE [SCHEDULE ...] [--rounds 7]

Each SCHEDULE is ``rt3d-reorder-loops`` options for every conv (as ``rt3d-compile --schedule``;
``''`` is the compiler's rules) or ``tune`` (``rt3d-compile --tune``, cache in the work directory).
MODEL is a built-in (c3d, r2plus1d, x3d_s, ...), full size (1x3x16x112x112 unless the model says
otherwise); VARIANT is ``dense`` or SCHEME:GFxGC:RATE as for ``rt3d-bench``. Builds run on 2
threads; the first schedule is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from rt3d_mlir import runtime
from rt3d_mlir.benchmarking import Variant, interleaved_medians, layer_profile, sparse_variant
from rt3d_mlir.compiler import compile_model
from rt3d_mlir.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("variant")
    parser.add_argument("schedules", nargs="+")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    variant = Variant.parse(args.variant)
    torch.manual_seed(0)
    model = build_model(args.model).eval()
    x = torch.randn(1, 3, 16, 112, 112)
    pruned = sparse_variant(model, variant, seed=0)
    work = tempfile.mkdtemp(prefix="rt3d-schedule-ab-")
    builds = {}
    for i, schedule in enumerate(args.schedules):
        path = os.path.join(work, f"build{i}.so")
        start = time.perf_counter()
        tune = schedule == "tune"
        compile_model(
            pruned, x, output=path, group_shape=variant.group_shape, schedule="" if tune else schedule,
            tune=tune, tune_cache=os.path.join(work, "schedules.json"),
        )
        print(f"compiled '{schedule}' in {time.perf_counter() - start:.1f} s", flush=True)
        builds[schedule] = runtime.load(path, threads=args.threads)
    xn = x.numpy()
    outs = {s: np.empty(b.output_shape, np.float32) for s, b in builds.items()}
    medians = interleaved_medians(
        {s: (lambda b=b, o=outs[s]: b(xn, out=o)) for s, b in builds.items()}, args.rounds, 2
    )
    base = args.schedules[0]
    for s in args.schedules:
        diff = float(np.abs(outs[s] - outs[base]).max())
        print(f"'{s}': {medians[s] * 1e3:.1f} ms ({medians[base] / medians[s]:.3f}x of '{base}'), "
              f"max abs diff {diff:.1e}")
    profiles = [layer_profile(b, xn, outs[s], 5, args.threads) for s, b in builds.items()]
    print("conv layers over 2 ms: ms (GFLOP/s on kept FLOPs), one column per schedule")
    for rows in zip(*profiles, strict=True):
        if rows[0]["kernel"].startswith("rt3d_conv") and rows[0]["ms"] > 2:
            cells = "  ".join(f"{r['ms']:7.2f} ({r['gflops']:4.0f})" for r in rows)
            print(f"  {rows[0]['kernel']:22s} {rows[0]['dense_gflop']:5.2f} dense GFLOP  {cells}")


if __name__ == "__main__":
    main()
