"""Accuracy measures of detection and segmentation (numpy): mAP at an IoU threshold, and Dice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rt3d_mlir.boxes import box_iou


def average_precision(
    detections: Sequence[Mapping[str, np.ndarray]],
    truths: Sequence[Mapping[str, np.ndarray]],
    num_classes: int,
    iou: float = 0.5,
) -> float:
    """Mean over the classes present of the area under the precision-recall curve (all-point
    interpolation, as PASCAL VOC since 2010 computes it): per class, detections ranked by score
    over the whole set, each a true positive if it overlaps an unmatched object of its class by at
    least ``iou``. ``detections[i]`` has ``boxes``, ``scores``, ``labels``; ``truths[i]`` has
    ``boxes`` and ``labels``."""
    precisions = []
    for label in range(num_classes):
        objects = sum(int((np.asarray(t["labels"]) == label).sum()) for t in truths)
        if objects == 0:
            continue
        ranked = []  # (score, image, box)
        for image, found in enumerate(detections):
            mine = np.asarray(found["labels"]) == label
            boxes, scores = np.asarray(found["boxes"])[mine], np.asarray(found["scores"])[mine]
            ranked.extend((float(score), image, box) for box, score in zip(boxes, scores, strict=True))
        ranked.sort(key=lambda r: -r[0])
        matched = [np.zeros(int((np.asarray(t["labels"]) == label).sum()), bool) for t in truths]
        hits = np.zeros(len(ranked))
        for k, (_, image, box) in enumerate(ranked):
            truth = np.asarray(truths[image]["boxes"])[np.asarray(truths[image]["labels"]) == label]
            if truth.size == 0:
                continue
            overlaps = box_iou(box, truth)[0]
            overlaps[matched[image]] = -1.0
            best = int(overlaps.argmax())
            if overlaps[best] >= iou:
                matched[image][best] = True
                hits[k] = 1.0
        true_positives = np.cumsum(hits)
        recall = true_positives / objects
        precision = true_positives / np.arange(1, len(ranked) + 1) if ranked else np.zeros(0)
        # all-point interpolation: precision made monotone, integrated over recall steps
        recall = np.concatenate([[0.0], recall, [1.0]])
        precision = np.concatenate([[0.0], precision, [0.0]])
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        steps = np.flatnonzero(recall[1:] != recall[:-1])
        precisions.append(float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1])))
    return float(np.mean(precisions)) if precisions else 0.0


def dice(predicted: np.ndarray, truth: np.ndarray, num_classes: int) -> float:
    """Mean Dice ``2 |P ∩ T| / (|P| + |T|)`` over the foreground classes 1 .. ``num_classes - 1``
    present in either label map (integer maps of one shape)."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    scores = []
    for label in range(1, num_classes):
        p, t = predicted == label, truth == label
        total = int(p.sum()) + int(t.sum())
        if total:
            scores.append(2.0 * int((p & t).sum()) / total)
    return float(np.mean(scores)) if scores else 1.0
