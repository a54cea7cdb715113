"""The ``rt3d`` dialect: ops that carry kernel-group sparsity through the compiler."""

from rt3d_mlir.dialect.rt3d import (
    ACTIVATIONS,
    KgsConv3dOp,
    KgsConv3dParams,
    PackedConv3dOp,
    PackedConv3dParams,
    Rt3dDialect,
    build_kgs_conv3d,
    build_packed_conv3d,
    conv_output_shape,
    kgs_conv3d_operands,
    kgs_conv3d_params,
    load_dialect,
    packed_conv3d_params,
)

__all__ = [
    "ACTIVATIONS",
    "KgsConv3dOp",
    "KgsConv3dParams",
    "PackedConv3dOp",
    "PackedConv3dParams",
    "Rt3dDialect",
    "build_kgs_conv3d",
    "build_packed_conv3d",
    "conv_output_shape",
    "kgs_conv3d_operands",
    "kgs_conv3d_params",
    "load_dialect",
    "packed_conv3d_params",
]
