"""The CPU kernel of a broadcasting copy (called by ``rt3d-vectorize-broadcast``).

The copy is described by its output's dimensions, merged into alternating
groups: each either *kept* (the input has it) or *broadcast* (the input
lacks it; every index reads the same input element). A nearest upsampling
by whole factors ``(f_h, f_w)`` of an ``N x C x H x W`` input is the groups
``N*C*H`` kept, ``f_h`` broadcast, ``W`` kept, ``f_w`` broadcast.

The last kept group is the *row*: a contiguous run of the input. The
groups before it (the *outer* groups) index rows: a row's input offset
sums its kept outer indices times their input strides, and the output rows
are consecutive. The broadcast group after the row, if any (``inner``),
repeats each element ``inner`` times: a vector of ``L`` inputs becomes
``inner`` vectors by shuffles (``inner < L``), or each element is splat over
its run of outputs (``inner >= L``). Tasks are runs of rows of about
``chunk`` output elements, split across threads.
"""

from __future__ import annotations

from collections.abc import Sequence

from rt3d_mlir.codegen.cpu.kernel import TASK, fill_run, kernel_module, memref_type
from rt3d_mlir.codegen.text import KernelText


def broadcast_groups(out_shape: Sequence[int], kept: Sequence[bool]) -> list[tuple[int, bool]]:
    """The output dims (``kept``: the input has the dim) as alternating groups ``(size, kept)``:
    dims of size 1 dropped, neighbours of the same kind merged."""
    groups: list[tuple[int, bool]] = []
    for size, has in zip(out_shape, kept, strict=True):
        if size == 1:
            continue
        if groups and groups[-1][1] == has:
            groups[-1] = (groups[-1][0] * size, has)
        else:
            groups.append((size, has))
    return groups


def broadcast_kernel_text(
    kernel: str,
    dispatch: str,
    groups: Sequence[tuple[int, bool]],
    lanes: int,
    chunk: int = 16384,
    element: str = "f32",
) -> str:
    """The kernel of the broadcasting copy of ``groups`` (:func:`broadcast_groups`; at least one
    kept and one broadcast group)."""
    if not any(kept for _, kept in groups) or all(kept for _, kept in groups):
        raise ValueError("a broadcasting copy needs kept and broadcast dimensions")
    inner = 1 if groups[-1][1] else groups[-1][0]
    row_group = len(groups) - (1 if inner == 1 else 2)
    row = groups[row_group][0]
    outer = list(groups[:row_group])
    rows = 1
    for size, _ in outer:
        rows *= size
    in_size = row
    for size, kept in outer:
        in_size *= size if kept else 1
    out_row = row * inner
    rows_per_task = max(1, chunk // out_row)
    tasks = -(-rows // rows_per_task)
    in_type, out_type = memref_type(in_size, element), memref_type(rows * out_row, element)
    vec, mask_vec = f"vector<{lanes}x{element}>", f"vector<{lanes}xi1>"
    k = KernelText()
    zero = k.vconst(0.0, lanes, element)
    first = k.index((TASK, rows_per_task))
    last = k.op(f"arith.minui {k.index((first, 1), (rows_per_task, 1))}, {k.const(rows)} : index")
    r = k.fresh("row")
    with k.region(f"scf.for {r} = {first} to {last} step {k.const(1)} {{"):
        # the row's input offset: its kept outer indices times their strides (innermost first)
        terms: list[tuple[str, int]] = []
        rest, stride = r, row
        for size, kept in reversed(outer):
            index = k.op(f"arith.remui {rest}, {k.const(size)} : index")
            rest = k.op(f"arith.divui {rest}, {k.const(size)} : index")
            if kept:
                terms.append((index, stride))
                stride *= size
        in_at = k.index(*terms) if terms else k.const(0)
        out_at = k.index((r, out_row))
        if inner >= lanes:
            _splat_row(k, in_at, out_at, row, inner, lanes, in_type, out_type, element)
        else:
            _shuffled_row(k, in_at, out_at, row, inner, lanes, zero, in_type, out_type, vec, mask_vec)
    return kernel_module(kernel, dispatch, [("%input", in_type), ("%output", out_type)], tasks, k)


def _shuffled_row(
    k: KernelText, in_at: str, out_at: str, row: int, inner: int, lanes: int, zero: str,
    in_type: str, out_type: str, vec: str, mask_vec: str,
) -> None:
    """A row whose elements repeat ``inner < lanes`` times: each vector of inputs, shuffled into
    ``inner`` vectors of outputs (``inner`` 1: copied)."""
    shuffles = [
        ", ".join(str((q * lanes + lane) // inner) for lane in range(lanes)) for q in range(inner)
    ]

    def store(v: str, at: str, count: int) -> None:
        for q in range(inner):
            stored = min(lanes, count * inner - q * lanes)
            if stored <= 0:
                break
            value = v if inner == 1 else k.op(f"vector.shuffle {v}, {v} [{shuffles[q]}] : {vec}, {vec}")
            where = k.index((at, 1), (q * lanes, 1))
            if stored == lanes:
                k.emit(f"vector.store {value}, %output[{where}] : {out_type}, {vec}")
            else:
                mask = k.op(f"vector.constant_mask [{stored}] : {mask_vec}")
                k.emit(
                    f"vector.maskedstore %output[{where}], {mask}, {value} : "
                    f"{out_type}, {mask_vec}, {vec}"
                )

    full = row // lanes * lanes
    if full:
        j = k.fresh("j")
        with k.region(f"scf.for {j} = {k.const(0)} to {k.const(full)} step {k.const(lanes)} {{"):
            v = k.op(f"vector.load %input[{k.index((in_at, 1), (j, 1))}] : {in_type}, {vec}")
            store(v, k.index((out_at, 1), (j, inner)), lanes)
    if row - full:
        mask = k.op(f"vector.constant_mask [{row - full}] : {mask_vec}")
        v = k.op(
            f"vector.maskedload %input[{k.index((in_at, 1), (full, 1))}], {mask}, {zero} : "
            f"{in_type}, {mask_vec}, {vec} into {vec}"
        )
        store(v, k.index((out_at, 1), (full * inner, 1)), row - full)


def _splat_row(
    k: KernelText, in_at: str, out_at: str, row: int, inner: int, lanes: int,
    in_type: str, out_type: str, element: str,
) -> None:
    """A row whose elements repeat ``inner >= lanes`` times: each element splat over its run."""
    j = k.fresh("j")
    with k.region(f"scf.for {j} = {k.const(0)} to {k.const(row)} step {k.const(1)} {{"):
        x = k.op(f"memref.load %input[{k.index((in_at, 1), (j, 1))}] : {in_type}")
        splat = k.op(f"vector.broadcast {x} : {element} to vector<{lanes}x{element}>")
        fill_run(k, splat, k.index((out_at, 1), (j, inner)), inner, out_type, lanes, element)
