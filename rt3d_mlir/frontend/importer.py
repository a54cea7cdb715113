"""Import a PyTorch model into linalg-on-tensors with torch-mlir's FX importer."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Sequence
from contextlib import redirect_stderr

import numpy as np
import torch
from torch import nn
from torch_mlir import fx, ir
from torch_mlir.compiler_utils import TorchMlirCompilerError
from torch_mlir.dialects import torch as torch_d
from torch_mlir.extras.fx_importer import FxImporter, FxImporterHooks, GraphNodeImporter, InputInfo

from rt3d_mlir.dialect import load_dialect
from rt3d_mlir.errors import UnsupportedModelError

FUNCTION_NAME = "forward"


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
_FRAME = re.compile(r'"([^"]+)":(\d+):\d+')


def _short_path(path: str) -> str:
    marker = "site-packages/"
    return path.split(marker, 1)[1] if marker in path else path


def _describe_location(location: str) -> str:
    """``file:line`` frames of an MLIR location, innermost first."""
    frames = [f"{_short_path(f)}:{line}" for f, line in _FRAME.findall(location)]
    return " <- ".join(frames) if frames else location


def _unsupported_message(diagnostics: list[tuple[str, str]], report: str) -> str:
    for location, message in diagnostics:
        match = _LEGALIZE.search(message)
        if match:
            return f"unsupported operator '{match.group(1)}' at {_describe_location(location)}"
    if diagnostics:
        location, message = diagnostics[0]
        return f"{message.splitlines()[0]} at {_describe_location(location)}"
    lines = [ln.strip() for ln in report.splitlines() if ln.strip()]
    return lines[0] if lines else "unknown error"


def import_to_linalg(
    model: nn.Module | torch.export.ExportedProgram, example_input: torch.Tensor
) -> ir.Module:
    """Import to linalg-on-tensors in the bundled MLIR, with the rt3d dialect loaded.

    The function is named ``forward``. Raises UnsupportedModelError with the
    operator and its source location when torch.export or torch-mlir cannot
    handle the model; MLIR diagnostics are captured, not printed.
    """
    context = ir.Context()
    torch_d.register_dialect(context)
    diagnostics: list[tuple[str, str]] = []

    def capture(diagnostic: ir.Diagnostic) -> bool:
        if diagnostic.severity == ir.DiagnosticSeverity.ERROR:
            diagnostics.append((str(diagnostic.location), str(diagnostic.message)))
        return True  # handled: do not print

    handler = context.attach_diagnostic_handler(capture)
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            module = fx.export_and_import(
                model,
                example_input,
                output_type="linalg-on-tensors",
                fx_importer=FxImporter(context=context, hooks=InlineWeightHooks()),
                func_name=FUNCTION_NAME,
            )
    except TorchMlirCompilerError as err:
        raise UnsupportedModelError(
            f"cannot lower the model to linalg: {_unsupported_message(diagnostics, str(err))}"
        ) from None
    except Exception as err:
        text = str(err).strip()
        first = text.splitlines()[0] if text else type(err).__name__
        raise UnsupportedModelError(f"cannot export the model with torch.export: {first}") from None
    finally:
        handler.detach()
    load_dialect(module.context)
    return module


def check_input_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    if len(shape) != 5:
        raise UnsupportedModelError(
            f"input shape must have 5 dimensions (N,C,D,H,W), got {len(shape)}: "
            + ",".join(str(d) for d in shape)
        )
    if min(shape) < 1:
        raise UnsupportedModelError(f"input shape dimensions must be positive, got {shape}")
    return shape
