"""Shared helpers for the Python tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rt3d_mlir
from rt3d_mlir.kernel_packing import MAX_RELATIVE_ERROR

# Numerics tolerance against PyTorch (fp32, same operation order is not
# guaranteed): max |ours - torch| / max |torch| over the output.
REL_TOL = MAX_RELATIVE_ERROR["fp32"]


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / max(float(np.abs(expected).max()), 1e-30))


def randomize_batch_norms(model: nn.Module, seed: int = 0) -> None:
    """Give BatchNorms non-trivial statistics so folding them is really tested."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)


def bench_module(name: str):
    """A script module of ``bench/`` (e.g. ``aarch64_insn_counts``), imported with ``bench/`` on the
    path for its own imports."""
    import importlib
    import os
    import sys

    bench = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
    sys.path.insert(0, bench)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(bench)


def compile_and_run(model, x: torch.Tensor, path, **kwargs) -> np.ndarray:
    rt3d_mlir.compile(model, x, output=path, **kwargs)
    return rt3d_mlir.load(path)(x.numpy())


def torch_output(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).numpy()


def compile_checked(model: nn.Module, x: torch.Tensor, path, **kwargs):
    """Compile ``model``, check its output on ``x`` against PyTorch (REL_TOL); the loaded artifact."""
    rt3d_mlir.compile(model, x, output=path, **kwargs)
    compiled = rt3d_mlir.load(path)
    assert relative_error(compiled(x.numpy()), torch_output(model, x)) <= REL_TOL
    return compiled


def kernel_profile(compiled, x: torch.Tensor) -> list:
    """The per-kernel profile of one call of a loaded artifact on ``x``."""
    compiled.set_profiling(True)
    compiled(x.numpy())
    return compiled.kernel_profile()


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
