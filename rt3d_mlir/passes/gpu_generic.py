"""rt3d-gpu-generic: every ``linalg.generic`` to a dispatch of its GPU kernel.

Runs after ``linalg-generalize-named-ops`` (pools, fully connected layers,
bias, activations, residual adds, reductions, fills and transposes are all
generics then). The kernel comes from :mod:`rt3d_mlir.codegen.gpu.generic`.
Besides that:

- a *fill* (a generic yielding its scalar input) gets no dispatch: its
  consumers take the value as their initial value or input; only a fill
  something else reads whole is written, by a fill kernel;
- a transpose (or copy) of a constant is done here, once, into a new constant;
- a generic with several results must use only the first (``max_pool``'s
  index result is dropped this way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith

from rt3d_mlir.codegen.gpu.copy import fill_kernel
from rt3d_mlir.codegen.gpu.generic import GenericOperand, generic_kernel
from rt3d_mlir.codegen.gpu.kernel import Binding
from rt3d_mlir.ir_matchers import constant_array, constant_attr, ops_named
from rt3d_mlir.passes.framework import Pass, PassFailure, register_pass
from rt3d_mlir.passes.gpu_dispatch import add_kernel, dispatch, shape_of

_ELEMENTS = {"f32": "f32", "i32": "i32"}  # tensor element types a kernel binding can hold


def _maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]


def _fill_value(op: ir.Operation) -> tuple[bool, float | None]:
    """(whether ``op`` is a fill: one scalar input yielded as is, the f32 value or None)."""
    n_inputs = len(op.operands) - len(op.results)
    block = op.regions[0].blocks[0]
    body = list(block.operations)
    if n_inputs != 1 or len(body) != 1 or body[0].operands[0] != block.arguments[0]:
        return False, None
    value = op.operands[0]
    if isinstance(value.type, ir.RankedTensorType):
        return False, None
    attr = constant_attr(value)
    return True, float(attr.value) if isinstance(attr, ir.FloatAttr) else None


def _permuted_constant(op: ir.Operation) -> np.ndarray | None:
    """The result of a generic that transposes (or copies) a constant, or None."""
    n_inputs = len(op.operands) - len(op.results)
    block = op.regions[0].blocks[0]
    body = list(block.operations)
    if n_inputs != 1 or len(body) != 1 or body[0].operands[0] != block.arguments[0]:
        return None
    source = constant_array(op.operands[0])
    if source is None:
        return None
    in_map, out_map = _maps(op)[:2]
    if not all(isinstance(e, ir.AffineDimExpr) for e in [*in_map.results, *out_map.results]):
        return None
    out_dims = [ir.AffineDimExpr(e).position for e in out_map.results]
    in_dims = [ir.AffineDimExpr(e).position for e in in_map.results]
    if out_dims != list(range(len(out_dims))) or sorted(in_dims) != out_dims:
        return None
    return np.ascontiguousarray(np.transpose(source, np.argsort(in_dims)))


@dataclass
class GpuGenericOptions:
    pass


@register_pass
class GpuGeneric(Pass):
    name = "rt3d-gpu-generic"
    summary = "GPU kernels for linalg.generic ops (one invocation per output point); fills folded"
    Options = GpuGenericOptions

    def run(self, module: ir.Operation) -> None:
        fills: dict[ir.Value, float | None] = {}
        fill_ops = []
        for op in ops_named(module, "linalg.generic"):
            is_fill, value = _fill_value(op)
            if is_fill:
                fills[op.results[0]] = value
                fill_ops.append(op)
                continue
            permuted = _permuted_constant(op)
            if permuted is not None:
                with ir.InsertionPoint(op), op.location:
                    constant = arith.ConstantOp(op.results[0].type, ir.DenseElementsAttr.get(permuted))
                op.results[0].replace_all_uses_with(constant.result)
                op.erase()
                continue
            self._rewrite(module, op, fills)
        for op in fill_ops:
            self._materialize(module, op, fills[op.results[0]])

    def _materialize(self, module: ir.Operation, op: ir.Operation, value: float | None) -> None:
        """A fill nothing reads any more is erased; one still read whole is written by a kernel."""
        if not any(True for _ in op.results[0].uses):
            op.erase()
            return
        if value is None:
            raise PassFailure("the GPU targets cannot write a fill of this element type", op.location)
        points = math.prod(shape_of(op.results[0]))
        with ir.InsertionPoint(op), op.location:
            symbol, kernel = add_kernel(module, "fill", lambda name: fill_kernel(name, points, value))
            result = dispatch(module, symbol, kernel, [], op.results[0].type, "fill")
        op.results[0].replace_all_uses_with(result)
        op.erase()

    def _rewrite(self, module: ir.Operation, op: ir.Operation, fills: dict[ir.Value, float | None]) -> None:
        if any(True for r in list(op.results)[1:] for _ in r.uses):
            raise PassFailure("the GPU targets take linalg.generic ops with one used result", op.location)
        maps = _maps(op)
        n_inputs = len(op.operands) - len(op.results)
        block = op.regions[0].blocks[0]
        operands: list[ir.Value] = []
        bindings: list[Binding] = []

        def bind(value: ir.Value) -> int:
            if value in operands:
                return operands.index(value)
            element = str(ir.RankedTensorType(value.type).element_type)
            if element not in _ELEMENTS:
                raise PassFailure(f"the GPU targets cannot bind a tensor of {element}", op.location)
            operands.append(value)
            bindings.append(Binding(max(1, math.prod(shape_of(value))), _ELEMENTS[element]))
            return len(operands) - 1

        def operand(value: ir.Value, amap: ir.AffineMap) -> GenericOperand:
            if not isinstance(value.type, ir.RankedTensorType):
                attr = constant_attr(value)
                if not isinstance(attr, ir.FloatAttr):
                    raise PassFailure("the GPU targets take only constant scalar operands", op.location)
                return GenericOperand((), amap, None, float(attr.value))
            if value in fills:
                return GenericOperand(shape_of(value), amap, None, fills[value])
            return GenericOperand(shape_of(value), amap, bind(value))

        inputs = [
            operand(v, m) if any(True for _ in arg.uses) else GenericOperand(shape_of(v), m, None)
            for v, m, arg in zip(list(op.operands)[:n_inputs], maps, block.arguments, strict=False)
        ]
        iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
        reads_out = any(True for _ in block.arguments[n_inputs].uses)
        reduces = any("reduction" in it for it in iterators)
        init = operand(op.operands[n_inputs], maps[n_inputs]) if (reads_out or reduces) else None
        inside = set(block.arguments) | {r for body_op in block.operations for r in body_op.results}
        captured: dict[ir.Value, float | int] = {}  # float, index and integer constants
        gathered: dict[ir.Value, tuple[int, tuple[int, ...]]] = {}  # tensors read with tensor.extract
        for body_op in block.operations:
            for position, value in enumerate(body_op.operands):
                if value in inside:
                    continue
                if body_op.operation.name == "tensor.extract" and position == 0:
                    gathered[value] = (bind(value), shape_of(value))
                    continue
                attr = constant_attr(value)
                if isinstance(attr, ir.FloatAttr):
                    captured[value] = float(attr.value)
                elif isinstance(attr, ir.IntegerAttr):
                    captured[value] = int(attr.value)
                else:
                    raise PassFailure(
                        f"a linalg.generic body reads an outside value the GPU kernel cannot "
                        f"({body_op.operation.name})",
                        op.location,
                    )
        result_type = op.results[0].type
        bindings.append(Binding(math.prod(shape_of(op.results[0]))))
        out_binding = len(bindings) - 1
        try:
            kernel_args = (inputs, init, bindings, out_binding, captured, gathered)
            with ir.InsertionPoint(op), op.location:
                symbol, kernel = add_kernel(
                    module, "generic", lambda name: generic_kernel(name, op, *kernel_args)
                )
                result = dispatch(module, symbol, kernel, operands, result_type, "generic")
        except NotImplementedError as err:
            raise PassFailure(f"the GPU targets cannot generate {err}", op.location) from None
        op.results[0].replace_all_uses_with(result)
        op.erase()
