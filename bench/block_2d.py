"""Block-pruned 2D nets against their dense builds and PyTorch, one interleaved run.

    .venv/bin/python bench/block_2d.py [--rounds 7] [--threads 2] [--block 16x16] [--rates 2.6,4]

Builds the YOLO-style detector (width 1, 256x256, 5 classes) and the 2D U-Net (width 1, depth 3,
one-channel 256x256 slices, 3 classes) with random weights, dense and block-pruned
(``hard_prune`` with ``--block`` rows x columns, whole columns; every conv but the first and the
heads, one rate per layer) to each ``--rates`` FLOPs reduction of the pruned layers. For each
build: the conv FLOPs reduction on the weights, our latency and PyTorch's (eager, same threads,
same zeroed weights), the speedup over our dense build, and that speedup as a fraction of the
FLOPs reduction (the issue's target: at least 0.8).
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from rt3d_mlir import runtime
from rt3d_mlir.benchmarking import interleaved_medians
from rt3d_mlir.compiler import compile_model
from rt3d_mlir.models.unet import UNet2d
from rt3d_mlir.models.yolo import TinyYolo
from rt3d_mlir.pruning.flops import conv_flops, flops_reduction
from rt3d_mlir.pruning.hard_prune import hard_prune
from rt3d_mlir.pruning.masking import state_dict_without_masks
from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.sparsity import parse_group_shape


def nets() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    return {
        "yolo": (TinyYolo(num_classes=5, width=1.0, input_size=(256, 256)).eval(),
                 torch.randn(1, 3, 256, 256)),
        "unet": (UNet2d(num_classes=3, width=1.0, depth=3).eval(), torch.randn(1, 1, 256, 256)),
    }


def pruned(model: nn.Module, block: tuple[int, int], rate: float) -> nn.Module:
    """A copy with every conv but the first and the 1x1 heads (fewer than 16 filters) block-pruned."""
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.out_channels >= 16]
    copied = copy.deepcopy(model)
    hard_prune(copied, SparsityScheme("block", block), {name: rate for name in convs[1:]})
    fresh = copy.deepcopy(model)
    fresh.load_state_dict(state_dict_without_masks(copied))
    return fresh.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--block", default="16x16")
    parser.add_argument("--rates", default="2.6,4")
    args = parser.parse_args()
    block = parse_group_shape(args.block)
    rates = [float(r) for r in args.rates.split(",")]
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rt3d-block-2d-") as tmp:
        for name, (dense, x) in nets().items():
            builds = {"dense": dense}
            builds.update({f"block {args.block} {r:g}x": pruned(dense, block, r) for r in rates})
            calls, info = {}, {}
            for label, model in tqdm(builds.items(), desc=f"{name}: compiling"):
                path = os.path.join(tmp, f"{name}-{len(calls)}.so")
                compile_model(model, x, output=path, group_shape=None if label == "dense" else (block[0], 1))
                compiled = runtime.load(path, threads=args.threads)
                out = np.empty(compiled.output_shape, np.float32)
                with torch.no_grad():
                    want = model(x).numpy()
                error = float(np.abs(compiled(x.numpy(), out=out) - want).max() / np.abs(want).max())
                reduction = flops_reduction(conv_flops(model, tuple(x.shape)))
                info[label] = (reduction, error)
                array = x.numpy()
                calls[f"rt3d {label}"] = lambda c=compiled, o=out, a=array: c(a, out=o)

                def eager(m=model, a=x):
                    with torch.no_grad():
                        m(a)

                calls[f"torch {label}"] = eager
            medians = interleaved_medians(calls, args.rounds, 2)
            ours_dense = medians["rt3d dense"]
            for label, (reduction, error) in info.items():
                speedup = ours_dense / medians[f"rt3d {label}"]
                rows.append(
                    f"| {name} | {label} | {reduction:.2f}x | {medians[f'rt3d {label}'] * 1e3:.1f} | "
                    f"{medians[f'torch {label}'] * 1e3:.1f} | {speedup:.2f}x | "
                    f"{speedup / reduction:.2f} | {error:.1e} |"
                )
    print("| net | build | conv FLOPs reduction | rt3d (ms) | PyTorch (ms) | speedup vs our dense | "
          "/ FLOPs reduction | max rel. error |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
