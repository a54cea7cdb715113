"""rt3d-recognize-kgs: turn dense linalg 3D convolutions into ``rt3d.kgs_conv3d``.

Matches ``linalg.conv_3d_ncdhw_fcdhw`` whose weight is a constant, absorbing
the zero ``tensor.pad`` of its input (per-dimension low/high padding), the
bias broadcast into its init (or a zero fill), and a following ReLU
``linalg.generic`` when it is the conv's only user. The kernel-group masks
come from the weight's exact zeros for the group shape given by
``group-shape`` or, if unset, the largest of ``candidates`` that the zeros
fit. With ``widen-to``, a group shape of fewer filters than that shape's is
widened to it (clipped to the weight), its masks the union of the groups it
covers: bf16 builds on AMX CPUs ask for a lane's worth (16x16), which AMX tile
products need; block-diagonal weights (depthwise) keep their groups.
Convolutions with non-constant weights are left alone.

A fully connected layer (``linalg.matmul`` of a zero-filled init by a
transposed constant ``W[F, K]``, as torch-mlir imports ``nn.Linear``) whose
weight is pruned in kernel groups (block-based pruning: groups of ``bR x 1``,
whole columns of ``bR`` rows) becomes the 1x1x1 convolution of its input
seen as ``(N, K, 1, 1, 1)``: its kept columns are packed and computed like a
conv's (the bias add and activation after it stay as they are). A weight
whose groups keep more than :data:`SPARSE_LINEAR_KEPT` of it, or whose zeros
fit only groups of fewer than :data:`MIN_LINEAR_GROUP` outputs, stays a
matmul (``rt3d-vectorize-matmul`` streams a dense one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, tensor

from rt3d_mlir.dialect import KgsConv3dParams, build_kgs_conv3d, load_dialect
from rt3d_mlir.ir_matchers import (
    constant_array,
    defining_op,
    erase_dead_producers,
    fused_activation,
    generic_body,
    is_float_constant,
    ops_named,
)
from rt3d_mlir.passes.framework import OptionError, Pass, PassFailure, register_pass, require
from rt3d_mlir.passes.vectorize_matmul import weight_matrix, zero_init
from rt3d_mlir.sparsity import (
    DEFAULT_GROUP_SHAPE_CANDIDATES,
    choose_group_shape,
    diagonal_groups,
    format_group_shape,
    group_shape_fits,
    kernel_group_masks,
    parse_group_shape,
)

CONV_OP = "linalg.conv_3d_ncdhw_fcdhw"
SPARSE_LINEAR_KEPT = 0.75  # a Linear layer whose kernel groups keep more stays a dense matmul
MIN_LINEAR_GROUP = 4  # nor does one whose zeros fit only groups of fewer outputs (vector lanes)


@dataclass
class RecognizeKgsOptions:
    group_shape: str = ""
    candidates: str = ",".join(format_group_shape(g) for g in DEFAULT_GROUP_SHAPE_CANDIDATES)
    # groups of fewer filters than this shape's are widened to it, their masks the union of the
    # groups they cover (what a 16-filter tile product needs: AMX in bf16 builds); "" keeps them
    widen_to: str = ""

    def __post_init__(self) -> None:
        try:
            if self.group_shape:
                parse_group_shape(self.group_shape)
            if self.widen_to:
                parse_group_shape(self.widen_to)
            require(any(self.candidates.split(",")), "candidates must list group shapes")
            for candidate in self.candidates.split(","):
                if candidate:
                    parse_group_shape(candidate)
        except ValueError as err:
            raise OptionError(str(err)) from None


def _vector3(op: ir.Operation, name: str) -> tuple[int, int, int]:
    if name not in op.attributes:
        return (1, 1, 1)
    return tuple(int(v) for v in np.array(ir.DenseIntElementsAttr(op.attributes[name])))  # type: ignore[return-value]


def _zero_pad_source(value: ir.Value) -> tuple[ir.Value, tuple[int, ...], tuple[int, ...]] | None:
    """If ``value`` is a zero ``tensor.pad`` of the spatial dims, its source and pads."""
    pad = defining_op(value)
    if pad is None or pad.name != "tensor.pad":
        return None
    if len(pad.operands) != 1:  # dynamic padding amounts
        return None
    low = tuple(ir.DenseI64ArrayAttr(pad.attributes["static_low"]))
    high = tuple(ir.DenseI64ArrayAttr(pad.attributes["static_high"]))
    if len(low) != 5 or low[:2] != (0, 0) or high[:2] != (0, 0):
        return None
    body = generic_body(pad)
    if len(body) != 1 or not is_float_constant(body[0].operands[0], 0.0):
        return None
    return pad.operands[0], low[2:], high[2:]


def _bias_of_init(value: ir.Value) -> tuple[bool, ir.Value | np.ndarray | None]:
    """(matched, bias) of a conv's init: a broadcast of a [F] bias over N,D,H,W,
    a zero fill, or a constant that is such a broadcast (torch-mlir folds the
    broadcast of a one-element bias into a splat)."""
    init = defining_op(value)
    if init is None:
        return False, None
    if init.name == "linalg.fill" and is_float_constant(init.operands[0], 0.0):
        return True, None
    if init.name == "linalg.broadcast":
        dims = tuple(ir.DenseI64ArrayAttr(init.attributes["dimensions"]))
        if dims == (0, 2, 3, 4):
            return True, init.operands[0]
    array = constant_array(value)
    if array is not None and array.ndim == 5:
        bias = array[0, :, 0, 0, 0]
        if np.array_equal(array, np.broadcast_to(bias[None, :, None, None, None], array.shape)):
            return True, None if not bias.any() else np.ascontiguousarray(bias, dtype=np.float32)
    return False, None


@register_pass
class RecognizeKgs(Pass):
    name = "rt3d-recognize-kgs"
    summary = "Turn linalg conv3d + pad + bias + ReLU with constant weights into rt3d.kgs_conv3d"
    Options = RecognizeKgsOptions

    def _group_shape_for(self, weight: np.ndarray, location: ir.Location) -> tuple[int, int]:
        """The requested group shape where the weight's zeros fit it, else the largest candidate
        that fits (a grouped or depthwise convolution's block-diagonal weight fits only groups
        inside its diagonal blocks; forcing a wider group would multiply by its zeros); widened
        to ``widen-to`` if it has fewer filters (block-diagonal weights excepted)."""
        try:
            candidates = [parse_group_shape(c) for c in self.options.candidates.split(",") if c]
            chosen = None
            if self.options.group_shape:
                requested = parse_group_shape(self.options.group_shape)
                if group_shape_fits(weight, requested):
                    chosen = requested
            if chosen is None:
                chosen = choose_group_shape(weight, candidates)
            if self.options.widen_to:
                wide = parse_group_shape(self.options.widen_to)
                if chosen[0] < min(wide[0], weight.shape[0]) and diagonal_groups(weight) == 1:
                    chosen = (min(wide[0], weight.shape[0]), min(wide[1], weight.shape[1]))
        except ValueError as err:
            raise PassFailure(str(err), location) from None
        return chosen

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        for conv in ops_named(module, CONV_OP):
            self._rewrite(conv)
        for matmul in ops_named(module, "linalg.matmul"):
            self._rewrite_linear(matmul)

    def _rewrite_linear(self, matmul: ir.Operation) -> None:
        """A block-pruned Linear layer as a 1x1x1 ``rt3d.kgs_conv3d`` of its input (N, K, 1, 1, 1)."""
        x, b, init = matmul.operands
        matrix = weight_matrix(b)
        x_type = ir.RankedTensorType(x.type)
        if matrix is None or not zero_init(init) or x_type.rank != 2 or not x_type.has_static_shape:
            return
        weight = np.ascontiguousarray(matrix.reshape(*matrix.shape, 1, 1, 1), dtype=np.float32)
        group_shape = self._group_shape_for(weight, matmul.location)
        masks = kernel_group_masks(weight, group_shape)
        if group_shape[0] < MIN_LINEAR_GROUP or masks.mean() > SPARSE_LINEAR_KEPT:
            return
        n, k = x_type.shape
        f = weight.shape[0]
        params = KgsConv3dParams(
            strides=(1, 1, 1), padding_low=(0, 0, 0), padding_high=(0, 0, 0), dilations=(1, 1, 1),
            group_shape=group_shape, masks=masks, activation="none",
        )
        producers = [defining_op(v) for v in matmul.operands]
        element = x_type.element_type
        with ir.InsertionPoint(matmul), matmul.location:
            x5 = tensor.ExpandShapeOp(
                ir.RankedTensorType.get([n, k, 1, 1, 1], element), x, [[0], [1, 2, 3, 4]], [], [n, k, 1, 1, 1]
            ).result
            w_attr = ir.DenseElementsAttr.get(weight)
            w5 = arith.ConstantOp(w_attr.type, w_attr).result
            y5 = build_kgs_conv3d(ir.RankedTensorType.get([n, f, 1, 1, 1], element), x5, w5, None, params)
            y = tensor.CollapseShapeOp(matmul.results[0].type, y5.results[0], [[0], [1, 2, 3, 4]]).result
        matmul.results[0].replace_all_uses_with(y)
        matmul.erase()
        erase_dead_producers([p for p in producers if p is not None])

    def _rewrite(self, conv: ir.Operation) -> None:
        x, w, init = conv.operands
        weight = constant_array(w)
        if weight is None or weight.ndim != 5:
            return
        matched, bias = _bias_of_init(init)
        if not matched:
            return
        pad_low = pad_high = (0, 0, 0)
        padded = _zero_pad_source(x)
        producers = [defining_op(v) for v in conv.operands]
        if padded is not None:
            x, pad_low, pad_high = padded
        group_shape = self._group_shape_for(weight, conv.location)
        masks = kernel_group_masks(weight, group_shape)

        activation, fused = fused_activation(conv.results[0])
        replaced = fused[-1] if fused else conv
        for op in fused:  # their inits (the conv and the fused ops themselves are erased below)
            producers += [
                p for p in (defining_op(v) for v in op.operands)
                if p is not None and p != conv and p not in fused
            ]
        params = KgsConv3dParams(
            strides=_vector3(conv, "strides"),
            padding_low=tuple(pad_low),  # type: ignore[arg-type]
            padding_high=tuple(pad_high),  # type: ignore[arg-type]
            dilations=_vector3(conv, "dilations"),
            group_shape=group_shape,
            masks=masks,
            activation=activation,
        )
        with ir.InsertionPoint(conv), conv.location:
            if isinstance(bias, np.ndarray):
                bias_attr = ir.DenseElementsAttr.get(bias)
                bias = arith.ConstantOp(bias_attr.type, bias_attr).result
            new = build_kgs_conv3d(replaced.results[0].type, x, w, bias, params)
        replaced.results[0].replace_all_uses_with(new.results[0])
        for op in reversed(fused):
            op.erase()
        conv.erase()
        erase_dead_producers([p for p in producers if p is not None])
