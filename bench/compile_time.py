"""Compile time and peak memory of full-size models (import included), per model and file format.

    .venv/bin/python bench/compile_time.py [--repeat 3] [--models c3d,x3d] [--formats checkpoint,pt2]

Each compile runs in a fresh subprocess (``rt3d_mlir.benchmarking.compile_in_subprocess``:
peak RSS is the compile's own); the model file is written first, and that is
not timed. Every model gets random 4x4 KGS masks keeping 1/2.6 of each conv
(the first conv too) and its own input size. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile

import torch
from tqdm import tqdm

# The input each model is compiled for (N, C, D, H, W).
INPUTS = {
    "c3d": (1, 3, 16, 112, 112),
    "r2plus1d": (1, 3, 16, 112, 112),
    "s3d": (1, 3, 16, 224, 224),
    "x3d": (1, 3, 13, 160, 160),  # X3D-S
    "tv:r3d_18": (1, 3, 16, 112, 112),
    "tv:mc3_18": (1, 3, 16, 112, 112),
    "tv:r2plus1d_18": (1, 3, 16, 112, 112),
    "tv:s3d": (1, 3, 13, 209, 209),  # the smallest clip its 2x7x7 average pool takes
}


def main() -> None:
    from rt3d_mlir.benchmarking import compile_in_subprocess
    from rt3d_mlir.models import build_model
    from rt3d_mlir.pruning import apply_random_masks

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default=",".join(INPUTS))
    parser.add_argument("--formats", default="checkpoint")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"python {platform.python_version()}")
    print("| model | input | format | compile (s), median | runs | peak RSS (MiB) | artifact (MB) |")
    print("|---|---|---|---|---|---|---|")
    jobs = [(arch, fmt) for arch in args.models.split(",") for fmt in args.formats.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for arch, fmt in tqdm(jobs, desc="compiling", leave=False):
            shape = INPUTS[arch]
            kwargs = {"num_classes": 400, "input_size": list(shape[2:])}
            torch.manual_seed(0)
            model = build_model(arch, **kwargs).eval()
            apply_random_masks(model, (4, 4), 1 / 2.6, "kgs", seed=0)
            x = torch.randn(*shape)
            runs = []
            for _ in range(args.repeat):
                name = f"{arch.replace(':', '-')}-{fmt}"
                out, seconds, rss = compile_in_subprocess(model, arch, kwargs, None, tmp, name, fmt, x)
                runs.append((seconds, rss))
            seconds = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            size = os.path.getsize(out) / 1e6
            dims = "x".join(str(d) for d in shape[2:])
            tqdm.write(f"| {arch} | {dims} | {fmt} | {seconds:.1f} | {len(runs)} | {rss:.0f} | {size:.0f} |")


if __name__ == "__main__":
    main()
