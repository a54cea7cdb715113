"""Reading a model file: a pickled nn.Module, an ExportedProgram, or a checkpoint."""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rt3d_mlir.errors import ModelLoadError
from rt3d_mlir.frontend.checkpoint import checkpoint_from_dict, is_checkpoint

ACCEPTED = "a pickled nn.Module (.pt), a torch.export ExportedProgram (.pt2) or an rt3d checkpoint"


@dataclass
class LoadedModel:
    """A model ready for preparation and import."""

    source: str
    module: nn.Module | None = None
    program: torch.export.ExportedProgram | None = None
    group_shape: tuple[int, int] | None = None  # from checkpoint metadata
    default_input_shape: tuple[int, ...] | None = None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _input_shape_of_program(program: torch.export.ExportedProgram) -> tuple[int, ...] | None:
    shapes = []
    for spec in program.graph_signature.input_specs:
        if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT:
            node = next(n for n in program.graph.nodes if n.name == spec.arg.name)
            value = node.meta.get("val")
            if value is None or not hasattr(value, "shape"):
                return None
            shapes.append(tuple(int(d) for d in value.shape))
    return shapes[0] if len(shapes) == 1 else None


def _input_shape_of_module(module: nn.Module) -> tuple[int, ...] | None:
    size = getattr(module, "input_size", None)
    channels = getattr(module, "in_channels", 3)
    if size is None:
        return None
    return (1, int(channels), *(int(s) for s in size))


def load_model_file(path: str | os.PathLike[str]) -> LoadedModel:
    """Load a model file, or raise ModelLoadError with one clear line."""
    source = os.fspath(path)
    if not os.path.exists(source):
        raise ModelLoadError(f"model file '{source}' does not exist")
    if os.path.isdir(source):
        raise ModelLoadError(f"'{source}' is a directory, not a model file")
    if source.endswith(".pt2"):
        try:
            program = torch.export.load(source)
        except Exception as err:  # torch raises many kinds for bad archives
            raise ModelLoadError(
                f"cannot read '{source}' as an ExportedProgram: {_first_line(err)}"
            ) from None
        return LoadedModel(source, program=program, default_input_shape=_input_shape_of_program(program))
    try:
        obj: Any = torch.load(source, map_location="cpu", weights_only=False)
    except ModuleNotFoundError as err:
        raise ModelLoadError(
            f"'{source}' is a pickled model that needs Python module '{err.name}', which cannot be "
            "imported here; save it with torch.export (.pt2) or as an rt3d checkpoint instead"
        ) from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError,
            AttributeError, ImportError) as err:
        raise ModelLoadError(
            f"cannot read '{source}' as a PyTorch model (truncated or not a model file?): "
            f"{_first_line(err)}"
        ) from None
    if is_checkpoint(obj):
        checkpoint = checkpoint_from_dict(obj, source)
        module = checkpoint.build_module()
        shape = checkpoint.input_shape or _input_shape_of_module(module)
        return LoadedModel(
            source,
            module=module,
            group_shape=checkpoint.group_shape,
            default_input_shape=tuple(shape) if shape else None,
        )
    if isinstance(obj, torch.export.ExportedProgram):
        return LoadedModel(source, program=obj, default_input_shape=_input_shape_of_program(obj))
    if isinstance(obj, nn.Module):
        return LoadedModel(source, module=obj, default_input_shape=_input_shape_of_module(obj))
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(
            f"'{source}' holds a bare state_dict; save the whole module (torch.save(model)) "
            "or an rt3d checkpoint"
        )
    raise ModelLoadError(f"'{source}' holds a {type(obj).__name__}, not a model; expected {ACCEPTED}")
