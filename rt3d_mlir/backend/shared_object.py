"""Lowered IR to a shared object: LLVM dialect -> LLVM 22 IR -> clang-22 + lld."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.backend.abi import (
    Dispatch,
    WeightSymbol,
    info_json,
    version_script,
    weights_assembly,
    wrapper_source,
)
from rt3d_mlir.backend.cpu_features import cpu_features
from rt3d_mlir.backend.pipelines import LOOPS_TO_LLVM, bufferize_pipeline
from rt3d_mlir.backend.targets import Target
from rt3d_mlir.backend.toolchain import CLANG, LLD, MLIR_TRANSLATE, find_tool, run_tool
from rt3d_mlir.contracts.shared_object import FORWARD_IMPL_SYMBOL
from rt3d_mlir.errors import ToolchainError, UnsupportedModelError, describe_location
from rt3d_mlir.fileio import atomic_output
from rt3d_mlir.passes import run_pipeline
from rt3d_mlir.passes.externalize_weights import OFFSET_ATTR, SIZE_ATTR
from rt3d_mlir.passes.kernel_calls import DENSE_FLOPS_ATTR, FLOPS_ATTR, KERNEL_ATTR, TASKS_ATTR, int_attr
from rt3d_mlir.passes.matchers import ops_named


def entry_function(module: ir.Module, name: str) -> ir.Operation:
    for op in ops_named(module.operation, "func.func"):
        if ir.StringAttr(op.attributes["sym_name"]).value == name:
            return op
    raise UnsupportedModelError(f"the imported module has no function '{name}'")


def entry_signature(func: ir.Operation) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input shape, output shape) of a one-tensor-in, one-tensor-out function."""
    ftype = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
    if len(ftype.inputs) != 1 or len(ftype.results) != 1:
        raise UnsupportedModelError(
            f"the model must take one tensor and return one tensor, it takes "
            f"{len(ftype.inputs)} and returns {len(ftype.results)}"
        )
    shapes = []
    for kind, value_type in (("input", ftype.inputs[0]), ("output", ftype.results[0])):
        tensor = ir.RankedTensorType(value_type)
        if not tensor.has_static_shape:
            raise UnsupportedModelError(f"the model's {kind} shape must be static")
        if tensor.element_type != ir.F32Type.get(func.context):
            raise UnsupportedModelError(f"the model's {kind} must be float32, not {tensor.element_type}")
        shapes.append(tuple(tensor.shape))
    return shapes[0], shapes[1]


@dataclass(frozen=True)
class Toolchain:
    """The tools and CPU choice for one CPU target, resolved once before any work."""

    target: Target
    mlir_translate: str
    clang: str
    cpu: str  # as clang resolves it (``native`` becomes this machine's CPU name)
    features: tuple[str, ...]  # /proc/cpuinfo names of the extensions the code may use

    def info(self) -> str:
        return info_json(self.target.name, self.target.triple, self.cpu, self.features)


def require_toolchain(target: Target, cpu: str | None = None) -> Toolchain:
    """The toolchain for ``target`` tuned for ``cpu``, or a ToolchainError naming the package
    (an unknown CPU name is a ToolchainError too)."""
    mlir_translate = find_tool(MLIR_TRANSLATE, target.name)
    clang = find_tool(CLANG, target.name)
    find_tool(LLD, target.name)
    chosen = cpu or target.default_cpu
    if not chosen or chosen.startswith("-") or not chosen.replace("-", "").replace("_", "").isalnum():
        raise ToolchainError(f"'{chosen}' is not a CPU name")
    resolved, features = cpu_features(clang, target, chosen)
    return Toolchain(target, mlir_translate, clang, resolved, tuple(features))


def _require_llvm_dialect(module: ir.Module) -> None:
    """Every op is in the LLVM dialect after lowering, or UnsupportedModelError names the first that is not.

    (An op the pipelines cannot lower would otherwise fail later, in
    mlir-translate or at link time, with a message about generated files.)
    """
    leftover: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name != "builtin.module" and not op.name.startswith("llvm."):
            leftover.append(op)
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit, ir.WalkOrder.PRE_ORDER)
    if leftover:
        op = leftover[0]
        raise UnsupportedModelError(
            f"unsupported operator '{op.name}': the CPU targets cannot lower it "
            f"(at {describe_location(op.location)})"
        )


def _weight_symbols(module: ir.Module) -> list[WeightSymbol]:
    symbols = []
    for op in ops_named(module.operation, "memref.global"):
        if OFFSET_ATTR in op.attributes:
            symbols.append(
                WeightSymbol(
                    name=ir.StringAttr(op.attributes["sym_name"]).value,
                    offset=ir.IntegerAttr(op.attributes[OFFSET_ATTR]).value,
                    size=ir.IntegerAttr(op.attributes[SIZE_ATTR]).value,
                )
            )
    return symbols


def _dispatches(module: ir.Module) -> list[Dispatch]:
    """The kernel dispatch declarations the C glue must define."""
    found = []
    for op in ops_named(module.operation, "func.func"):
        if KERNEL_ATTR not in op.attributes:
            continue
        ftype = ir.FunctionType(ir.TypeAttr(op.attributes["function_type"]).value)
        found.append(
            Dispatch(
                name=ir.StringAttr(op.attributes["sym_name"]).value,
                kernel=ir.StringAttr(op.attributes[KERNEL_ATTR]).value,
                arguments=len(ftype.inputs),
                tasks=ir.IntegerAttr(op.attributes[TASKS_ATTR]).value,
                flops=int_attr(op, FLOPS_ATTR),
                dense_flops=int_attr(op, DENSE_FLOPS_ATTR),
            )
        )
    return found


def build_shared_object(
    module: ir.Module,
    function_name: str,
    output: str,
    toolchain: Toolchain,
    keep_dir: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Compile a module whose ``function_name`` is the model into ``output``.

    The output file appears only when everything succeeded (it is written
    under a temporary name and renamed).
    """
    target = toolchain.target
    step = progress or (lambda _msg: None)

    func = entry_function(module, function_name)
    input_shape, output_shape = entry_signature(func)
    func.attributes["sym_name"] = ir.StringAttr.get(FORWARD_IMPL_SYMBOL, module.context)

    with tempfile.TemporaryDirectory(prefix="rt3d-build-") as tmp:
        work = keep_dir or tmp
        os.makedirs(work, exist_ok=True)
        blob = os.path.join(work, "weights.bin")
        step("bufferize")
        run_pipeline(module, f"builtin.module({bufferize_pipeline(blob)})")
        weights = _weight_symbols(module)
        dispatches = _dispatches(module)
        if not weights:
            open(blob, "wb").close()
        step("lower to LLVM dialect")
        run_pipeline(module, f"builtin.module({LOOPS_TO_LLVM})")
        _require_llvm_dialect(module)
        llvm_mlir = os.path.join(work, "model.llvm.mlir")
        with open(llvm_mlir, "w") as f:
            module.operation.print(file=f, large_elements_limit=None)
        step("translate to LLVM IR")
        llvm_ir = os.path.join(work, "model.ll")
        run_tool([toolchain.mlir_translate, "--mlir-to-llvmir", llvm_mlir, "-o", llvm_ir], "mlir-translate")
        wrapper = os.path.join(work, "abi.c")
        with open(wrapper, "w") as f:
            f.write(wrapper_source(target.name, input_shape, output_shape, dispatches, toolchain.info()))
        assembly = os.path.join(work, "weights.S")
        with open(assembly, "w") as f:
            f.write(weights_assembly(os.path.abspath(blob), weights))
        exports = os.path.join(work, "exports.map")
        with open(exports, "w") as f:
            f.write(version_script())
        step("compile and link")
        with atomic_output(output, executable=True) as partial:
            run_tool(
                [
                    toolchain.clang,
                    f"--target={target.triple}",
                    f"{target.cpu_flag}={toolchain.cpu}",
                    "-O3",
                    "-fPIC",
                    "-shared",
                    "-pthread",
                    "-fuse-ld=lld",
                    "-Wno-override-module",
                    f"-Wl,--version-script={exports}",
                    "-Wl,-z,defs",
                    llvm_ir,
                    wrapper,
                    assembly,
                    "-lm",
                    "-o",
                    partial,
                ],
                "compiling the shared object",
            )
