"""rt3d-gpu-copy: ``tensor.pad``, ``tensor.concat`` and ``tensor.extract_slice`` to dispatches of
GPU copy kernels.

A constant pad copies into a larger buffer and fills the border; a concat
is one copy dispatch per operand, each writing its slice of one buffer (the
first creates it, the others write it ``in_place``); a static slice (a
channel split) is copied out. Kernels come from
:mod:`rt3d_mlir.codegen.gpu.copy`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.codegen.gpu.copy import copy_slice_kernel, extract_slice_kernel, pad_kernel
from rt3d_mlir.ir_matchers import constant_attr, defining_op, ops_named
from rt3d_mlir.passes.framework import Pass, PassFailure, register_pass
from rt3d_mlir.passes.gpu_dispatch import add_kernel, dispatch, shape_of


@dataclass
class GpuCopyOptions:
    pass


@register_pass
class GpuCopy(Pass):
    name = "rt3d-gpu-copy"
    summary = "GPU copy kernels for constant tensor.pad, tensor.concat and static tensor.extract_slice"
    Options = GpuCopyOptions

    def run(self, module: ir.Operation) -> None:
        for op in ops_named(module, "tensor.pad"):
            self._pad(module, op)
        for op in ops_named(module, "tensor.concat"):
            self._concat(module, op)
        for op in ops_named(module, "tensor.extract_slice"):
            self._extract_slice(module, op)

    def _extract_slice(self, module: ir.Operation, op: ir.Operation) -> None:
        offsets = list(ir.DenseI64ArrayAttr(op.attributes["static_offsets"]))
        sizes = list(ir.DenseI64ArrayAttr(op.attributes["static_sizes"]))
        strides = list(ir.DenseI64ArrayAttr(op.attributes["static_strides"]))
        if len(op.operands) != 1 or any(v < 0 for v in offsets + sizes + strides):
            raise PassFailure("the GPU targets take slices of static offsets, sizes and strides", op.location)
        source = op.operands[0]
        with ir.InsertionPoint(op), op.location:
            symbol, kernel = add_kernel(
                module,
                "slice",
                lambda name: extract_slice_kernel(name, shape_of(source), offsets, sizes, strides),
            )
            result = dispatch(module, symbol, kernel, [source], op.results[0].type, "slice")
        op.results[0].replace_all_uses_with(result)
        op.erase()

    def _pad(self, module: ir.Operation, op: ir.Operation) -> None:
        low = list(ir.DenseI64ArrayAttr(op.attributes["static_low"]))
        high = list(ir.DenseI64ArrayAttr(op.attributes["static_high"]))
        yielded = op.regions[0].blocks[0].operations[-1].operands[0]
        value = constant_attr(yielded)
        if not isinstance(value, ir.FloatAttr) or any(v < 0 for v in low + high) or len(op.operands) != 1:
            raise PassFailure("the GPU targets pad only with a constant and static sizes", op.location)
        source = op.operands[0]
        with ir.InsertionPoint(op), op.location:
            symbol, kernel = add_kernel(
                module, "pad", lambda name: pad_kernel(name, shape_of(source), low, high, float(value.value))
            )
            result = dispatch(module, symbol, kernel, [source], op.results[0].type, "pad")
        op.results[0].replace_all_uses_with(result)
        op.erase()

    def _concat(self, module: ir.Operation, op: ir.Operation) -> None:
        axis = ir.IntegerAttr(op.attributes["dim"]).value
        out_shape = shape_of(op.results[0])
        offset, result = 0, None
        with ir.InsertionPoint(op), op.location:
            for operand in op.operands:
                producer = defining_op(operand)
                if producer is not None and producer.name == "tensor.cast":
                    # torch-mlir casts a concat's first operand to a dynamic size along the axis
                    operand = producer.operands[0]
                in_shape = shape_of(operand)
                symbol, kernel = add_kernel(
                    module,
                    "concat",
                    lambda name, s=in_shape, o=offset: copy_slice_kernel(name, s, out_shape, axis, o),
                )
                operands = [operand] if result is None else [operand, result]
                in_place = result is not None
                result = dispatch(
                    module, symbol, kernel, operands, op.results[0].type, "concat", in_place=in_place
                )
                offset += in_shape[axis]
        assert result is not None
        op.results[0].replace_all_uses_with(result)
        op.erase()
