"""The compiler driver: a model (file, nn.Module or ExportedProgram) to an artifact.

load -> import (export, fold batch norms, torch-mlir to linalg) -> the
target's stages (:mod:`rt3d_mlir.backend.targets`) -> the target's emit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn
from torch_mlir import ir

from rt3d_mlir.backend import BuildOptions, compile_target, target_steps
from rt3d_mlir.diagnostics import Reported, kept_errors, reported
from rt3d_mlir.errors import ModelLoadError, UnsupportedModelError, describe_location, one_line
from rt3d_mlir.fileio import check_output_directory, check_output_path
from rt3d_mlir.frontend import (
    FUNCTION_NAME,
    LoadedModel,
    check_input_shape,
    import_to_linalg,
    load_model_file,
)

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


def stage_failure(stage: str, err: ir.MLIRError, kept: Sequence[Reported]) -> UnsupportedModelError:
    """One line for a stage that failed on the model: its first error, the op and where in the model."""
    found = [reported(d) for d in err.error_diagnostics] + list(kept)
    if not found:
        return UnsupportedModelError(f"cannot compile the model ({stage}): {one_line(err.message, 300)}")
    first = found[0]
    about = f"'{first.op}': " if first.op else ""
    where = describe_location(first.location)
    return UnsupportedModelError(
        f"cannot compile the model ({stage}): {about}{one_line(first.message, 300)} at {where}"
    )


FRONT_STEPS = ("load", "import")


def compile_steps(target: str) -> tuple[str, ...]:
    """Every progress step of compiling for ``target``, in order (what ``progress`` receives)."""
    return FRONT_STEPS + target_steps(target)


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
    tune: bool = False,
    tune_cache: str | os.PathLike[str] | None = None,
    precision: str = "fp32",
    int8_scales: Mapping[str, float] | None = None,
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
    ``tune`` (host target) times candidate schedules of each convolution
    layer not yet in the schedule cache on this machine and builds with the
    fastest (``tune_cache``: the cache file, default
    ``$XDG_CACHE_HOME/rt3d-mlir/schedules.json``); ``schedule`` still
    overrides what it chose.
    ``precision``: ``"bf16"`` (CPU targets) stores the activations between
    convolutions in bfloat16 and computes those convolutions from bf16
    weights with f32 accumulators (AMX or AVX-512 BF16 dot products where
    the CPU has them); ``"fp16"`` does the same in IEEE half (on AArch64
    with f16 arithmetic: blocks of 8 filters, each entry's channels summed
    by f16 FMAs into f32 accumulators; elsewhere widened to f32 FMAs, which
    halves the bytes but on x86 measured slower than fp32: use bf16 there; on
    spirv the buffers between convs are f16 and each entry is summed in f16);
    inputs, outputs and other layers stay float32. ``"int8"`` computes the
    int8 scheme (:mod:`rt3d_mlir.quantization`) with the
    calibrated input scales of a checkpoint made by ``rt3d-prune --int8``
    (or ``int8_scales``, by module name): every conv and linear layer with a
    scale gets weights and input on their int8 grids, and convs that int8
    kernels take sum int8 products in int32 (AVX-512 VNNI, AArch64 sdot,
    SPIR-V ``OpSDot`` where the Vulkan device has integer dot products).
    A conv whose output only the next int8 conv reads stores it in int8, as
    that conv reads it (on SPIR-V, where that conv computes in int8 too);
    other values between layers stay float32.
    ``trust_pickle`` allows model files whose loading runs code from the
    file (a pickled ``nn.Module``); see ``docs/security.md``. ``progress``
    is called with each step's name (:func:`compile_steps`) as it starts.
    """
    step = progress or (lambda _msg: None)
    compiler = compile_target(target)
    options = BuildOptions(
        cpu=cpu,
        reference_kernels=reference_kernels,
        schedule=schedule,
        keep_intermediates=keep_intermediates,
        tune=tune,
        tune_cache=os.fspath(tune_cache) if tune_cache is not None else None,
        precision=precision,
    )
    output = os.fspath(output)
    check_output_path(output)  # before minutes of work
    if keep_intermediates:
        check_output_directory(keep_intermediates)
    with compiler.open(options) as build:  # options and toolchain checked before any work
        step("load")
        loaded = _loaded(model, trust_pickle)
        shape = _resolve_input_shape(loaded, example_input, input_shape)
        x = example_input if example_input is not None else torch.zeros(shape)
        scales = None
        if precision == "int8":
            scales = int8_scales if int8_scales is not None else loaded.int8_scales
            if scales is None:
                raise UnsupportedModelError(
                    "precision int8 needs calibrated int8 input scales: compile a checkpoint made by "
                    "'rt3d-prune --int8'"
                )
        step("import")
        module = import_to_linalg(loaded.program if loaded.program is not None else loaded.module, x, scales)
        with module.context:
            with kept_errors(module.context) as errors:
                for name, run in build.stages(FUNCTION_NAME, group_shape or loaded.group_shape):
                    step(name)
                    try:
                        run(module)
                    except ir.MLIRError as err:
                        raise stage_failure(name, err, errors) from None
            build.emit(module, output, step)
    return output
