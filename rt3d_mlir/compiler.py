"""The compiler driver: a model (file, nn.Module or ExportedProgram) to an artifact."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

import torch
from torch import nn

from rt3d_mlir.backend import build_shared_object, get_target, require_toolchain
from rt3d_mlir.backend.pipelines import sparse_conv_pipeline, spirv_pipeline
from rt3d_mlir.backend.spirv_binary import build_spirv_artifact
from rt3d_mlir.errors import ModelLoadError, UnsupportedModelError
from rt3d_mlir.fileio import check_output_directory, check_output_path
from rt3d_mlir.frontend import (
    FUNCTION_NAME,
    LoadedModel,
    check_input_shape,
    import_to_linalg,
    load_model_file,
)
from rt3d_mlir.passes import run_pipeline

ModelLike = str | os.PathLike[str] | nn.Module | torch.export.ExportedProgram


def _loaded(model: ModelLike, trust_pickle: bool) -> LoadedModel:
    if isinstance(model, str | os.PathLike):
        return load_model_file(model, trust_pickle=trust_pickle)
    if isinstance(model, torch.export.ExportedProgram):
        return LoadedModel("<ExportedProgram>", program=model)
    if isinstance(model, nn.Module):
        return LoadedModel("<nn.Module>", module=model)
    raise ModelLoadError(f"cannot compile a {type(model).__name__}; pass a model file or nn.Module")


def _resolve_input_shape(
    loaded: LoadedModel,
    example_input: torch.Tensor | None,
    input_shape: Sequence[int] | None,
) -> tuple[int, ...]:
    if example_input is not None:
        shape = tuple(example_input.shape)
    elif input_shape is not None:
        shape = tuple(input_shape)
    elif loaded.default_input_shape is not None:
        shape = loaded.default_input_shape
    else:
        raise UnsupportedModelError(
            f"no input shape known for {loaded.source}; give one (--input-shape N,C,D,H,W)"
        )
    shape = check_input_shape(shape)
    if loaded.program is not None and loaded.default_input_shape not in (None, shape):
        raise UnsupportedModelError(
            f"the ExportedProgram was exported for input shape {loaded.default_input_shape}, "
            f"not {shape}"
        )
    return shape


def compile_model(
    model: ModelLike,
    example_input: torch.Tensor | None = None,
    *,
    output: str | os.PathLike[str],
    target: str = "host",
    input_shape: Sequence[int] | None = None,
    group_shape: tuple[int, int] | None = None,
    cpu: str | None = None,
    keep_intermediates: str | None = None,
    reference_kernels: bool = False,
    schedule: str = "",
    trust_pickle: bool = False,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Compile a model to an artifact at ``output`` and return its path.

    ``group_shape`` forces the kernel-group shape used to discover sparsity;
    by default it comes from the checkpoint's metadata, else the largest
    candidate each layer's zeros fit. ``reference_kernels`` replaces the
    generated vector kernels by the (slow) dense masked linalg lowering.
    ``schedule`` overrides the loop schedule chosen for every convolution
    (``rt3d-reorder-loops`` options, e.g. ``"tile-cols=8 vector-dim=width"``).
    ``trust_pickle`` allows model files whose loading runs code from the
    file (a pickled ``nn.Module``); see ``docs/security.md``.
    """
    step = progress or (lambda _msg: None)
    if not re.fullmatch(r"(\s*[a-z-]+=[A-Za-z0-9_]+)*\s*", schedule):
        raise UnsupportedModelError(
            f"schedule must be 'option=value' pairs of rt3d-reorder-loops, got '{schedule}'"
        )
    target_info = get_target(target)
    toolchain = None
    if target_info.gpu:
        if cpu or reference_kernels or schedule:
            raise UnsupportedModelError(
                "--cpu, --schedule and --reference-kernels apply to CPU targets, not to spirv"
            )
    else:
        toolchain = require_toolchain(target_info, cpu)
    output = os.fspath(output)
    check_output_path(output)  # before minutes of work
    if keep_intermediates:
        check_output_directory(keep_intermediates)
    step("load")
    loaded = _loaded(model, trust_pickle)
    shape = _resolve_input_shape(loaded, example_input, input_shape)
    x = example_input if example_input is not None else torch.zeros(shape)
    step("import")
    module = import_to_linalg(loaded.program if loaded.program is not None else loaded.module, x)
    with module.context:
        step("sparse convolutions")
        if target_info.gpu:
            run_pipeline(module, f"builtin.module({spirv_pipeline(group_shape or loaded.group_shape)})")
            build_spirv_artifact(module, FUNCTION_NAME, output, progress=step)
            return output
        pipeline = sparse_conv_pipeline(
            group_shape or loaded.group_shape,
            target=target,
            reference=reference_kernels,
            schedule=schedule,
        )
        run_pipeline(module, f"builtin.module({pipeline})")
        assert toolchain is not None
        build_shared_object(
            module,
            FUNCTION_NAME,
            output,
            toolchain,
            keep_dir=keep_intermediates,
            progress=step,
        )
    return output
