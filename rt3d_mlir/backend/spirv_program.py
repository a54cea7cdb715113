"""A model's forward function as a program of GPU dispatches (the SPIR-V target).

:func:`build_program` walks the function produced by the import and the
sparse-convolution passes (``rt3d.packed_conv3d``, ``tensor.pad``,
``linalg.generic`` after ``linalg-generalize-named-ops``, reshapes,
``tensor.concat``) in order and gives every tensor a buffer:

* constants become ``weights`` buffers (uploaded once), transposes of
  constants are folded here, and fills of a constant become the initial
  value inside the kernel that consumes them (no dispatch);
* reshapes alias their operand's buffer (all buffers are row-major);
* a conv whose every consumer is a conv reading it with the same padding
  writes into a zeroed, padded buffer, so those consumers need no pad;
* every other op becomes one dispatch of a kernel from
  :mod:`rt3d_mlir.backend.spirv_kernels` writing a fresh buffer, except a
  concat, which is one copy dispatch per operand into one buffer.

Identical kernels (same text) are emitted once and dispatched many times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from torch_mlir import ir

from rt3d_mlir.backend import spirv_kernels as kernels
from rt3d_mlir.backend.spirv_kernels import Binding, GenericOperand, Kernel
from rt3d_mlir.dialect import packed_conv3d_params
from rt3d_mlir.errors import UnsupportedModelError, describe_location
from rt3d_mlir.passes.matchers import constant_array, constant_attr

WEIGHT_ALIGNMENT = 256


@dataclass
class Buffer:
    bytes: int
    init: str = "none"  # "none", "weights" or "zero"
    data: np.ndarray | None = None  # for "weights"


@dataclass
class Dispatch:
    kernel: str
    buffers: list[int]
    groups: tuple[int, int, int]
    label: str
    flops: int = 0
    dense_flops: int = 0


@dataclass
class Tensor:
    """What the program knows about an SSA tensor value."""

    shape: tuple[int, ...]
    buffer: int | None = None
    constant: np.ndarray | None = None
    fill: float | None = None
    # set when the buffer holds the tensor zero-padded by (low, high) on D, H, W:
    # a conv wrote it there for convolutions that read it with that padding
    padding: tuple[tuple[int, ...], tuple[int, ...]] | None = None


@dataclass
class SpirvProgram:
    buffers: list[Buffer] = field(default_factory=list)
    kernels: dict[str, Kernel] = field(default_factory=dict)
    dispatches: list[Dispatch] = field(default_factory=list)
    input_buffer: int = 0
    input_shape: tuple[int, ...] = ()
    output_buffer: int = 0
    output_shape: tuple[int, ...] = ()
    flops: int = 0
    dense_flops: int = 0


def _shape(value: ir.Value) -> tuple[int, ...]:
    return tuple(ir.RankedTensorType(value.type).shape)


def _scalar_constant(value: ir.Value) -> float | None:
    attr = constant_attr(value)
    return float(attr.value) if isinstance(attr, ir.FloatAttr) else None


class ProgramBuilder:
    def __init__(self) -> None:
        self.program = SpirvProgram()
        self.values: dict[ir.Value, Tensor] = {}
        self._kernel_by_text: dict[str, str] = {}
        self._constant_buffers: dict[int, tuple[np.ndarray, int]] = {}
        self._label_counts: dict[str, int] = {}

    # -- buffers and kernels
    def new_buffer(self, elements: int, init: str = "none", data: np.ndarray | None = None) -> int:
        self.program.buffers.append(Buffer(max(4, 4 * int(elements)), init, data))
        return len(self.program.buffers) - 1

    def constant_buffer(self, array: np.ndarray) -> int:
        """One weights buffer per constant array (the array is kept, so its id stays unique)."""
        key = id(array)
        if key not in self._constant_buffers:
            if array.dtype.kind == "f":
                data = np.ascontiguousarray(array, dtype=np.float32)
            else:
                data = np.ascontiguousarray(array, dtype=np.int32)
            self._constant_buffers[key] = (array, self.new_buffer(data.size, "weights", data))
        return self._constant_buffers[key][1]

    def buffer_of(self, tensor: Tensor) -> int:
        if tensor.buffer is not None:
            return tensor.buffer
        if tensor.constant is not None:
            tensor.buffer = self.constant_buffer(tensor.constant)
            return tensor.buffer
        if tensor.fill is not None:
            tensor.buffer = self.dispatch_fill(tensor)
            return tensor.buffer
        raise UnsupportedModelError("the spirv target read a tensor that nothing wrote (tensor.empty)")

    def dispatch_fill(self, tensor: Tensor) -> int:
        # A fill read as a whole tensor (rare): pad of an empty tensor by the value.
        out = self.new_buffer(math.prod(tensor.shape))
        one = kernels.pad_kernel("k", (1,), (0,), (math.prod(tensor.shape) - 1,), float(tensor.fill or 0.0))
        # read element 0 of a one-element constant holding the value
        src = self.constant_buffer(np.array([tensor.fill], dtype=np.float32))
        self.dispatch(one, [src, out], "fill")
        return out

    def dispatch(
        self, kernel: Kernel, buffers: list[int], label: str, dense_flops: int | None = None
    ) -> None:
        key = kernel.text.replace(f"@{kernel.name}", "@KERNEL")
        name = self._kernel_by_text.get(key)
        if name is None:
            name = f"k{len(self.program.kernels)}"
            self._kernel_by_text[key] = name
            self.program.kernels[name] = Kernel(
                name, key.replace("@KERNEL", f"@{name}"), kernel.bindings, kernel.groups, kernel.flops
            )
        if len(buffers) != len(kernel.bindings):
            raise AssertionError(f"{label}: {len(buffers)} buffers for {len(kernel.bindings)} bindings")
        dense = kernel.flops if dense_flops is None else dense_flops
        self._label_counts[label] = self._label_counts.get(label, 0) + 1
        label = f"{label}{self._label_counts[label]}"  # conv1, conv2, ..., pad1, ...
        self.program.dispatches.append(Dispatch(name, buffers, kernel.groups, label, kernel.flops, dense))
        self.program.flops += kernel.flops
        self.program.dense_flops += dense

    # -- the walk
    def run(self, func: ir.Operation) -> SpirvProgram:
        block = func.regions[0].blocks[0]
        if len(block.arguments) != 1:
            raise UnsupportedModelError("the spirv target takes models with exactly one input")
        arg = block.arguments[0]
        shape = _shape(arg)
        self.program.input_shape = shape
        self.program.input_buffer = self.new_buffer(math.prod(shape))
        self.values[arg] = Tensor(shape, buffer=self.program.input_buffer)
        for op in block.operations:
            handler = getattr(self, "_op_" + op.operation.name.replace(".", "_"), None)
            if handler is None:
                raise UnsupportedModelError(
                    f"unsupported operator '{op.operation.name}' on the spirv target (it has no GPU kernel "
                    f"for it; at {describe_location(op.location)})"
                )
            handler(op)
        return self.program

    def _op_func_return(self, op: ir.Operation) -> None:
        if len(op.operands) != 1:
            raise UnsupportedModelError("the spirv target takes models with exactly one output")
        value = self.values[op.operands[0]]
        self.program.output_shape = value.shape
        self.program.output_buffer = self.buffer_of(value)

    def _op_arith_constant(self, op: ir.Operation) -> None:
        if not isinstance(op.results[0].type, ir.RankedTensorType):
            return  # scalars are inlined into the kernels that use them
        array = constant_array(op.results[0])
        if array is None:
            raise UnsupportedModelError("the spirv target cannot read a constant of the model")
        self.values[op.results[0]] = Tensor(_shape(op.results[0]), constant=array)

    def _op_tensor_empty(self, op: ir.Operation) -> None:
        self.values[op.results[0]] = Tensor(_shape(op.results[0]))

    def _reshape(self, op: ir.Operation) -> None:
        source = self.values[op.operands[0]]
        shape = _shape(op.results[0])
        constant = source.constant.reshape(shape) if source.constant is not None else None
        tensor = Tensor(shape, buffer=source.buffer, constant=constant, fill=source.fill)
        if source.buffer is None and constant is not None:
            tensor.buffer = self.buffer_of(source)
        self.values[op.results[0]] = tensor

    _op_tensor_collapse_shape = _reshape
    _op_tensor_expand_shape = _reshape

    def _op_tensor_pad(self, op: ir.Operation) -> None:
        source = self.values[op.operands[0]]
        low = list(ir.DenseI64ArrayAttr(op.attributes["static_low"]))
        high = list(ir.DenseI64ArrayAttr(op.attributes["static_high"]))
        yielded = op.regions[0].blocks[0].operations[-1].operands[0]
        value = _scalar_constant(yielded)
        if value is None or any(v < 0 for v in low + high):
            raise UnsupportedModelError("the spirv target pads only with a constant and static sizes")
        kernel = kernels.pad_kernel("k", source.shape, low, high, value)
        out = self.new_buffer(math.prod(_shape(op.results[0])))
        self.dispatch(kernel, [self.buffer_of(source), out], "pad")
        self.values[op.results[0]] = Tensor(_shape(op.results[0]), buffer=out)

    def _op_tensor_concat(self, op: ir.Operation) -> None:
        axis = ir.IntegerAttr(op.attributes["dim"]).value
        shape = _shape(op.results[0])
        out = self.new_buffer(math.prod(shape))
        offset = 0
        for operand in op.operands:
            source = self.values[operand]
            kernel = kernels.copy_slice_kernel("k", source.shape, shape, axis, offset)
            self.dispatch(kernel, [self.buffer_of(source), out], "concat")
            offset += source.shape[axis]
        self.values[op.results[0]] = Tensor(shape, buffer=out)

    def _op_linalg_generic(self, op: ir.Operation) -> None:
        if any(True for r in list(op.results)[1:] for _ in r.uses):
            raise UnsupportedModelError("the spirv target takes linalg.generic ops with one used result")
        maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
        n_inputs = len(op.operands) - len(op.results)
        block = op.regions[0].blocks[0]
        if self._fold_constant_permutation(op, maps, n_inputs) or self._lazy_fill(op, n_inputs):
            return
        bindings: list[Binding] = []
        buffers: list[int] = []

        def bind(tensor: Tensor) -> int:
            buffer = self.buffer_of(tensor)
            if buffer in buffers:
                return buffers.index(buffer)
            buffers.append(buffer)
            bindings.append(Binding(max(1, math.prod(tensor.shape))))
            return len(buffers) - 1

        def operand(value: ir.Value, amap: ir.AffineMap) -> GenericOperand:
            if not isinstance(value.type, ir.RankedTensorType):
                scalar = _scalar_constant(value)
                if scalar is None:
                    raise UnsupportedModelError("the spirv target takes only constant scalar operands")
                return GenericOperand((), amap, None, scalar)
            tensor = self.values[value]
            if tensor.fill is not None and tensor.buffer is None:
                return GenericOperand(tensor.shape, amap, None, tensor.fill)
            return GenericOperand(tensor.shape, amap, bind(tensor))

        inputs = [
            operand(v, m) if any(True for _ in arg.uses) else GenericOperand(_shape(v), m, None)
            for v, m, arg in zip(list(op.operands)[:n_inputs], maps, block.arguments, strict=False)
        ]
        out_value = op.operands[n_inputs]
        iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
        reads_out = any(True for _ in block.arguments[n_inputs].uses)
        reduces = any("reduction" in it for it in iterators)
        init = operand(out_value, maps[n_inputs]) if (reads_out or reduces) else None
        inside = set(block.arguments) | {r for body_op in block.operations for r in body_op.results}
        captured: dict[ir.Value, float | int] = {}  # float, index and integer constants
        gathered: dict[ir.Value, tuple[int, tuple[int, ...]]] = {}  # tensors read with tensor.extract
        for body_op in block.operations:
            for position, value in enumerate(body_op.operands):
                if value in inside:
                    continue
                if body_op.operation.name == "tensor.extract" and position == 0 and value in self.values:
                    tensor = self.values[value]
                    gathered[value] = (bind(tensor), tensor.shape)
                    continue
                attr = constant_attr(value)
                if isinstance(attr, ir.FloatAttr):
                    captured[value] = float(attr.value)
                elif isinstance(attr, ir.IntegerAttr):
                    captured[value] = int(attr.value)
                else:
                    raise UnsupportedModelError(
                        f"a linalg.generic body reads an outside value it cannot ({body_op.operation.name})"
                    )
        shape = _shape(op.results[0])
        out = self.new_buffer(math.prod(shape))
        buffers.append(out)
        bindings.append(Binding(math.prod(shape)))
        out_binding = len(buffers) - 1
        for result in list(op.results)[1:]:
            self.values[result] = Tensor(_shape(result))  # unused (checked above)
        try:
            kernel = kernels.generic_kernel(
                "k", op, inputs, init, bindings, out_binding, captured, gathered
            )
        except NotImplementedError as err:
            raise UnsupportedModelError(f"the spirv target cannot generate {err}") from None
        self.dispatch(kernel, buffers, "generic")
        self.values[op.results[0]] = Tensor(shape, buffer=out)

    def _lazy_fill(self, op: ir.Operation, n_inputs: int) -> bool:
        """A generalized fill (yield of a scalar input): recorded, written by no dispatch.

        Its consumers take the value as their initial value; a fill of
        another element type than f32 can only feed results nobody uses.
        """
        body = list(op.regions[0].blocks[0].operations)
        value = op.operands[0] if n_inputs == 1 else None
        if value is None or len(body) != 1 or body[0].operands[0] != op.regions[0].blocks[0].arguments[0]:
            return False
        if isinstance(value.type, ir.RankedTensorType):
            return False
        scalar = _scalar_constant(value)
        shape = _shape(op.results[0])
        self.values[op.results[0]] = Tensor(shape, fill=scalar) if scalar is not None else Tensor(shape)
        return True

    def _fold_constant_permutation(self, op: ir.Operation, maps: list[ir.AffineMap], n_inputs: int) -> bool:
        """A generalized transpose (or copy) of a constant is done here, once."""
        body = list(op.regions[0].blocks[0].operations)
        if n_inputs != 1 or len(body) != 1 or body[0].operands[0] != op.regions[0].blocks[0].arguments[0]:
            return False
        source = self.values.get(op.operands[0])
        if source is None or source.constant is None:
            return False
        in_map, out_map = maps[0], maps[1]
        if not all(isinstance(e, ir.AffineDimExpr) for e in [*in_map.results, *out_map.results]):
            return False
        out_dims = [ir.AffineDimExpr(e).position for e in out_map.results]
        in_dims = [ir.AffineDimExpr(e).position for e in in_map.results]
        if out_dims != list(range(len(out_dims))) or sorted(in_dims) != out_dims:
            return False
        array = np.transpose(source.constant, np.argsort(in_dims))
        self.values[op.results[0]] = Tensor(_shape(op.results[0]), constant=np.ascontiguousarray(array))
        return True

    def _op_rt3d_packed_conv3d(self, op: ir.Operation) -> None:
        params = packed_conv3d_params(op)
        source = self.values[op.operands[0]]
        low, high = tuple(params.padding_low), tuple(params.padding_high)
        padded = source
        if source.padding is not None:
            assert source.padding == (low, high), "padded in place for another padding"
            padded = Tensor(_padded_shape(source.shape, low, high), buffer=source.buffer)
        elif any(low) or any(high):
            shape = _padded_shape(source.shape, low, high)
            buffer = self.new_buffer(math.prod(shape))
            pad = kernels.pad_kernel("k", source.shape, (0, 0, *low), (0, 0, *high), 0.0)
            self.dispatch(pad, [self.buffer_of(source), buffer], "pad")
            padded = Tensor(shape, buffer=buffer)
        tables = [self.values[v] for v in list(op.operands)[1:6]]
        if any(t.constant is None for t in tables):
            raise UnsupportedModelError("the spirv target needs constant convolution weights")
        weights, offsets, starts = (t.constant for t in tables[:3])  # type: ignore[misc]
        if params.block_size % 4:
            raise UnsupportedModelError(f"filter block of {params.block_size} is not a multiple of 4")
        out_shape = _shape(op.results[0])
        shape = kernels.ConvShape(
            in_padded=padded.shape,  # type: ignore[arg-type]
            out=out_shape,  # type: ignore[arg-type]
            strides=params.strides,
            weights=int(weights.size),
            entries=int(offsets.size),
            blocks=int(starts.size) - 1,
            block_size=params.block_size,
            channel_unroll=params.channel_unroll,
            relu=params.activation == "relu",
            per_invocation=kernels.positions_per_invocation(math.prod(out_shape[2:])),
        )
        out_padding = _padding_of_all_consumers(op.results[0])
        if out_padding is not None:
            # pad elision: write the interior of a zeroed, padded buffer the consumers read as is
            shape = replace(shape, out_low=out_padding[0], out_high=out_padding[1])
            out = self.new_buffer(math.prod(_padded_shape(out_shape, *out_padding)), init="zero")
        else:
            out = self.new_buffer(math.prod(out_shape))
        kernel = kernels.packed_conv_kernel("k", shape)
        buffers = [self.buffer_of(padded), *(self.buffer_of(t) for t in tables), out]
        dense = op.attributes["dense_weights"] if "dense_weights" in op.attributes else None
        dense_flops = None
        if dense is not None:
            dense_flops = 2 * ir.IntegerAttr(dense).value * math.prod(out_shape) // out_shape[1]
        self.dispatch(kernel, buffers, "conv", dense_flops)
        self.values[op.results[0]] = Tensor(out_shape, buffer=out, padding=out_padding)


def _padded_shape(shape: tuple[int, ...], low: tuple[int, ...], high: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[:2], *(s + lo + hi for s, lo, hi in zip(shape[2:], low, high, strict=True)))


def _padding_of_all_consumers(value: ir.Value) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The (low, high) padding with which every user reads ``value``, when every user
    is a packed convolution taking it as input with the same nonzero padding."""
    found = None
    for use in value.uses:
        owner = getattr(use.owner, "operation", use.owner)
        if owner.name != "rt3d.packed_conv3d" or use.operand_number != 0:
            return None
        params = packed_conv3d_params(owner)
        padding = (tuple(params.padding_low), tuple(params.padding_high))
        if found not in (None, padding):
            return None
        found = padding
    if found is None or not any(found[0] + found[1]):
        return None
    return found


def build_program(module: ir.Module, function: str) -> SpirvProgram:
    for op in module.body.operations:
        if op.operation.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value == function:
            return ProgramBuilder().run(op)
    raise UnsupportedModelError(f"no function '{function}' in the module")
