"""A wide plane's conv as "width" or "filters" kernels, fp32 and bf16, timed interleaved.

    .venv/bin/python bench/wide_plane_vector_dim.py [--width 64] [--height 32] [--frames 8] [--rounds 9]

Three 3x3x3 convs (3 -> 64 -> 64 -> 64 channels, ReLUs between) on a plane of ``--width`` columns:
with 64 or more columns, a multiple of the vector, the schedule rules (``rt3d-reorder-loops``)
give the unpooled convs "width" kernels in fp32 builds; bf16 builds keep them "filters" (only those
read the 16-bit blocked activations, and on AMX make tile products). Each build is compiled with the
rules and with ``vector-dim=filters`` forced, and all are timed in one interleaved run on 2
threads (medians), with the max relative error against PyTorch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn

from rt3d_mlir import runtime
from rt3d_mlir.compiler import compile_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=32)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv3d(64, 64, 3, padding=1), nn.ReLU(),
        nn.Conv3d(64, 64, 3, padding=1),
    ).eval()
    x = torch.randn(1, 3, args.frames, args.height, args.width)
    builds = {
        "fp32, rules": {},
        "fp32, filters": {"schedule": "vector-dim=filters"},
        "bf16, rules": {"precision": "bf16"},
        "bf16, filters": {"precision": "bf16", "schedule": "vector-dim=filters"},
    }
    with torch.no_grad():
        want = model(x).numpy()
    with tempfile.TemporaryDirectory(prefix="rt3d-wide-plane-") as tmp:
        loaded = {}
        for i, (name, options) in enumerate(builds.items()):
            path = f"{tmp}/{i}.so"
            compile_model(model, x, output=path, **options)
            loaded[name] = runtime.load(path, threads=2)
        xs = x.numpy()
        times: dict[str, list[float]] = {name: [] for name in loaded}
        for compiled in loaded.values():
            compiled(xs)  # warm-up
        for _ in range(args.rounds):
            for name, compiled in loaded.items():
                start = time.perf_counter()
                compiled(xs)
                times[name].append(time.perf_counter() - start)
        print(f"input 1x3x{args.frames}x{args.height}x{args.width}, 2 threads, median of {args.rounds}")
        print("| build | ms | max rel. error vs torch |\n|---|---|---|")
        for name, compiled in loaded.items():
            error = float(abs(compiled(xs) - want).max() / abs(want).max())
            print(f"| {name} | {1e3 * statistics.median(times[name]):.1f} | {error:.1e} |")


if __name__ == "__main__":
    main()
