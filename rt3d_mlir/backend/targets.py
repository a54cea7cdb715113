"""Compile targets: one object per target with its pipeline stages, its step names and its emit step.

A compilation asks the target for a :class:`Build` (``target.open(options)``,
a context manager that checks the options and the toolchain before any work
and owns the build's temporary files), runs the build's stages on the
imported module in order, then lets it emit the artifact::

    with compile_target("host").open(BuildOptions()) as build:
        for name, run in build.stages("forward", group_shape):
            run(module)
        build.emit(module, "model.so", step)

``STEPS`` of a target name every progress step after load and import.
The machines the targets generate code for are in :mod:`rt3d_mlir.targets`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import ClassVar

from torch_mlir import ir

from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.targets import TARGETS, Target, get_target, host_target

Stage = tuple[str, Callable[[ir.Module], None]]


@dataclass(frozen=True)
class BuildOptions:
    cpu: str | None = None  # CPU targets: the CPU to tune for (default: the target's)
    reference_kernels: bool = False  # CPU targets: dense masked linalg instead of generated kernels
    schedule: str = ""  # CPU targets: rt3d-reorder-loops options for every convolution
    keep_intermediates: str | None = None  # CPU targets: keep the IR and sources there
    tune: bool = False  # host: each conv's schedule measured on this machine (backend/tuning.py)
    tune_cache: str | None = None  # where measured schedules are kept (default: the user's cache)
    precision: str = "fp32"  # CPU targets: of activations between convs and their weights (bf16, fp16)


class Build(abc.ABC):
    """One compilation for one target."""

    @abc.abstractmethod
    def stages(self, function: str, group_shape: tuple[int, int] | None) -> list[Stage]:
        """(step name, action on the module) in order, taking the model ``function`` from imported
        linalg to what ``emit`` takes; ``group_shape`` forces the kernel-group shape."""

    @abc.abstractmethod
    def emit(self, module: ir.Module, output: str, step: Callable[[str], None]) -> None:
        """Write the artifact of the lowered ``module`` to ``output`` (announcing its steps)."""


class CompileTarget(abc.ABC):
    name: ClassVar[str]
    STEPS: ClassVar[tuple[str, ...]]  # the stages' and emit's step names

    @abc.abstractmethod
    def open(self, options: BuildOptions) -> AbstractContextManager[Build]:
        """A build with ``options``, checked before any work; its temporary files go when it closes."""


def compile_target(name: str) -> CompileTarget:
    """The compile target called ``name`` (``host``, ``aarch64``, ``spirv``)."""
    from rt3d_mlir.backend.cpu import CpuTarget
    from rt3d_mlir.backend.spirv import SpirvTarget

    machine = get_target(name)
    return SpirvTarget() if machine.gpu else CpuTarget(machine)


def target_steps(name: str) -> tuple[str, ...]:
    """The progress steps of compiling for ``name`` after load and import (none if unknown)."""
    try:
        return compile_target(name).STEPS
    except Rt3dError:
        return ()


__all__ = [
    "TARGETS",
    "Build",
    "BuildOptions",
    "CompileTarget",
    "Stage",
    "Target",
    "compile_target",
    "get_target",
    "host_target",
    "target_steps",
]
