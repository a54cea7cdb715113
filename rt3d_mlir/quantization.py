"""int8 quantization: the scheme, calibration, and its simulation in PyTorch.

The scheme (the one the int8 kernels implement and the tests compare them to):

- **weights**: symmetric, per output channel: ``q = round(w / s_w[o])``
  clamped to [-127, 127], ``s_w[o] = max |w[o]| / 127`` (an all-zero
  filter gets scale 1). Per-channel scales commute with folding a batch
  norm into the conv (it multiplies each filter by one number), so a scale
  computed on the trained weights and one computed on the folded weights
  quantize to the same integers.
- **activations**: symmetric, per tensor, at the input of every quantized
  layer: ``q = round(x / s_x)`` clamped to [-127, 127], ``s_x = max |x| /
  127`` over calibration clips. One scale per layer input, keyed by the
  layer's module name.
- **accumulation**: exact in int32 (``sum q_x * q_w``); the result is
  ``acc * s_x * s_w[o] + bias`` in f32, and everything after it (batch
  norm, activations, pools, adds) stays f32 until the next quantized
  layer's input.

Quantized layers are ``Conv3d``, ``Conv2d`` and ``Linear`` modules (a
convolution written with ``torch.nn.functional`` has no module name to key
its scale and stays float).

:func:`calibrate` records the scales; :func:`simulated_int8` runs a model
with the scheme applied (fake quantization): the reference for accuracy and
for the kernels, and, since rounding passes gradients straight through, the
forward pass of quantization-aware training (``rt3d-prune --qat-epochs``).
``rt3d-compile --precision int8`` builds a model with its checkpoint's
scales: the importer rounds each quantized layer's input to its grid
(``frontend.preparation.quantize_graph``), and int8 kernels compute the
convolutions (``rt3d-quantize-convs``).
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from rt3d_mlir.kernel_packing import INT8_MAX

SCHEME = "int8-symmetric"  # the name the checkpoint's "quantization" record carries
QUANTIZED_LAYERS = (nn.Conv3d, nn.Conv2d, nn.Linear)


def quantized_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The layers the scheme quantizes, with their module names."""
    for name, module in model.named_modules():
        if isinstance(module, QUANTIZED_LAYERS):
            yield name, module


def weight_scales(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel scales: max |w| over each filter / 127 (1 for an all-zero filter)."""
    peak = weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1)
    return torch.where(peak > 0, peak / INT8_MAX, torch.ones_like(peak))


def _round_through(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity backward (the straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


def fake_quantize(x: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """x rounded to the int8 grid of ``scale`` (broadcast) and clamped, in x's float type."""
    return torch.clamp(_round_through(x / scale), -INT8_MAX, INT8_MAX) * scale


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 weights, f32 per-output-channel scales) of a conv or linear weight."""
    scales = weight_scales(weight)
    view = scales.reshape(-1, *([1] * (weight.dim() - 1)))
    q = torch.clamp(torch.round(weight.detach() / view), -INT8_MAX, INT8_MAX)
    return q.to(torch.int8), scales.float()


def fake_quantize_weight(weight: torch.Tensor) -> torch.Tensor:
    scales = weight_scales(weight).reshape(-1, *([1] * (weight.dim() - 1)))
    return fake_quantize(weight, scales)


def activation_scale(peak: float) -> float:
    """The scale of an activation whose calibrated max |x| is ``peak`` (1 if it was all zeros)."""
    if not math.isfinite(peak) or peak < 0:
        raise ValueError(f"calibration saw a non-finite activation (max |x| = {peak})")
    return peak / INT8_MAX if peak > 0 else 1.0


def calibrate(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    progress: Callable[[int], object] | None = None,
) -> dict[str, float]:
    """Input scales of every quantized layer: max |input| over ``batches`` / 127.

    The model runs in eval mode without gradients (its mode is restored).
    ``progress`` is called with each batch's size. Raises ValueError if no
    batch was given, or if a layer never ran or saw a NaN or infinity.
    """
    peaks: dict[str, float] = {}
    handles = []
    for name, module in quantized_layers(model):
        def record(_module, args, name=name):
            peak = float(args[0].detach().abs().amax())
            peaks[name] = max(peaks.get(name, 0.0), peak) if math.isfinite(peak) else peak
        handles.append(module.register_forward_pre_hook(record))
    was_training = model.training
    model.eval()
    seen = 0
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
                seen += len(batch)
                if progress is not None:
                    progress(len(batch))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if seen == 0:
        raise ValueError("calibration needs at least one clip")
    missing = [name for name, _ in quantized_layers(model) if name not in peaks]
    if missing:
        raise ValueError(f"calibration never ran layer '{missing[0]}' ({len(missing)} such layers)")
    return {name: activation_scale(peak) for name, peak in peaks.items()}


def validate_scales(model: nn.Module, scales: Mapping[str, float], source: str) -> dict[str, float]:
    """``scales`` checked against ``model``: one finite positive scale per quantized layer."""
    layers = [name for name, _ in quantized_layers(model)]
    unknown = sorted(set(scales) - set(layers))
    if unknown:
        raise ValueError(f"{source}: int8 scale for '{unknown[0]}', which is not a conv or linear layer")
    missing = [name for name in layers if name not in scales]
    if missing:
        raise ValueError(f"{source}: no int8 scale for layer '{missing[0]}' ({len(missing)} missing)")
    checked = {}
    for name, value in scales.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0
        ):
            raise ValueError(f"{source}: int8 scale of '{name}' is {value!r}, not a positive number")
        checked[name] = float(value)
    return checked


def _simulated_forward(module: nn.Module, scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = fake_quantize(x, scale)
        wq = fake_quantize_weight(self.weight)
        if isinstance(self, nn.Linear):
            return F.linear(xq, wq, self.bias)
        return self._conv_forward(xq, wq, self.bias)

    return types.MethodType(forward, module)


@contextmanager
def simulated_int8(model: nn.Module, scales: Mapping[str, float]) -> Iterator[nn.Module]:
    """While active, every quantized layer of ``model`` computes with the int8 scheme.

    Inputs and weights are rounded to their int8 grids (gradients pass
    straight through the rounding, so the context also trains); the state
    dict is unchanged. ``scales`` comes from :func:`calibrate` and must
    cover every quantized layer.
    """
    scales = validate_scales(model, scales, "int8 scales")
    patched = []
    try:
        for name, module in quantized_layers(model):
            module.forward = _simulated_forward(module, scales[name])
            patched.append(module)
        yield model
    finally:
        for module in patched:
            del module.forward  # back to the class's forward
