"""FLOPs accounting of the prunable layers (convolutions, optionally Linear), dense and kept, per layer
and for a model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rt3d_mlir.pruning.schemes import CONVS, PRUNABLE


@dataclass(frozen=True)
class LayerFlops:
    name: str
    dense_macs: int  # multiply-accumulates of the dense convolution
    kept_macs: int  # of the weights that are nonzero

    @property
    def reduction(self) -> float:
        return self.dense_macs / self.kept_macs if self.kept_macs else float("inf")


def conv_flops(model: nn.Module, input_shape: tuple[int, ...], linear: bool = False) -> list[LayerFlops]:
    """MACs of every Conv3d and Conv2d (and, if ``linear``, Linear layer) for one forward pass at
    ``input_shape``.

    A weight's zeros are taken as pruned: kept MACs scale with its nonzero
    count. Runs the model once on zeros (in eval mode, without gradients).
    """
    records: list[LayerFlops] = []
    hooks = []

    def hook(name: str):
        def record(module: nn.Module, _inputs, output: torch.Tensor) -> None:
            weight = module.weight
            per_output = weight[0].numel()  # C/groups * Kd * Kh * Kw; a Linear's inputs
            outputs = output.numel()  # N * F * D * H * W; a Linear's N * F
            dense = outputs * per_output
            nonzero_fraction = float((weight != 0).sum()) / weight.numel()
            records.append(LayerFlops(name, dense, round(dense * nonzero_fraction)))

        return record

    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE if linear else CONVS):
            hooks.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for handle in hooks:
            handle.remove()
        model.train(was_training)
    return records


def flops_reduction(layers: list[LayerFlops]) -> float:
    """Whole-model conv FLOPs reduction: dense MACs / kept MACs."""
    dense = sum(layer.dense_macs for layer in layers)
    kept = sum(layer.kept_macs for layer in layers)
    return dense / kept if kept else float("inf")
