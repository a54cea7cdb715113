"""Compile time and peak memory of full-size models (import included).

    .venv/bin/python bench/compile_time.py [--repeat 3]

Each compile runs in a fresh subprocess (so peak RSS is the compile's own);
the model is saved to a temporary rt3d checkpoint first and that save is not timed.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys, time
import rt3d_mlir
start = time.perf_counter()
rt3d_mlir.compile(sys.argv[1], output=sys.argv[2])
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def save_model(arch: str, directory: str) -> str:
    from rt3d_mlir.contracts.checkpoint import save_checkpoint
    from rt3d_mlir.models import build_model
    from rt3d_mlir.pruning import apply_random_masks

    model = build_model(arch).eval()
    first = {"c3d": "features.conv1a", "r2plus1d": "stem.0"}[arch]
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=0, skip=[first])
    path = os.path.join(directory, f"{arch}.pt")
    save_checkpoint(path, arch, {}, model)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default="c3d,r2plus1d")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"python {platform.python_version()}")
    print("| model | compile wall time, median (s) | runs | peak RSS (MiB) | artifact (MB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.models.split(","):
            path = save_model(arch, tmp)
            out = os.path.join(tmp, f"{arch}.so")
            runs = []
            for _ in range(args.repeat):
                result = subprocess.run([sys.executable, "-c", CHILD, path, out],
                                        capture_output=True, text=True, check=True)
                runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
            seconds = statistics.median(r["seconds"] for r in runs)
            rss = max(r["peak_rss_mib"] for r in runs)
            size = os.path.getsize(out) / 1e6
            print(f"| {arch} (full size, KGS 4x4 random masks) | {seconds:.1f} | {len(runs)} | "
                  f"{rss:.0f} | {size:.0f} |")


if __name__ == "__main__":
    main()
