"""rt3d-lower-kgs-to-linalg: the reference lowering of ``rt3d.kgs_conv3d``.

Obviously correct rather than fast: the masked weight (constant-folded when
the weight is a constant, else a ``linalg.generic`` select), a zero
``tensor.pad``, a bias broadcast (or zero fill) as the init of a dense
``linalg.conv_3d_ncdhw_fcdhw``, and a ReLU ``linalg.generic``. Lets a whole
model compile and run through upstream lowering before the fast generator.
"""

from __future__ import annotations

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, math, tensor

from rt3d_mlir.dialect import kgs_conv3d_operands, kgs_conv3d_params
from rt3d_mlir.ir_matchers import constant_array, defining_op, erase_dead_producers, ops_named
from rt3d_mlir.passes.builders import float_zero, zero_pad
from rt3d_mlir.passes.framework import Pass, register_pass
from rt3d_mlir.sparsity import expand_masks


def _elementwise_generic(
    result_type: ir.Type,
    inputs: list[ir.Value],
    input_maps: list[ir.AffineMap],
    body,
) -> ir.Value:
    """A ``linalg.generic`` over ``result_type``'s index space (identity output map)."""
    rank = ir.RankedTensorType(result_type).rank
    out_type = ir.RankedTensorType(result_type)
    empty = tensor.EmptyOp(list(out_type.shape), out_type.element_type).result
    maps = [*input_maps, ir.AffineMap.get_identity(rank)]
    generic = linalg.GenericOp(
        [result_type],
        inputs,
        [empty],
        ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
        ir.ArrayAttr.get([ir.Attribute.parse("#linalg.iterator_type<parallel>")] * rank),
    )
    arg_types = [ir.RankedTensorType(v.type).element_type for v in inputs] + [out_type.element_type]
    block = generic.regions[0].blocks.append(*arg_types)
    with ir.InsertionPoint(block):
        linalg.YieldOp([body(*block.arguments)])
    return generic.results[0]


def _masked_weight(weight: ir.Value, params) -> ir.Value:
    weight_type = ir.RankedTensorType(weight.type)
    shape = tuple(weight_type.shape)
    full_mask = expand_masks(params.masks, shape, params.group_shape)
    array = constant_array(weight)
    if array is not None:
        if bool(np.all(full_mask)) or not np.any(array[~full_mask]):
            return weight
        masked = np.where(full_mask, array, np.float32(0)).astype(np.float32)
        return arith.ConstantOp(weight_type, ir.DenseElementsAttr.get(masked)).result
    g_f, g_c = params.group_shape
    mask_attr = ir.DenseElementsAttr.get(np.ascontiguousarray(params.masks, dtype=np.bool_))
    mask = arith.ConstantOp(mask_attr.type, mask_attr).result
    d = [ir.AffineDimExpr.get(i) for i in range(5)]
    mask_map = ir.AffineMap.get(
        5,
        0,
        [
            ir.AffineFloorDivExpr.get(d[0], ir.AffineConstantExpr.get(g_f)),
            ir.AffineFloorDivExpr.get(d[1], ir.AffineConstantExpr.get(g_c)),
            *d[2:],
        ],
    )
    zero = float_zero()
    return _elementwise_generic(
        weight.type,
        [weight, mask],
        [ir.AffineMap.get_identity(5), mask_map],
        lambda w, keep, _out: arith.SelectOp(keep, w, zero).result,
    )


@register_pass
class LowerKgsToLinalg(Pass):
    name = "rt3d-lower-kgs-to-linalg"
    summary = "Reference lowering of rt3d.kgs_conv3d to a dense masked linalg convolution"

    def run(self, module: ir.Operation) -> None:
        for op in ops_named(module, "rt3d.kgs_conv3d"):
            with ir.InsertionPoint(op), op.location:
                result = self._lower(op)
            producers = [p for p in (defining_op(v) for v in op.operands) if p is not None]
            op.results[0].replace_all_uses_with(result)
            op.erase()
            erase_dead_producers(producers)

    def _lower(self, op: ir.Operation) -> ir.Value:
        params = kgs_conv3d_params(op)
        x, w, bias = kgs_conv3d_operands(op)
        result_type = ir.RankedTensorType(op.results[0].type)
        zero = float_zero()
        x = zero_pad(x, params.padding_low, params.padding_high, zero)
        weight = _masked_weight(w, params)
        empty = tensor.EmptyOp(list(result_type.shape), result_type.element_type).result
        if bias is not None:
            init = linalg.broadcast(bias, outs=[empty], dimensions=[0, 2, 3, 4])
        else:
            init = linalg.fill(zero, outs=[empty])
        y = linalg.conv_3d_ncdhw_fcdhw(
            x, weight, outs=[init], strides=list(params.strides), dilations=list(params.dilations)
        )
        if params.activation != "none":
            y = _elementwise_generic(
                result_type,
                [y],
                [ir.AffineMap.get_identity(5)],
                lambda v, _out: _activated(params.activation, v, zero),
            )
        return y


def _activated(activation: str, v: ir.Value, zero: ir.Value) -> ir.Value:
    """``activation`` (:data:`rt3d_mlir.dialect.rt3d.ACTIVATIONS`) of the scalar ``v``."""
    if activation == "relu":
        return arith.MaximumFOp(v, zero).result
    one = arith.ConstantOp(v.type, 1.0).result
    sigmoid_denominator = arith.AddFOp(math.ExpOp(arith.NegFOp(v).result).result, one).result
    numerator = v if activation == "silu" else one
    return arith.DivFOp(numerator, sigmoid_denominator).result
