"""The layering rules of docs/architecture.md, enforced on the source and on what imports load."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from rt3d_mlir.passes import PASS_REGISTRY

PACKAGE = Path(__file__).resolve().parents[2] / "rt3d_mlir"
LIT_PASSES = Path(__file__).resolve().parents[1] / "lit" / "passes"

# unit -> the other units it may import (a unit is a subpackage or a top-level module of rt3d_mlir).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "processes": set(),
    "sparsity": set(),
    "ir_matchers": {"kernel_packing"},  # INT8_MAX: the int8 scheme the importer writes
    "diagnostics": set(),
    "boxes": set(),
    "models": {"boxes"},
    "quantization": {"kernel_packing"},
    "fileio": {"errors"},
    "targets": {"errors"},
    "kernel_packing": {"sparsity"},
    "data": {"boxes", "errors"},
    "contracts": {"errors", "fileio", "kernel_packing", "models", "quantization"},
    "runtime": {"contracts", "errors", "fileio", "processes"},
    "pruning": {"contracts", "data", "errors", "fileio", "models", "quantization", "sparsity"},
    "dialect": {"kernel_packing", "sparsity"},
    "codegen": {"dialect", "errors", "ir_matchers", "kernel_packing"},
    "passes": {"codegen", "dialect", "errors", "ir_matchers", "kernel_packing", "sparsity", "targets"},
    "frontend": {"contracts", "diagnostics", "dialect", "errors", "fileio", "models", "quantization"},
    "backend": {
        "codegen", "contracts", "dialect", "errors", "fileio", "ir_matchers", "passes", "processes",
        "runtime", "sparsity", "targets", "kernel_packing",
    },
    "compiler": {"backend", "diagnostics", "errors", "fileio", "frontend", "targets"},
    "benchmarking": {
        "__init__", "compiler", "contracts", "frontend", "models", "pruning", "quantization", "runtime",
        "sparsity",
    },
    "latency": {"benchmarking", "compiler", "errors", "fileio", "pruning", "runtime"},  # measured tables
    "streaming": {"data", "models"},  # rt3d-stream's windows, detections and slices (no runtime)
    "__init__": {"compiler", "errors", "runtime"},
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> the files where it happens (module and function level)."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
        source = _unit(module)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rt3d_mlir"):
                targets = [f"rt3d_mlir.{a.name}" for a in node.names] if node.module == "rt3d_mlir" else [
                    node.module
                ]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("rt3d_mlir.")]
            else:
                continue
            for target in targets:
                unit = _unit(target)
                if target.split(".")[1:2] in (["compile"], ["load"], ["Rt3dError"], ["CompiledModel"]):
                    unit = "__init__"  # rt3d_mlir.compile / load: the package's own face
                if unit != source:
                    edges[(source, unit)].append(str(path.relative_to(PACKAGE.parent)))
    return edges


def test_every_unit_imports_only_what_the_layering_allows():
    violations = [
        f"{source} imports {target} ({', '.join(sorted(set(files)))})"
        for (source, target), files in import_graph().items()
        if source != "tools" and target not in ALLOWED.get(source, set())
    ]
    assert violations == []


def test_tools_are_thin_and_do_not_call_each_other():
    """A command-line tool may use any library module, but no other tool (only tools.cli)."""
    offenders = []
    for path in (PACKAGE / "tools").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rt3d_mlir.tools."):
                if node.module != "rt3d_mlir.tools.cli":
                    offenders.append(f"{path.name} imports {node.module}")
    assert offenders == []


@pytest.mark.parametrize(
    "module, forbidden",
    [
        ("rt3d_mlir.runtime", ("torch_mlir", "torch")),  # a deployed model needs numpy only
        ("rt3d_mlir.contracts.shared_object", ("torch_mlir", "torch")),
        ("rt3d_mlir.contracts.spirv_artifact", ("torch_mlir", "torch")),
        ("rt3d_mlir.contracts.checkpoint", ("torch_mlir",)),
        ("rt3d_mlir.pruning.job", ("torch_mlir",)),  # pruning knows nothing of MLIR
        ("rt3d_mlir.models", ("torch_mlir",)),
        ("rt3d_mlir.data", ("torch_mlir",)),
    ],
)
def test_imports_do_not_load_other_stages(module, forbidden):
    code = f"import sys, {module}; print([m for m in {forbidden!r} if m in sys.modules])"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"importing {module} loaded {result.stdout.strip()}"


def test_every_registered_pass_has_a_lit_test_named_after_it():
    missing = [
        name for name in PASS_REGISTRY if not (LIT_PASSES / f"{name.removeprefix('rt3d-')}.mlir").exists()
    ]
    assert missing == []
