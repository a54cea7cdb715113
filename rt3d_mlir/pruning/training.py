"""One epoch of training or evaluation, with optional penalty, masks and distillation."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rt3d_mlir.pruning.distributed import Distributed
from rt3d_mlir.pruning.masking import apply_masks, masked_gradients
from rt3d_mlir.pruning.tasks import CLASSIFICATION, Task


@dataclass
class EpochStats:
    loss: float
    penalty: float
    accuracy: float  # training top-1 (classification; 0 for the other tasks)
    samples: int


@dataclass(frozen=True)
class Distillation:
    teacher: nn.Module
    alpha: float = 0.5
    temperature: float = 3.0

    def loss(
        self, student_logits: torch.Tensor, inputs: torch.Tensor, hard_loss: torch.Tensor
    ) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(inputs)
        t = self.temperature
        soft = F.kl_div(
            F.log_softmax(student_logits / t, dim=1),
            F.softmax(teacher_logits / t, dim=1),
            reduction="batchmean",
        ) * (t * t)
        return (1 - self.alpha) * hard_loss + self.alpha * soft


def train_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    env: Distributed,
    *,
    penalty: Callable[[], torch.Tensor] | None = None,
    masked: bool = False,
    distillation: Distillation | None = None,
    description: str = "train",
    after_step: Callable[[], object] | None = None,
    task: Task | None = None,
) -> EpochStats:
    """One epoch; ``task`` gives the loss (default: classification's cross entropy)."""
    task = task or CLASSIFICATION
    model.train()
    totals = [0.0, 0.0, 0.0, 0.0]  # loss sum, penalty sum, correct, samples
    batches = 0
    progress = tqdm(loader, desc=description, leave=False, disable=not env.is_main, unit="batch")
    with masked_gradients(model) if masked else nullcontext():
        for inputs, labels in progress:
            inputs, labels = inputs.to(env.device), task.targets_to(labels, env.device)
            logits = model(inputs)
            loss = task.loss(logits, labels, inputs)
            if distillation is not None:
                loss = distillation.loss(logits, inputs, loss)
            reg = penalty() if penalty is not None else None
            total = loss + reg if reg is not None else loss
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            if masked:
                apply_masks(model)
            batch = inputs.shape[0]
            totals[0] += loss.item() * batch
            totals[1] += reg.item() if reg is not None else 0.0
            totals[2] += task.correct(logits, labels)
            totals[3] += batch
            batches += 1
            progress.set_postfix(loss=f"{loss.item():.3f}")
    loss_sum, penalty_sum, correct, samples = env.all_sum(totals)
    batch_count = env.all_sum([float(batches)])[0]
    return EpochStats(
        loss=loss_sum / max(samples, 1),
        penalty=penalty_sum / max(batch_count, 1),
        accuracy=correct / max(samples, 1),
        samples=int(samples),
    )


def evaluate(
    model: nn.Module, loader, env: Distributed, description: str = "eval", task: Task | None = None
) -> float:
    """The task's metric over the loader (default: classification's top-1, summed over ranks)."""
    return (task or CLASSIFICATION).evaluate(model, loader, env, description)
