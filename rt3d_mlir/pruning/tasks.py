"""What a pruning job trains for: the loss, the training accuracy count and the evaluation metric.

A data set names its task by a ``task`` attribute (classification when it has none):

- ``classification``: cross entropy, top-1 accuracy (the video data sets);
- ``detection``: the YOLO-style detector's loss (:func:`rt3d_mlir.models.yolo.detection_loss`),
  mAP at IoU 0.5 (:func:`rt3d_mlir.data.metrics.average_precision` over the detector's NMS'd
  detections, :func:`rt3d_mlir.models.yolo.detect`);
- ``segmentation``: per-pixel cross entropy plus a soft Dice loss (:func:`soft_dice_loss`), mean
  Dice of the foreground classes over the whole evaluation set (each class's overlaps and sizes
  summed over every image before dividing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rt3d_mlir.pruning.distributed import Distributed


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # what evaluate returns, for reports
    collate: Callable[[list], Any] | None = None  # the loader's, where targets are not tensors

    def targets_to(self, targets: Any, device: torch.device | str) -> Any:
        if isinstance(targets, torch.Tensor):
            return targets.to(device)
        return [{key: value.to(device) for key, value in t.items()} for t in targets]

    def loss(self, outputs: torch.Tensor, targets: Any, inputs: torch.Tensor) -> torch.Tensor:
        if self.name == "detection":
            from rt3d_mlir.models.yolo import detection_loss

            return detection_loss(outputs, targets, tuple(inputs.shape[2:]))
        if self.name == "segmentation":
            return F.cross_entropy(outputs, targets) + soft_dice_loss(outputs, targets)
        return F.cross_entropy(outputs, targets)

    def correct(self, outputs: torch.Tensor, targets: Any) -> float:
        """Training samples predicted right (classification; 0 for the other tasks)."""
        if self.name != "classification":
            return 0.0
        return float((outputs.argmax(1) == targets).sum())

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader, env: Distributed, description: str) -> float:
        """The metric over the loader (classification: summed over ranks; the other tasks evaluate
        the whole set on every rank)."""
        model.eval()
        if self.name == "classification":
            correct = total = 0.0
            for inputs, labels in tqdm(loader, desc=description, leave=False, disable=not env.is_main,
                                       unit="batch"):
                logits = model(inputs.to(env.device))
                correct += float((logits.argmax(1) == labels.to(env.device)).sum())
                total += labels.shape[0]
            correct, total = env.all_sum([correct, total])
            return correct / max(total, 1)
        if self.name == "detection":
            return _mean_average_precision(model, loader, env, description)
        return _dice(model, loader, env, description)


def _mean_average_precision(model: nn.Module, loader, env: Distributed, description: str) -> float:
    from rt3d_mlir.data.metrics import average_precision
    from rt3d_mlir.models.yolo import detect

    found, truths = [], []
    for images, targets in tqdm(loader, desc=description, leave=False, disable=not env.is_main, unit="batch"):
        outputs = model(images.to(env.device)).cpu().numpy()
        found += detect(outputs, tuple(images.shape[2:]), score=0.05)
        truths += [{key: value.numpy() for key, value in t.items()} for t in targets]
    classes = int(model.num_classes) if hasattr(model, "num_classes") else 1 + max(
        (int(t["labels"].max()) for t in truths if len(t["labels"])), default=0
    )
    return average_precision(found, truths, classes, iou=0.5)


def _dice(model: nn.Module, loader, env: Distributed, description: str) -> float:
    overlap: np.ndarray | None = None
    sizes: np.ndarray | None = None
    for images, labels in tqdm(loader, desc=description, leave=False, disable=not env.is_main, unit="batch"):
        logits = model(images.to(env.device))
        predicted, truth = logits.argmax(1).cpu().numpy(), labels.numpy()
        classes = logits.shape[1]
        if overlap is None:
            overlap, sizes = np.zeros(classes), np.zeros(classes)
        for label in range(1, classes):
            p, t = predicted == label, truth == label
            overlap[label] += 2.0 * (p & t).sum()
            sizes[label] += p.sum() + t.sum()  # type: ignore[index]
    if overlap is None or sizes is None:
        return 0.0
    present = sizes[1:] > 0
    return float(np.mean(overlap[1:][present] / sizes[1:][present])) if present.any() else 1.0


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``1 - `` the mean soft Dice of the foreground classes over the batch. Cross entropy alone is
    ruled by the background (98 % of the built-in volumes' voxels): block-pruned U-Nets retrained on
    it settled on all background (Dice 0 at a loss as low as the dense net's)."""
    probabilities = torch.softmax(logits, 1)[:, 1:]
    onehot = F.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(probabilities.dtype)
    overlap = (probabilities * onehot).sum((0, 2, 3))
    sizes = probabilities.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1.0 - ((2.0 * overlap + 1.0) / (sizes + 1.0)).mean()


def _detection_collate(batch: list) -> Any:
    from rt3d_mlir.data.detection import detection_collate

    return detection_collate(batch)


CLASSIFICATION = Task("classification", "top-1")
DETECTION = Task("detection", "mAP@0.5", _detection_collate)
SEGMENTATION = Task("segmentation", "Dice")
TASKS = {task.name: task for task in (CLASSIFICATION, DETECTION, SEGMENTATION)}


def task_of(dataset: object) -> Task:
    """The task a data set trains for (its ``task`` attribute; classification by default)."""
    return TASKS[getattr(dataset, "task", "classification")]
