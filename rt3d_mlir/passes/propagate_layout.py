"""rt3d-propagate-layout: keep activations channel-blocked where convolutions write and read them.

An activation is stored in the channel-blocked layout
(:mod:`rt3d_mlir.kernel_packing`: (N, C / L, D, H, W, L), ``L`` the target's
f32 lanes) by deciding, for each *component* of activations joined by
elementwise generics with identity maps (residual adds, ReLUs: they compute
the same in any layout and then run on rank-6 tensors), by max pools
(blocked, a pool reads its window's ``L`` channels as one vector), by the
constant pads of padded pools (padding the rank-5 (N, C/L, D, H, W x L)
tensor the blocked one is in memory) and by concatenations along the
channels (along the channel blocks; inception branches), whether all of it
is blocked. A component is blocked when

- every value in it is produced by a "filters" conv whose blocks are whole,
  in-order blocks of ``L`` channels (dense convs and kernel groups of ``L``
  filters or more; it then stores each accumulator as one aligned vector, no
  transposing store) or by one of its elementwise generics, pools, pads or
  concats (every part a whole number of channel blocks);
- at least one "filters" conv reads one of its values as input (with channel
  runs that stay within a block or cover whole blocks: each broadcast input's
  cache line serves the next channels of the run; its entry offsets are
  re-expressed for the blocked input); and
- every other reader (a "width" kernel, the function's result) reads
  a value of at most :data:`MAX_CONVERTED` elements, which gets a conversion
  back to the plain layout (a generic reading element
  (n, c floordiv L, d, h, w, c mod L), lowered to loops).

With ``precision=bf16`` a blocked component's activations are stored in
bfloat16 (half the bytes; convs accumulate in f32 and round once when they
store), and each conv reading one with even channel runs gets its weights
as bf16 channel pairs (:func:`rt3d_mlir.kernel_packing.bf16_pairs`: a dot
product of two channels per lane, ``rt3d-vectorize``); with
``precision=fp16`` they are IEEE halves and each conv reading one gets its
weights in f16 (same layout); conversions back to
the plain layout widen to f32, so the model's results stay f32; elementwise
generics (residual adds) widen their operands and round their result.

Run after ``rt3d-reorder-loops`` (which chooses the vector dimension) and
before ``rt3d-vectorize``. Measured on single layers with both sides blocked
(2 threads, GFLOP/s plain -> blocked): dense (3,1,1) 144->64 on 16x56x56
138 -> 224, 512->256 on 4x14x14 219 -> 279, 3x3x3 16x16 KGS at 2.6x
216 -> 256; dense 3x3x3 layers unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor

from rt3d_mlir.dialect import load_dialect, packed_conv3d_params
from rt3d_mlir.ir_matchers import constant_array, constant_attr, defining_op, ops_named
from rt3d_mlir.kernel_packing import (
    ACTIVATION_ELEMENT,
    PRECISIONS,
    bf16_pairs,
    blocked_offsets,
    blocked_shape,
    plain_shape,
    runs_fit_blocks,
)
from rt3d_mlir.passes.builders import zero_pad
from rt3d_mlir.passes.framework import Pass, TargetOptions, register_pass
from rt3d_mlir.passes.kernel_calls import vector_lanes
from rt3d_mlir.passes.vectorize_elementwise import elementwise_inner
from rt3d_mlir.passes.vectorize_pad import pad_constant, pad_value
from rt3d_mlir.passes.vectorize_pool import match_max_pool, pool_strides


@dataclass
class PropagateLayoutOptions(TargetOptions):
    precision: str = "fp32"  # of blocked activations and the weights of the convs reading them

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")


def writes_channel_blocks(op: ir.Operation, lanes: int) -> bool:
    """Whether ``op``'s blocks are whole, in-order blocks of ``lanes`` output channels."""
    params = packed_conv3d_params(op)
    shape = ir.RankedTensorType(op.results[0].type).shape
    if params.vector_dim != "filters" or params.block_size != lanes or params.output_layout != "plain":
        return False
    if len(shape) != 5 or shape[1] % lanes:
        return False
    channels = constant_array(op.operands[4])
    if channels is None or channels.size != shape[1]:
        return False
    rows = channels.reshape(-1, lanes)
    return bool(np.all(rows[:, 0] % lanes == 0) and np.all(rows - rows[:, :1] == np.arange(lanes)))


def _reads_channel_blocks(op: ir.Operation, lanes: int) -> bool:
    params = packed_conv3d_params(op)
    shape = ir.RankedTensorType(op.operands[0].type).shape
    return (
        params.vector_dim == "filters"
        and params.input_layout == "plain"
        and runs_fit_blocks(params.channel_unroll, lanes)
        and len(shape) == 5
        and shape[1] % lanes == 0
        and constant_array(op.operands[2]) is not None
    )


def _elementwise(op: ir.Operation) -> bool:
    """An elementwise generic with identity maps on rank-5 operands of one shape, writing into a
    ``tensor.empty`` it does not read: it computes the same in any layout."""
    if elementwise_inner(op) is None:
        return False
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    shape = ir.RankedTensorType(op.results[0].type).shape
    if len(shape) != 5 or any(m != ir.AffineMap.get_identity(5) for m in maps):
        return False
    if any(ir.RankedTensorType(v.type).shape != shape for v in op.operands):
        return False
    init = defining_op(op.operands[-1])
    out_arg = op.regions[0].blocks[0].arguments[-1]
    return init is not None and init.name == "tensor.empty" and not any(True for _ in out_arg.uses)


def _pool(op: ir.Operation, lanes: int) -> bool:
    """A plain max pool over whole channel blocks: it computes the same blocked."""
    shape = match_max_pool(op)
    return shape is not None and not shape.blocked and shape.input[1] % lanes == 0


def _pad(op: ir.Operation, lanes: int) -> bool:
    """A constant pad of the spatial dims of an activation of whole channel blocks (a padded max
    pool's): it pads the same blocked, as the rank-5 tensor the blocked one is in memory."""
    if pad_value(op) is None:
        return False
    low, high = (list(ir.DenseI64ArrayAttr(op.attributes[a])) for a in ("static_low", "static_high"))
    channels = ir.RankedTensorType(op.results[0].type).shape[1]
    return low[:2] == [0, 0] and high[:2] == [0, 0] and channels % lanes == 0


def _concat(op: ir.Operation, lanes: int) -> bool:
    """A concatenation of activations of whole channel blocks along the channels: it concatenates
    the same blocked, along the channel blocks."""
    if op.name != "tensor.concat" or ir.IntegerAttr(op.attributes["dim"]).value != 1:
        return False
    shapes = [ir.RankedTensorType(v.type).shape for v in op.operands]
    return all(len(shape) == 5 and shape[1] % lanes == 0 for shape in shapes)


def _size(value: ir.Value) -> int:
    return int(np.prod(ir.RankedTensorType(value.type).shape))


class _Components:
    """Union-find over activation values: an elementwise generic's inputs and result are blocked
    together or not at all."""

    def __init__(self) -> None:
        self.parent: dict[ir.Value, ir.Value] = {}

    def find(self, v: ir.Value) -> ir.Value:
        self.parent.setdefault(v, v)
        while self.parent[v] != v:
            self.parent[v] = self.parent[self.parent[v]]
            v = self.parent[v]
        return v

    def union(self, a: ir.Value, b: ir.Value) -> None:
        self.parent[self.find(a)] = self.find(b)

    def groups(self) -> list[list[ir.Value]]:
        found: dict[ir.Value, list[ir.Value]] = {}
        for v in list(self.parent):
            found.setdefault(self.find(v), []).append(v)
        return list(found.values())


@register_pass
class PropagateLayout(Pass):
    name = "rt3d-propagate-layout"
    summary = "Keep activations between convolutions that take it in the channel-blocked layout"
    Options = PropagateLayoutOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        lanes = vector_lanes(self.options.target, self.options.vector_width, module.location)
        if lanes < 2:
            return
        components = _Components()
        for op in ops_named(module, "rt3d.packed_conv3d"):
            if writes_channel_blocks(op, lanes):
                components.find(op.results[0])
        elementwise = [
            op
            for op in ops_named(module, "linalg.generic")
            if _elementwise(op) and ir.RankedTensorType(op.results[0].type).shape[1] % lanes == 0
        ]
        for op in elementwise:
            for v in op.operands[:-1]:
                components.union(v, op.results[0])
        pools = [op for op in ops_named(module, "linalg.generic") if _pool(op, lanes)]
        pads = [op for op in ops_named(module, "tensor.pad") if _pad(op, lanes)]
        for op in pools + pads:
            components.union(op.operands[0], op.results[0])
        concats = [op for op in ops_named(module, "tensor.concat") if _concat(op, lanes)]
        for op in concats:
            for v in op.operands:
                components.union(v, op.results[0])
        # member op -> how many of its first operands are activations of its component
        members = (
            {op: len(op.operands) - 1 for op in elementwise}
            | {op: 1 for op in pools + pads}
            | {op: len(op.operands) for op in concats}
        )
        for values in components.groups():
            conversions = self._conversions(values, members, lanes)
            if conversions is None:
                continue
            element = ir.Type.parse(ACTIVATION_ELEMENT[self.options.precision])
            self._block(values, conversions, lanes, element)

    def _conversions(self, values: list[ir.Value], members: dict, lanes: int) -> list | None:
        """The uses of a component's values that need the plain layout back (each value small), or
        None if the component cannot be blocked: a value some op other than a blocked-writing conv
        or a member generic produces, or a large value read by an op that needs it plain; or a
        component no conv reads (nothing would gain)."""
        readers, conversions = 0, []
        for v in values:
            producer = defining_op(v)
            if producer is None:
                return None
            if producer.name == "rt3d.packed_conv3d":
                if not writes_channel_blocks(producer, lanes):
                    return None
            elif producer not in members:
                return None
            for use in v.uses:
                user = use.owner
                user = user.operation if hasattr(user, "operation") else user
                if use.operand_number < members.get(user, 0):
                    continue
                if user.name == "rt3d.packed_conv3d" and use.operand_number == 0 and _reads_channel_blocks(
                    user, lanes
                ):
                    readers += 1
                    continue
                if _size(v) > MAX_CONVERTED:
                    return None
                conversions.append((user, use.operand_number))
        return conversions if readers else None

    def _block(self, values: list[ir.Value], conversions: list, lanes: int, element: ir.Type) -> None:
        readers, pads = [], []
        # matched before any type changes (an op's hash may change with its types)
        pools = [match_max_pool(defining_op(v)) is not None for v in values]
        for v, is_pool in zip(values, pools, strict=True):
            shape = ir.RankedTensorType(v.type).shape
            for use in v.uses:
                user = use.owner
                user = user.operation if hasattr(user, "operation") else user
                if user.name == "rt3d.packed_conv3d" and use.operand_number == 0:
                    if (user, 0) not in conversions:
                        readers.append((user, shape))
            producer = defining_op(v)
            if producer.name == "tensor.pad":
                pads.append(producer)  # rebuilt once its input is blocked
                continue
            v.set_type(ir.RankedTensorType.get(blocked_shape(shape, lanes), element))
            if producer.name == "rt3d.packed_conv3d":
                producer.attributes["output_layout"] = ir.StringAttr.get("blocked")
            elif is_pool:
                _block_pool(producer, lanes, element)
            elif producer.name != "tensor.concat":  # a concat's result type is all it changes
                _block_generic(producer, lanes, element)
        for pad in pads:
            _block_pad(pad)
        for user, operand in conversions:
            with ir.InsertionPoint(user), user.location:
                user.operands[operand] = _to_plain(user.operands[operand], lanes)
        for user, shape in readers:
            _read_blocked(user, shape, lanes)
            if isinstance(element, ir.BF16Type):
                _pair_weights(user)
            elif isinstance(element, ir.F16Type):
                _half_weights(user)


MAX_CONVERTED = 1 << 18  # elements: a value read plain as well is converted (scalar loops) only if this small


def _block_generic(op: ir.Operation, lanes: int, element: ir.Type) -> None:
    """Make an elementwise generic (its operands already blocked, of ``element``) compute on rank-6
    tensors; bf16 operands are widened in its body and its result rounded once (it computes in
    f32)."""
    init = defining_op(op.operands[-1])
    shape = blocked_shape(ir.RankedTensorType(init.results[0].type).shape, lanes)
    with ir.InsertionPoint(op), op.location:
        op.operands[-1] = tensor.EmptyOp(list(shape), element).result
    if not isinstance(element, ir.F32Type):
        _narrow_body(op, element)
    identity = ir.AffineMapAttr.get(ir.AffineMap.get_identity(6))
    op.attributes["indexing_maps"] = ir.ArrayAttr.get([identity] * len(op.operands))
    parallel = ir.ArrayAttr(op.attributes["iterator_types"])[0]
    op.attributes["iterator_types"] = ir.ArrayAttr.get([parallel] * 6)


def _narrow_body(op: ir.Operation, element: ir.Type) -> None:
    """Give an f32 elementwise generic ``element`` operands and result: each used input argument
    widened once at the top of the body, the yielded value narrowed."""
    block = op.regions[0].blocks[0]
    f32 = ir.F32Type.get()
    first = block.operations[0]
    for arg in block.arguments:
        uses = [(use.owner, use.operand_number) for use in arg.uses]
        arg.set_type(element)
        if not uses:
            continue
        with ir.InsertionPoint(first), op.location:
            wide = arith.ExtFOp(f32, arg).result
        for owner, number in uses:
            owner.operands[number] = wide
    terminator = block.operations[len(block.operations) - 1]
    with ir.InsertionPoint(terminator), op.location:
        terminator.operands[0] = arith.TruncFOp(element, terminator.operands[0]).result


def _block_pad(op: ir.Operation) -> None:
    """Replace a constant pad (its input already blocked) by the blocked pad: the rank-5 pad of the
    tensor the blocked input is in memory (the pad kernels' form)."""
    value = pad_constant(op)
    low = list(ir.DenseI64ArrayAttr(op.attributes["static_low"]))[2:]
    high = list(ir.DenseI64ArrayAttr(op.attributes["static_high"]))[2:]
    element = ir.RankedTensorType(op.operands[0].type).element_type
    with ir.InsertionPoint(op), op.location:
        fill = arith.ConstantOp(element, ir.FloatAttr.get(element, value)).result  # type: ignore[arg-type]
        padded = zero_pad(op.operands[0], low, high, fill)
    op.results[0].replace_all_uses_with(padded)
    op.erase()


def _block_pool(op: ir.Operation, lanes: int, element: ir.Type) -> None:
    """Make a max pool (its input already blocked, of ``element``) compute on rank-6 tensors: the
    channel within the block is a sixth parallel loop, after the five of the plain pool and before
    its window loops."""
    fill = defining_op(op.operands[2])
    shape = blocked_shape(ir.RankedTensorType(fill.results[0].type).shape, lanes)
    with ir.InsertionPoint(op), op.location:
        empty = tensor.EmptyOp(list(shape), element).result
        init = fill.operands[0]
        if init.type != element:
            value = ir.FloatAttr(constant_attr(init)).value
            init = arith.ConstantOp(element, ir.FloatAttr.get(element, value)).result
        op.operands[2] = linalg.fill(init, outs=[empty])
    block = op.regions[0].blocks[0]
    for i in (0, 2):  # the input's and the result's elements; the window operand's stay
        block.arguments[i].set_type(element)
    for inner in block.operations:
        for result in inner.results:
            result.set_type(element)
    dims = [ir.AffineDimExpr.get(i) for i in range(9)]
    strides = pool_strides(ir.AffineMapAttr(ir.ArrayAttr(op.attributes["indexing_maps"])[0]).value, 5)
    read = [dims[0], dims[1], *(dims[2 + i] * strides[i] + dims[6 + i] for i in range(3)), dims[5]]
    maps = [
        ir.AffineMap.get(9, 0, read),
        ir.AffineMap.get(9, 0, dims[6:9]),
        ir.AffineMap.get(9, 0, dims[:6]),
    ]
    op.attributes["indexing_maps"] = ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps])
    iterators = list(ir.ArrayAttr(op.attributes["iterator_types"]))
    op.attributes["iterator_types"] = ir.ArrayAttr.get(iterators[:5] + iterators[:1] + iterators[5:])


def _to_plain(value: ir.Value, lanes: int) -> ir.Value:
    """A blocked activation as (N, C, D, H, W): a generic reading element (n, c / L, d, h, w, c % L)."""
    shape = plain_shape(ir.RankedTensorType(value.type).shape)
    f32 = ir.F32Type.get()
    element = ir.RankedTensorType(value.type).element_type
    n, c, d, h, w = (ir.AffineDimExpr.get(i) for i in range(5))
    read = ir.AffineMap.get(
        5, 0, [n, ir.AffineExpr.get_floor_div(c, lanes), d, h, w, ir.AffineExpr.get_mod(c, lanes)]
    )
    init = tensor.EmptyOp(list(shape), f32).result
    parallel = ir.Attribute.parse("#linalg.iterator_type<parallel>")
    op = linalg.GenericOp(
        [ir.RankedTensorType.get(list(shape), f32)],
        [value],
        [init],
        ir.ArrayAttr.get([ir.AffineMapAttr.get(read), ir.AffineMapAttr.get(ir.AffineMap.get_identity(5))]),
        ir.ArrayAttr.get([parallel] * 5),
    )
    body = op.regions[0].blocks.append(element, f32)
    with ir.InsertionPoint(body):
        x = body.arguments[0]
        linalg.YieldOp([x if element == f32 else arith.ExtFOp(f32, x).result])
    return op.results[0]


def _pair_weights(conv: ir.Operation) -> None:
    """Give a conv reading a bf16 input its weights as bf16 channel pairs (i16 bit patterns), if its
    channel runs are even and its weights constant; otherwise it widens each input to f32."""
    params = packed_conv3d_params(conv)
    weights = constant_array(conv.operands[1])
    if params.channel_unroll % 2 or weights is None:
        return
    pairs = bf16_pairs(weights, params.channel_unroll, params.block_size).view(np.int16)
    with ir.InsertionPoint(conv), conv.location:
        attr = ir.DenseElementsAttr.get(pairs)
        conv.operands[1] = arith.ConstantOp(attr.type, attr).result


def _half_weights(conv: ir.Operation) -> None:
    """Give a conv reading an f16 input its weights in f16, if they are constant (otherwise it
    widens each input to f32)."""
    weights = constant_array(conv.operands[1])
    if weights is None:
        return
    with ir.InsertionPoint(conv), conv.location:
        attr = ir.DenseElementsAttr.get(weights.astype(np.float16))
        conv.operands[1] = arith.ConstantOp(attr.type, attr).result


def _read_blocked(consumer: ir.Operation, shape, lanes: int) -> None:
    """Mark a conv as reading a blocked input of plain ``shape``; its entry offsets follow."""
    params = packed_conv3d_params(consumer)
    pads = zip(shape[2:], params.padding_low, params.padding_high, strict=True)
    padded = [s + lo + hi for s, lo, hi in pads]
    plane = padded[0] * padded[1] * padded[2]
    offsets = blocked_offsets(constant_array(consumer.operands[2]), plane, lanes)
    with ir.InsertionPoint(consumer), consumer.location:
        attr = ir.DenseElementsAttr.get(offsets)
        consumer.operands[2] = arith.ConstantOp(attr.type, attr).result
    consumer.attributes["input_layout"] = ir.StringAttr.get("blocked")
