"""Reading a model file: an rt3d checkpoint, an ExportedProgram (.pt2) or a pickled nn.Module.

Nothing in a file runs as code unless the caller trusts the file
(``trust_pickle=True``, ``--trust-pickle``), following PyTorch's own default
since 2.6:

- ``.pt`` files are read with ``torch.load(weights_only=True)``, which
  accepts tensors and plain containers (an rt3d checkpoint) and refuses any
  other Python object; a pickled ``nn.Module`` loads only when trusted.
- ``.pt2`` archives are read without the parts of ``torch.export.load`` that
  unpickle or load code: the archive's payload configs are checked first (a
  weight, constant or object stored as a pickle is refused unless trusted),
  AOTInductor code in the archive is never loaded, and every ``torch.load``
  inside the deserializer is forced to ``weights_only``.

See ``docs/security.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from rt3d_mlir.contracts.checkpoint import (
    TRUST_FLAG,
    checkpoint_from_dict,
    is_checkpoint,
    pickle_refusal,
    torch_load,
)
from rt3d_mlir.errors import ModelLoadError

ACCEPTED = (
    "an rt3d checkpoint, a torch.export ExportedProgram (.pt2) or a pickled nn.Module (.pt, trusted only)"
)
_PAYLOAD_CONFIG = re.compile(r"data/(weights|constants)/[^/]+_(weights|constants)_config\.json")


@dataclass
class LoadedModel:
    """A model ready for preparation and import."""

    source: str
    module: nn.Module | None = None
    program: torch.export.ExportedProgram | None = None
    group_shape: tuple[int, int] | None = None  # from checkpoint metadata
    int8_scales: dict[str, float] | None = None  # calibrated int8 input scales, from the checkpoint
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


# ------------------------------------------------------------------ .pt2 archives


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Force every ``torch.load`` in this block to ``weights_only=True`` (even an explicit False)."""
    keys = ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def pickled_parts_of_pt2(source: str) -> list[str]:
    """The members of a .pt2 archive that ``torch.export.load`` would unpickle, by archive path.

    Reads only the archive's JSON payload configs; raises ModelLoadError if
    the file is not a readable ZIP archive.
    """
    try:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
            found = []
            for name in names:
                inner = name.split("/", 1)[-1]
                if not _PAYLOAD_CONFIG.fullmatch(inner):
                    continue
                info = archive.getinfo(name)
                if info.file_size > 64 << 20:
                    raise ModelLoadError(f"'{source}': {inner} is implausibly large ({info.file_size} bytes)")
                try:
                    config = json.loads(archive.read(name)).get("config", {})
                except (ValueError, AttributeError):
                    raise ModelLoadError(f"'{source}': {inner} is not a valid payload config") from None
                if not isinstance(config, dict):
                    raise ModelLoadError(f"'{source}': {inner} is not a valid payload config")
                for key, meta in config.items():
                    path = str(meta.get("path_name", "")) if isinstance(meta, dict) else ""
                    if (
                        not isinstance(meta, dict)
                        or meta.get("use_pickle")
                        or path.startswith(("custom_obj_", "opaque_obj_"))
                    ):
                        found.append(f"{inner}:{key}")
            for name in names:
                inner = name.split("/", 1)[-1]
                if re.fullmatch(r"data/(weights|constants)/[^/]+\.pt", inner):  # the pre-2.8 pickled layout
                    found.append(inner)
            return found
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ModelLoadError(
            f"cannot read '{source}' as an ExportedProgram (truncated or not a .pt2 archive?): "
            f"{_first_line(err)}"
        ) from None


def _load_pt2_without_code(source: str) -> torch.export.ExportedProgram:
    """The archive's ExportedProgram through the deserializer alone (no AOTInductor, no pickles)."""
    from torch.export.pt2_archive._package import PT2ArchiveReader, _load_exported_programs
    from torch.export.pt2_archive.constants import ARCHIVE_VERSION_PATH, ARCHIVE_VERSION_VALUE

    with _weights_only_loads(), PT2ArchiveReader(source) as reader:
        names = reader.get_file_names()
        version = reader.read_string(ARCHIVE_VERSION_PATH) if ARCHIVE_VERSION_PATH in names else None
        if version != ARCHIVE_VERSION_VALUE:
            raise ModelLoadError(
                f"'{source}' is not a .pt2 archive of the version torch {torch.__version__} writes; "
                "export and save it again with torch.export.save"
            )
        programs = _load_exported_programs(reader, names, None)
    if "model" not in programs:
        raise ModelLoadError(f"'{source}' holds no ExportedProgram named 'model'")
    return programs["model"]


def load_exported_program(source: str, trust_pickle: bool = False) -> torch.export.ExportedProgram:
    """Read a ``torch.export.save`` archive; refuse pickled parts unless ``trust_pickle``."""
    try:
        if trust_pickle:
            return torch.export.load(source)
        pickled = pickled_parts_of_pt2(source)
        if pickled:
            more = f" and {len(pickled) - 1} more" if len(pickled) > 1 else ""
            raise ModelLoadError(
                f"'{source}' stores {pickled[0]}{more} as a pickle, and unpickling can run code "
                f"from the file; {TRUST_FLAG}"
            )
        return _load_pt2_without_code(source)
    except ModelLoadError:
        raise
    except pickle.UnpicklingError as err:
        raise pickle_refusal(source, err, "holds pickled Python objects") from None
    except Exception as err:  # torch raises many kinds for bad archives
        raise ModelLoadError(f"cannot read '{source}' as an ExportedProgram: {_first_line(err)}") from None


def load_model_file(path: str | os.PathLike[str], trust_pickle: bool = False) -> LoadedModel:
    """Load a model file, or raise ModelLoadError with one clear line.

    ``trust_pickle`` allows files whose loading runs code from the file (a
    pickled ``nn.Module``, pickled weights in a ``.pt2``); leave it off for
    files you did not make.
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise ModelLoadError(f"model file '{source}' does not exist")
    if os.path.isdir(source):
        raise ModelLoadError(f"'{source}' is a directory, not a model file")
    if not os.path.isfile(source):
        raise ModelLoadError(f"'{source}' is not a regular file")
    if source.endswith(".pt2"):
        program = load_exported_program(source, trust_pickle)
        return LoadedModel(source, program=program, default_input_shape=_input_shape_of_program(program))
    obj = torch_load(source, trust_pickle)
    if is_checkpoint(obj):
        checkpoint = checkpoint_from_dict(obj, source)
        module = checkpoint.build_module()
        shape = checkpoint.input_shape or _input_shape_of_module(module)
        return LoadedModel(
            source,
            module=module,
            group_shape=checkpoint.group_shape,
            int8_scales=checkpoint.int8_scales,
            default_input_shape=tuple(shape) if shape else None,
        )
    if isinstance(obj, torch.export.ExportedProgram):
        return LoadedModel(source, program=obj, default_input_shape=_input_shape_of_program(obj))
    if isinstance(obj, nn.Module):
        return LoadedModel(source, module=obj, default_input_shape=_input_shape_of_module(obj))
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(
            f"'{source}' holds a bare state_dict; save an rt3d checkpoint or an ExportedProgram (.pt2)"
        )
    raise ModelLoadError(f"'{source}' holds a {type(obj).__name__}, not a model; expected {ACCEPTED}")
