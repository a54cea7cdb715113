"""The ``rt3d`` dialect, defined in Python on the bundled MLIR (IRDL-backed).

``rt3d.kgs_conv3d`` is a 3D convolution (NCDHW input, FCDHW weight, one
group) whose weight carries kernel-group structured sparsity:

    %y = "rt3d.kgs_conv3d"(%x, %w, %b) {
           strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>,
           padding_low = array<i64: 1, 1, 1>, padding_high = array<i64: 1, 1, 1>,
           group_shape = array<i64: 4, 4>,
           masks = dense<...> : tensor<nGF x nGC x Kd x Kh x Kw x i1>,
           activation = "relu",
           operandSegmentSizes = array<i32: 1, 1, 1>}
         : (tensor<...>, tensor<...>, tensor<F x f32>) -> tensor<...>

Semantics: ``y = act(conv3d(pad(x), w * expand(masks)) + b)`` where
``expand`` repeats each group's mask over its ``gF x gC`` kernels (edge
groups are cut to the weight's shape). Vanilla structured sparsity is the
case where each group's mask is all true or all false. Padding is with
zeros, per dimension and side. ``activation`` is ``"none"`` or ``"relu"``.

Python-defined dialects print and parse in the generic form only, and keep
attributes in the op's attribute dictionary (not as properties).
"""


from dataclasses import dataclass
from typing import Any

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import ext

from rt3d_mlir.sparsity import mask_shape

ACTIVATIONS = ("none", "relu")


class Rt3dDialect(ext.Dialect, name="rt3d"):
    """Ops for sparse 3D CNN compilation."""


class KgsConv3dOp(Rt3dDialect.Operation, name="kgs_conv3d"):
    result: ext.Result[Any]
    input: ext.Operand[Any]
    weight: ext.Operand[Any]
    strides: Any
    padding_low: Any
    padding_high: Any
    dilations: Any
    group_shape: Any
    masks: Any
    activation: Any
    bias: ext.Operand[Any] | None = None

    def verify_invariants(self) -> bool:
        try:
            problem = kgs_conv3d_problem(self.operation)
        except Exception as err:  # never let a verifier bug escape as a crash
            problem = f"could not be verified: {err}"
        if problem:
            self.location.emit_error(f"'rt3d.kgs_conv3d' op {problem}")
            return False
        return True


def load_dialect(context: ir.Context | None = None) -> None:
    """Load the ``rt3d`` dialect into a context (the current one by default).

    Loading twice into the same context is a no-op.
    """
    ctx = context or ir.Context.current
    with ctx:
        if ctx.is_dialect_loaded(Rt3dDialect.DIALECT_NAMESPACE):
            return
        Rt3dDialect.load()


@dataclass(frozen=True)
class KgsConv3dParams:
    """The attributes of an ``rt3d.kgs_conv3d``, as plain Python values."""

    strides: tuple[int, int, int]
    padding_low: tuple[int, int, int]
    padding_high: tuple[int, int, int]
    dilations: tuple[int, int, int]
    group_shape: tuple[int, int]
    masks: np.ndarray
    activation: str

    def attributes(self) -> dict[str, ir.Attribute]:
        def i64s(values):
            return ir.DenseI64ArrayAttr.get([int(v) for v in values])

        return {
            "strides": i64s(self.strides),
            "padding_low": i64s(self.padding_low),
            "padding_high": i64s(self.padding_high),
            "dilations": i64s(self.dilations),
            "group_shape": i64s(self.group_shape),
            "masks": ir.DenseElementsAttr.get(np.ascontiguousarray(self.masks, dtype=np.bool_)),
            "activation": ir.StringAttr.get(self.activation),
        }


def _i64_array(op: ir.Operation, name: str) -> tuple[int, ...] | None:
    if name not in op.attributes:
        return None
    attr = op.attributes[name]
    try:
        return tuple(int(v) for v in ir.DenseI64ArrayAttr(attr))
    except (ValueError, TypeError):
        return None


def kgs_conv3d_params(op: ir.Operation) -> KgsConv3dParams:
    """Read a verified ``rt3d.kgs_conv3d``'s attributes."""
    masks = np.array(ir.DenseIntElementsAttr(op.attributes["masks"]), dtype=np.bool_)
    return KgsConv3dParams(
        strides=_i64_array(op, "strides"),  # type: ignore[arg-type]
        padding_low=_i64_array(op, "padding_low"),  # type: ignore[arg-type]
        padding_high=_i64_array(op, "padding_high"),  # type: ignore[arg-type]
        dilations=_i64_array(op, "dilations"),  # type: ignore[arg-type]
        group_shape=_i64_array(op, "group_shape"),  # type: ignore[arg-type]
        masks=masks,
        activation=ir.StringAttr(op.attributes["activation"]).value,
    )


def kgs_conv3d_operands(op: ir.Operation) -> tuple[ir.Value, ir.Value, ir.Value | None]:
    """(input, weight, bias or None) of an ``rt3d.kgs_conv3d``."""
    operands = list(op.operands)
    return operands[0], operands[1], operands[2] if len(operands) > 2 else None


def conv_output_shape(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    strides: tuple[int, ...],
    padding_low: tuple[int, ...],
    padding_high: tuple[int, ...],
    dilations: tuple[int, ...],
) -> tuple[int, ...]:
    spatial = tuple(
        (size + lo + hi - dil * (k - 1) - 1) // s + 1
        for size, k, s, lo, hi, dil in zip(
            input_shape[2:], weight_shape[2:], strides, padding_low, padding_high, dilations,
            strict=True,
        )
    )
    return (input_shape[0], weight_shape[0], *spatial)


def _static_shape(value_type: ir.Type) -> tuple[int, ...] | None:
    try:
        tensor = ir.RankedTensorType(value_type)
    except ValueError:
        return None
    if not tensor.has_static_shape:
        return None
    return tuple(tensor.shape)


def kgs_conv3d_problem(op: ir.Operation) -> str | None:
    """What is wrong with an ``rt3d.kgs_conv3d``, or None if it is valid."""
    operands = list(op.operands)
    if len(operands) not in (2, 3) or len(op.results) != 1:
        return "expects (input, weight[, bias]) and one result"
    shapes = [_static_shape(v.type) for v in operands] + [_static_shape(op.results[0].type)]
    names = [*["input", "weight", "bias"][: len(operands)], "result"]
    for name, shape in zip(names, shapes, strict=True):
        if shape is None:
            return f"{name} must be a statically shaped ranked tensor"
    x_shape, w_shape = shapes[0], shapes[1]
    y_shape = shapes[-1]
    if len(x_shape) != 5:
        return f"input must be rank 5 (N, C, D, H, W), got rank {len(x_shape)}"
    if len(w_shape) != 5:
        return f"weight must be rank 5 (F, C, Kd, Kh, Kw), got rank {len(w_shape)}"
    if x_shape[1] != w_shape[1]:
        return f"input has {x_shape[1]} channels but the weight expects {w_shape[1]}"
    if len(operands) == 3 and shapes[2] != (w_shape[0],):
        return f"bias must have shape ({w_shape[0]},), got {shapes[2]}"
    values: dict[str, tuple[int, ...]] = {}
    for name, length, minimum in (
        ("strides", 3, 1),
        ("dilations", 3, 1),
        ("padding_low", 3, 0),
        ("padding_high", 3, 0),
        ("group_shape", 2, 1),
    ):
        value = _i64_array(op, name)
        if value is None:
            return f"requires '{name}' as array<i64> of {length} entries"
        if len(value) != length:
            return f"'{name}' must have {length} entries, got {len(value)}"
        if min(value) < minimum:
            return f"'{name}' entries must be >= {minimum}, got {list(value)}"
        values[name] = value
    if "activation" not in op.attributes or not isinstance(
        op.attributes["activation"], ir.StringAttr
    ):
        return "requires a string 'activation' attribute"
    activation = ir.StringAttr(op.attributes["activation"]).value
    if activation not in ACTIVATIONS:
        return f"activation must be one of {', '.join(ACTIVATIONS)}, got '{activation}'"
    if "masks" not in op.attributes:
        return "requires a 'masks' attribute"
    try:
        masks_attr = ir.DenseIntElementsAttr(op.attributes["masks"])
    except ValueError:
        return "'masks' must be a dense i1 elements attribute"
    masks_type = ir.ShapedType(masks_attr.type)
    element = masks_type.element_type
    if not (isinstance(element, ir.IntegerType) and element.width == 1):
        return "'masks' must have i1 elements"
    expected_masks = mask_shape(w_shape, values["group_shape"])
    if tuple(masks_type.shape) != expected_masks:
        return (
            f"'masks' shape {tuple(masks_type.shape)} does not match weight {w_shape} "
            f"with group shape {values['group_shape']}: expected {expected_masks}"
        )
    expected_y = conv_output_shape(
        x_shape, w_shape, values["strides"], values["padding_low"], values["padding_high"],
        values["dilations"],
    )
    if min(expected_y[2:]) < 1:
        return f"window does not fit the padded input: output spatial shape {expected_y[2:]}"
    if y_shape != expected_y:
        return f"result shape {y_shape} does not match the computed output shape {expected_y}"
    return None


def build_kgs_conv3d(
    result_type: ir.Type,
    input_value: ir.Value,
    weight: ir.Value,
    bias: ir.Value | None,
    params: KgsConv3dParams,
) -> ir.Operation:
    """Create an ``rt3d.kgs_conv3d`` at the current insertion point."""
    attrs = params.attributes()
    op = KgsConv3dOp(
        result_type,
        input_value,
        weight,
        attrs["strides"],
        attrs["padding_low"],
        attrs["padding_high"],
        attrs["dilations"],
        attrs["group_shape"],
        attrs["masks"],
        attrs["activation"],
        bias=bias,
    )
    return op.operation
