"""A small YOLO-family detector (2D), its decoding and non-maximum suppression (numpy), and its loss.

The network (``TinyYolo``) follows the YOLOv5/v8 layout at a small scale:

- **Backbone.** Conv-BN-SiLU blocks, each stage a stride-2 3x3 conv and a CSP block
  (:class:`CspBlock`: two 1x1 branches, residual bottlenecks on one, concatenated and mixed by a
  1x1 conv). Channels 16, 32, 64, 128 at width 1, times ``width``; strides 2, 4, 8, 16.
- **Neck.** PAN: the stride-16 features, reduced by a 1x1 conv, upsampled (nearest) and
  concatenated with the stride-8 ones; the result, downsampled by a stride-2 conv, concatenated
  with the reduced stride-16 features again.
- **Head.** A 1x1 conv per scale (strides :data:`STRIDES`) predicting, per cell, a box (2
  offsets, 2 sizes), an objectness and ``num_classes`` class scores (anchor-free, one prediction
  per cell). The output is one tensor ``[N, 5 + C, A]``, the scales' cells concatenated (``A``
  = cells of stride 8, then of stride 16), so that the compiled graph ends with the convs.

Decoding (:func:`decode`) and NMS (:func:`nms`, :func:`detect`) run outside the compiled graph, in
numpy: a cell at column ``j``, row ``i`` of stride ``s`` predicts the centre ``((j, i) + 2
sigmoid(t_xy) - 0.5) s`` and the size ``(2 sigmoid(t_wh))^2 * 2 s`` (up to 8 cells), its score
objectness x class probability. :func:`detection_loss` trains it: each object is assigned to the
cell holding its centre at the scale whose size ``2 s`` is nearest its size (in log space).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rt3d_mlir.boxes import nms
from rt3d_mlir.models.common import scaled

STRIDES = (8, 16)  # of the head's scales, in output order
CHANNELS = (16, 32, 64, 128)  # of the backbone's stages at width 1
BOX_OUTPUTS = 5  # per cell: x, y, w, h offsets and objectness, then the class scores
# the loss's weights (YOLOv5's balance): objectness BCE averaged over every cell weighs 1, the box
# error (L1 in strides) and the class BCE are averaged over the assigned objects
BOX_WEIGHT = 0.05
CLASS_WEIGHT = 0.5


class ConvBnAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d + SiLU, "same" padding."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.SiLU()
        )


class Bottleneck(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.a, self.b = ConvBnAct(channels, channels, 3), ConvBnAct(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x))


class CspBlock(nn.Module):
    """Cross-stage partial block: ``mix(cat(split_a(x), bottlenecks(split_b(x))))``."""

    def __init__(self, c_in: int, c_out: int, depth: int = 1) -> None:
        super().__init__()
        hidden = max(1, c_out // 2)
        self.split_a, self.split_b = ConvBnAct(c_in, hidden, 1), ConvBnAct(c_in, hidden, 1)
        self.blocks = nn.Sequential(*(Bottleneck(hidden) for _ in range(depth)))
        self.mix = ConvBnAct(2 * hidden, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(torch.cat([self.split_a(x), self.blocks(self.split_b(x))], 1))


class TinyYolo(nn.Module):
    """The detector; ``input_size`` (H, W) must be a multiple of the largest stride."""

    def __init__(
        self, num_classes: int = 5, width: float = 0.5, input_size: Sequence[int] = (64, 64)
    ) -> None:
        super().__init__()
        if any(int(s) % STRIDES[-1] for s in input_size) or len(input_size) != 2:
            raise ValueError(f"input size must be two multiples of {STRIDES[-1]}, got {tuple(input_size)}")
        c0, c1, c2, c3 = (scaled(c, width) for c in CHANNELS)
        self.num_classes = num_classes
        self.input_size = tuple(int(s) for s in input_size)
        self.stem = ConvBnAct(3, c0, 3, 2)
        self.stage1 = nn.Sequential(ConvBnAct(c0, c1, 3, 2), CspBlock(c1, c1))
        self.stage2 = nn.Sequential(ConvBnAct(c1, c2, 3, 2), CspBlock(c2, c2))
        self.stage3 = nn.Sequential(ConvBnAct(c2, c3, 3, 2), CspBlock(c3, c3))
        self.lateral = ConvBnAct(c3, c2, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse8 = CspBlock(2 * c2, c2)
        self.down = ConvBnAct(c2, c2, 3, 2)
        self.fuse16 = CspBlock(2 * c2, c3)
        outputs = BOX_OUTPUTS + num_classes
        self.head8, self.head16 = nn.Conv2d(c2, outputs, 1), nn.Conv2d(c3, outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p8 = self.stage2(self.stage1(self.stem(x)))
        lateral = self.lateral(self.stage3(p8))
        n8 = self.fuse8(torch.cat([self.up(lateral), p8], 1))
        n16 = self.fuse16(torch.cat([self.down(n8), lateral], 1))
        return torch.cat([self.head8(n8).flatten(2), self.head16(n16).flatten(2)], 2)


def grid(input_size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per output cell (in output order): its (column, row) and its stride."""
    cells, strides = [], []
    for stride in STRIDES:
        rows, cols = input_size[0] // stride, input_size[1] // stride
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full(rows * cols, stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def decode(output: np.ndarray, input_size: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes ``[N, A, 4]`` (x0, y0, x1, y1 in pixels), scores ``[N, A]`` and labels ``[N, A]`` of the
    network's output ``[N, 5 + C, A]``."""
    cells, strides = grid(input_size)
    t = np.asarray(output, np.float32)
    centre = (cells.T[None] + 2.0 * _sigmoid(t[:, 0:2]) - 0.5) * strides
    size = (2.0 * _sigmoid(t[:, 2:4])) ** 2 * 2.0 * strides
    boxes = np.concatenate([centre - size / 2, centre + size / 2], 1).transpose(0, 2, 1)
    classes = _sigmoid(t[:, BOX_OUTPUTS:])
    labels = classes.argmax(1)
    scores = _sigmoid(t[:, 4]) * np.take_along_axis(classes, labels[:, None], 1)[:, 0]
    return boxes, scores, labels


def detect(
    output: np.ndarray, input_size: Sequence[int], score: float = 0.25, iou: float = 0.5, limit: int = 100
) -> list[dict[str, np.ndarray]]:
    """Per image: ``boxes``, ``scores`` and ``labels`` above ``score`` after per-class NMS."""
    boxes, scores, labels = decode(output, input_size)
    found = []
    for b, s, c in zip(boxes, scores, labels, strict=True):
        chosen = s > score
        b, s, c = b[chosen], s[chosen], c[chosen]
        kept = [np.flatnonzero(c == label)[nms(b[c == label], s[c == label], iou)] for label in np.unique(c)]
        order = np.concatenate(kept) if kept else np.zeros(0, np.int64)
        order = order[np.argsort(-s[order], kind="stable")][:limit]
        found.append({"boxes": b[order], "scores": s[order], "labels": c[order]})
    return found


def detection_loss(
    output: torch.Tensor, targets: Sequence[dict[str, torch.Tensor]], input_size: Sequence[int]
) -> torch.Tensor:
    """Objectness BCE averaged over all cells, plus (weighted by :data:`BOX_WEIGHT` and
    :data:`CLASS_WEIGHT`, averaged over the objects) at each object's cell the L1 of its decoded box
    against the object's (in strides) and the class BCE."""
    cells_np, strides_np = grid(input_size)
    cells, strides = torch.from_numpy(cells_np), torch.from_numpy(strides_np)
    batch, channels, _ = output.shape
    objectness = torch.zeros(batch, output.shape[2])
    box_loss, class_loss, assigned = output.new_zeros(()), output.new_zeros(()), 0
    offsets = {stride: 0 for stride in STRIDES}
    start = 0
    for stride in STRIDES:
        offsets[stride] = start
        start += (input_size[0] // stride) * (input_size[1] // stride)
    for n, target in enumerate(targets):
        for box, label in zip(target["boxes"], target["labels"], strict=True):
            centre, size = (box[:2] + box[2:]) / 2, box[2:] - box[:2]
            scale = min(STRIDES, key=lambda s: abs(math.log(float(size.max()) / (2.0 * s))))
            cols = input_size[1] // scale
            col = int(min(centre[0] // scale, cols - 1))
            row = int(min(centre[1] // scale, input_size[0] // scale - 1))
            a = offsets[scale] + row * cols + col
            objectness[n, a] = 1.0
            t = output[n, :, a]
            pred_centre = (cells[a] + 2.0 * torch.sigmoid(t[0:2]) - 0.5) * strides[a]
            pred_size = (2.0 * torch.sigmoid(t[2:4])) ** 2 * 2.0 * strides[a]
            error = torch.abs(pred_centre - centre) + torch.abs(pred_size - size)
            box_loss = box_loss + error.sum() / scale
            wanted = F.one_hot(label, channels - BOX_OUTPUTS).float()
            class_loss = class_loss + F.binary_cross_entropy_with_logits(
                t[BOX_OUTPUTS:], wanted, reduction="sum"
            )
            assigned += 1
    object_loss = F.binary_cross_entropy_with_logits(
        output[:, 4], objectness.to(output.device), reduction="mean"
    )
    per_object = max(assigned, 1)
    classes = channels - BOX_OUTPUTS
    box_term = BOX_WEIGHT * box_loss / per_object
    return object_loss + box_term + CLASS_WEIGHT * class_loss / (per_object * classes)
