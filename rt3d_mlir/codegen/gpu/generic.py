"""The GPU kernel of a ``linalg.generic``: pools, fully connected layers, elementwise ops, reductions.

One invocation per point of the generic's parallel loops; the reduction
loops (if any) run serially inside, and the part of the body that the first
result depends on is re-emitted. Inputs are bindings read through their
indexing maps, or scalars (a constant fill folded into the kernel); values
defined outside the body are constants or tensors read with
``tensor.extract`` (adaptive pooling windows).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.codegen.gpu.kernel import Binding, GpuKernel, Kernel, linear_grid


def _affine(k: GpuKernel, expr: ir.AffineExpr, dims: Sequence[str]) -> str:
    if isinstance(expr, ir.AffineDimExpr):
        return dims[ir.AffineDimExpr(expr).position]
    if isinstance(expr, ir.AffineConstantExpr):
        return k.const(ir.AffineConstantExpr(expr).value)
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
    k = GpuKernel(name, bindings)
    linear, ok = k.linear_id(points)
    block = op.regions[0].blocks[0]
    body_ops = _slice_for_first_result(list(block.operations))
    used = {v for body_op in body_ops for v in body_op.operands}
    out_shape = tuple(out_type.shape)
    element = str(out_type.element_type)

    def operand_value(operand: GenericOperand, dims: list[str]) -> str:
        if operand.binding is None:
            assert operand.scalar is not None
            return k.const(operand.scalar, 'f32')
        idx = [_affine(k, e, dims) for e in operand.map.results]
        return k.load(operand.binding, k.linearize(idx, operand.shape))

    def emit_body(dims: list[str], acc: str | None) -> str:
        names: dict[ir.Value, str] = {}
        for v, c in captured.items():
            type_ = _narrow(str(v.type))
            if type_ == "index":
                names[v] = k.const(int(c))
            elif type_.startswith("f"):
                names[v] = k.const(c, 'f32')
            else:
                names[v] = k.const(_fits_i32(int(c)), type_)
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
            if (
                body_op.operation.name == "arith.truncf" and body_op.operands[0] in captured
                and str(body_op.operands[0].type) == "f64"
            ):  # a captured f64 constant (a scalar of the importer's) is emitted as f32 already
                value = names[body_op.operands[0]]
            elif body_op.operation.name == "linalg.index":
                value = dims[ir.IntegerAttr(body_op.attributes["dim"]).value]
            elif body_op.operation.name == "tensor.extract" and body_op.operands[0] in gathered:
                binding, shape = gathered[body_op.operands[0]]
                # indices past a window's edge are computed but never selected: clamp the load
                index = [names[v] for v in list(body_op.operands)[1:]]
                clamped = [
                    k.op(f"arith.minui {i}, {k.const(size - 1)} : index")
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
        dims = [k.const(0)] * len(loop_sizes)
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
            header = (
                f"{result} = scf.for {iv} = {k.const(0)} to {k.const(loop_sizes[dim])} step {k.const(1)} "
                f"iter_args({arg} = {carry}) -> ({element}) {{"
            )
            with k.region(header):
                dims[dim] = iv
                inner = emit_body(dims, arg) if level == len(reduction) - 1 else nest(level + 1, arg)
                k.emit(f"scf.yield {inner} : {element}")
            return result

        carried = nest(0, carried)
        k.store(carried, out_binding, out_offset)

    with k.region(f"scf.if {ok} {{"):
        body()
    flops = 0
    if reduction and any(o.operation.name == "arith.mulf" for o in body_ops):
        flops = 2 * math.prod(loop_sizes)
    return k.kernel(linear_grid(points), flops)


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
