"""The rt3d checkpoint: the one contract between the pruning tool and the compiler.

A checkpoint is a ``torch.save``-d dict::

    {
      "format": "rt3d-checkpoint",
      "version": 1,
      "arch": "c3d",                       # a name from rt3d_mlir.models
      "kwargs": {"width": 0.25, ...},      # constructor arguments
      "state_dict": {...},                 # weights; pruned weights are exact zeros
      "sparsity": {                        # optional
        "scheme": "kgs" | "vanilla" | "block" | "filter" | "unstructured" | "dense",
        "group_shape": [gF, gC],           # block: [bR, bC], the block's rows and columns; None
                                           # when layers differ (rt3d-prune --latency-group-shapes)
                                           # and for filter / unstructured (the compiler looks):
        "layers": {"features.conv2a": {"kept_fraction": 0.38, "group_shape": [8, 8]}, ...},
      },
      "input_shape": [1, 3, 16, 112, 112], # optional default for compilation
      "quantization": {                    # optional: int8 scales (rt3d_mlir.quantization)
        "scheme": "int8-symmetric",
        "input_scales": {"features.conv1a": 0.0123, ...},  # one per conv / linear layer
      },
    }

``kwargs``, ``sparsity`` and ``quantization`` hold only plain Python values (lists, numbers,
strings), so the file loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rt3d_mlir.errors import ModelLoadError
from rt3d_mlir.fileio import atomic_output
from rt3d_mlir.models import architecture_names, build_model, known_architecture
from rt3d_mlir.models.torchvision_video import import_torchvision
from rt3d_mlir.quantization import SCHEME as QUANTIZATION_SCHEME
from rt3d_mlir.quantization import validate_scales

TRUST_FLAG = "if you trust the file, pass --trust-pickle (Python: trust_pickle=True)"
TRUST_HINT = f"{TRUST_FLAG}; better, save the model with torch.export.save (.pt2) or as an rt3d checkpoint"
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_MAX_PICKLE_SCAN = 64 << 20  # a model's pickle (weights are separate records) is far smaller

CHECKPOINT_FORMAT = "rt3d-checkpoint"
CHECKPOINT_VERSION = 1
SCHEMES = ("kgs", "vanilla", "block", "filter", "unstructured", "dense")


@dataclass
class Checkpoint:
    arch: str
    kwargs: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    sparsity: dict[str, Any] = field(default_factory=dict)
    input_shape: list[int] | None = None
    quantization: dict[str, Any] | None = None

    @property
    def group_shape(self) -> tuple[int, int] | None:
        """The kernel-group shape the compiler recognizes the weights' zeros in: a block scheme's
        pruned columns are kernel groups of ``bR x 1`` (rt3d_mlir.pruning.schemes)."""
        shape = self.sparsity.get("group_shape")
        if not shape:
            return None
        if self.sparsity.get("scheme") == "block":
            return (int(shape[0]), 1)
        return (int(shape[0]), int(shape[1]))

    def build_module(self) -> nn.Module:
        model = build_model(self.arch, **_constructor_kwargs(self.kwargs))
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise ModelLoadError(f"checkpoint weights do not fit '{self.arch}': {first}") from None
        if self.quantization is not None:
            try:
                validate_scales(model, self.quantization["input_scales"], "checkpoint")
            except ValueError as err:
                raise ModelLoadError(str(err)) from None
        return model

    @property
    def int8_scales(self) -> dict[str, float] | None:
        """The calibrated int8 input scales per layer, if the checkpoint has them."""
        if self.quantization is None:
            return None
        return {str(k): float(v) for k, v in self.quantization["input_scales"].items()}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "arch": self.arch,
            "kwargs": _plain(self.kwargs),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()},
            "sparsity": _plain(self.sparsity),
        }
        if self.input_shape is not None:
            data["input_shape"] = [int(d) for d in self.input_shape]
        if self.quantization is not None:
            data["quantization"] = _plain(self.quantization)
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _constructor_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    # Tuples are stored as lists; constructors accept either.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def is_checkpoint(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT


def checkpoint_from_dict(data: Mapping[str, Any], source: str) -> Checkpoint:
    version = data.get("version")
    if version != CHECKPOINT_VERSION:
        raise ModelLoadError(
            f"'{source}' is an rt3d checkpoint of version {version}; this tool reads version "
            f"{CHECKPOINT_VERSION}"
        )
    for key in ("arch", "kwargs", "state_dict"):
        if key not in data:
            raise ModelLoadError(f"'{source}' is not a complete rt3d checkpoint: no '{key}'")
    if not known_architecture(data["arch"]):
        known = ", ".join(architecture_names())
        raise ModelLoadError(f"'{source}' names unknown architecture '{data['arch']}' (known: {known})")
    sparsity = dict(data.get("sparsity") or {})
    if sparsity.get("scheme", "dense") not in SCHEMES:
        raise ModelLoadError(f"'{source}' has unknown sparsity scheme '{sparsity.get('scheme')}'")
    quantization = data.get("quantization")
    if quantization is not None:
        if not isinstance(quantization, Mapping) or quantization.get("scheme") != QUANTIZATION_SCHEME:
            raise ModelLoadError(f"'{source}' has a quantization record of an unknown scheme "
                                 f"(this tool reads '{QUANTIZATION_SCHEME}')")
        scales = quantization.get("input_scales")
        if not isinstance(scales, Mapping) or not all(isinstance(k, str) for k in scales):
            raise ModelLoadError(f"'{source}' has a quantization record without per-layer input scales")
        quantization = {"scheme": QUANTIZATION_SCHEME, "input_scales": dict(scales)}
    return Checkpoint(
        arch=data["arch"],
        kwargs=dict(data["kwargs"]),
        state_dict=dict(data["state_dict"]),
        sparsity=sparsity,
        input_shape=list(data["input_shape"]) if data.get("input_shape") else None,
        quantization=quantization,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def pickle_refusal(
    source: str, err: BaseException, what: str = "is a pickled Python object"
) -> ModelLoadError:
    """The error for a file whose loading would unpickle code, naming the first global it needs."""
    found = _GLOBAL.search(str(err))
    name = f" ({found.group(1)})" if found else ""
    return ModelLoadError(f"'{source}' {what}{name}, and unpickling can run code from the file; {TRUST_HINT}")


def torch_load(source: str, trust_pickle: bool = False) -> Any:
    """``torch.load`` of a file that may be hostile: ``weights_only`` unless ``trust_pickle``.

    Tensors and plain containers (an rt3d checkpoint) always load; any other
    pickled object (an ``nn.Module``) only with ``trust_pickle``, else a
    ModelLoadError that says how to opt in. Every failure is one line.
    """
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise ModelLoadError(
                f"cannot read '{source}' as a PyTorch file (truncated or not a model file?): "
                f"{_first_line(err)}"
            ) from None
        if not trust_pickle:
            raise pickle_refusal(source, err) from None
    except Exception as err:  # the weights-only unpickler raises many kinds for a corrupt file
        raise ModelLoadError(
            f"cannot read '{source}' as a PyTorch file (truncated or not a model file?): {_first_line(err)}"
        ) from None
    if _pickle_mentions(source, b"torchvision"):
        try:  # a pickled torchvision model: torchvision must import (models/torchvision_video.py)
            import_torchvision()
        except ImportError:
            pass  # reported below as the module the pickle needs
    try:
        return torch.load(source, map_location="cpu", weights_only=False)
    except ModuleNotFoundError as err:
        raise ModelLoadError(
            f"'{source}' is a pickled model that needs Python module '{err.name}', which cannot be "
            "imported here; save it with torch.export (.pt2) or as an rt3d checkpoint instead"
        ) from None
    except Exception as err:  # unpickling trusted code can raise anything
        raise ModelLoadError(
            f"cannot read '{source}' as a PyTorch model (truncated or not a model file?): "
            f"{_first_line(err)}"
        ) from None


def _pickle_mentions(source: str, name: bytes) -> bool:
    """Whether the pickle in a ``torch.save`` archive names ``name`` (read, not unpickled)."""
    try:
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if info.filename.endswith("/data.pkl") and info.file_size <= _MAX_PICKLE_SCAN:
                    return name in archive.read(info)
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
        pass
    return False


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """An rt3d checkpoint file, read without unpickling code; ModelLoadError (one line) otherwise."""
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise ModelLoadError(f"checkpoint '{source}' does not exist or is not a file")
    data = torch_load(source, trust_pickle=False)
    if not is_checkpoint(data):
        raise ModelLoadError(
            f"'{source}' is not an rt3d checkpoint (its 'format' is not '{CHECKPOINT_FORMAT}')"
        )
    return checkpoint_from_dict(data, source)


def save_checkpoint(
    path: str | os.PathLike[str],
    arch: str,
    kwargs: Mapping[str, Any],
    model: nn.Module,
    sparsity: Mapping[str, Any] | None = None,
    input_shape: Sequence[int] | None = None,
    quantization: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (a crash never leaves a partial file)."""
    checkpoint = Checkpoint(
        arch=arch,
        kwargs=dict(kwargs),
        state_dict=dict(model.state_dict()),
        sparsity=dict(sparsity or {}),
        input_shape=list(input_shape) if input_shape is not None else None,
        quantization=dict(quantization) if quantization is not None else None,
    )
    atomic_torch_save(checkpoint.to_dict(), path)


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` through :func:`rt3d_mlir.fileio.atomic_output` (no partial file, ever)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
