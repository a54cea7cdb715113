"""GPU compute kernels for the SPIR-V target, written as ``gpu`` dialect text.

Each kernel is one ``gpu.module`` holding one ``gpu.func`` specialised to
its layer: every shape, stride and buffer offset is a constant, so the
dispatch needs no push constants. Buffers are bound in argument order
(descriptor set 0, binding = argument index) as flat static memrefs.

Work mapping. Most kernels give each invocation one point of a linear
iteration space of ``points`` elements, split into workgroups of
``WORKGROUP`` invocations laid out on a 2-D grid (Vulkan guarantees only
65535 workgroups per dimension). The kernel-group sparse convolution gives
each invocation up to 8 output positions (64 apart) of one filter *block*
(grid y): the invocation keeps the block's filters for each position in
``vector<4xf32>`` accumulators and loops over the block's kept entries
only, reading the packed weights as ``vector<4xf32>`` (uniform across the
workgroup, shared by the positions) and one input value per channel and
position (consecutive across the workgroup's invocations). On lavapipe,
R(2+1)D-18's convolutions ran about 2x faster with up to 8 positions per
invocation than with one (bench/RESULTS.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.codegen.literals import float_literal

WORKGROUP = 64
MAX_GROUPS_X = 32768


@dataclass(frozen=True)
class Binding:
    """One kernel argument: a flat buffer of ``count`` elements of ``element`` type."""

    count: int
    element: str = "f32"  # "f32", "i32" or "vector<4xf32>"

    @property
    def memref(self) -> str:
        return f"memref<{self.count}x{self.element}>"


@dataclass(frozen=True)
class Kernel:
    name: str
    text: str  # a gpu.module
    bindings: tuple[Binding, ...]
    groups: tuple[int, int, int]
    flops: int = 0  # 2 x multiply-adds executed (conv and matmul-like kernels)


def linear_grid(points: int) -> tuple[int, int, int]:
    groups = max(1, math.ceil(points / WORKGROUP))
    x = min(groups, MAX_GROUPS_X)
    return x, math.ceil(groups / x), 1


class GpuKernelText:
    """Builds one kernel's body: fresh SSA names, constants, nested regions."""

    def __init__(self, name: str, bindings: Sequence[Binding]) -> None:
        self.name = name
        self.bindings = tuple(bindings)
        self.lines: list[str] = []
        self.indent = 3
        self._count = 0
        self._constants: dict[tuple[str, str], str] = {}

    def fresh(self) -> str:
        self._count += 1
        return f"%v{self._count}"

    def emit(self, line: str) -> None:
        self.lines.append("  " * self.indent + line)

    def op(self, text: str) -> str:
        name = self.fresh()
        self.emit(f"{name} = {text}")
        return name

    def index(self, value: int) -> str:
        key = ("index", str(int(value)))
        if key not in self._constants:
            name = f"%c{int(value)}".replace("-", "m")
            self._constants[key] = name
        return self._constants[key]

    def f32(self, value: float) -> str:
        text = float_literal(value, "f32")
        key = ("f32", text)
        if key not in self._constants:
            self._constants[key] = f"%f{len(self._constants)}"
        return self._constants[key]

    def integer(self, value: int, type_: str) -> str:
        """An integer constant of type ``type_`` (``i1``, ``i32``, ...)."""
        key = (type_, str(int(value)))
        if key not in self._constants:
            self._constants[key] = f"%i{len(self._constants)}"
        return self._constants[key]

    def arg(self, i: int) -> str:
        return f"%arg{i}"

    # index arithmetic, folding the trivial cases
    def add(self, a: str, b: str) -> str:
        if a == self.index(0):
            return b
        if b == self.index(0):
            return a
        return self.op(f"arith.addi {a}, {b} : index")

    def mul(self, a: str, factor: int) -> str:
        if factor == 0:
            return self.index(0)
        if factor == 1:
            return a
        return self.op(f"arith.muli {a}, {self.index(factor)} : index")

    def linearize(self, indices: Sequence[str], shape: Sequence[int], base: int = 0) -> str:
        """Row-major offset of ``indices`` in a tensor of ``shape`` starting at ``base``."""
        total = self.index(base)
        stride = 1
        for idx, size in reversed(list(zip(indices, shape, strict=True))):
            total = self.add(total, self.mul(idx, stride))
            stride *= size
        return total

    def delinearize(self, linear: str, shape: Sequence[int]) -> list[str]:
        out: list[str] = []
        rest = linear
        for i, size in enumerate(reversed(list(shape))):
            if i == len(shape) - 1:
                out.append(rest)
            elif size == 1:
                out.append(self.index(0))
            else:
                out.append(self.op(f"arith.remui {rest}, {self.index(size)} : index"))
                rest = self.op(f"arith.divui {rest}, {self.index(size)} : index")
        return list(reversed(out))

    def load(self, arg: int, offset: str) -> str:
        binding = self.bindings[arg]
        return self.op(f"memref.load {self.arg(arg)}[{offset}] : {binding.memref}")

    def store(self, value: str, arg: int, offset: str) -> None:
        self.emit(f"memref.store {value}, {self.arg(arg)}[{offset}] : {self.bindings[arg].memref}")

    def linear_id(self, points: int) -> tuple[str, str]:
        """(linear invocation id, in-range flag) on the grid of :func:`linear_grid`."""
        gx = linear_grid(points)[0]
        bx = self.op("gpu.block_id x")
        by = self.op("gpu.block_id y")
        tx = self.op("gpu.thread_id x")
        group = self.add(self.mul(by, gx), bx)
        linear = self.add(self.mul(group, WORKGROUP), tx)
        ok = self.op(f"arith.cmpi ult, {linear}, {self.index(points)} : index")
        return linear, ok

    def block(self, header: str, body: Callable[[], None], footer: str = "}") -> None:
        self.emit(header)
        self.indent += 1
        body()
        self.indent -= 1
        self.emit(footer)

    def text(self, workgroup: tuple[int, int, int] = (WORKGROUP, 1, 1)) -> str:
        args = ", ".join(f"%arg{i}: {b.memref}" for i, b in enumerate(self.bindings))
        consts = []
        for (kind, value), name in self._constants.items():
            consts.append(f"{name} = arith.constant {value} : {kind}")
        body = ["      " + c for c in consts] + self.lines
        wg = ", ".join(str(v) for v in workgroup)
        return "\n".join(
            [
                f"  gpu.module @{self.name} {{",
                f"    gpu.func @{self.name}({args}) kernel attributes "
                f"{{spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [{wg}]>}} {{",
                *body,
                "      gpu.return",
                "    }",
                "  }",
            ]
        )


# --- elementwise-style kernels ---------------------------------------------------------


def pad_kernel(
    name: str, in_shape: Sequence[int], low: Sequence[int], high: Sequence[int], value: float
) -> Kernel:
    """Copy into a larger tensor, filling the border with ``value``."""
    out_shape = [s + lo + hi for s, lo, hi in zip(in_shape, low, high, strict=True)]
    points = math.prod(out_shape)
    k = GpuKernelText(name, [Binding(math.prod(in_shape)), Binding(points)])
    linear, ok = k.linear_id(points)

    def body() -> None:
        idx = k.delinearize(linear, out_shape)
        src, inside = [], None
        for i, (pos, lo, size) in enumerate(zip(idx, low, in_shape, strict=True)):
            if lo == 0 and out_shape[i] == size:
                src.append(pos)
                continue
            shifted = k.op(f"arith.subi {pos}, {k.index(lo)} : index") if lo else pos
            # unsigned compare: a negative shifted index wraps to a huge value
            test = k.op(f"arith.cmpi ult, {shifted}, {k.index(size)} : index")
            inside = test if inside is None else k.op(f"arith.andi {inside}, {test} : i1")
            src.append(shifted)
        if inside is None:
            k.store(k.load(0, k.linearize(src, in_shape)), 1, linear)
            return
        result = k.fresh()

        def then() -> None:
            k.emit(f"scf.yield {k.load(0, k.linearize(src, in_shape))} : f32")

        k.block(f"{result} = scf.if {inside} -> (f32) {{", then, "} else {")
        k.indent += 1
        k.emit(f"scf.yield {k.f32(value)} : f32")
        k.indent -= 1
        k.emit("}")
        k.store(result, 1, linear)

    k.block(f"scf.if {ok} {{", body)
    return Kernel(name, k.text(), k.bindings, linear_grid(points))


def copy_slice_kernel(
    name: str, in_shape: Sequence[int], out_shape: Sequence[int], axis: int, offset: int
) -> Kernel:
    """Copy a tensor into ``out`` at ``offset`` along ``axis`` (one operand of a concat)."""
    points = math.prod(in_shape)
    k = GpuKernelText(name, [Binding(points), Binding(math.prod(out_shape))])
    linear, ok = k.linear_id(points)

    def body() -> None:
        idx = k.delinearize(linear, in_shape)
        idx[axis] = k.add(idx[axis], k.index(offset))
        k.store(k.load(0, linear), 1, k.linearize(idx, out_shape))

    k.block(f"scf.if {ok} {{", body)
    return Kernel(name, k.text(), k.bindings, linear_grid(points))


# --- linalg.generic ----------------------------------------------------------------------


def _affine(k: GpuKernelText, expr: ir.AffineExpr, dims: Sequence[str]) -> str:
    if isinstance(expr, ir.AffineDimExpr):
        return dims[ir.AffineDimExpr(expr).position]
    if isinstance(expr, ir.AffineConstantExpr):
        return k.index(ir.AffineConstantExpr(expr).value)
    if isinstance(expr, ir.AffineAddExpr):
        e = ir.AffineAddExpr(expr)
        return k.add(_affine(k, e.lhs, dims), _affine(k, e.rhs, dims))
    if isinstance(expr, ir.AffineMulExpr):
        e = ir.AffineMulExpr(expr)
        lhs, rhs = e.lhs, e.rhs
        if isinstance(lhs, ir.AffineConstantExpr):
            lhs, rhs = rhs, lhs
        if isinstance(rhs, ir.AffineConstantExpr):
            return k.mul(_affine(k, lhs, dims), ir.AffineConstantExpr(rhs).value)
        return k.op(f"arith.muli {_affine(k, lhs, dims)}, {_affine(k, rhs, dims)} : index")
    for cls, opname in ((ir.AffineFloorDivExpr, "arith.divui"), (ir.AffineModExpr, "arith.remui")):
        if isinstance(expr, cls):
            e = expr
            return k.op(f"{opname} {_affine(k, e.lhs, dims)}, {_affine(k, e.rhs, dims)} : index")
    raise NotImplementedError(f"affine expression {expr} in a linalg.generic")


@dataclass(frozen=True)
class GenericOperand:
    """A linalg.generic input as the kernel sees it: a binding, or a scalar constant."""

    shape: tuple[int, ...]
    map: ir.AffineMap
    binding: int | None  # kernel argument, or None when ``scalar`` holds the value
    scalar: float | None = None  # both None: the body never reads it (a pooling window)


def generic_kernel(
    name: str,
    op: ir.Operation,
    inputs: Sequence[GenericOperand],
    init: GenericOperand | None,
    bindings: Sequence[Binding],
    out_binding: int,
    captured: dict[ir.Value, float | int],
    gathered: dict[ir.Value, tuple[int, tuple[int, ...]]] | None = None,
) -> Kernel:
    """The first result of a ``linalg.generic``: one invocation per point of its
    parallel loops, the reduction loops (if any) run serially inside, and the
    part of the body that first result depends on re-emitted.

    ``init`` is where the result's initial value comes from (a buffer or a
    constant fill), None when the body never reads it. ``captured`` maps
    values defined outside the body (f32 or index constants) to their value;
    ``gathered`` maps tensors the body reads with ``tensor.extract`` at
    computed indices (adaptive pooling windows) to (binding, shape).
    """
    gathered = gathered or {}
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
    iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    out_type = ir.RankedTensorType(op.results[0].type)
    out_map = maps[len(inputs)]
    loop_sizes = _loop_sizes(maps[: len(inputs) + 1], [o.shape for o in inputs] + [tuple(out_type.shape)])
    parallel = [i for i, it in enumerate(iterators) if "parallel" in it]
    reduction = [i for i, it in enumerate(iterators) if "reduction" in it]
    out_dims = [e.position for e in out_map.results if isinstance(e, ir.AffineDimExpr)]
    if out_dims != parallel:
        raise NotImplementedError("a linalg.generic whose output map is not its parallel loops in order")
    points = math.prod(loop_sizes[i] for i in parallel)
    k = GpuKernelText(name, bindings)
    linear, ok = k.linear_id(points)
    block = op.regions[0].blocks[0]
    body_ops = _slice_for_first_result(list(block.operations))
    used = {v for body_op in body_ops for v in body_op.operands}
    out_shape = tuple(out_type.shape)
    element = str(out_type.element_type)

    def operand_value(operand: GenericOperand, dims: list[str]) -> str:
        if operand.binding is None:
            assert operand.scalar is not None
            return k.f32(operand.scalar)
        idx = [_affine(k, e, dims) for e in operand.map.results]
        return k.load(operand.binding, k.linearize(idx, operand.shape))

    def emit_body(dims: list[str], acc: str | None) -> str:
        names: dict[ir.Value, str] = {}
        for v, c in captured.items():
            type_ = _narrow(str(v.type))
            if type_ == "index":
                names[v] = k.index(int(c))
            elif type_.startswith("f"):
                names[v] = k.f32(c)
            else:
                names[v] = k.integer(_fits_i32(int(c)), type_)
        for arg, operand in zip(block.arguments, inputs, strict=False):
            if arg in used and (operand.binding is not None or operand.scalar is not None):
                names[arg] = operand_value(operand, dims)
        if acc is not None:
            names[block.arguments[len(inputs)]] = acc
        result = ""
        for body_op in body_ops:
            if body_op.operation.name == "linalg.yield":
                result = names[body_op.operands[0]]
                continue
            if body_op.operation.name == "linalg.index":
                value = dims[ir.IntegerAttr(body_op.attributes["dim"]).value]
            elif body_op.operation.name == "tensor.extract" and body_op.operands[0] in gathered:
                binding, shape = gathered[body_op.operands[0]]
                # indices past a window's edge are computed but never selected: clamp the load
                index = [names[v] for v in list(body_op.operands)[1:]]
                clamped = [
                    k.op(f"arith.minui {i}, {k.index(size - 1)} : index")
                    for i, size in zip(index, shape, strict=True)
                ]
                value = k.load(binding, k.linearize(clamped, shape))
            else:
                operands = ", ".join(names[v] for v in body_op.operands)
                attrs = ", ".join(
                    f"{a} = {_narrow(str(body_op.attributes[a])) if a == 'value' else body_op.attributes[a]}"
                    for a in body_op.attributes
                )
                types_in = ", ".join(_narrow(str(v.type)) for v in body_op.operands)
                types_out = ", ".join(_narrow(str(r.type)) for r in body_op.results)
                attr_text = f" {{{attrs}}}" if attrs else ""
                value = k.op(
                    f'"{body_op.operation.name}"({operands}){attr_text} : ({types_in}) -> ({types_out})'
                )
            names[body_op.results[0]] = value
        return result

    def body() -> None:
        par = k.delinearize(linear, [loop_sizes[i] for i in parallel])
        dims = [k.index(0)] * len(loop_sizes)
        for i, value in zip(parallel, par, strict=True):
            dims[i] = value
        out_offset = k.linearize([_affine(k, e, dims) for e in out_map.results], out_shape)
        acc = operand_value(init, dims) if init is not None else None
        if not reduction:
            k.store(emit_body(dims, acc), out_binding, out_offset)
            return
        assert acc is not None, "a reduction needs an initial value"
        carried = acc

        def nest(level: int, carry: str) -> str:
            dim = reduction[level]
            iv, arg, result = k.fresh(), k.fresh(), k.fresh()
            k.emit(
                f"{result} = scf.for {iv} = {k.index(0)} to {k.index(loop_sizes[dim])} step {k.index(1)} "
                f"iter_args({arg} = {carry}) -> ({element}) {{"
            )
            k.indent += 1
            dims[dim] = iv
            inner = emit_body(dims, arg) if level == len(reduction) - 1 else nest(level + 1, arg)
            k.emit(f"scf.yield {inner} : {element}")
            k.indent -= 1
            k.emit("}")
            return result

        carried = nest(0, carried)
        k.store(carried, out_binding, out_offset)

    k.block(f"scf.if {ok} {{", body)
    flops = 0
    if reduction and any(o.operation.name == "arith.mulf" for o in body_ops):
        flops = 2 * math.prod(loop_sizes)
    return Kernel(name, k.text(), k.bindings, linear_grid(points), flops)


def _narrow(text: str) -> str:
    """64-bit integer types as 32-bit ones: kernels run without the Int64 capability.

    64-bit integers in generic bodies are index arithmetic (pooling window
    bounds and counts, via ``arith.index_cast``), whose values stay far below
    2**31 because every tensor indexes with 32-bit offsets.
    """
    return re.sub(r"\bi64\b", "i32", text)


def _fits_i32(value: int) -> int:
    if not -(1 << 31) <= value < (1 << 31):
        raise NotImplementedError(f"a 64-bit integer constant ({value}) that does not fit 32 bits")
    return value


def _slice_for_first_result(body: list[ir.Operation]) -> list[ir.Operation]:
    """The body ops the yield's first value depends on (in order), then the yield."""
    yield_op = body[-1]
    needed = {yield_op.operands[0]}
    kept = []
    for body_op in reversed(body[:-1]):
        if any(r in needed for r in body_op.results):
            kept.append(body_op)
            needed.update(body_op.operands)
    return [*reversed(kept), yield_op]


def _loop_sizes(maps: Sequence[ir.AffineMap], shapes: Sequence[Sequence[int]]) -> list[int]:
    """Each loop's trip count, from the operands whose map reads it directly."""
    count = maps[0].n_dims
    sizes: list[int | None] = [None] * count
    for amap, shape in zip(maps, shapes, strict=True):
        for expr, size in zip(amap.results, shape, strict=True):
            if isinstance(expr, ir.AffineDimExpr):
                sizes[ir.AffineDimExpr(expr).position] = size
    # window loops (d + kd): the only operand naming them directly is the window tensor
    if any(s is None for s in sizes):
        raise NotImplementedError("a linalg.generic loop whose trip count no operand gives")
    return [int(s) for s in sizes]  # type: ignore[arg-type]


# --- kernel-group sparse convolution ------------------------------------------------------


@dataclass(frozen=True)
class ConvShape:
    in_padded: tuple[int, int, int, int, int]  # N, C, Dp, Hp, Wp
    out: tuple[int, int, int, int, int]  # N, F, D, H, W
    strides: tuple[int, int, int]
    weights: int  # packed weight floats
    entries: int
    blocks: int
    block_size: int
    channel_unroll: int
    relu: bool
    per_invocation: int = 1  # output positions each invocation computes
    out_low: tuple[int, int, int] = (0, 0, 0)  # write into a zero-padded output (pad elision)
    out_high: tuple[int, int, int] = (0, 0, 0)


def positions_per_invocation(positions: int, most: int = 8) -> int:
    """Output positions per conv invocation: the most (up to ``most``, a power of
    two) whose last, partly idle tile wastes at most 12.5% more slots than one
    position per invocation does."""
    one = math.ceil(positions / WORKGROUP) * WORKGROUP
    per = most
    while per > 1:
        tile = WORKGROUP * per
        if math.ceil(positions / tile) * tile <= 1.125 * one:
            return per
        per //= 2
    return 1


def packed_conv_kernel(name: str, s: ConvShape) -> Kernel:
    """``rt3d.packed_conv3d`` on a zero-padded input.

    Bindings: padded input, packed weights (vec4), entry offsets, block
    starts, out channels, bias, output. Grid: x over tiles of
    ``64 * per_invocation`` output positions, y over filter blocks. Each
    invocation computes ``per_invocation`` positions 64 apart (so every load
    of the input stays consecutive across the workgroup) and shares each
    weight vector and the epilogue's lane lookups between them.
    """
    n, _c, dp, hp, wp = s.in_padded
    _, f, d, h, w = s.out
    quads = s.block_size // 4
    per = s.per_invocation
    positions = d * h * w
    ds, hs, ws = (size + lo + hi for size, lo, hi in zip((d, h, w), s.out_low, s.out_high, strict=True))
    plane = ds * hs * ws  # output channel stride: the (padded) output plane
    bindings = [
        Binding(math.prod(s.in_padded)),
        Binding(s.weights // 4, "vector<4xf32>"),
        Binding(s.entries, "i32"),
        Binding(s.blocks + 1, "i32"),
        Binding(s.blocks * s.block_size, "i32"),
        Binding(s.blocks * s.block_size),
        Binding(n * f * plane),
    ]
    k = GpuKernelText(name, bindings)
    bx = k.op("gpu.block_id x")
    block = k.op("gpu.block_id y")
    tx = k.op("gpu.thread_id x")
    first_position = k.add(k.mul(bx, WORKGROUP * per), tx)
    # Both grid axes are guarded: a larger grid than the kernel was built for stays in bounds.
    in_plane = k.op(f"arith.cmpi ult, {first_position}, {k.index(positions)} : index")
    in_blocks = k.op(f"arith.cmpi ult, {block}, {k.index(s.blocks)} : index")
    ok = k.op(f"arith.andi {in_plane}, {in_blocks} : i1")
    vec = "vector<4xf32>"
    channel_stride = dp * hp * wp

    def body() -> None:
        targets, valid, bases = [], [], []
        for j in range(per):
            point = k.add(first_position, k.index(j * WORKGROUP))
            inside = k.op(f"arith.cmpi ult, {point}, {k.index(positions)} : index") if j else None
            # positions past the end compute on the last one (loads stay in bounds), never stored
            safe = k.op(f"arith.minui {point}, {k.index(positions - 1)} : index") if j else point
            od, oh, ow = k.delinearize(safe, [d, h, w])
            bases.append(
                k.add(
                    k.add(k.mul(od, s.strides[0] * hp * wp), k.mul(oh, s.strides[1] * wp)),
                    k.mul(ow, s.strides[2]),
                )
            )
            if plane == positions:
                targets.append(point)
            else:
                lo_d, lo_h, lo_w = s.out_low
                targets.append(
                    k.linearize(
                        [k.add(od, k.index(lo_d)), k.add(oh, k.index(lo_h)), k.add(ow, k.index(lo_w))],
                        (ds, hs, ws),
                    )
                )
            valid.append(inside)
        first = k.op(f"arith.index_cast {k.load(3, block)} : i32 to index")
        after = k.add(block, k.index(1))
        last = k.op(f"arith.index_cast {k.load(3, after)} : i32 to index")
        zero = k.op(f"arith.constant dense<0.0> : {vec}")
        count = quads * per
        for batch in range(n):
            result = k.fresh()
            iv = k.fresh()
            carried = [k.fresh() for _ in range(count)]
            inits = ", ".join(f"{c} = {zero}" for c in carried)
            types = ", ".join([vec] * count)
            head = result if count == 1 else f"{result}:{count}"
            k.emit(
                f"{head} = scf.for {iv} = {first} to {last} step {k.index(1)} "
                f"iter_args({inits}) -> ({types}) {{"
            )
            k.indent += 1
            offset = k.op(f"arith.index_cast {k.load(2, iv)} : i32 to index")
            offset = k.add(offset, k.index(batch * _c * channel_stride))
            starts = [k.add(offset, base) for base in bases]
            wrow = k.mul(iv, s.channel_unroll * quads)
            values = list(carried)  # [position][quad]
            for u in range(s.channel_unroll):
                weights = [k.load(1, k.add(wrow, k.index(u * quads + q))) for q in range(quads)]
                for j, start in enumerate(starts):
                    x = k.load(0, k.add(start, k.index(u * channel_stride)) if u else start)
                    xs = k.op(f"vector.broadcast {x} : f32 to {vec}")
                    for q in range(quads):
                        slot = j * quads + q
                        values[slot] = k.op(f"vector.fma {xs}, {weights[q]}, {values[slot]} : {vec}")
            k.emit(f"scf.yield {', '.join(values)} : {types}")
            k.indent -= 1
            k.emit("}")
            results = [result] if count == 1 else [f"{result}#{i}" for i in range(count)]
            lane_base = k.mul(block, s.block_size)
            for q in range(quads):
                for lane in range(4):
                    slot = k.add(lane_base, k.index(q * 4 + lane))
                    channel = k.load(4, slot)
                    used = k.op(f"arith.cmpi sge, {channel}, {k.op('arith.constant 0 : i32')} : i32")

                    def store(
                        q: int = q,
                        lane: int = lane,
                        slot: str = slot,
                        channel: str = channel,
                        batch: int = batch,
                        results: list[str] = results,
                    ) -> None:
                        bias = k.load(5, slot)
                        oc = k.op(f"arith.index_cast {channel} : i32 to index")
                        row = k.add(k.mul(oc, plane), k.index(batch * f * plane))
                        for j in range(per):
                            value = k.op(f"vector.extract {results[j * quads + q]}[{lane}] : f32 from {vec}")
                            value = k.op(f"arith.addf {value}, {bias} : f32")
                            if s.relu:
                                value = k.op(f"arith.maximumf {value}, {k.f32(0.0)} : f32")
                            out = k.add(row, targets[j])
                            if valid[j] is None:
                                k.store(value, 6, out)
                            else:
                                k.block(f"scf.if {valid[j]} {{", lambda v=value, o=out: k.store(v, 6, o))

                    k.block(f"scf.if {used} {{", store)

    k.block(f"scf.if {ok} {{", body)
    groups = (math.ceil(positions / (WORKGROUP * per)), s.blocks, 1)
    flops = 2 * n * positions * s.entries * s.channel_unroll * s.block_size
    return Kernel(name, k.text(), k.bindings, groups, flops)
