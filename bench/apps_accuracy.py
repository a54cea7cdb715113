"""Accuracy of the 2D applications after block-based pruning, on the built-in sets (resumable).

    .venv/bin/python bench/apps_accuracy.py --out-dir DIR [--nets yolo,unet] [--rates 2.6,4]
        [--dense-epochs 12] [--reweight-epochs 6] [--retrain-epochs 8] [--width 0.5]
        [--block 16x16] [--penalty 1e-4] [--dense-checkpoint FILE]

For each net it trains the dense model once (the first rate's job; the others start from its dense
checkpoint), then prunes it with ``--block`` blocks (16x16; whole columns; every conv but the first and the
output convs) to each
FLOPs reduction with the reweighted penalty, hard pruning and masked retraining
(``rt3d_mlir.pruning.job``, the job ``rt3d-prune`` runs):

- ``yolo``: the YOLO-style detector on the built-in detection images (64x64, 8192 training and 256
  evaluation images; with 2048 it memorized them: train-set mAP 0.66 against 0.07), mAP@0.5;
- ``unet``: the 2D U-Net on the built-in volumes' slices (64 training and 16 evaluation volumes of
  16x64x64), Dice of the lesions and vessels.

Every job checkpoints each epoch in ``DIR``; running the command again resumes where it stopped.
Prints a markdown table: the metric dense, after hard pruning and after retraining, and the
FLOPs reduction reached.
"""

from __future__ import annotations

import argparse
import os

from rt3d_mlir.pruning.job import PruneJob, PruneJobConfig
from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.sparsity import parse_group_shape

DATA = {
    "yolo": "detection:samples=8192:val_samples=256:size=64",
    "unet": "volumes:samples=64:val_samples=16:depth=16:size=64",
}
# the output convs stay dense with the first conv: pruned, the U-Net's 8-channel head kept 3 input
# channels and its retraining settled on all background (Dice 0 at 2.6x and 4x)
HEADS = {"yolo": ("head8", "head16"), "unet": ("head",)}
FIRST = {"yolo": "stem.0", "unet": "down.0.0"}
QUICK = {  # --quick: a smoke test of the script, not a measurement
    "yolo": "detection:samples=32:val_samples=16:size=32",
    "unet": "volumes:samples=2:val_samples=1:depth=8:size=32",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--nets", default="yolo,unet")
    parser.add_argument("--rates", default="2.6,4")
    parser.add_argument("--dense-epochs", type=int, default=12)
    parser.add_argument("--reweight-epochs", type=int, default=6)
    parser.add_argument("--retrain-epochs", type=int, default=8)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--block", default="16x16", help="block rows x columns")
    parser.add_argument("--penalty", type=float, default=1e-4, help="reweighted penalty coefficient")
    parser.add_argument("--dense-checkpoint", default=None,
                        help="start every rate from this dense checkpoint (one net) instead of training it")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sets: check the script runs")
    args = parser.parse_args()
    data = QUICK if args.quick else DATA
    rows = []
    for net in args.nets.split(","):
        dense_checkpoint, dense_metric = args.dense_checkpoint, float("nan")
        for rate in (float(r) for r in args.rates.split(",")):
            name = f"{net}_block{args.block}_{rate:g}x"
            config = PruneJobConfig(
                arch=net, data=data[net], output=os.path.join(args.out_dir, f"{name}.pt"),
                model_kwargs={"width": args.width},
                scheme=SparsityScheme("block", parse_group_shape(args.block)),
                flops_reduction=rate, dense_checkpoint=dense_checkpoint, skip=(FIRST[net], *HEADS[net]),
                dense_epochs=args.dense_epochs, reweight_epochs=args.reweight_epochs, reweight_every=2,
                retrain_epochs=args.retrain_epochs, optimizer="adamw", lr=2e-3, retrain_lr=1e-3,
                weight_decay=5e-4, penalty=args.penalty, batch_size=16, workers=0, threads=args.threads,
                seed=0,
            )
            report = PruneJob(config).run()
            accuracy = report["accuracy"]
            if dense_checkpoint is None:  # the later rates start from this job's dense model
                dense_checkpoint = os.path.join(config.work_directory, "dense.pt")
            if dense_metric != dense_metric:  # the first job's (trained or loaded) dense model
                dense_metric = accuracy["dense"]
            rows.append(
                f"| {net} | {report['metric']} | {rate:g}x | {report['flops']['reduction']:.2f}x | "
                f"{dense_metric:.3f} | {accuracy['after_hard_prune']:.3f} | "
                f"{accuracy['final']:.3f} |"
            )
    print("| net | metric | target | conv FLOPs reduction | dense | after hard pruning | after retraining |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
