"""The CPU kernel of an elementwise ``linalg.generic`` (called by ``rt3d-vectorize-elementwise``).

The scalar body is replayed on ``vector<L x f32>`` values (scalar constants
from outside the region become splats). The flat index space is cut into
tasks of ``chunk`` elements; each task runs whole vectors, and the last one
a masked tail. An input broadcast over the trailing dimensions (a
squeeze-excitation gate of shape ``N x C x 1 x 1 x 1``) is read at
``flat index // inner``: one splat per vector where ``inner`` is a multiple
of the vector length, else a gather. Operands and the result may be bf16
or f16 (the body widens and narrows them: ``arith.extf``, ``arith.truncf``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch_mlir import ir

from rt3d_mlir.codegen.cpu.kernel import TASK, kernel_module, memref_type
from rt3d_mlir.codegen.text import KernelText
from rt3d_mlir.ir_matchers import constant_attr, generic_body

BINARY = ("arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.maximumf", "arith.minimumf")
UNARY = ("arith.negf", "math.exp")  # math.exp: expanded to arithmetic later (rt3d-expand-exp)
CONVERSIONS = ("arith.extf", "arith.truncf")  # 16-bit operands widened, a 16-bit result narrowed


CMPF_PREDICATES = {
    0: "false", 1: "oeq", 2: "ogt", 3: "oge", 4: "olt", 5: "ole", 6: "one", 7: "ord",
    8: "ueq", 9: "ugt", 10: "uge", 11: "ult", 12: "ule", 13: "une", 14: "uno", 15: "true",
}  # fmt: skip


def elementwise_kernel_text(
    kernel: str,
    dispatch: str,
    op: ir.Operation,
    size: int,
    lanes: int,
    chunk: int,
    inner: Sequence[int] | None = None,
) -> tuple[str, list[int]]:
    """The kernel (inputs, then the output buffer) and which of the op's operands it reads.

    ``inner[i]`` is how many consecutive output elements share one element of
    operand ``i`` (1: the operand has the output's shape).
    """
    body_ops = generic_body(op)
    block = op.regions[0].blocks[0]
    used_args = [a for a in block.arguments if any(True for _ in a.uses)]
    inputs = [i for i, a in enumerate(block.arguments) if a in used_args]
    inner = list(inner) if inner is not None else [1] * len(block.arguments)
    elements = [str(ir.RankedTensorType(v.type).element_type) for v in op.operands]
    flat = memref_type(size, elements[-1])
    types = {i: memref_type(size // inner[i], elements[i]) for i in inputs}
    vec = f"vector<{lanes}xf32>"

    def vtype(element: str) -> str:
        return f"vector<{lanes}x{element}>"

    mvec = f"vector<{lanes}xi1>"
    ivec = f"vector<{lanes}xi32>"
    k = KernelText()
    tasks = -(-size // chunk)
    full = (size // lanes) * lanes

    def load(i: int, at: str, mask: str | None) -> str:
        element = elements[i]
        vec = vtype(element)
        zero = k.vconst(0.0, lanes, element)
        if inner[i] == 1 and mask is None:
            return k.op(f"vector.load %in{i}[{at}] : {types[i]}, {vec}")
        if inner[i] == 1:
            return k.op(
                f"vector.maskedload %in{i}[{at}], {mask}, {zero} : {types[i]}, {mvec}, {vec} into {vec}"
            )
        if inner[i] % lanes == 0:  # one source element per vector
            scalar = k.op(f"memref.load %in{i}[{k.op(f'arith.divui {at}, {k.const(inner[i])} : index')}] "
                          f": {types[i]}")
            return k.op(f"vector.broadcast {scalar} : {element} to {vec}")
        first = k.op(f"vector.broadcast {k.op(f'arith.index_cast {at} : index to i32')} : i32 to {ivec}")
        lane = k.op(f"arith.addi {first}, {k.vconst_list(list(range(lanes)), 'i32')} : {ivec}")
        source = k.op(f"arith.divui {lane}, {k.vconst(inner[i], lanes, 'i32')} : {ivec}")
        every = mask or k.op(f"vector.constant_mask [{lanes}] : {mvec}")
        return k.op(
            f"vector.gather %in{i}[{k.const(0)}] [{source}], {every}, {zero} "
            f": {types[i]}, {ivec}, {mvec}, {vec} into {vec}"
        )

    def replay(at: str, mask: str | None) -> None:
        names: dict[ir.Value, str] = {}
        for i in inputs:
            names[block.arguments[i]] = load(i, at, mask)

        def value(v: ir.Value) -> str:
            if v in names:
                return names[v]
            return k.vconst(float(ir.FloatAttr(constant_attr(v)).value), lanes, "f32")

        for inner in body_ops[:-1]:
            operands = [value(v) for v in inner.operands]
            if inner.name in CONVERSIONS:
                source, target = vtype(str(inner.operands[0].type)), vtype(str(inner.results[0].type))
                result = k.op(f"{inner.name} {operands[0]} : {source} to {target}")
            elif inner.name in BINARY or inner.name in UNARY:
                result = k.op(f"{inner.name} {', '.join(operands)} : {vec}")
            elif inner.name == "arith.cmpf":
                predicate = CMPF_PREDICATES[int(ir.IntegerAttr(inner.attributes["predicate"]).value)]
                result = k.op(f"arith.cmpf {predicate}, {operands[0]}, {operands[1]} : {vec}")
            else:  # arith.select
                result = k.op(f"arith.select {operands[0]}, {operands[1]}, {operands[2]} : {mvec}, {vec}")
            names[inner.results[0]] = result
        out = value(body_ops[-1].operands[0])
        stored = vtype(elements[-1])
        if mask is None:
            k.emit(f"vector.store {out}, %out[{at}] : {flat}, {stored}")
        else:
            k.emit(f"vector.maskedstore %out[{at}], {mask}, {out} : {flat}, {mvec}, {stored}")

    start = k.index((TASK, chunk))
    end = k.op(f"arith.minui {k.index((start, 1), (chunk, 1))}, {k.const(full)} : index")
    i = k.fresh("i")
    with k.region(f"scf.for {i} = {start} to {end} step {k.const(lanes)} {{"):
        replay(i, None)
    if size - full:
        last = k.op(f"arith.cmpi eq, {TASK}, {k.const(tasks - 1)} : index")
        with k.region(f"scf.if {last} {{"):
            mask = k.op(f"vector.constant_mask [{size - full}] : {mvec}")
            replay(k.const(full), mask)
    args = [(f"%in{i}", types[i]) for i in inputs] + [("%out", flat)]
    return kernel_module(kernel, dispatch, args, tasks, k), inputs
