"""The frame every CPU kernel shares: a function over flat memrefs and a task range.

A generated kernel is a public ``func.func`` whose last two arguments are an
``i64`` task range ``[begin, end)``; it carries ``rt3d.parallel_tasks`` (how
many tasks make the whole job). The model calls it through a private
*dispatch* declaration with the same memref arguments (no task range),
tagged ``rt3d.kernel = "<kernel name>"``, ``rt3d.parallel_tasks`` and the
call's FLOPs. The backend defines every dispatch function in the artifact's
C glue: it splits ``[0, tasks)`` over the runtime's threads and calls the
kernel on each piece (see ``rt3d_mlir.backend.abi``).
"""

from __future__ import annotations

from collections.abc import Sequence

from rt3d_mlir.codegen.text import KernelText
from rt3d_mlir.dialect.attributes import DENSE_FLOPS_ATTR, FLOPS_ATTR, KERNEL_ATTR, TASKS_ATTR

TASK = "%task"  # the task index inside a kernel body


def memref_type(size: int, element: str) -> str:
    return f"memref<{size}x{element}>"


def fill_run(k: KernelText, value: str, at: str, count: int, memref: str, lanes: int, element: str) -> None:
    """Store the splat vector ``value`` (``lanes`` of ``element``) over ``count`` elements of
    ``%output`` from ``at``: whole vectors, the last one masked."""
    vec, mask_vec = f"vector<{lanes}x{element}>", f"vector<{lanes}xi1>"
    for start in range(0, count, lanes):
        where = k.index((at, 1), (start, 1))
        if count - start >= lanes:
            k.emit(f"vector.store {value}, %output[{where}] : {memref}, {vec}")
        else:
            mask = k.op(f"vector.constant_mask [{count - start}] : {mask_vec}")
            k.emit(f"vector.maskedstore %output[{where}], {mask}, {value} : {memref}, {mask_vec}, {vec}")


def in_range(k: KernelText, index: str, start: int, size: int) -> str:
    """An i1: ``start <= index < start + size``."""
    above = k.op(f"arith.cmpi uge, {index}, {k.const(start)} : index")
    below = k.op(f"arith.cmpi ult, {index}, {k.const(start + size)} : index")
    return k.op(f"arith.andi {above}, {below} : i1")


def kernel_module(
    kernel: str,
    dispatch: str,
    args: Sequence[tuple[str, str]],
    tasks: int,
    body: KernelText,
    flops: int = 0,
    dense_flops: int = 0,
    scratch_floats: int = 0,
    declarations: Sequence[str] = (),
) -> str:
    """A module holding the kernel (looping ``%task`` over its range) and its dispatch declaration.

    ``args`` are (SSA name, memref type) of the kernel's memref arguments;
    ``flops`` and ``dense_flops`` (per call) are recorded for profiles;
    ``scratch_floats`` > 0 gives the body a stack buffer ``%scratch``;
    ``declarations`` are private functions the body calls (LLVM intrinsics by name; a module holds
    each once: ``passes.kernel_calls.add_kernel``).
    """
    params = ", ".join(f"{name}: {type_}" for name, type_ in args)
    prologue = (
        f"  %scratch = memref.alloca() {{alignment = 64 : i64}} : memref<{scratch_floats}xf32>\n"
        if scratch_floats
        else ""
    )
    dispatch_attrs = (
        f'{KERNEL_ATTR} = "{kernel}", {TASKS_ATTR} = {tasks} : i64, '
        f"{FLOPS_ATTR} = {flops} : i64, {DENSE_FLOPS_ATTR} = {dense_flops} : i64"
    )
    types = ", ".join(type_ for _, type_ in args)
    return f"""module {{
func.func @{kernel}({params}, %task_begin: i64, %task_end: i64) attributes {{{TASKS_ATTR} = {tasks} : i64}} {{
  %tb = arith.index_cast %task_begin : i64 to index
  %te = arith.index_cast %task_end : i64 to index
  %tstep = arith.constant 1 : index
{prologue}  scf.for {TASK} = %tb to %te step %tstep {{
{body.render(indent=2)}
  }}
  return
}}
func.func private @{dispatch}({types}) attributes {{{dispatch_attrs}}}
{"".join(f"{d}{chr(10)}" for d in declarations)}}}
"""
