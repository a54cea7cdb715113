"""The CPU kernel of a reduction over trailing dimensions (called by ``rt3d-vectorize-reduction``).

The sum (or max) of each row of ``inner`` contiguous elements, for ``rows``
rows: the global average pool of a squeeze-excitation block or of a head
(``N*C`` rows of ``D*H*W``) before its division. A task reduces ``per_task``
rows; each row is read in vectors into ``ACCUMULATORS`` independent vector
accumulators (so that the adds do not wait on each other), the last vector
masked, then folded into one vector and one scalar with
``vector.reduction``, combined with the initial value and stored.
"""

from __future__ import annotations

from rt3d_mlir.codegen.cpu.kernel import TASK, kernel_module, memref_type
from rt3d_mlir.codegen.text import KernelText

ACCUMULATORS = 4

COMBINERS = {"arith.addf": ("add", "arith.addf"), "arith.maximumf": ("maximumf", "arith.maximumf")}


def reduction_kernel_text(
    kernel: str, dispatch: str, combiner: str, rows: int, inner: int, init: float, lanes: int
) -> str:
    """``combiner`` (``arith.addf`` or ``arith.maximumf``) over each of ``rows`` rows of ``inner``
    elements, starting from ``init``."""
    kind, scalar_op = COMBINERS[combiner]
    k = KernelText()
    vec = f"vector<{lanes}xf32>"
    in_type = memref_type(rows * inner, "f32")
    out_type = memref_type(rows, "f32")
    # rows per task: about 64 Ki elements of work each
    per_task = max(1, min(rows, (1 << 16) // max(inner, 1)))
    tasks = -(-rows // per_task)
    neutral = 0.0 if kind == "add" else float("-inf")
    start = k.vconst(neutral, lanes, "f32")
    first = k.index((TASK, per_task))
    last = k.op(f"arith.minui {k.index((first, 1), (per_task, 1))}, {k.const(rows)} : index")
    row = k.fresh("r")
    with k.region(f"scf.for {row} = {first} to {last} step {k.const(1)} {{"):
        base = k.index((row, inner))
        step = ACCUMULATORS * lanes
        full = inner // step * step
        accs = [start] * ACCUMULATORS
        if full:
            i = k.fresh("i")
            names = [k.fresh("acc") for _ in accs]
            carried = ", ".join(f"{n} = {a}" for n, a in zip(names, accs, strict=True))
            results = k.fresh("sums")
            types = ", ".join([vec] * ACCUMULATORS)
            with k.region(
                f"{results}:{ACCUMULATORS} = scf.for {i} = {k.const(0)} to {k.const(full)} step "
                f"{k.const(step)} iter_args({carried}) -> ({types}) {{"
            ):
                updated = []
                for a, name in enumerate(names):
                    at = k.index((base, 1), (i, 1), (a * lanes, 1))
                    x = k.op(f"vector.load %input[{at}] : {in_type}, {vec}")
                    updated.append(k.op(f"{scalar_op} {name}, {x} : {vec}"))
                k.emit(f"scf.yield {', '.join(updated)} : {types}")
            accs = [f"{results}#{a}" for a in range(ACCUMULATORS)]
        for offset in range(full, inner, lanes):  # the rest: whole vectors, then a masked one
            at = k.index((base, 1), (offset, 1))
            count = min(lanes, inner - offset)
            if count < lanes:
                mask = k.op(f"vector.constant_mask [{count}] : vector<{lanes}xi1>")
                x = k.op(
                    f"vector.maskedload %input[{at}], {mask}, {start} : {in_type}, vector<{lanes}xi1>, "
                    f"{vec} into {vec}"
                )
            else:
                x = k.op(f"vector.load %input[{at}] : {in_type}, {vec}")
            slot = (offset - full) // lanes % ACCUMULATORS
            accs[slot] = k.op(f"{scalar_op} {accs[slot]}, {x} : {vec}")
        total = accs[0]
        for acc in accs[1:]:
            total = total if acc == start else k.op(f"{scalar_op} {total}, {acc} : {vec}")
        value = k.op(f"vector.reduction <{kind}>, {total} : {vec} into f32")
        value = k.op(f"{scalar_op} {value}, {k.const(init, 'f32')} : f32")
        k.emit(f"memref.store {value}, %output[{row}] : {out_type}")
    args = [("%input", in_type), ("%output", out_type)]
    return kernel_module(kernel, dispatch, args, tasks, k)
