"""Lowered IR to artifacts: targets, pipelines, toolchain calls, the C ABI."""

from rt3d_mlir.backend.shared_object import build_shared_object, require_toolchain
from rt3d_mlir.backend.targets import TARGETS, Target, get_target

__all__ = ["TARGETS", "Target", "build_shared_object", "get_target", "require_toolchain"]
