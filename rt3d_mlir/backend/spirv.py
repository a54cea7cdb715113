"""The SPIR-V target: imported linalg to GPU kernels, SPIR-V binaries, and the artifact.

Stages: the sparse-convolution passes (recognize and pack into filter
blocks of 4 to 16 filters), named ops to generics, then the ``rt3d-gpu-*``
passes (:mod:`rt3d_mlir.codegen.gpu` kernels). After them the forward function is a program of
``rt3d.gpu_dispatch`` ops over tensors, with the kernels as ``gpu.module``s
of the same module. This module only gives those tensors buffers, turns
the kernels into SPIR-V and writes the artifact (``docs/spirv_artifact.md``):

* the input argument and every dispatch result are buffers (an
  ``in_place`` dispatch writes its last operand's buffer; a ``zero_init``
  one gets a zeroed buffer), constants are ``weights`` buffers uploaded
  once, reshapes alias their operand;
* each ``gpu.module`` is lowered with the bundled MLIR (``spirv-attach-target``
  for SPIR-V 1.3 / Vulkan 1.1, ``convert-gpu-to-spirv``, ABI lowering); for
  Vulkan the ``spirv.module`` must sit inside its ``gpu.module`` before
  ``gpu-module-to-binary`` serializes it, so the ``gpu.func`` is dropped and
  the ``spirv.module`` moved in. The bytes are exactly what the Vulkan
  runtime hands to ``vkCreateShaderModule``;
* int8 kernels' dot products (:data:`~rt3d_mlir.codegen.gpu.kernel.DOT4X8`)
  become ``OpSDot`` of packed 4x8-bit operands (SPV_KHR_integer_dot_product:
  the DotProduct capabilities, which the runtime enables as the device's
  ``shaderIntegerDotProduct`` feature). MLIR's conversion cannot emit it
  (its availability check of ``spirv.SDot`` asks for an extension from an
  empty list), so it is given the function's body after the conversion.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from torch_mlir import ir, passmanager
from torch_mlir.dialects import gpu

from rt3d_mlir.backend.targets import Build, BuildOptions, CompileTarget, Stage
from rt3d_mlir.codegen.gpu.kernel import DOT4X8, WORKGROUP
from rt3d_mlir.contracts.spirv_artifact import (
    KERNEL_DIRECTORY,
    MANIFEST,
    TARGET_ENV,
    WEIGHTS,
    Buffer,
    Dispatch,
    Kernel,
    Program,
)
from rt3d_mlir.errors import PipelineError, UnsupportedModelError, describe_location, one_line
from rt3d_mlir.fileio import atomic_output
from rt3d_mlir.ir_matchers import constant_array, top_level_ops
from rt3d_mlir.kernel_packing import GPU_PRECISIONS, INT8_QUAD
from rt3d_mlir.passes import run_pipeline
from rt3d_mlir.passes.gpu_dispatch import dispatch_info
from rt3d_mlir.sparsity import format_group_shape

WEIGHT_ALIGNMENT = 256
# Float16 and 16-bit storage are allowed (fp16 builds use them; spirv-update-vce keeps what a module
# uses, and the runtime enables the device features its capabilities need); a kernel's helper
# functions (DOT4X8) are converted before the kernels that call them
TO_SPIRV = (
    "builtin.module(canonicalize, cse, "
    "spirv-attach-target{ver=v1.3 caps=Shader,Float16,StorageBuffer16BitAccess "
    "exts=SPV_KHR_storage_buffer_storage_class,SPV_KHR_16bit_storage}, "
    "gpu.module(arith-expand, convert-math-to-spirv, convert-func-to-spirv), convert-gpu-to-spirv, "
    "spirv.module(spirv-lower-abi-attrs, spirv-update-vce, canonicalize))"
)
# what an OpSDot of packed 4x8-bit operands needs on top of a module's own requirements
DOT_CAPABILITIES = ("DotProduct", "DotProductInput4x8BitPacked")
DOT_EXTENSION = "SPV_KHR_integer_dot_product"
_ALIASES = ("tensor.collapse_shape", "tensor.expand_shape")
_ELEMENT_BYTES = {"f16": 2, "f32": 4, "i32": 4}


@dataclass
class GpuProgram:
    """The dispatch program of a forward function: the manifest, plus the data it refers to."""

    program: Program
    weights: dict[int, np.ndarray] = field(default_factory=dict)  # buffer id -> its initial data
    kernel_modules: dict[str, str] = field(default_factory=dict)  # kernel symbol -> gpu.module text


def _shape(value: ir.Value) -> tuple[int, ...]:
    return tuple(ir.RankedTensorType(value.type).shape)


def build_program(module: ir.Module, function: str) -> GpuProgram:
    """Give every tensor of the forward function a buffer and list the dispatches in order."""
    func = next(
        (op for op in top_level_ops(module.operation, "func.func")
         if ir.StringAttr(op.attributes["sym_name"]).value == function),
        None,
    )
    if func is None:
        raise UnsupportedModelError(f"no function '{function}' in the module")
    block = func.regions[0].blocks[0]
    if len(block.arguments) != 1:
        raise UnsupportedModelError("the spirv target takes models with exactly one input")
    buffers: list[Buffer] = []
    weights: dict[int, np.ndarray] = {}
    buffer_of: dict[ir.Value, int] = {}

    def new_buffer(value: ir.Value, init: str = "none") -> int:
        """A buffer for tensor ``value`` (whole 32-bit words: an odd count of f16 is rounded up)."""
        element = str(ir.RankedTensorType(value.type).element_type)
        if element not in _ELEMENT_BYTES:
            raise UnsupportedModelError(f"the spirv target has no buffers of {element}")
        size = _ELEMENT_BYTES[element] * math.prod(_shape(value))
        buffers.append(Buffer(max(4, -(-size // 4) * 4), init))
        return len(buffers) - 1

    gpu_modules = {
        ir.StringAttr(m.attributes["sym_name"]).value: m
        for m in top_level_ops(module.operation, "gpu.module")
    }
    declarations = {
        ir.StringAttr(f.attributes["sym_name"]).value: f for f in top_level_ops(module.operation, "func.func")
    }
    kernels: dict[str, Kernel] = {}
    dispatches: list[Dispatch] = []
    labels: dict[str, int] = {}
    arg = block.arguments[0]
    buffer_of[arg] = input_buffer = new_buffer(arg)
    output: tuple[int, tuple[int, ...]] | None = None
    for op in block.operations:
        name = op.operation.name
        if name == "arith.constant":
            if isinstance(op.results[0].type, ir.RankedTensorType):
                array = constant_array(op.results[0])
                if array is None:
                    raise UnsupportedModelError("the spirv target cannot read a constant of the model")
                kind = np.float16 if array.dtype == np.float16 else np.float32
                data = np.ascontiguousarray(array, dtype=kind if array.dtype.kind == "f" else np.int32)
                buffer_of[op.results[0]] = new_buffer(op.results[0], "weights")
                weights[buffer_of[op.results[0]]] = data
        elif name in _ALIASES:
            buffer_of[op.results[0]] = buffer_of[op.operands[0]]
        elif name == "tensor.empty":
            continue  # nothing reads it (a dispatch binding it is refused below)
        elif name == "func.call":
            callee = ir.FlatSymbolRefAttr(op.attributes["callee"]).value
            info = dispatch_info(declarations[callee]) if callee in declarations else None
            if info is None:
                raise UnsupportedModelError(f"the spirv target cannot call '{callee}'")
            bound = []
            for value in op.operands:
                if value not in buffer_of:
                    where = describe_location(op.location)
                    raise UnsupportedModelError(f"the spirv target binds a tensor nothing wrote ({where})")
                bound.append(buffer_of[value])
            if info.in_place:
                result = bound[-1]
            else:
                result = new_buffer(op.results[0], "zero" if info.zero_init else "none")
                bound.append(result)
            buffer_of[op.results[0]] = result
            if info.kernel not in gpu_modules:
                raise UnsupportedModelError(f"dispatch '{callee}' names @{info.kernel}, not in the module")
            values = [*op.operands, op.results[0]]
            _check_bindings(callee, info.kernel, gpu_modules[info.kernel], values, len(bound))
            if info.kernel not in kernels:
                module_path = f"{KERNEL_DIRECTORY}{info.kernel}.spv"
                kernels[info.kernel] = Kernel(
                    info.kernel, module_path, info.kernel, len(bound), (WORKGROUP, 1, 1), info.groups
                )
            labels[info.label] = labels.get(info.label, 0) + 1
            label = f"{info.label}{labels[info.label]}"
            flops = (float(info.flops), float(info.dense_flops))
            dispatches.append(Dispatch(info.kernel, tuple(bound), info.groups, label, *flops))
        elif name == "func.return":
            if len(op.operands) != 1:
                raise UnsupportedModelError("the spirv target takes models with exactly one output")
            output = (buffer_of[op.operands[0]], _shape(op.operands[0]))
        elif not name.startswith("arith."):  # scalar constants stay for the kernels that read them
            raise UnsupportedModelError(
                f"unsupported operator '{name}' on the spirv target (it has no GPU kernel for it; at "
                f"{describe_location(op.location)})"
            )
    if output is None or not dispatches:
        raise UnsupportedModelError("the spirv target found no dispatches in the model")
    program = Program(
        TARGET_ENV, input_buffer, _shape(arg), output[0], output[1], buffers, kernels, dispatches,
        sum(d.flops for d in dispatches), sum(d.dense_flops for d in dispatches),
    )
    texts = {symbol: str(gpu_modules[symbol]) for symbol in kernels}
    return GpuProgram(program, weights, texts)


def _flat_elements(type_text: str) -> int | None:
    """Scalar elements of a flat ``memref<N x T>`` kernel argument (``T`` a scalar or a vector)."""
    match = re.fullmatch(r"memref<(\d+)x(?:vector<(\d+)x\w+>|\w+)>", type_text)
    return None if match is None else int(match.group(1)) * int(match.group(2) or 1)


def _check_bindings(
    callee: str, symbol: str, gpu_module: ir.Operation, values: list[ir.Value], count: int
) -> None:
    """The kernel takes one flat buffer per binding, each the size of the tensor bound to it."""
    function = next(
        (op for op in gpu_module.regions[0].blocks[0].operations if op.operation.name == "gpu.func"), None
    )
    if function is None:
        raise UnsupportedModelError(f"kernel @{symbol} holds no gpu.func")
    signature = ir.FunctionType(ir.TypeAttr(function.attributes["function_type"]).value)
    arguments = [str(t) for t in signature.inputs]
    bound = values[:count] if count == len(values) else values[:-1]
    if len(arguments) != len(bound):
        raise UnsupportedModelError(
            f"dispatch '{callee}' binds {len(bound)} buffers; kernel @{symbol} takes {len(arguments)}"
        )
    for j, (argument, value) in enumerate(zip(arguments, bound, strict=True)):
        size = math.prod(_shape(value))
        if _flat_elements(argument) != size:
            raise UnsupportedModelError(
                f"dispatch '{callee}' binds a tensor of {size} elements to binding {j} of kernel "
                f"@{symbol}, a {argument}"
            )


def kernels_to_spirv(kernel_modules: dict[str, str]) -> dict[str, bytes]:
    """One SPIR-V binary per ``gpu.module`` text, keyed by its symbol."""
    text = "module attributes {gpu.container_module} {\n" + "\n".join(kernel_modules.values()) + "\n}"
    with ir.Context():
        try:
            module = ir.Module.parse(text)
            passmanager.PassManager.parse(TO_SPIRV).run(module.operation)
        except Exception as err:  # MLIRError: the message holds the diagnostics
            raise PipelineError(
                f"lowering the GPU kernels to SPIR-V failed: {one_line(str(err), 600)}"
            ) from None
        ops = list(module.body.operations)
        for op in ops:
            if op.operation.name == "spirv.module":
                _integer_dot_products(op)
        spirv_modules = {
            ir.StringAttr(op.attributes["sym_name"]).value: op
            for op in ops
            if op.operation.name == "spirv.module"
        }
        for op in ops:
            if op.operation.name != "gpu.module":
                continue
            name = ir.StringAttr(op.attributes["sym_name"]).value
            funcs = list(op.regions[0].blocks[0].operations)
            spirv_modules[f"__spv__{name}"].move_before(funcs[0])
            for func in funcs:
                func.erase()
        passmanager.PassManager.parse("builtin.module(gpu-module-to-binary)").run(module.operation)
        binaries = {}
        for op in module.body.operations:
            if op.operation.name == "gpu.binary":
                name = ir.StringAttr(op.attributes["sym_name"]).value
                binaries[name] = bytes(gpu.ObjectAttr(ir.ArrayAttr(op.attributes["objects"])[0]).object)
    missing = set(kernel_modules) - set(binaries)
    if missing:
        raise PipelineError(f"no SPIR-V binary for kernels {sorted(missing)}")
    return binaries


def _integer_dot_products(spirv_module: ir.Operation) -> None:
    """Give the module's :data:`DOT4X8` (if any) the body ``OpSDot(a, b) + acc`` and declare the
    capabilities and extension that needs."""
    body = spirv_module.regions[0].blocks[0]
    function = next(
        (op for op in body.operations if op.operation.name == "spirv.func"
         and ir.StringAttr(op.attributes["sym_name"]).value == DOT4X8),
        None,
    )
    if function is None:
        return
    entry = function.regions[0].blocks[0]
    for op in reversed(list(entry.operations)):
        op.erase()
    a, b, acc = entry.arguments
    i32 = ir.IntegerType.get_signless(32)
    packed = ir.Attribute.parse("#spirv.packed_vector_format<PackedVectorFormat4x8Bit>")
    with ir.InsertionPoint(entry), function.location:
        dot = ir.Operation.create("spirv.SDot", results=[i32], operands=[a, b], attributes={"format": packed})
        total = ir.Operation.create("spirv.IAdd", results=[i32], operands=[dot.result, acc])
        ir.Operation.create("spirv.ReturnValue", operands=[total.result])
    requirements = str(spirv_module.attributes["vce_triple"])
    match = re.fullmatch(r"#spirv\.vce<(v[\d.]+), \[(.*)\], \[(.*)\]>", requirements)
    if match is None:
        raise PipelineError(f"unexpected SPIR-V requirements {requirements}")
    version, capabilities, extensions = match.group(1), match.group(2).split(", "), match.group(3).split(", ")
    capabilities += [c for c in DOT_CAPABILITIES if c not in capabilities]
    extensions = [e for e in extensions if e] + ([DOT_EXTENSION] if DOT_EXTENSION not in extensions else [])
    spirv_module.attributes["vce_triple"] = ir.Attribute.parse(
        f"#spirv.vce<{version}, [{', '.join(capabilities)}], [{', '.join(extensions)}]>"
    )


def write_artifact(gpu_program: GpuProgram, binaries: dict[str, bytes], path: str) -> None:
    """Write the artifact atomically (a partial file never appears at ``path``)."""
    blob = io.BytesIO()
    buffers = list(gpu_program.program.buffers)
    for i, data in gpu_program.weights.items():
        blob.write(b"\0" * (-blob.tell() % WEIGHT_ALIGNMENT))
        buffers[i] = Buffer(buffers[i].bytes, "weights", blob.tell())
        blob.write(data.tobytes())
    program = gpu_program.program
    manifest = replace(program, buffers=buffers).manifest()
    with atomic_output(path) as partial, zipfile.ZipFile(
        partial, "w", compression=zipfile.ZIP_STORED, allowZip64=True
    ) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
        for kernel in program.kernels.values():
            archive.writestr(kernel.module, binaries[kernel.name])
        archive.writestr(WEIGHTS, blob.getbuffer())


def emit_spirv_artifact(
    module: ir.Module, function: str, output: str, step: Callable[[str], None], precision: str = "fp32"
) -> GpuProgram:
    """The forward function of ``module`` (after the GPU passes, built in ``precision``) as a
    SPIR-V artifact at ``output``."""
    gpu_program = build_program(module, function)
    gpu_program.program = replace(gpu_program.program, precision=precision)
    step("spir-v")
    binaries = kernels_to_spirv(gpu_program.kernel_modules)
    step("write")
    write_artifact(gpu_program, binaries, output)
    return gpu_program


def spirv_pipeline(group_shape: tuple[int, int] | None, precision: str = "fp32") -> str:
    """Recognize and pack the sparse convolutions for GPU kernels (int8: the channels between two
    convs padded to whole quads, which int8 kernels read; the FC layers of the scheme with int8
    weights); named ops to generics."""
    option = f"{{group-shape={format_group_shape(group_shape)}}}" if group_shape else ""
    return ", ".join(
        [
            f"rt3d-recognize-kgs{option}",
            *([f"rt3d-pad-channels{{vector-width={INT8_QUAD}}}"] if precision == "int8" else []),
            "rt3d-pack-kernel-groups{target=spirv}",
            f"rt3d-gpu-matmul{{precision={precision}}}",
            "canonicalize",
            "cse",
            "linalg-generalize-named-ops",
        ]
    )


def gpu_kernels(precision: str = "fp32") -> str:
    """The GPU kernel passes (``precision``: fp16 keeps the activations between convs in f16)."""
    conv = f"rt3d-gpu-conv{{precision={precision}}}"
    return f"rt3d-expand-erf, {conv}, rt3d-gpu-copy, rt3d-gpu-generic, canonicalize"


class SpirvTarget(CompileTarget):
    """``spirv``: every layer a Vulkan compute kernel, one artifact (``docs/spirv_artifact.md``)."""

    name = "spirv"
    STEPS = ("sparse convolutions", "gpu kernels", "spir-v", "write")

    @contextlib.contextmanager
    def open(self, options: BuildOptions) -> Iterator[SpirvBuild]:
        if (
            options.cpu or options.reference_kernels or options.schedule or options.keep_intermediates
            or options.tune
        ):
            raise UnsupportedModelError(
                "--cpu, --schedule, --tune, --reference-kernels and --keep-intermediates apply to CPU "
                "targets, not to spirv"
            )
        if options.precision not in GPU_PRECISIONS:
            raise UnsupportedModelError(
                f"precision '{options.precision}' is not available on spirv: it computes in "
                f"{' or '.join(GPU_PRECISIONS)}"
            )
        yield SpirvBuild(options.precision)


class SpirvBuild(Build):
    function = ""

    def __init__(self, precision: str = "fp32") -> None:
        self.precision = precision

    def stages(self, function: str, group_shape: tuple[int, int] | None) -> list[Stage]:
        self.function = function
        sparse, kernels = spirv_pipeline(group_shape, self.precision), gpu_kernels(self.precision)
        return [
            ("sparse convolutions", lambda module: run_pipeline(module, f"builtin.module({sparse})")),
            ("gpu kernels", lambda module: run_pipeline(module, f"builtin.module({kernels})")),
        ]

    def emit(self, module: ir.Module, output: str, step: Callable[[str], None]) -> None:
        emit_spirv_artifact(module, self.function, output, step, self.precision)
