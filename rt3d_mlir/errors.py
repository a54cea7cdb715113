"""Errors the tools report to users as one line, without a traceback."""

from __future__ import annotations


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
