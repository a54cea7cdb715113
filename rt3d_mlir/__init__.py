"""rt3d-mlir: prune 3D CNNs into kernel-group sparsity and compile them with MLIR.

``rt3d_mlir.load(path)`` runs a compiled artifact (needs only numpy);
``rt3d_mlir.compile(model, example_input, output=..., target=...)`` is the
Python face of ``rt3d-compile``.
"""

from __future__ import annotations

from typing import Any

from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.runtime import CompiledModel, load

__version__ = "0.1.0"


def compile(*args: Any, **kwargs: Any) -> str:  # noqa: A001 - the public name users expect
    """Compile a model to an artifact; see :func:`rt3d_mlir.compiler.compile_model`."""
    from rt3d_mlir.compiler import compile_model

    return compile_model(*args, **kwargs)


__all__ = ["CompiledModel", "Rt3dError", "compile", "load"]
