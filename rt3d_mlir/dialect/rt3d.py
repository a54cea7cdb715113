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
zeros, per dimension and side. ``activation`` is ``"none"``, ``"relu"``,
``"sigmoid"`` or ``"silu"`` (``x * sigmoid(x)``).

``rt3d.quantize`` is the int8 scheme's quantization of a convolution's
input (:mod:`rt3d_mlir.quantization`), zero-padded and laid out for the int8
kernels:

    %q = "rt3d.quantize"(%x) {scale = 2.5e-01 : f64, zero_point = 128 : i64,
           padding_low = array<i64: 1, 1, 1>, padding_high = array<i64: 1, 1, 1>}
         : (tensor<N x C x D x H x W x f32>) -> tensor<N x C/4 x D' x H' x W' x 4 x i8>

Semantics: ``q[n, c / 4, pad(d, h, w), c % 4] = clamp(round_even(x / scale),
-127, 127) + zero_point`` (as a byte: 128 makes the bytes unsigned), the
padding ``zero_point`` (the value 0), ``D' = D + low + high`` and so on.
It is computed by a kernel (``rt3d-vectorize-quantize``) or, where the
convolution or pool before it allows, in that kernel's epilogue
(``rt3d-vectorize``).

Python-defined dialects print and parse in the generic form only, and keep
attributes in the op's attribute dictionary (not as properties).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import ext

from rt3d_mlir.kernel_packing import INT8_QUAD, INT8_ZERO_POINTS, plain_offsets, plain_shape, runs_fit_blocks
from rt3d_mlir.sparsity import mask_shape

# a conv's activation (its epilogue: rt3d_mlir.codegen.activations); sigmoid is 1 / (1 + exp(-x)),
# silu x * sigmoid(x)
ACTIVATIONS = ("none", "relu", "sigmoid", "silu")
# the activations f with f(0) = 0: a filter of zeros gives a channel of zeros
ZERO_PRESERVING = ("none", "relu", "silu")


class Rt3dDialect(ext.Dialect, name="rt3d"):
    """Ops for sparse 3D CNN compilation."""


def _report_problem(op: Any, name: str, find_problem: Any) -> bool:
    """Verifier body: emit ``find_problem``'s message (if any) at the op; whether it is valid."""
    try:
        problem = find_problem(op.operation)
    except Exception as err:  # never let a verifier bug escape as a crash
        problem = f"could not be verified: {err}"
    if problem:
        op.location.emit_error(f"'{name}' op {problem}")
        return False
    return True


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
        return _report_problem(self, "rt3d.kgs_conv3d", kgs_conv3d_problem)


class PackedConv3dOp(Rt3dDialect.Operation, name="packed_conv3d"):
    result: ext.Result[Any]
    input: ext.Operand[Any]
    weights: ext.Operand[Any]
    entry_offsets: ext.Operand[Any]
    block_starts: ext.Operand[Any]
    out_channels: ext.Operand[Any]
    bias: ext.Operand[Any]
    kernel_size: Any
    strides: Any
    padding_low: Any
    padding_high: Any
    dilations: Any
    block_size: Any
    channel_unroll: Any
    activation: Any

    def verify_invariants(self) -> bool:
        return _report_problem(self, "rt3d.packed_conv3d", packed_conv3d_problem)


class QuantizeOp(Rt3dDialect.Operation, name="quantize"):
    result: ext.Result[Any]
    input: ext.Operand[Any]
    scale: Any
    zero_point: Any
    padding_low: Any
    padding_high: Any

    def verify_invariants(self) -> bool:
        return _report_problem(self, "rt3d.quantize", quantize_problem)


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
            input_shape[2:],
            weight_shape[2:],
            strides,
            padding_low,
            padding_high,
            dilations,
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


def _element_problem(names: list[str], values: list[ir.Value], elements: list[str]) -> str | None:
    """Each value's element type is the one named (``f32``, ``i32``, or alternatives as ``f32|bf16``),
    or a message saying which is not."""
    for name, value, element in zip(names, values, elements, strict=True):
        actual = ir.RankedTensorType(value.type).element_type
        if str(actual) not in element.split("|"):
            return f"{name} must have {element.replace('|', ' or ')} elements, got {actual}"
    return None


def _segment_problem(op: ir.Operation, allowed: tuple[tuple[int, ...], ...]) -> str | None:
    """``operandSegmentSizes`` is one of ``allowed`` and matches the operand count."""
    if "operandSegmentSizes" not in op.attributes:
        return "requires 'operandSegmentSizes' (array<i32>) for its optional operand"
    try:
        sizes = tuple(int(v) for v in ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
    except (ValueError, TypeError):
        return "'operandSegmentSizes' must be an array<i32>"
    if sizes not in allowed:
        choices = ", ".join(str(list(a)) for a in allowed)
        return f"'operandSegmentSizes' must be one of {choices}, got {list(sizes)}"
    if sum(sizes) != len(op.operands):
        return (
            f"'operandSegmentSizes' {list(sizes)} describes {sum(sizes)} operands, "
            f"the op has {len(op.operands)}"
        )
    return None


def kgs_conv3d_problem(op: ir.Operation) -> str | None:
    """What is wrong with an ``rt3d.kgs_conv3d``, or None if it is valid."""
    operands = list(op.operands)
    if len(operands) not in (2, 3) or len(op.results) != 1:
        return "expects (input, weight[, bias]) and one result"
    problem = _segment_problem(op, ((1, 1, 0), (1, 1, 1)))
    if problem:
        return problem
    shapes = [_static_shape(v.type) for v in operands] + [_static_shape(op.results[0].type)]
    names = [*["input", "weight", "bias"][: len(operands)], "result"]
    for name, shape in zip(names, shapes, strict=True):
        if shape is None:
            return f"{name} must be a statically shaped ranked tensor"
    problem = _element_problem(names, [*operands, op.results[0]], ["f32"] * len(names))
    if problem:
        return problem
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
    if "activation" not in op.attributes or not isinstance(op.attributes["activation"], ir.StringAttr):
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
    return _result_shape_problem(x_shape, w_shape, y_shape, values)


def _result_shape_problem(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], y_shape: tuple[int, ...], values: dict
) -> str | None:
    """The result shape of a convolution with these attributes, checked against ``y_shape``."""
    expected = conv_output_shape(
        x_shape, w_shape, *(values[k] for k in ("strides", "padding_low", "padding_high", "dilations"))
    )
    if min(expected[2:]) < 1:
        return f"window does not fit the padded input: output spatial shape {expected[2:]}"
    if y_shape != expected:
        return f"result shape {y_shape} does not match the computed output shape {expected}"
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


# --- rt3d.packed_conv3d -------------------------------------------------------
#
# A kernel-group sparse convolution after rt3d-pack-kernel-groups: the filters
# are regrouped into blocks of ``block_size`` (the vector lanes); each block
# keeps a list of *entries* (a run of ``channel_unroll`` input channels at one
# kernel position) that any of its filters keeps. Operands:
#
#   input          tensor<N x C x D x H x W xf32>   (unpadded)
#   weights        tensor<E*U*B xf32>   entry-major, then channel, then lane
#   entry_offsets  tensor<E xi32>       offset of each entry's first input
#                                       element in the zero-padded input
#   block_starts   tensor<nB+1 xi32>    block b owns entries [s[b], s[b+1])
#   out_channels   tensor<nB*B xi32>    output channel of each lane (-1: none),
#                                       i.e. the filter permutation
#   bias           tensor<nB*B xf32>    bias per lane
#
# Optional schedule attributes (set by rt3d-reorder-loops): ``tile_sizes``
# (array<i64: th, tw> output rows x columns held in registers) and
# ``loop_order`` ("fdhw": filter blocks outermost, "dfhw", or "dhfw": rows
# outside the filter blocks) and
# ``vector_dim`` ("filters": the block's filters in the vector lanes, or
# "width": consecutive output columns in the lanes; "interleaved": the
# block's filters times ``vector_lanes / block_size`` consecutive columns;
# both need W stride 1), and
# ``streaming_stores`` (bool: non-temporal output stores, "width" only),
# ``vector_lanes`` (i64: the vector length of "width" kernels; "filters"
# kernels use vectors of ``block_size``), ``tile_filters`` (i64: the filters
# of a block one "width" register tile holds; the block's in turn),
# ``block_group`` (i64: "filters" kernels: consecutive blocks with the same
# entries sharing one register tile, each input broadcast feeding an FMA of
# every one; a last, partial group gets a tile of its own), ``channel_chunk``
# (i64: "width" kernels in "dhfw" order: the input channels each pass over a
# row group's blocks takes, a multiple of ``channel_unroll``; every block
# adds its entries of one chunk to partial sums kept in the output, so the
# chunk's input rows stay in L1 while all blocks read them; no streaming
# stores), ``row_bands`` (i64: the output rows split into this many bands of
# whole row groups, each band its own parallel task; a band count above the
# row groups is clamped), ``input_layout`` and ``output_layout`` ("plain", the default, or
# "blocked": the activation as (N, C / B, D, H, W, B) with B = block_size, the
# channel-blocked layout of :mod:`rt3d_mlir.kernel_packing`; "filters"
# kernels only; a blocked input's entry offsets index the blocked input, a
# blocked result needs each block's lanes to be one channel block in order).

LOOP_ORDERS = ("fdhw", "dfhw", "dhfw")
VECTOR_DIMS = ("filters", "width", "interleaved")
LAYOUTS = ("plain", "blocked")


@dataclass(frozen=True)
class PackedConv3dParams:
    kernel_size: tuple[int, int, int]
    strides: tuple[int, int, int]
    padding_low: tuple[int, int, int]
    padding_high: tuple[int, int, int]
    dilations: tuple[int, int, int]
    block_size: int
    channel_unroll: int
    activation: str
    tile_sizes: tuple[int, int] | None = None
    loop_order: str | None = None
    vector_dim: str = "filters"
    streaming_stores: bool = False
    vector_lanes: int | None = None
    tile_filters: int | None = None
    block_group: int | None = None
    channel_chunk: int | None = None
    row_bands: int | None = None
    input_layout: str = "plain"
    output_layout: str = "plain"


def _i64_attr(op: ir.Operation, name: str) -> int | None:
    if name not in op.attributes:
        return None
    try:
        return int(ir.IntegerAttr(op.attributes[name]).value)
    except (ValueError, TypeError):
        return None


def packed_conv3d_params(op: ir.Operation) -> PackedConv3dParams:
    """Read a verified ``rt3d.packed_conv3d``'s attributes."""
    order = op.attributes["loop_order"] if "loop_order" in op.attributes else None
    return PackedConv3dParams(
        kernel_size=_i64_array(op, "kernel_size"),  # type: ignore[arg-type]
        strides=_i64_array(op, "strides"),  # type: ignore[arg-type]
        padding_low=_i64_array(op, "padding_low"),  # type: ignore[arg-type]
        padding_high=_i64_array(op, "padding_high"),  # type: ignore[arg-type]
        dilations=_i64_array(op, "dilations"),  # type: ignore[arg-type]
        block_size=_i64_attr(op, "block_size"),  # type: ignore[arg-type]
        channel_unroll=_i64_attr(op, "channel_unroll"),  # type: ignore[arg-type]
        activation=ir.StringAttr(op.attributes["activation"]).value,
        tile_sizes=_i64_array(op, "tile_sizes"),  # type: ignore[arg-type]
        loop_order=ir.StringAttr(order).value if order is not None else None,
        vector_dim=ir.StringAttr(op.attributes["vector_dim"]).value
        if "vector_dim" in op.attributes
        else "filters",
        streaming_stores="streaming_stores" in op.attributes
        and ir.BoolAttr(op.attributes["streaming_stores"]).value,
        vector_lanes=_i64_attr(op, "vector_lanes"),
        tile_filters=_i64_attr(op, "tile_filters"),
        block_group=_i64_attr(op, "block_group"),
        channel_chunk=_i64_attr(op, "channel_chunk"),
        row_bands=_i64_attr(op, "row_bands"),
        input_layout=_layout(op, "input_layout") or "plain",
        output_layout=_layout(op, "output_layout") or "plain",
    )


def _layout(op: ir.Operation, name: str) -> str | None:
    """A layout attribute's value ("plain" if absent), None if it is not one of LAYOUTS."""
    if name not in op.attributes:
        return "plain"
    attr = op.attributes[name]
    if not isinstance(attr, ir.StringAttr) or attr.value not in LAYOUTS:
        return None
    return attr.value


def _constant_table(value: ir.Value) -> np.ndarray | None:
    """The elements of a table operand defined by an ``arith.constant`` with inline data, else None."""
    owner = value.owner
    if not isinstance(owner, ir.OpView) and not isinstance(owner, ir.Operation):
        return None
    operation = owner.operation if isinstance(owner, ir.OpView) else owner
    if operation.name != "arith.constant" or "value" not in operation.attributes:
        return None
    try:
        attr = ir.DenseIntElementsAttr(operation.attributes["value"])
    except ValueError:
        return None
    if attr.is_splat:
        return np.full(ir.ShapedType(attr.type).shape, int(ir.IntegerAttr(attr.get_splat_value()).value))
    return np.array(attr, dtype=np.int64)


def packed_conv3d_problem(op: ir.Operation) -> str | None:
    """What is wrong with an ``rt3d.packed_conv3d``, or None if it is valid.

    Besides shapes, types and attributes, constant tables are checked
    against what the kernels will do with them: every entry offset names a
    channel run and kernel position inside the zero-padded input, block
    starts rise from 0 to the entry count, and every lane's output channel
    is -1 or a channel of the result.
    """
    operands = list(op.operands)
    if len(operands) != 6 or len(op.results) != 1:
        return "expects (input, weights, entry_offsets, block_starts, out_channels, bias) and one result"
    names = ["input", "weights", "entry_offsets", "block_starts", "out_channels", "bias", "result"]
    shapes = [_static_shape(v.type) for v in operands] + [_static_shape(op.results[0].type)]
    for name, shape in zip(names, shapes, strict=True):
        if shape is None:
            return f"{name} must be a statically shaped ranked tensor"
    activation = "f32|bf16|f16"
    problem = _element_problem(
        names, [*operands, op.results[0]],
        [f"{activation}|i8", "f32|i16|f16|i8", "i32", "i32", "i32", "f32", activation],
    )
    if problem:
        return problem
    x_shape, y_shape = shapes[0], shapes[-1]
    layouts = (_layout(op, "input_layout"), _layout(op, "output_layout"))
    if None in layouts:
        return f"'input_layout' and 'output_layout' must be one of {', '.join(LAYOUTS)}"
    # 16-bit activations are those of the blocked layout; i16 weights are bf16 channel pairs
    # (kernel_packing.bf16_pairs), read against a bf16 input; f16 weights are read against an f16 one
    def element(value: ir.Value) -> str:
        return str(ir.RankedTensorType(value.type).element_type)

    for kind, value, layout in (("input", operands[0], layouts[0]), ("result", op.results[0], layouts[1])):
        if element(value) != "f32" and layout != "blocked":
            return f"a {element(value)} {kind} must be in the blocked layout"
    pairs = element(operands[1]) == "i16"
    if pairs and (element(operands[0]) != "bf16" or (_i64_attr(op, "channel_unroll") or 1) % 2):
        return "i16 weights (bf16 channel pairs) need a bf16 input and an even channel_unroll"
    if element(operands[1]) == "f16" and element(operands[0]) != "f16":
        return "f16 weights need an f16 input"
    # i8 weights are int8 channel quads (kernel_packing.int8_quads), read against an i8 input
    # quantized into blocks of INT8_QUAD channels; their bias operand holds each lane's bias, then
    # each lane's dequantization factor (input scale x weight scale)
    quads = element(operands[1]) == "i8"
    if quads != (element(operands[0]) == "i8"):
        return "i8 weights (int8 channel quads) and an i8 input go together"
    if quads and (
        layouts[0] != "blocked" or len(x_shape) != 6 or x_shape[5] != INT8_QUAD
        or (_i64_attr(op, "channel_unroll") or 1) % INT8_QUAD
    ):
        return (
            f"an i8 input must be blocked by {INT8_QUAD} channels, read in channel runs that are "
            f"multiples of {INT8_QUAD}"
        )
    if quads and any(any(_i64_array(op, name) or ()) for name in ("padding_low", "padding_high")):
        return "an i8 input comes padded with its zero point (rt3d-quantize-convs): its padding must be 0"
    for kind, layout in zip(("input", "result"), layouts, strict=True):
        if layout == "blocked":
            problem = _blocked_problem(op, kind, x_shape if kind == "input" else y_shape)
            if problem:
                return problem
    if layouts[0] == "blocked":
        x_shape = plain_shape(x_shape)
    if layouts[1] == "blocked":
        y_shape = plain_shape(y_shape)
    if len(x_shape) != 5 or len(y_shape) != 5:
        return "input and result must be rank 5 (N, C, D, H, W)"
    if any(len(s) != 1 for s in shapes[1:6]):
        return "weights and tables must be rank 1"
    values: dict[str, tuple[int, ...]] = {}
    for name, minimum in (
        ("kernel_size", 1), ("strides", 1), ("dilations", 1), ("padding_low", 0), ("padding_high", 0)
    ):
        value = _i64_array(op, name)
        if value is None or len(value) != 3 or min(value) < minimum:
            return f"requires '{name}' as array<i64> of 3 entries >= {minimum}"
        values[name] = value
    block = _i64_attr(op, "block_size")
    unroll = _i64_attr(op, "channel_unroll")
    if block is None or block < 1 or unroll is None or unroll < 1:
        return "requires positive integer 'block_size' and 'channel_unroll'"
    if x_shape[1] % unroll:
        return f"channel_unroll {unroll} does not divide the {x_shape[1]} input channels"
    if (
        "activation" not in op.attributes
        or not isinstance(op.attributes["activation"], ir.StringAttr)
        or ir.StringAttr(op.attributes["activation"]).value not in ACTIVATIONS
    ):
        return f"requires 'activation', one of {', '.join(ACTIVATIONS)}"
    entries = shapes[2][0]
    blocks = shapes[3][0] - 1
    if blocks < 1:
        return "block_starts needs at least two entries"
    if shapes[1][0] != entries * unroll * block:
        return (
            f"weights has {shapes[1][0]} elements, expected entries x channel_unroll x block_size "
            f"= {entries} x {unroll} x {block}"
        )
    if shapes[4][0] != blocks * block or shapes[5][0] != blocks * block * (2 if quads else 1):
        what = "2 x blocks x block_size" if quads else "blocks x block_size"
        return (
            f"out_channels must have blocks x block_size = {blocks * block} elements, bias {what} = "
            f"{blocks * block * (2 if quads else 1)}"
        )
    w_shape = (y_shape[1], x_shape[1], *values["kernel_size"])
    problem = _result_shape_problem(x_shape, w_shape, y_shape, values)
    if problem:
        return problem
    if y_shape[1] > blocks * block:
        return f"result shape {y_shape} does not fit {blocks} blocks of {block} filters"
    problem = _table_problem(op, x_shape, y_shape, values, unroll, entries)
    if problem:
        return problem
    if "tile_sizes" in op.attributes:
        tiles = _i64_array(op, "tile_sizes")
        if tiles is None or len(tiles) != 2 or min(tiles) < 1:
            return "'tile_sizes' must be array<i64: rows, columns> of positive sizes"
    if "loop_order" in op.attributes:
        order = ir.StringAttr(op.attributes["loop_order"]).value
        if order not in LOOP_ORDERS:
            return f"'loop_order' must be one of {', '.join(LOOP_ORDERS)}, got '{order}'"
    if "vector_dim" in op.attributes:
        dim = ir.StringAttr(op.attributes["vector_dim"]).value
        if dim not in VECTOR_DIMS:
            return f"'vector_dim' must be one of {', '.join(VECTOR_DIMS)}, got '{dim}'"
        if dim in ("width", "interleaved") and values["strides"][2] != 1:
            return f"'vector_dim' = \"{dim}\" needs W stride 1"
        lanes = _i64_attr(op, "vector_lanes") or 0
        if dim == "interleaved" and (lanes <= block or lanes % block):
            return f"'vector_dim' = \"interleaved\" needs vector_lanes a multiple of block_size {block}"
    if "vector_lanes" in op.attributes and (_i64_attr(op, "vector_lanes") or 0) < 1:
        return "'vector_lanes' must be a positive integer"
    if "tile_filters" in op.attributes and (_i64_attr(op, "tile_filters") or 0) < 1:
        return "'tile_filters' must be a positive integer"
    if "block_group" in op.attributes and (_i64_attr(op, "block_group") or 0) < 1:
        return "'block_group' must be a positive integer"
    if "row_bands" in op.attributes and (_i64_attr(op, "row_bands") or 0) < 1:
        return "'row_bands' must be a positive integer"
    if "streaming_stores" in op.attributes and not isinstance(op.attributes["streaming_stores"], ir.BoolAttr):
        return "'streaming_stores' must be a bool attribute"
    if "channel_chunk" in op.attributes:
        return _chunk_problem(op, unroll)
    return None


def _blocked_problem(op: ir.Operation, kind: str, shape: tuple[int, ...]) -> str | None:
    """What is wrong with a blocked input or result (``kind``) of ``shape``."""
    block = _i64_attr(op, "block_size") or 0
    unroll = _i64_attr(op, "channel_unroll") or 0
    dim = ir.StringAttr(op.attributes["vector_dim"]).value if "vector_dim" in op.attributes else "filters"
    if dim != "filters":
        return f"a blocked {kind} needs vector_dim \"filters\", not \"{dim}\""
    if kind == "input":
        if len(shape) != 6 or shape[5] < 2:
            return f"a blocked input must be rank 6 (N, C / L, D, H, W, L), got {list(shape)}"
        if unroll < 1 or not runs_fit_blocks(unroll, shape[5]):
            return (
                f"a blocked input's blocks of {shape[5]} channels and channel_unroll {unroll} must "
                "divide each other"
            )
        return None
    if len(shape) != 6 or block < 1 or shape[5] != block:
        return f"a blocked result must be rank 6 (N, C / {block}, D, H, W, {block}), got {list(shape)}"
    lanes = _constant_table(op.operands[4])
    if lanes is not None:
        rows = lanes.reshape(-1, block)
        if np.any(rows[:, 0] % block) or np.any(rows - rows[:, :1] != np.arange(block)):
            return "a blocked result needs each block's lanes to be one block of channels, in order"
    return None


def _chunk_problem(op: ir.Operation, unroll: int) -> str | None:
    chunk = _i64_attr(op, "channel_chunk") or 0
    if chunk < 1 or chunk % unroll:
        return f"'channel_chunk' must be a positive multiple of channel_unroll {unroll}"
    dim = ir.StringAttr(op.attributes["vector_dim"]).value if "vector_dim" in op.attributes else "filters"
    order = ir.StringAttr(op.attributes["loop_order"]).value if "loop_order" in op.attributes else ""
    if dim != "width" or order != "dhfw":
        return "'channel_chunk' needs vector_dim \"width\" and loop_order \"dhfw\""
    if "streaming_stores" in op.attributes and ir.BoolAttr(op.attributes["streaming_stores"]).value:
        return "'channel_chunk' keeps partial sums in the output: no 'streaming_stores'"
    return None


def _table_problem(
    op: ir.Operation,
    x_shape: tuple[int, ...],
    y_shape: tuple[int, ...],
    values: dict[str, tuple[int, ...]],
    unroll: int,
    entries: int,
) -> str | None:
    """Check constant tables (non-constant ones are checked where they become constant)."""
    operands = list(op.operands)
    starts = _constant_table(operands[3])
    if starts is not None:
        if starts[0] != 0 or starts[-1] != entries or np.any(np.diff(starts) < 0):
            return f"block_starts must rise from 0 to the {entries} entries, got {starts.tolist()[:8]}..."
    lanes = _constant_table(operands[4])
    if lanes is not None and (np.any(lanes < -1) or np.any(lanes >= y_shape[1])):
        bad = int(lanes[(lanes < -1) | (lanes >= y_shape[1])][0])
        return f"out_channels holds {bad}, outside -1 (no filter) and the result's {y_shape[1]} channels"
    if lanes is not None:
        used = lanes[lanes >= 0]
        if len(np.unique(used)) != len(used):
            return "out_channels names an output channel twice"
    offsets = _constant_table(operands[2])
    if offsets is None or offsets.size == 0:
        return None
    padded = [
        size + lo + hi
        for size, lo, hi in zip(x_shape[2:], values["padding_low"], values["padding_high"], strict=True)
    ]
    plane = padded[0] * padded[1] * padded[2]
    if _layout(op, "input_layout") == "blocked":
        offsets = plain_offsets(offsets, plane, _static_shape(operands[0].type)[5])
    channel, rest = np.divmod(offsets, plane)
    pd, rest = np.divmod(rest, padded[1] * padded[2])
    ph, pw = np.divmod(rest, padded[2])
    reach = [(k - 1) * d for k, d in zip(values["kernel_size"], values["dilations"], strict=True)]
    bad = (
        (offsets < 0)
        | (channel % unroll != 0)
        | (channel + unroll > x_shape[1])
        | (pd > reach[0]) | (ph > reach[1]) | (pw > reach[2])
        | (pd % values["dilations"][0] != 0) | (ph % values["dilations"][1] != 0)
        | (pw % values["dilations"][2] != 0)
    )
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        return (
            f"entry_offsets[{first}] = {int(offsets[first])} is not a channel run and kernel position "
            f"inside the padded input {tuple(x_shape[:2]) + tuple(padded)}"
        )
    return None


def build_packed_conv3d(
    result_type: ir.Type,
    operands: list[ir.Value],
    params: PackedConv3dParams,
) -> ir.Operation:
    """Create an ``rt3d.packed_conv3d`` at the current insertion point."""

    def i64s(values):
        return ir.DenseI64ArrayAttr.get([int(v) for v in values])

    i64 = ir.IntegerType.get_signless(64)
    op = PackedConv3dOp(
        result_type,
        *operands,
        i64s(params.kernel_size),
        i64s(params.strides),
        i64s(params.padding_low),
        i64s(params.padding_high),
        i64s(params.dilations),
        ir.IntegerAttr.get(i64, params.block_size),
        ir.IntegerAttr.get(i64, params.channel_unroll),
        ir.StringAttr.get(params.activation),
    )
    return op.operation


@dataclass(frozen=True)
class QuantizeParams:
    """The attributes of an ``rt3d.quantize``, as plain Python values."""

    scale: float
    zero_point: int
    padding_low: tuple[int, int, int]
    padding_high: tuple[int, int, int]


def quantize_params(op: ir.Operation) -> QuantizeParams:
    """Read a verified ``rt3d.quantize``'s attributes."""
    return QuantizeParams(
        scale=float(ir.FloatAttr(op.attributes["scale"]).value),
        zero_point=_i64_attr(op, "zero_point"),  # type: ignore[arg-type]
        padding_low=_i64_array(op, "padding_low"),  # type: ignore[arg-type]
        padding_high=_i64_array(op, "padding_high"),  # type: ignore[arg-type]
    )


def quantized_shape(x_shape: tuple[int, ...], low: tuple[int, ...], high: tuple[int, ...]) -> tuple[int, ...]:
    """The shape ``rt3d.quantize`` gives an (N, C, D, H, W) input with these paddings."""
    n, c, *spatial = x_shape
    padded = (s + lo + hi for s, lo, hi in zip(spatial, low, high, strict=True))
    return (n, c // INT8_QUAD, *padded, INT8_QUAD)


def quantize_problem(op: ir.Operation) -> str | None:
    """What is wrong with an ``rt3d.quantize``, or None if it is valid."""
    if len(op.operands) != 1 or len(op.results) != 1:
        return "takes one input and has one result"
    x_shape, q_shape = _static_shape(op.operands[0].type), _static_shape(op.results[0].type)
    if x_shape is None or len(x_shape) != 5:
        return "input must be a statically shaped rank-5 (N, C, D, H, W) tensor"
    problem = _element_problem(["input", "result"], [op.operands[0], op.results[0]], ["f32", "i8"])
    if problem:
        return problem
    if x_shape[1] % INT8_QUAD:
        return f"input channels ({x_shape[1]}) must be a multiple of {INT8_QUAD}"
    if "scale" not in op.attributes or not isinstance(op.attributes["scale"], ir.FloatAttr):
        return "requires a float 'scale'"
    scale = float(ir.FloatAttr(op.attributes["scale"]).value)
    if not np.isfinite(scale) or scale <= 0:
        return f"scale must be positive and finite, got {scale}"
    zero_point = _i64_attr(op, "zero_point")
    if zero_point not in INT8_ZERO_POINTS:
        return f"zero_point must be one of {', '.join(map(str, INT8_ZERO_POINTS))}, got {zero_point}"
    pads = [_i64_array(op, name) for name in ("padding_low", "padding_high")]
    if any(p is None or len(p) != 3 or min(p) < 0 for p in pads):
        return "padding_low and padding_high must be three non-negative integers each"
    expected = quantized_shape(x_shape, *pads)  # type: ignore[arg-type]
    if q_shape != expected:
        return f"result shape {q_shape} does not match the quantized, padded input shape {expected}"
    return None


def build_quantize(
    x: ir.Value, scale: float, zero_point: int, low: tuple[int, ...], high: tuple[int, ...]
) -> ir.Value:
    """Create an ``rt3d.quantize`` of ``x`` at the current insertion point; its result."""

    def i64s(values):
        return ir.DenseI64ArrayAttr.get([int(v) for v in values])

    x_shape = tuple(ir.RankedTensorType(x.type).shape)
    result_type = ir.RankedTensorType.get(
        list(quantized_shape(x_shape, low, high)), ir.IntegerType.get_signless(8)
    )
    op = QuantizeOp(
        result_type,
        x,
        ir.FloatAttr.get_f64(float(scale)),
        ir.IntegerAttr.get(ir.IntegerType.get_signless(64), int(zero_point)),
        i64s(low),
        i64s(high),
    )
    return op.operation.results[0]
