"""The safe formats are not the slow ones: one model from a checkpoint, a .pt2 and a pickled .pt.

    .venv/bin/python bench/format_speed.py [--arch r2plus1d] [--threads 2] [--repeat 7]

Builds the architecture at full size with random BatchNorm statistics and
random 16x16 KGS masks keeping 1/2.6 of every conv (the stem stays dense),
saves it three ways (rt3d checkpoint, ``torch.export`` .pt2, pickled
module), compiles each in a fresh process, and times the three artifacts
and PyTorch eager in interleaved rounds on the same input (medians).
Before issue 10, batch norms stayed unfolded for .pt2 input (and for .pt
when the conv was a subclass); now they fold on the exported graph for
every format, so all three should run the same kernels at the same speed.
Prints a markdown table with the command, machine and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
import torch

CHILD = """
import json, sys, time
import rt3d_mlir
start = time.perf_counter()
rt3d_mlir.compile(sys.argv[1], output=sys.argv[2], trust_pickle=sys.argv[1].endswith(".pickle.pt"))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="r2plus1d")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    import rt3d_mlir
    from rt3d_mlir.benchmarking import interleaved_medians
    from rt3d_mlir.contracts.checkpoint import save_checkpoint
    from rt3d_mlir.models import build_model
    from rt3d_mlir.pruning import apply_random_masks
    from rt3d_mlir.pruning.flops import conv_flops, flops_reduction

    torch.manual_seed(0)
    model = build_model(args.arch).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
    first = {"c3d": "features.conv1a", "r2plus1d": "stem.0", "s3d": "stem.0"}.get(args.arch)
    apply_random_masks(model, (16, 16), 1 / 2.6, "kgs", seed=0, skip=[first] if first else None)
    x = torch.randn(1, 3, *model.input_size)
    reduction = flops_reduction(conv_flops(model, tuple(x.shape)))

    torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory(prefix="rt3d-formats-") as tmp:
        files = {
            "rt3d checkpoint": os.path.join(tmp, "model.ckpt.pt"),
            ".pt2 ExportedProgram": os.path.join(tmp, "model.pt2"),
            ".pt pickled module (--trust-pickle)": os.path.join(tmp, "model.pickle.pt"),
        }
        save_checkpoint(files["rt3d checkpoint"], args.arch, {}, model)
        torch.export.save(torch.export.export(model, (x,)), files[".pt2 ExportedProgram"])
        torch.save(model, files[".pt pickled module (--trust-pickle)"])
        compiled = {}
        for label, path in files.items():
            out = path + ".so"
            result = subprocess.run([sys.executable, "-c", CHILD, path, out], capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"compiling {label} failed: {result.stderr.strip()[-2000:]}")
            seconds = json.loads(result.stdout.strip().splitlines()[-1])["seconds"]
            compiled[label] = rt3d_mlir.load(out, threads=args.threads)
            results[label] = {"compile_s": seconds, "kernels": len(compiled[label].kernel_profile())}
        xn = x.numpy()
        with torch.no_grad():
            expected = model(x).numpy()
        for label, artifact in compiled.items():
            got = artifact(xn)
            results[label]["error"] = float(np.abs(got - expected).max() / np.abs(expected).max())
        outs = {label: np.empty(a.output_shape, np.float32) for label, a in compiled.items()}
        candidates = {"PyTorch eager (dense kernels, same zeros)": lambda: model(x)}
        for label, artifact in compiled.items():
            candidates[label] = lambda a=artifact, o=outs[label]: a(xn, out=o)
        with torch.no_grad():
            medians = interleaved_medians(candidates, args.repeat, args.warmup)

    command = "bench/format_speed.py " + " ".join(sys.argv[1:])
    print(f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"command: `{command}`; {args.threads} threads, medians of {args.repeat} interleaved calls after "
          f"{args.warmup} warm-up calls; {args.arch} full size, input {tuple(x.shape)}, random BatchNorm "
          f"statistics, 16x16 KGS at a {reduction:.2f}x conv FLOPs reduction.")
    print()
    print("| source | latency (ms) | vs PyTorch eager | compile (s) | generated kernels | max rel. error |")
    print("|---|---|---|---|---|---|")
    eager = medians["PyTorch eager (dense kernels, same zeros)"]
    print(f"| PyTorch eager | {1e3 * eager:.1f} | 1.00x | - | - | - |")
    for label, info in results.items():
        print(f"| {label} | {1e3 * medians[label]:.1f} | {eager / medians[label]:.2f}x | "
              f"{info['compile_s']:.1f} | {info['kernels']} | {info['error']:.1e} |")


if __name__ == "__main__":
    main()
