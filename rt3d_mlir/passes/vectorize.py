"""rt3d-vectorize: replace each ``rt3d.packed_conv3d`` by a call to its CPU kernel
(``rt3d_conv_kernel_<i>``; depthwise convolutions have their own kernels, ``rt3d-vectorize-depthwise``).

The kernel comes from :mod:`rt3d_mlir.codegen.cpu.conv` (how it maps the
work to vectors is described there); this pass matches the op, fills in the
schedule ``rt3d-reorder-loops`` left unset, and builds the call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.conv import ConvGeometry, conv_kernel_text
from rt3d_mlir.dialect import load_dialect, packed_conv3d_params
from rt3d_mlir.dialect.attributes import DENSE_WEIGHTS_ATTR, KEPT_WEIGHTS_ATTR
from rt3d_mlir.ir_matchers import int_attr, ops_named, static_size
from rt3d_mlir.passes.builders import zero_pad
from rt3d_mlir.passes.framework import Pass, PassFailure, register_pass
from rt3d_mlir.passes.kernel_calls import (
    DISPATCH_PLACEHOLDER,
    KERNEL_PLACEHOLDER,
    add_kernel,
    replace_with_kernel_call,
)
from rt3d_mlir.passes.reorder_loops import choose_tile


@dataclass
class VectorizeOptions:
    pass


@register_pass
class Vectorize(Pass):
    name = "rt3d-vectorize"
    summary = "Generate vector kernels (filters in lanes, register-tiled outputs) for rt3d.packed_conv3d"
    Options = VectorizeOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        for op in ops_named(module, "rt3d.packed_conv3d"):
            self._rewrite(module, op)

    def _rewrite(self, module: ir.Operation, op: ir.Operation) -> None:
        params = packed_conv3d_params(op)
        y_shape = ir.RankedTensorType(op.results[0].type).shape
        if params.tile_sizes is None and params.vector_dim != "width":
            params = replace(params, tile_sizes=choose_tile(y_shape[3], y_shape[4], 14))
        x = op.operands[0]
        x_shape = ir.RankedTensorType(x.type).shape
        padded = tuple(
            s + lo + hi
            for s, lo, hi in zip(x_shape[2:], params.padding_low, params.padding_high, strict=True)
        )
        geo = ConvGeometry(
            batch=x_shape[0],
            channels=x_shape[1],
            padded=padded,  # type: ignore[arg-type]
            filters=y_shape[1],
            out=tuple(y_shape[2:]),  # type: ignore[arg-type]
            blocks=static_size(op.operands[3]) - 1,
            entries=static_size(op.operands[2]),
            weights=static_size(op.operands[1]),
            kept_weights=int_attr(op, KEPT_WEIGHTS_ATTR),
            dense_weights=int_attr(op, DENSE_WEIGHTS_ATTR),
        )
        if geo.batch * geo.channels * padded[0] * padded[1] * padded[2] >= 2**31:
            raise PassFailure("the padded input is too large for 32-bit kernel offsets", op.location)
        text = conv_kernel_text(KERNEL_PLACEHOLDER, DISPATCH_PLACEHOLDER, geo, params)
        dispatch = add_kernel(module, "conv", text)
        replace_with_kernel_call(
            op,
            dispatch,
            lambda: [zero_pad(x, params.padding_low, params.padding_high), *op.operands[1:]],
        )
