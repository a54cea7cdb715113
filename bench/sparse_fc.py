"""C3D with its fully connected layers block-pruned: weights, artifact size and latency, one run.

    .venv/bin/python bench/sparse_fc.py [--rounds 7] [--threads 2] [--block 16x16]

Builds full-size C3D (random weights, 1x3x16x112x112, fp32, host) five ways: dense; fc6 and fc7
block-pruned (``--block`` rows x columns, whole columns of a block) to 2.6x and 4x; the convs
KGS 16x16 at 2.6x (random masks, as ``rt3d-bench``) with dense FC layers, and with fc6/fc7 at
4x. For each: the weights kept, the artifact's size, the latency (median of interleaved
rounds), and fc6/fc7's kernel time and the bytes they stream per second, against the machine's
memory bandwidth measured in the same run (``rt3d_mlir.benchmarking.memory_bandwidth``).
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile

import numpy as np
import torch
from tqdm import tqdm

from rt3d_mlir import runtime
from rt3d_mlir.benchmarking import interleaved_medians, layer_profile, memory_bandwidth
from rt3d_mlir.compiler import compile_model
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning import apply_random_masks
from rt3d_mlir.pruning.hard_prune import hard_prune
from rt3d_mlir.pruning.masking import state_dict_without_masks
from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.sparsity import parse_group_shape

FC = ("classifier.fc6", "classifier.fc7")


def variant(dense: torch.nn.Module, conv_rate: float | None, fc_rate: float | None, block) -> torch.nn.Module:
    model = copy.deepcopy(dense)
    if conv_rate:
        apply_random_masks(model, (16, 16), 1 / conv_rate, "kgs", seed=0, skip=("features.conv1a",))
    if fc_rate:
        hard_prune(model, SparsityScheme("block", block), {name: fc_rate for name in FC})
        fresh = build_model("c3d").eval()
        fresh.load_state_dict(state_dict_without_masks(model))
        model = fresh
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--block", default="16x16")
    args = parser.parse_args()
    block = parse_group_shape(args.block)
    torch.manual_seed(0)
    dense = build_model("c3d").eval()
    x = torch.randn(1, 3, 16, 112, 112)
    builds = {
        "dense": (None, None),
        f"fc6/fc7 block {args.block} 2.6x": (None, 2.6),
        f"fc6/fc7 block {args.block} 4x": (None, 4.0),
        "convs KGS 16x16 2.6x": (2.6, None),
        f"convs KGS 2.6x, fc6/fc7 block {args.block} 4x": (2.6, 4.0),
    }
    loaded, rows = {}, {}
    with tempfile.TemporaryDirectory(prefix="rt3d-sparse-fc-") as tmp:
        for i, (label, (conv_rate, fc_rate)) in enumerate(tqdm(builds.items(), desc="compiling")):
            model = variant(dense, conv_rate, fc_rate, block)
            path = os.path.join(tmp, f"{i}.so")
            compile_model(model, x, output=path, group_shape=(16, 16) if conv_rate else None)
            with torch.no_grad():
                want = model(x).numpy()
            compiled = runtime.load(path, threads=args.threads)
            got = compiled(x.numpy())
            fc_weights = {name: model.get_submodule(name).weight for name in FC}
            rows[label] = {
                "kept": sum(int((p != 0).sum()) for p in model.parameters()),
                "fc_kept": sum(int((w != 0).sum()) for w in fc_weights.values()),
                "fc_dense": sum(w.numel() for w in fc_weights.values()),
                "size_mb": os.path.getsize(path) / 1e6,
                "error": float(np.abs(got - want).max() / np.abs(want).max()),
            }
            loaded[label] = compiled
        bandwidth = memory_bandwidth(args.threads)
        xs = x.numpy()
        outs = {label: np.empty(c.output_shape, np.float32) for label, c in loaded.items()}
        medians = interleaved_medians(
            {label: (lambda c=c, o=outs[label]: c(xs, out=o)) for label, c in loaded.items()}, args.rounds, 2
        )
        for label, compiled in loaded.items():
            profile = layer_profile(compiled, xs, outs[label], 3, args.threads)
            # fc6 and fc7: the two largest kernels by bytes after the convs (dense: matmuls; pruned:
            # 1x1x1 conv kernels)
            tail = [r for r in profile if r["kernel"].startswith(("rt3d_matmul", "rt3d_conv"))][-3:-1]
            rows[label]["fc_ms"] = sum(r["ms"] for r in tail)
            rows[label]["fc_gbps"] = sum(r["mbytes"] for r in tail) / 1e3 / (rows[label]["fc_ms"] / 1e3)
            rows[label]["latency_ms"] = medians[label] * 1e3
    print(f"memory bandwidth ({args.threads} threads): copy {bandwidth['copy_gbps']:.1f} GB/s, "
          f"triad {bandwidth['triad_gbps']:.1f} GB/s\n")
    print("| build | weights kept | fc6+fc7 kept | artifact (MB) | latency (ms) | fc6+fc7 (ms) | "
          "fc6+fc7 GB/s | max rel. error |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        fc = f"{r['fc_kept'] / 1e6:.1f} of {r['fc_dense'] / 1e6:.1f} M"
        print(f"| {label} | {r['kept'] / 1e6:.1f} M | {fc} | {r['size_mb']:.0f} | {r['latency_ms']:.1f} | "
              f"{r['fc_ms']:.2f} | {r['fc_gbps']:.1f} | {r['error']:.1e} |")


if __name__ == "__main__":
    main()
