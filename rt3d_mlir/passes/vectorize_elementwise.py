"""rt3d-vectorize-elementwise: vector kernels for elementwise ``linalg.generic`` ops.

Matches generics whose iterators are all parallel and whose indexing maps
are all identities over static f32 tensors (residual adds, ReLU after an
add, scaling): the scalar body is replayed on ``vector<L x f32>`` values
(scalar constants from outside the region become splats). The flat index
space is cut into tasks of ``chunk`` elements split across threads; each
task runs whole vectors, and the last one a masked tail.

Supported body ops: ``arith.addf/subf/mulf/divf/maximumf/minimumf/negf``,
``arith.cmpf`` and ``arith.select``. Anything else is left for the
default lowering.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.passes.framework import Pass, PassFailure, register_pass, require_count, require_target
from rt3d_mlir.passes.kernel_calls import (
    KernelText,
    insert_kernel_module,
    kernel_module_text,
    memref_type_text,
    replace_with_kernel_call,
    static_size,
    unique_kernel_names,
    vector_lanes,
)
from rt3d_mlir.passes.matchers import (
    constant_attr,
    generic_body,
    ops_named,
)

BINARY = ("arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.maximumf", "arith.minimumf")
CMPF_PREDICATES = {
    0: "false", 1: "oeq", 2: "ogt", 3: "oge", 4: "olt", 5: "ole", 6: "one", 7: "ord",
    8: "ueq", 9: "ugt", 10: "uge", 11: "ult", 12: "ule", 13: "une", 14: "uno", 15: "true",
}  # fmt: skip


@dataclass
class VectorizeElementwiseOptions:
    target: str = "host"
    vector_width: int = 0
    chunk: int = 16384  # elements per parallel task
    min_elements: int = 4096  # smaller ops are not worth a kernel

    def __post_init__(self) -> None:
        require_target(self.target)
        require_count(self.vector_width, "vector-width", note=" (0: the target's)")
        require_count(self.chunk, "chunk", 1)
        require_count(self.min_elements, "min-elements")


def _static_f32(value: ir.Value) -> tuple[int, ...] | None:
    t = ir.RankedTensorType(value.type) if isinstance(value.type, ir.RankedTensorType) else None
    if t is None or not t.has_static_shape or t.element_type != ir.F32Type.get():
        return None
    return tuple(t.shape)


def match_elementwise(op: ir.Operation) -> bool:
    if op.name != "linalg.generic" or len(op.results) != 1:
        return False
    iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if not all("parallel" in i for i in iterators):
        return False
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    rank = len(iterators)
    if any(m != ir.AffineMap.get_identity(rank) for m in maps):
        return False
    shape = _static_f32(op.results[0])
    if shape is None or any(_static_f32(v) != shape for v in op.operands):
        return False
    block = op.regions[0].blocks[0]
    body = generic_body(op)
    known = set(block.arguments) | {r for inner in body for r in inner.results}
    for inner in body[:-1]:
        if inner.name not in (*BINARY, "arith.negf", "arith.cmpf", "arith.select"):
            return False
        for operand in inner.operands:
            if operand in known:
                continue
            if not isinstance(constant_attr(operand), ir.FloatAttr):
                return False
    return True


def elementwise_kernel_text(
    kernel: str, dispatch: str, op: ir.Operation, size: int, lanes: int, chunk: int
) -> tuple[str, int]:
    """The kernel (inputs, then the output buffer) and how many of the op's operands it reads."""
    body_ops = generic_body(op)
    block = op.regions[0].blocks[0]
    used_args = [a for a in block.arguments if any(True for _ in a.uses)]
    inputs = [i for i, a in enumerate(block.arguments) if a in used_args]
    flat = memref_type_text(size, "f32")
    vec = f"vector<{lanes}xf32>"
    mvec = f"vector<{lanes}xi1>"
    k = KernelText()
    k.indent = 2
    tasks = -(-size // chunk)
    full = (size // lanes) * lanes

    def replay(at: str, mask: str | None) -> None:
        names: dict[ir.Value, str] = {}
        for i in inputs:
            if mask is None:
                names[block.arguments[i]] = k.op(f"vector.load %in{i}[{at}] : {flat}, {vec}")
            else:
                zero = k.vconst(0.0, lanes, "f32")
                names[block.arguments[i]] = k.op(
                    f"vector.maskedload %in{i}[{at}], {mask}, {zero} : {flat}, {mvec}, {vec} into {vec}"
                )

        def value(v: ir.Value) -> str:
            if v in names:
                return names[v]
            return k.vconst(float(ir.FloatAttr(constant_attr(v)).value), lanes, "f32")

        for inner in body_ops[:-1]:
            operands = [value(v) for v in inner.operands]
            if inner.name in BINARY or inner.name == "arith.negf":
                result = k.op(f"{inner.name} {', '.join(operands)} : {vec}")
            elif inner.name == "arith.cmpf":
                predicate = CMPF_PREDICATES[int(ir.IntegerAttr(inner.attributes["predicate"]).value)]
                result = k.op(f"arith.cmpf {predicate}, {operands[0]}, {operands[1]} : {vec}")
            else:  # arith.select
                result = k.op(f"arith.select {operands[0]}, {operands[1]}, {operands[2]} : {mvec}, {vec}")
            names[inner.results[0]] = result
        out = value(body_ops[-1].operands[0])
        if mask is None:
            k.emit(f"vector.store {out}, %out[{at}] : {flat}, {vec}")
        else:
            k.emit(f"vector.maskedstore %out[{at}], {mask}, {out} : {flat}, {mvec}, {vec}")

    start = k.index(("%task", chunk))
    end = k.op(f"arith.minui {k.index((start, 1), (chunk, 1))}, {k.const(full)} : index")
    i = k.fresh("i")
    k.emit(f"scf.for {i} = {start} to {end} step {k.const(lanes)} {{")
    k.indent += 1
    replay(i, None)
    k.indent -= 1
    k.emit("}")
    if size - full:
        last = k.op(f"arith.cmpi eq, %task, {k.const(tasks - 1)} : index")
        k.emit(f"scf.if {last} {{")
        k.indent += 1
        mask = k.op(f"vector.constant_mask [{size - full}] : {mvec}")
        replay(k.const(full), mask)
        k.indent -= 1
        k.emit("}")
    args = [(f"%in{i}", flat) for i in inputs] + [("%out", flat)]
    return kernel_module_text(kernel, dispatch, args, tasks, k, "%task"), inputs


@register_pass
class VectorizeElementwise(Pass):
    name = "rt3d-vectorize-elementwise"
    summary = "Vector kernels for elementwise linalg.generic ops with identity maps (threads)"
    Options = VectorizeElementwiseOptions

    def run(self, module: ir.Operation) -> None:
        opts = self.options
        lanes = vector_lanes(opts.target, opts.vector_width, module.location)
        if opts.chunk < lanes or opts.chunk % lanes:
            raise PassFailure(f"chunk must be a positive multiple of {lanes}", module.location)
        for op in ops_named(module, "linalg.generic"):
            if not match_elementwise(op):
                continue
            size = static_size(op.results[0])
            if size < opts.min_elements:
                continue
            kernel, dispatch = unique_kernel_names(module, "elementwise")
            text, inputs = elementwise_kernel_text(kernel, dispatch, op, size, lanes, opts.chunk)
            insert_kernel_module(module, text)
            replace_with_kernel_call(
                op, dispatch, lambda op=op, inputs=inputs: [op.operands[i] for i in inputs]
            )
