"""Code generation targets (re-exported from :mod:`rt3d_mlir.targets`)."""

from rt3d_mlir.targets import TARGETS, Target, get_target, host_target

__all__ = ["TARGETS", "Target", "get_target", "host_target"]
