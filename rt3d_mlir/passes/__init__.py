"""Compiler passes, one per module, registered by name for pipelines and ``rt3d-opt``."""

from rt3d_mlir.passes import (  # noqa: F401  (imported to register the passes)
    expand_math,
    externalize_weights,
    fuse_elementwise,
    gpu_conv,
    gpu_copy,
    gpu_generic,
    gpu_matmul,
    lower_kgs_to_linalg,
    memref_copy_to_linalg,
    pack_kernel_groups,
    pad_channels,
    propagate_layout,
    quantize_convs,
    recognize_kgs,
    reorder_loops,
    vectorize,
    vectorize_broadcast,
    vectorize_depthwise,
    vectorize_elementwise,
    vectorize_matmul,
    vectorize_pad,
    vectorize_pool,
    vectorize_quantize,
    vectorize_reduction,
)
from rt3d_mlir.passes.framework import PASS_REGISTRY, Pass, PassFailure, register_pass
from rt3d_mlir.passes.pipeline import check_pipeline, parse_pipeline, run_pipeline

__all__ = [
    "PASS_REGISTRY",
    "Pass",
    "PassFailure",
    "check_pipeline",
    "parse_pipeline",
    "register_pass",
    "run_pipeline",
]
