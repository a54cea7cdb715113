"""Lowered IR to artifacts: one compile target per kind (``cpu``, ``spirv``), the C ABI glue, the tools."""

from rt3d_mlir.backend.targets import BuildOptions, CompileTarget, compile_target, target_steps

__all__ = ["BuildOptions", "CompileTarget", "compile_target", "target_steps"]
