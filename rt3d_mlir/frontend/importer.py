"""Import a PyTorch model into linalg-on-tensors with torch-mlir's FX importer."""

from __future__ import annotations

import io
import logging
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr

import numpy as np
import torch
from torch import nn
from torch_mlir import fx, ir
from torch_mlir.compiler_utils import TorchMlirCompilerError
from torch_mlir.dialects import torch as torch_d
from torch_mlir.extras.fx_decomp_util import get_decomposition_table
from torch_mlir.extras.fx_importer import FxImporter, FxImporterHooks, GraphNodeImporter, InputInfo

from rt3d_mlir.diagnostics import Reported, kept_errors
from rt3d_mlir.dialect import load_dialect
from rt3d_mlir.errors import UnsupportedModelError, describe_location
from rt3d_mlir.frontend.preparation import prepare_for_import, prepare_graph, refuse_attention

FUNCTION_NAME = "forward"
MAX_ELEMENTS = (1 << 31) - 1  # per tensor: generated kernels use 32-bit offsets


class InlineWeightHooks(FxImporterHooks):
    """Import weights as inline ``DenseElementsAttr`` built from the tensor's buffer.

    The default path copies every weight through ``tensor.tolist()`` into a
    ``dense_resource`` blob (about 18 s for C3D) that Python passes cannot read
    back. Building the attribute from the numpy view is fast and keeps the
    values readable by ``rt3d-recognize-kgs``.
    """

    def resolve_literal(
        self, gni: GraphNodeImporter, literal: object, info: InputInfo | None
    ) -> ir.Value | None:
        if not isinstance(literal, torch.Tensor) or literal.numel() < 2:
            return None
        if literal.dtype != torch.float32 or literal.is_sparse:
            return None
        array = np.ascontiguousarray(literal.detach().cpu().numpy())
        attr = ir.DenseElementsAttr.get(array)
        vtensor_type = gni._cc.tensor_to_vtensor_type(literal)
        return ir.Operation.create(
            name="torch.vtensor.literal", results=[vtensor_type], attributes={"value": attr}
        ).result


_LEGALIZE = re.compile(r"failed to legalize operation '([^']+)'")
# An op torch-mlir has no class for is imported as a generic torch.operator naming it.
_GENERIC_NAME = re.compile(r'"torch\.operator"\([^)]*\) <\{name = "([^"]+)"')


def _unsupported_message(diagnostics: Sequence[Reported], report: str) -> str:
    for d in diagnostics:
        match = _LEGALIZE.search(d.message)
        if match:
            generic = _GENERIC_NAME.search(d.message)
            name = generic.group(1) if generic else match.group(1)
            return f"unsupported operator '{name}' at {describe_location(d.location)}"
    if diagnostics:
        first = diagnostics[0]
        return f"{first.message.splitlines()[0]} at {describe_location(first.location)}"
    lines = [ln.strip() for ln in report.splitlines() if ln.strip()]
    return lines[0] if lines else "unknown error"


@contextmanager
def _quiet() -> Iterator[None]:
    """No warnings, stderr or log records from torch and torch-mlir while they run: what fails is
    reported as one line by the caller (torch logs through handlers that hold the real stderr)."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def export_model(model: nn.Module, example_input: torch.Tensor) -> torch.export.ExportedProgram:
    """``torch.export`` of an eval-mode module, or UnsupportedModelError with torch's first line."""
    try:
        with _quiet():
            return torch.export.export(model, (example_input,))
    except Exception as err:
        raise UnsupportedModelError(
            f"cannot export the model with torch.export: {_first_line(err)}"
        ) from None


# Kept whole so that fold_batch_norms finds them after decomposition (torch-mlir lowers those left),
# and nearest_upsamplings the 3D nearest upsamplings (decomposed, they are gathers torch-mlir does not
# lower).
_KEPT_WHOLE = (
    torch.ops.aten._native_batch_norm_legit_no_training.default,
    torch.ops.aten.upsample_nearest3d.vec,
    torch.ops.aten.upsample_nearest3d.default,
)


def decompose(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """The program in the core ATen ops torch-mlir lowers (its own decomposition table), batch norms
    and 3D nearest upsamplings kept whole."""
    table = {op: fn for op, fn in get_decomposition_table().items() if op not in _KEPT_WHOLE}
    try:
        with _quiet():
            return program.run_decompositions(table)
    except Exception as err:
        raise UnsupportedModelError(f"cannot decompose the exported model: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def import_to_linalg(
    model: nn.Module | torch.export.ExportedProgram,
    example_input: torch.Tensor,
    int8_scales: Mapping[str, float] | None = None,
) -> ir.Module:
    """Import to linalg-on-tensors in the bundled MLIR, with the rt3d dialect loaded.

    A module is prepared (pruning masks baked in) and exported first; then,
    whatever the source, the exported graph is prepared
    (:func:`~rt3d_mlir.frontend.preparation.prepare_graph`: grouped
    convolutions made ordinary, batch norms folded), so ``.pt``, ``.pt2`` and
    checkpoints of one model import to the same IR. With ``int8_scales``
    the layers they name compute the int8 scheme (weights and inputs on
    their int8 grids). The
    function is named ``forward``. Raises UnsupportedModelError with the
    operator and its source location when torch.export or torch-mlir cannot
    handle the model; MLIR diagnostics are captured, not printed.
    """
    if isinstance(model, torch.export.ExportedProgram):
        program = model
    else:
        program = export_model(prepare_for_import(model), example_input)
    program = decompose(program)
    refuse_attention(program)
    prepare_graph(program, int8_scales)
    context = ir.Context()
    torch_d.register_dialect(context)
    with kept_errors(context) as diagnostics:
        module = _import(program, example_input, context, diagnostics)
    _require_lowered(module)
    load_dialect(module.context)
    return module


def _import(
    program: torch.export.ExportedProgram,
    example_input: torch.Tensor,
    context: ir.Context,
    diagnostics: Sequence[Reported],
) -> ir.Module:
    """torch-mlir's import to linalg, its failures as UnsupportedModelError."""
    try:
        with _quiet():
            module = fx.export_and_import(
                program,
                example_input,
                output_type="linalg-on-tensors",
                fx_importer=FxImporter(context=context, hooks=InlineWeightHooks()),
                func_name=FUNCTION_NAME,
                decomposition_table={},  # decomposed above, before the graph was prepared
            )
    except TorchMlirCompilerError as err:
        raise UnsupportedModelError(
            f"cannot lower the model to linalg: {_unsupported_message(diagnostics, str(err))}"
        ) from None
    except Exception as err:
        raise UnsupportedModelError(f"cannot import the exported model: {_first_line(err)}") from None
    return module


# What the compile targets take from the import (torch-mlir's tm_tensor ops, e.g. sort and scan,
# are not among them).
_LOWERED_DIALECTS = frozenset(("builtin", "func", "arith", "math", "linalg", "tensor", "scf", "ml_program"))


def _require_lowered(module: ir.Module) -> None:
    """UnsupportedModelError naming the first imported op no compile target can take."""
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name.split(".", 1)[0] not in _LOWERED_DIALECTS:
            found.append(op)
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit, ir.WalkOrder.PRE_ORDER)
    if found:
        raise UnsupportedModelError(
            f"unsupported operator '{found[0].name}' at {describe_location(found[0].location)}"
        )


def check_input_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    if len(shape) not in (4, 5):
        raise UnsupportedModelError(
            f"input shape must have 5 dimensions (N,C,D,H,W) or, for a 2D model, 4 (N,C,H,W), got "
            f"{len(shape)}: " + ",".join(str(d) for d in shape)
        )
    if min(shape) < 1:
        raise UnsupportedModelError(f"input shape dimensions must be positive, got {shape}")
    elements = math.prod(shape)
    if elements > MAX_ELEMENTS:
        raise UnsupportedModelError(
            f"input shape {shape} has {elements} elements; the compiled kernels index tensors with "
            f"32-bit offsets (at most {MAX_ELEMENTS} elements)"
        )
    return shape
