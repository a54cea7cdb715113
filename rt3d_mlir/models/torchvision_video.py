"""torchvision's video classifiers, and importing torchvision beside a CPU-only torch.

The torchvision wheel that matches the pinned torch on this package index is
a CUDA build: its compiled extension (``torchvision._C``) does not load
beside the CPU torch, and ``import torchvision`` then fails while it
registers fake (meta) kernels for ``torchvision::nms`` and
``torchvision::qnms``, operators that only the extension defines. The video
models are pure Python and need none of torchvision's compiled operators,
so :func:`import_torchvision` defines those two schemas (the extension's
own signatures, with no kernel: calling them raises) when the extension is
missing, and then imports torchvision. This is the one place that does it;
everything that may import torchvision (loading a trusted pickled
torchvision model, the tests, ``rt3d-bench --models tv:r3d_18``) calls it
first.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

from torch import nn

# The schemas torchvision registers fake kernels for at import (torchvision/csrc/ops/nms.cpp).
_MISSING_EXTENSION_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_schema_library: Any = None  # kept alive: the definitions vanish with the Library object

# torchvision.models.video constructors this toolkit compiles (CNNs), and the
# transformers that it reports as unsupported by operator.
VIDEO_CNNS = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d")
VIDEO_TRANSFORMERS = ("mvit_v1_b", "mvit_v2_s", "swin3d_t", "swin3d_s", "swin3d_b")
PREFIX = "tv:"


def torchvision_installed() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def import_torchvision() -> ModuleType:
    """``import torchvision``, defining the operator schemas its missing extension would define.

    Raises ImportError (ModuleNotFoundError) when torchvision is not installed.
    """
    global _schema_library
    import sys

    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    import torch

    if not torchvision_installed():
        raise ModuleNotFoundError("No module named 'torchvision'", name="torchvision")
    if not _extension_loads():
        missing = {
            name: schema
            for name, schema in _MISSING_EXTENSION_SCHEMAS.items()
            if not _schema_defined(f"torchvision::{name}")
        }
        if missing:
            _schema_library = torch.library.Library("torchvision", "FRAGMENT")
            for schema in missing.values():
                _schema_library.define(schema)
    import torchvision

    return torchvision


def _schema_defined(qualified: str) -> bool:
    import torch

    return torch._C._jit_get_schemas_for_operator(qualified) != []


def _extension_loads() -> bool:
    """Whether torchvision's compiled extension loads here (without importing torchvision)."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    import glob
    import os

    for directory in spec.submodule_search_locations:
        for path in glob.glob(os.path.join(directory, "_C*.so")):
            try:
                torch.ops.load_library(path)
                return True
            except (OSError, RuntimeError):
                continue
    return False


def is_torchvision_arch(arch: str) -> bool:
    return arch.startswith(PREFIX)


def torchvision_video_model(arch: str, num_classes: int = 400, **_ignored: Any) -> nn.Module:
    """``tv:r3d_18`` and the like: a torchvision video model with random weights.

    Keyword arguments the built-in architectures take (``width``,
    ``input_size``) do not apply to torchvision's fixed architectures and are
    ignored; ``num_classes`` is passed on.
    """
    name = arch.removeprefix(PREFIX)
    if name not in VIDEO_CNNS + VIDEO_TRANSFORMERS:
        known = ", ".join(PREFIX + n for n in VIDEO_CNNS + VIDEO_TRANSFORMERS)
        raise ValueError(f"unknown torchvision video model '{arch}' (known: {known})")
    video = import_torchvision().models.video
    return getattr(video, name)(weights=None, num_classes=num_classes)
