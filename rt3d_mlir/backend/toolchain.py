"""Finding and running the external tools a target needs (LLVM 22 from Debian)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from rt3d_mlir.errors import ToolchainError
from rt3d_mlir.processes import run_process, run_processes

SETUP_HINT = "run scripts/setup.sh (or: apt-get install {package})"


@dataclass(frozen=True)
class Tool:
    command: str  # executable name, e.g. "clang-22"
    package: str  # Debian package that provides it


MLIR_TRANSLATE = Tool("mlir-translate-22", "mlir-22-tools")
CLANG = Tool("clang-22", "clang-22")
LLD = Tool("ld.lld-22", "lld-22")
LLVM_SPLIT = Tool("llvm-split-22", "llvm-22")


def tool_search_path() -> str | None:
    """Where tools are looked up: ``$RT3D_TOOL_PATH`` if set, else ``$PATH``."""
    return os.environ.get("RT3D_TOOL_PATH", os.environ.get("PATH"))


def find_tool(tool: Tool, target: str) -> str:
    path = shutil.which(tool.command, path=tool_search_path())
    if path is None:
        raise ToolchainError(
            f"target '{target}' needs {tool.command}, which is not installed; "
            + SETUP_HINT.format(package=tool.package)
        )
    return path


def run_tool(args: Sequence[str], what: str) -> str:
    """Run a tool; on failure raise a one-line ToolchainError with its first error line.

    Returns what the tool printed (stdout, then stderr).
    """
    return run_tools([args], what, jobs=1)[0]


def run_tools(commands: Sequence[Sequence[str]], what: str, jobs: int) -> list[str]:
    """Run tools, ``jobs`` at a time; the first failure is a one-line ToolchainError (as
    :func:`run_tool`). Returns what each printed."""
    try:
        if len(commands) == 1:
            completed = [run_process(commands[0])]
        else:
            completed = run_processes(commands, jobs)
    except OSError as err:
        raise ToolchainError(f"{what} failed: cannot run {commands[0][0]}: {err.strerror}") from None
    for args, result in zip(commands, completed, strict=True):
        if result.returncode != 0:
            lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
            first = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
            raise ToolchainError(f"{what} failed ({os.path.basename(args[0])}): {first.strip()}")
    return [result.stdout + result.stderr for result in completed]
