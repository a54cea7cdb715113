"""Time every artifact in a directory in one interleaved run (2 threads): medians and conv time.

    .venv/bin/python bench/ab_time.py DIR [ROUNDS]

For artifacts named old-X / new-X (``bench/ab_build.py``) it also prints the largest relative
difference between the two outputs on the same input.
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np
import torch

from rt3d_mlir import runtime
from rt3d_mlir.benchmarking import interleaved_medians, layer_profile


def main() -> None:
    paths = sorted(glob.glob(os.path.join(sys.argv[1], "*.so")))
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    builds = {os.path.basename(p)[:-3]: runtime.load(p, threads=2) for p in paths}
    inputs = {}
    for k, build in builds.items():  # one input per shape, the same for every build of it
        torch.manual_seed(0)
        inputs[k] = torch.randn(build.input_shape).numpy()
    outs = {k: np.empty(b.output_shape, np.float32) for k, b in builds.items()}
    medians = interleaved_medians(
        {k: (lambda b=b, o=outs[k], x=inputs[k]: b(x, out=o)) for k, b in builds.items()}, rounds, 2
    )
    for k, build in builds.items():
        other = k.replace("new-", "old-", 1) if k.startswith("new-") else k.replace("old-", "new-", 1)
        diff = float("nan")
        if other in outs:
            diff = float(np.abs(outs[k] - outs[other]).max() / np.abs(outs[other]).max())
        profile = layer_profile(build, inputs[k], outs[k], 3, 2)
        conv = sum(r["ms"] for r in profile if r["kernel"].startswith("rt3d_conv"))
        total = sum(r["ms"] for r in profile)
        print(
            f"{k:40s} {medians[k] * 1e3:8.1f} ms   conv {conv:7.1f} ms of {total:7.1f} (profile)  "
            f"rel diff vs other {diff:.1e}"
        )


if __name__ == "__main__":
    main()
