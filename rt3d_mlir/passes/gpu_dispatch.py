"""Putting a generated GPU kernel into the module and dispatching it in place of an op.

Kernels come from :mod:`rt3d_mlir.codegen.gpu` as ``gpu.module`` text; each
is parsed into the model's module (marked ``gpu.container_module``) once per
distinct text, and the op is replaced by a dispatch of it (:func:`dispatch`).
The kernel's bindings are the dispatch's operands in order, then its result
(a fresh buffer); with ``rt3d.in_place`` the result is the last operand's
buffer, written in place (one slice of a concat), and with
``rt3d.zero_init`` the fresh result buffer starts zeroed (the kernel writes
only its interior: a padded tensor for the convolutions that read it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch_mlir import ir
from torch_mlir.dialects import func

from rt3d_mlir.codegen.gpu.kernel import Kernel
from rt3d_mlir.dialect.attributes import (
    DENSE_FLOPS_ATTR,
    FLOPS_ATTR,
    GPU_KERNEL_ATTR,
    GROUPS_ATTR,
    IN_PLACE_ATTR,
    LABEL_ATTR,
    SOURCE_ATTR,
    ZERO_INIT_ATTR,
)
from rt3d_mlir.ir_matchers import int_attr, top_level_ops

PLACEHOLDER = "RT3D_KERNEL"  # generators are called with this name; the pass renames


def add_kernel(module: ir.Operation, stem: str, generate: Callable[[str], Kernel]) -> tuple[str, Kernel]:
    """(symbol, kernel) of ``generate(name)`` in ``module``; an identical kernel is reused."""
    kernel = generate(PLACEHOLDER)
    digest = hashlib.sha256(kernel.text.encode()).hexdigest()[:24]
    existing = {}
    taken = set()
    for op in top_level_ops(module, "gpu.module"):
        name = ir.StringAttr(op.attributes["sym_name"]).value
        taken.add(name)
        if SOURCE_ATTR in op.attributes:
            existing[ir.StringAttr(op.attributes[SOURCE_ATTR]).value] = name
    if digest in existing:
        return existing[digest], kernel
    index = 0
    while f"rt3d_{stem}_{index}" in taken:
        index += 1
    name = f"rt3d_{stem}_{index}"
    text = kernel.text.replace(f"@{PLACEHOLDER}", f"@{name}")
    parsed = ir.Module.parse(f"module attributes {{gpu.container_module}} {{\n{text}\n}}", module.context)
    gpu_module = next(iter(parsed.body.operations))
    gpu_module.attributes[SOURCE_ATTR] = ir.StringAttr.get(digest)
    gpu_module.detach_from_parent()
    ir.InsertionPoint(module.regions[0].blocks[0]).insert(gpu_module)
    module.attributes["gpu.container_module"] = ir.UnitAttr.get()
    return name, kernel


def dispatch(
    module: ir.Operation,
    symbol: str,
    kernel: Kernel,
    operands: Sequence[ir.Value],
    result_type: ir.Type,
    label: str,
    dense_flops: int | None = None,
    zero_init: bool = False,
    in_place: bool = False,
) -> ir.Value:
    """A dispatch of ``kernel`` at the current insertion point; its result.

    The dispatch is a ``func.call`` of a private declaration made for it,
    which carries the dispatch's attributes (``rt3d_mlir.dialect.attributes``:
    the kernel, the grid, the label, the FLOPs, ``zero_init``/``in_place``),
    as CPU kernels are called through their dispatch declarations.
    """
    i64 = ir.IntegerType.get_signless(64)
    attributes = {
        GPU_KERNEL_ATTR: ir.FlatSymbolRefAttr.get(symbol),
        GROUPS_ATTR: ir.DenseI64ArrayAttr.get(list(kernel.groups)),
        LABEL_ATTR: ir.StringAttr.get(label),
        FLOPS_ATTR: ir.IntegerAttr.get(i64, kernel.flops),
        DENSE_FLOPS_ATTR: ir.IntegerAttr.get(i64, kernel.flops if dense_flops is None else dense_flops),
    }
    if zero_init:
        attributes[ZERO_INIT_ATTR] = ir.UnitAttr.get()
    if in_place:
        attributes[IN_PLACE_ATTR] = ir.UnitAttr.get()
    taken = {ir.StringAttr(op.attributes["sym_name"]).value for op in top_level_ops(module, "func.func")}
    index = 0
    while f"rt3d_gpu_dispatch_{index}" in taken:
        index += 1
    name = f"rt3d_gpu_dispatch_{index}"
    function_type = ir.FunctionType.get([v.type for v in operands], [result_type])
    with ir.InsertionPoint(module.regions[0].blocks[0]):
        declaration = func.FuncOp(name, function_type, visibility="private")
    for key, value in attributes.items():
        declaration.attributes[key] = value
    return func.CallOp([result_type], ir.FlatSymbolRefAttr.get(name), list(operands)).results[0]


@dataclass(frozen=True)
class DispatchInfo:
    """What a dispatch declaration says (the reader of what :func:`dispatch` writes)."""

    kernel: str  # the gpu.module's symbol
    groups: tuple[int, int, int]
    label: str
    flops: int
    dense_flops: int
    zero_init: bool
    in_place: bool


def dispatch_info(declaration: ir.Operation) -> DispatchInfo | None:
    """The dispatch a ``func.func`` declaration describes, or None if it is no GPU dispatch."""
    attributes = declaration.attributes
    if GPU_KERNEL_ATTR not in attributes:
        return None
    groups = tuple(int(g) for g in ir.DenseI64ArrayAttr(attributes[GROUPS_ATTR]))
    return DispatchInfo(
        kernel=ir.FlatSymbolRefAttr(attributes[GPU_KERNEL_ATTR]).value,
        groups=groups,  # type: ignore[arg-type]
        label=ir.StringAttr(attributes[LABEL_ATTR]).value,
        flops=int_attr(declaration, FLOPS_ATTR),
        dense_flops=int_attr(declaration, DENSE_FLOPS_ATTR),
        zero_init=ZERO_INIT_ATTR in attributes,
        in_place=IN_PLACE_ATTR in attributes,
    )


def shape_of(value: ir.Value) -> tuple[int, ...]:
    return tuple(ir.RankedTensorType(value.type).shape)


def tensor_type(shape: Sequence[int], element: ir.Type | None = None) -> ir.RankedTensorType:
    return ir.RankedTensorType.get(list(shape), element or ir.F32Type.get())
