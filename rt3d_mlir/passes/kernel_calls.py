"""Generated kernels and the calls that run them across threads.

A generated kernel is a public ``func.func`` on flat memrefs whose last two
arguments are an ``i64`` task range ``[begin, end)``; it carries
``rt3d.parallel_tasks`` (how many tasks make the whole job). The model
calls it through a private *dispatch* declaration with the same memref
arguments (no task range), tagged ``rt3d.kernel = "<kernel name>"`` and
``rt3d.parallel_tasks``. The backend defines every dispatch function in the
artifact's C glue: it splits ``[0, tasks)`` over the runtime's threads and
calls the kernel on each piece (see ``rt3d_mlir.backend.abi``).

Kernels are written as MLIR text (scf + vector + memref + arith) by
:class:`KernelText` and parsed into the module; the call site is built on
tensors (``tensor.collapse_shape`` + ``bufferization.to_buffer`` in,
``memref.alloc`` + ``bufferization.to_tensor`` out) so it bufferizes with
the rest of the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch_mlir import ir
from torch_mlir.dialects import bufferization, func, memref, tensor

from rt3d_mlir.codegen.literals import literal
from rt3d_mlir.passes.framework import PassFailure
from rt3d_mlir.passes.matchers import defining_op, erase_dead_producers, ops_named
from rt3d_mlir.targets import get_target

KERNEL_ATTR = "rt3d.kernel"
TASKS_ATTR = "rt3d.parallel_tasks"
FLOPS_ATTR = "rt3d.flops"  # useful FLOPs per call (2 x multiply-adds with kept weights)
DENSE_FLOPS_ATTR = "rt3d.dense_flops"  # FLOPs of the same layer computed densely


class KernelText:
    """Builds the body of a kernel function as MLIR text with fresh SSA names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._constants: dict[tuple[int | float, str], str] = {}
        self._constant_lines: list[str] = []
        self._counter = 0
        self.indent = 1

    def fresh(self, stem: str = "v") -> str:
        self._counter += 1
        return f"%{stem}_{self._counter}"

    def emit(self, line: str) -> None:
        self.lines.append("  " * self.indent + line)

    def op(self, text: str, stem: str = "v") -> str:
        name = self.fresh(stem)
        self.emit(f"{name} = {text}")
        return name

    def const(self, value: int | float, type_: str = "index") -> str:
        key = (value, type_)
        if key not in self._constants:
            name = f"%k{len(self._constants)}"
            self._constants[key] = name
            self._constant_lines.append(f"  {name} = arith.constant {literal(value, type_)} : {type_}")
        return self._constants[key]

    def vconst_list(self, values: list[int], element: str) -> str:
        """A constant vector of ``values``, defined once per kernel."""
        type_ = f"vector<{len(values)}x{element}>"
        key = (tuple(values), type_)
        if key not in self._constants:
            name = f"%k{len(self._constants)}"
            self._constants[key] = name  # type: ignore[index]
            elements = ", ".join(literal(v, element) for v in values)
            self._constant_lines.append(f"  {name} = arith.constant dense<[{elements}]> : {type_}")
        return self._constants[key]  # type: ignore[index]

    def vconst(self, value: int | float, lanes: int, element: str) -> str:
        key = (value, f"vector<{lanes}x{element}>")
        if key not in self._constants:
            name = f"%k{len(self._constants)}"
            self._constants[key] = name
            self._constant_lines.append(
                f"  {name} = arith.constant dense<{literal(value, element)}> : vector<{lanes}x{element}>"
            )
        return self._constants[key]

    def index(self, *terms: tuple[str | int, int]) -> str:
        """``sum(value * scale)`` over (value, scale) terms, folding constants."""
        constant = 0
        parts: list[str] = []
        for value, scale in terms:
            if scale == 0:
                continue
            if isinstance(value, int):
                constant += value * scale
                continue
            parts.append(value if scale == 1 else self.op(f"arith.muli {value}, {self.const(scale)} : index"))
        if constant or not parts:
            parts.append(self.const(constant))
        total = parts[0]
        for part in parts[1:]:
            total = self.op(f"arith.addi {total}, {part} : index")
        return total

    def body(self) -> str:
        return "\n".join(self._constant_lines + self.lines)


def static_size(shaped: ir.Type | ir.Value) -> int:
    """Elements of a static shaped type (or of a value's type)."""
    type_ = shaped.type if isinstance(shaped, ir.Value) else shaped
    size = 1
    for dim in ir.ShapedType(type_).shape:
        size *= dim
    return size


def int_attr(op: ir.Operation, name: str) -> int:
    """An integer attribute of ``op``, 0 when absent."""
    return int(ir.IntegerAttr(op.attributes[name]).value) if name in op.attributes else 0


def vector_lanes(target: str, vector_width: int, location: ir.Location) -> int:
    """``vector_width`` if set (> 0), else the f32 lanes of ``target``; a pass failure if unknown."""
    if vector_width > 0:
        return vector_width
    try:
        return get_target(target).f32_lanes
    except Exception as err:
        raise PassFailure(str(err), location) from None


def replace_with_kernel_call(
    op: ir.Operation, dispatch: str, inputs: Callable[[], Sequence[ir.Value]]
) -> None:
    """Replace ``op``'s single result by a call to ``dispatch``.

    ``inputs`` builds the call's operands at ``op`` (it may create ops, e.g.
    a pad or a packed constant); producers left unused are erased.
    """
    with ir.InsertionPoint(op), op.location:
        result = call_kernel(dispatch, inputs(), op.results[0].type)
    producers = [p for p in (defining_op(v) for v in op.operands) if p is not None]
    op.results[0].replace_all_uses_with(result)
    op.erase()
    erase_dead_producers(producers)


def memref_type_text(size: int, element: str) -> str:
    return f"memref<{size}x{element}>"


def kernel_module_text(
    kernel: str,
    dispatch: str,
    args: Sequence[tuple[str, str]],
    tasks: int,
    body: KernelText | str,
    task_var: str,
    flops: int = 0,
    dense_flops: int = 0,
    scratch_floats: int = 0,
) -> str:
    """A module holding the kernel (looping ``task_var`` over its range) and its dispatch decl.

    ``args`` are (SSA name, memref type) of the kernel's memref arguments;
    ``flops`` and ``dense_flops`` (per call) are recorded for profiles;
    ``scratch_floats`` > 0 gives the body a stack buffer ``%scratch``.
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
{prologue}  scf.for {task_var} = %tb to %te step %tstep {{
{body if isinstance(body, str) else body.body()}
  }}
  return
}}
func.func private @{dispatch}({types}) attributes {{{dispatch_attrs}}}
}}
"""


def unique_kernel_names(module: ir.Operation, stem: str) -> tuple[str, str]:
    """Fresh (kernel, dispatch) symbol names for a kernel of kind ``stem``."""
    taken = {ir.StringAttr(op.attributes["sym_name"]).value for op in ops_named(module, "func.func")}
    index = 0
    while f"rt3d_{stem}_kernel_{index}" in taken or f"rt3d_{stem}_dispatch_{index}" in taken:
        index += 1
    return f"rt3d_{stem}_kernel_{index}", f"rt3d_{stem}_dispatch_{index}"


def insert_kernel_module(module: ir.Operation, text: str) -> None:
    """Parse ``text`` (a module) and move its functions to the end of ``module``."""
    parsed = ir.Module.parse(text, module.context)
    body = module.regions[0].blocks[0]
    for op in list(parsed.body.operations):
        op.detach_from_parent()
        ir.InsertionPoint(body).insert(op)


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


def call_kernel(dispatch: str, inputs: Sequence[ir.Value], result_type: ir.Type) -> ir.Value:
    """Call ``dispatch`` on ``inputs`` and a fresh output buffer; the output as a tensor."""
    out_type = ir.RankedTensorType(result_type)
    size = static_size(out_type)
    buffers = [flat_buffer(v) for v in inputs]
    out = memref.AllocOp(ir.MemRefType.get([size], out_type.element_type), [], [], alignment=64).result
    func.CallOp([], ir.FlatSymbolRefAttr.get(dispatch), [*buffers, out])
    flat = bufferization.ToTensorOp(
        ir.RankedTensorType.get([size], out_type.element_type), out, restrict=True, writable=True
    ).result
    if out_type.rank == 1:
        return flat
    return tensor.ExpandShapeOp(out_type, flat, [list(range(out_type.rank))], [], list(out_type.shape)).result
