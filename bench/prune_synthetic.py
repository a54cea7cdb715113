"""Accuracy against FLOPs reduction on the synthetic data set, KGS vs vanilla.

    .venv/bin/python bench/prune_synthetic.py [--rates 2,2.6,4] [--out bench/results]

Trains one dense small C3D-BN (AdamW, one-cycle schedule; the recipe that
learns the synthetic set in minutes), then prunes it with each scheme to each
whole-model conv FLOPs reduction (reweighted training, hard pruning, masked
retraining), all from the same dense weights and with the same epochs.
Writes a JSON file with every run's report, a PNG plot of top-1 accuracy
against FLOPs reduction, a PNG picture of one layer's kernel-group masks,
and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from rt3d_mlir.pruning.job import DENSE_FILE, PruneJob, PruneJobConfig
from rt3d_mlir.pruning.schemes import SparsityScheme


def run_job(config: PruneJobConfig) -> dict:
    return PruneJob(config, log=lambda msg: print(msg, flush=True)).run()


def plot_accuracy(results: list[dict], dense_accuracy: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for scheme, marker in (("kgs", "o"), ("vanilla", "s")):
        runs = sorted((r for r in results if r["scheme"] == scheme), key=lambda r: r["flops"]["reduction"])
        ax.plot([r["flops"]["reduction"] for r in runs],
                [100 * r["accuracy"]["final"] for r in runs], marker=marker, label=scheme.upper()
                if scheme == "kgs" else "vanilla structured")
    ax.axhline(100 * dense_accuracy, color="gray", linestyle="--", label="dense")
    ax.set_xlabel("conv FLOPs reduction (dense / kept)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("small C3D on the synthetic motion data set")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_masks(checkpoint: str, layer: str, group_shape: tuple[int, int], path: str) -> None:
    """One layer's KGS masks: a cell per kernel group, its Kd slices side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from rt3d_mlir.sparsity import kernel_group_masks

    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    weight = state[layer + ".weight"].numpy()
    masks = kernel_group_masks(weight, group_shape)  # [nGF, nGC, Kd, Kh, Kw]
    n_gf, n_gc, kd, kh, kw = masks.shape
    # Tile: rows = filter groups x Kh, columns = channel groups x (Kd x Kw), one pixel gap.
    cell_h, cell_w = kh + 1, kd * (kw + 1) + 1
    image = np.full((n_gf * cell_h, n_gc * cell_w), 0.5)
    for i in range(n_gf):
        for j in range(n_gc):
            for d in range(kd):
                y, x = i * cell_h, j * cell_w + d * (kw + 1)
                image[y:y + kh, x:x + kw] = masks[i, j, d]
    fig, ax = plt.subplots(figsize=(min(14, 2 + n_gc * 0.45), min(14, 2 + n_gf * 0.2)), dpi=120)
    ax.imshow(image, cmap="gray_r", interpolation="nearest", aspect="auto")
    ax.set_title(f"{layer}: kept positions (black) per {group_shape[0]}x{group_shape[1]} kernel group; "
                 f"{masks.mean():.0%} kept")
    ax.set_xlabel(f"channel groups ({n_gc}), each showing kd = 0..{kd - 1} as {kh}x{kw} slices")
    ax.set_ylabel(f"filter groups ({n_gf})")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="2,2.6,4")
    parser.add_argument("--schemes", default="kgs,vanilla")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--group-shape", default="4x4")
    parser.add_argument("--dense-epochs", type=int, default=12)
    parser.add_argument("--reweight-epochs", type=int, default=6)
    parser.add_argument("--retrain-epochs", type=int, default=6)
    parser.add_argument("--penalty", type=float, default=1e-4)
    parser.add_argument("--distill", action="store_true")
    parser.add_argument("--data-option", action="append", default=["classes=4"])
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--retrain-lr", type=float, default=2e-4)
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--figures", default="bench/figures")
    args = parser.parse_args()

    from rt3d_mlir.sparsity import parse_group_shape
    from rt3d_mlir.tools.prune import _data_options

    group_shape = parse_group_shape(args.group_shape)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.figures, exist_ok=True)
    work = os.path.join(args.out, "work")
    common = dict(
        arch="c3d", data="synthetic",
        model_kwargs={"width": args.width, "batch_norm": True, "dropout": 0.2},
        data_options=_data_options(args.data_option), reweight_epochs=args.reweight_epochs,
        retrain_epochs=args.retrain_epochs, penalty=args.penalty, distill=args.distill,
        optimizer="adamw", schedule="onecycle", lr=args.lr, retrain_lr=args.retrain_lr,
        weight_decay=1e-4, batch_size=32,
    )
    started = time.time()
    results = []
    dense_checkpoint = None
    for scheme in args.schemes.split(","):
        for rate in (float(r) for r in args.rates.split(",")):
            name = f"c3d_{scheme}_{rate:g}x"
            config = PruneJobConfig(
                output=os.path.join(args.out, name + ".pt"),
                work_dir=os.path.join(work, name),
                scheme=SparsityScheme(scheme, group_shape),
                flops_reduction=rate,
                dense_checkpoint=dense_checkpoint,
                dense_epochs=args.dense_epochs,
                **common,
            )
            report = run_job(config)
            if dense_checkpoint is None:
                dense_checkpoint = os.path.join(config.work_directory, DENSE_FILE)
                dense_accuracy = report["accuracy"]["dense"]
            report["accuracy"]["dense"] = dense_accuracy
            results.append(report)
    with open(os.path.join(args.out, "prune_synthetic.json"), "w") as f:
        json.dump({"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                   "seconds": round(time.time() - started), "runs": results}, f, indent=2)
    plot_accuracy(results, dense_accuracy, os.path.join(args.figures, "accuracy_vs_flops.png"))
    kgs_runs = [r for r in results if r["scheme"] == "kgs"]
    if kgs_runs:
        chosen = min(kgs_runs, key=lambda r: abs(r["flops"]["reduction"] - 2.6))
        name = f"c3d_kgs_{chosen['target_flops_reduction']:g}x.pt"
        plot_masks(os.path.join(args.out, name), "features.conv3b", group_shape,
                   os.path.join(args.figures, "kgs_masks_conv3b.png"))
    print(f"\ndense top-1: {100 * dense_accuracy:.1f} %  (total {time.time() - started:.0f} s)")
    print("| scheme | target | achieved FLOPs reduction | top-1 after hard prune | final top-1 | "
          "change vs dense (points) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        final = 100 * r["accuracy"]["final"]
        print(f"| {r['scheme']} | {r['target_flops_reduction']:g}x | {r['flops']['reduction']:.2f}x | "
              f"{100 * r['accuracy']['after_hard_prune']:.1f} % | {final:.1f} % | "
              f"{final - 100 * dense_accuracy:+.1f} |")


if __name__ == "__main__":
    main()
