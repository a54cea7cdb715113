"""Putting a generated CPU kernel into the module and calling it in place of an op.

The kernel and its dispatch declaration come from :mod:`rt3d_mlir.codegen.cpu`
(the frame is described in :mod:`rt3d_mlir.codegen.cpu.kernel`); they are
parsed into the module, and the op is replaced by a call built on tensors
(``tensor.collapse_shape`` + ``bufferization.to_buffer`` in, ``memref.alloc``
+ ``bufferization.to_tensor`` out) so it bufferizes with the rest of the
model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from torch_mlir import ir
from torch_mlir.dialects import bufferization, func, memref, tensor

from rt3d_mlir.dialect.attributes import SOURCE_ATTR
from rt3d_mlir.ir_matchers import defining_op, erase_dead_producers, static_size, top_level_ops
from rt3d_mlir.passes.framework import PassFailure
from rt3d_mlir.targets import get_target


def vector_lanes(target: str, vector_width: int, location: ir.Location) -> int:
    """``vector_width`` if set (> 0), else the f32 lanes of ``target``; a pass failure if unknown."""
    if vector_width > 0:
        return vector_width
    try:
        return get_target(target).f32_lanes
    except Exception as err:
        raise PassFailure(str(err), location) from None


def replace_with_kernel_call(
    op: ir.Operation,
    dispatch: str,
    inputs: Callable[[], Sequence[ir.Value]],
    result_type: ir.Type | None = None,
    first: Sequence[str] = (),
    through: Sequence[ir.Operation] = (),
) -> None:
    """Replace ``op``'s single result by a call to ``dispatch``.

    ``inputs`` builds the call's operands at ``op`` (it may create ops, e.g.
    a pad or a packed constant); producers left unused are erased. The
    result has ``op``'s type unless ``result_type`` is given; ``first``
    dispatches are called with the output buffer alone before the kernel
    (to fill what the kernel does not write). With ``through`` (a chain of
    ops, each the only user of the one before, starting from ``op``,
    computed by the same kernel: a fused epilogue) the call stands for the
    last one's result instead, and all are erased.
    """
    replaced = through[-1] if through else op
    with ir.InsertionPoint(op), op.location:
        result = call_kernel(dispatch, inputs(), result_type or replaced.results[0].type, first)
    producers = [p for p in (defining_op(v) for v in op.operands) if p is not None]
    replaced.results[0].replace_all_uses_with(result)
    for fused in reversed(through):
        producers += [p for p in (defining_op(v) for v in fused.operands[1:]) if p is not None]
        fused.erase()
    op.erase()
    erase_dead_producers(producers)


KERNEL_PLACEHOLDER = "RT3D_KERNEL"  # generators are called with these names; add_kernel renames
DISPATCH_PLACEHOLDER = "RT3D_DISPATCH"


def symbol_prefix(stem: str, kind: str) -> str:
    """``rt3d_<stem>_<kind>_``: what the names of a stem's kernels or dispatches (``kind``) start with
    (a profile names each call site by its kernel)."""
    return f"rt3d_{stem}_{kind}_"


def symbol_name(stem: str, kind: str, index: int) -> str:
    """The ``index``-th kernel or dispatch of a stem."""
    return f"{symbol_prefix(stem, kind)}{index}"


def add_kernel(module: ir.Operation, stem: str, text: str) -> str:
    """Put a kernel module's functions into ``module``; the name of its dispatch.

    ``text`` is a generator's output for the names :data:`KERNEL_PLACEHOLDER`
    and :data:`DISPATCH_PLACEHOLDER`; it gets fresh ``rt3d_<stem>_kernel_<i>``
    and ``rt3d_<stem>_dispatch_<j>`` names. A kernel of the same text already
    in the module is reused (layers of one shape share their code); the
    dispatch is always new, one per call site, so profiles stay per layer.
    """
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    taken = set()
    shared = None
    for op in top_level_ops(module, "func.func"):
        name = ir.StringAttr(op.attributes["sym_name"]).value
        taken.add(name)
        if SOURCE_ATTR in op.attributes and ir.StringAttr(op.attributes[SOURCE_ATTR]).value == digest:
            shared = name

    def fresh(kind: str) -> str:
        index = 0
        while symbol_name(stem, kind, index) in taken:
            index += 1
        return symbol_name(stem, kind, index)

    kernel, dispatch = shared or fresh("kernel"), fresh("dispatch")
    text = text.replace(f"@{KERNEL_PLACEHOLDER}(", f"@{kernel}(")
    text = text.replace(f'"{KERNEL_PLACEHOLDER}"', f'"{kernel}"')
    text = text.replace(f"@{DISPATCH_PLACEHOLDER}(", f"@{dispatch}(")
    parsed = ir.Module.parse(text, module.context)
    body = module.regions[0].blocks[0]
    for op in list(parsed.body.operations):
        name = ir.StringAttr(op.attributes["sym_name"]).value
        if name in taken and not op.regions[0].blocks:
            continue  # a declaration the kernel calls (an intrinsic), already in the module
        if name == kernel:
            if shared is not None:
                continue
            op.attributes[SOURCE_ATTR] = ir.StringAttr.get(digest)
        op.detach_from_parent()
        ir.InsertionPoint(body).insert(op)
    return dispatch


def flat_buffer(value: ir.Value) -> ir.Value:
    """A read-only flat memref view of a static tensor (at the insertion point)."""
    tensor_type = ir.RankedTensorType(value.type)
    size = static_size(tensor_type)
    if tensor_type.rank != 1:
        flat_type = ir.RankedTensorType.get([size], tensor_type.element_type)
        value = tensor.CollapseShapeOp(flat_type, value, [list(range(tensor_type.rank))]).result
    return bufferization.ToBufferOp(
        ir.MemRefType.get([size], tensor_type.element_type), value, read_only=True
    ).result


def call_kernel(
    dispatch: str, inputs: Sequence[ir.Value], result_type: ir.Type, first: Sequence[str] = ()
) -> ir.Value:
    """Call ``dispatch`` on ``inputs`` and a fresh output buffer (after each ``first`` dispatch on
    the buffer alone); the output as a tensor."""
    out_type = ir.RankedTensorType(result_type)
    size = static_size(out_type)
    buffers = [flat_buffer(v) for v in inputs]
    out = memref.AllocOp(ir.MemRefType.get([size], out_type.element_type), [], [], alignment=64).result
    for prologue in first:
        func.CallOp([], ir.FlatSymbolRefAttr.get(prologue), [out])
    func.CallOp([], ir.FlatSymbolRefAttr.get(dispatch), [*buffers, out])
    flat = bufferization.ToTensorOp(
        ir.RankedTensorType.get([size], out_type.element_type), out, restrict=True, writable=True
    ).result
    if out_type.rank == 1:
        return flat
    return tensor.ExpandShapeOp(out_type, flat, [list(range(out_type.rank))], [], list(out_type.shape)).result
