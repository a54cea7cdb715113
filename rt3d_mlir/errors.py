"""Errors the tools report to users as one line, without a traceback."""

from __future__ import annotations

import re

_FRAME = re.compile(r'"([^"]+)":(\d+):\d+')
MAX_MESSAGE = 600  # characters of one error line


class Rt3dError(Exception):
    """A user-facing failure: bad input, unsupported model, missing toolchain.

    The message is one line that says what went wrong and, where possible,
    what to do about it. Command-line tools print it to stderr and exit 1.
    """


class ModelLoadError(Rt3dError):
    """A model file is missing, truncated or not a model."""


class UnsupportedModelError(Rt3dError):
    """The model uses an operator or shape the compiler cannot handle."""


class ToolchainError(Rt3dError):
    """A tool the chosen target needs is not installed or failed."""


class PipelineError(Rt3dError):
    """A pass pipeline could not be parsed or a pass failed."""


class ArtifactError(Rt3dError):
    """A compiled artifact is missing, corrupt, or called with wrong inputs."""


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one line of at most ``limit`` characters (lines joined with "; ")."""
    line = "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


_STACK_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def describe_stack_trace(trace: str | None) -> str:
    """The ``file:line`` frames of a Python stack trace (as torch.export keeps one per graph node),
    innermost first, like :func:`describe_location`."""
    found = _STACK_FRAME.findall(trace or "")
    frames = [f"{path.split('site-packages/', 1)[-1]}:{line}" for path, line in found]
    return " <- ".join(dict.fromkeys(reversed(frames))) if frames else "an unknown place in the model"


def describe_location(location: object) -> str:
    """The ``file:line`` frames of an MLIR location, innermost first (site-packages paths shortened)."""
    frames = []
    for path, line in _FRAME.findall(str(location)):
        path = path.split("site-packages/", 1)[-1]
        frames.append(f"{path}:{line}")
    return " <- ".join(dict.fromkeys(frames)) if frames else one_line(str(location), 200)
