"""GPU kernels (``gpu`` dialect text) to Vulkan SPIR-V binaries, and the artifact file.

Lowering, with the MLIR bundled in torch-mlir (see DESIGN.md):
``spirv-attach-target`` (SPIR-V 1.3, ``Shader``, storage-buffer class),
``convert-gpu-to-spirv``, then ABI lowering and VCE update inside each
``spirv.module``. For Vulkan the ``spirv.module`` must sit inside its
``gpu.module`` before ``gpu-module-to-binary`` serializes it, so the
``gpu.func`` is dropped and the ``spirv.module`` moved in. The bytes are
exactly what the Vulkan runtime hands to ``vkCreateShaderModule``.

The artifact is a ZIP file (see docs/spirv_artifact.md).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping

import numpy as np
from torch_mlir import ir, passmanager
from torch_mlir.dialects import gpu

from rt3d_mlir.backend.spirv_kernels import WORKGROUP, Kernel
from rt3d_mlir.backend.spirv_program import WEIGHT_ALIGNMENT, SpirvProgram, build_program
from rt3d_mlir.contracts.spirv_artifact import (
    FORMAT,
    FORMAT_VERSION,
    KERNEL_DIRECTORY,
    MANIFEST,
    TARGET_ENV,
    WEIGHTS,
)
from rt3d_mlir.errors import PipelineError
from rt3d_mlir.fileio import atomic_output

TO_SPIRV = (
    "builtin.module(canonicalize, cse, "
    "spirv-attach-target{ver=v1.3 caps=Shader exts=SPV_KHR_storage_buffer_storage_class}, "
    "gpu.module(convert-math-to-spirv), convert-gpu-to-spirv, "
    "spirv.module(spirv-lower-abi-attrs, spirv-update-vce, canonicalize))"
)


def kernels_to_spirv(kernels: Mapping[str, Kernel]) -> dict[str, bytes]:
    """One SPIR-V binary per kernel, keyed by kernel name."""
    text = (
        "module attributes {gpu.container_module} {\n" + "\n".join(k.text for k in kernels.values()) + "\n}"
    )
    with ir.Context():
        try:
            module = ir.Module.parse(text)
            passmanager.PassManager.parse(TO_SPIRV).run(module.operation)
        except Exception as err:  # MLIRError: the message holds the diagnostics
            raise PipelineError(
                f"lowering the GPU kernels to SPIR-V failed: {str(err).strip()[:2000]}"
            ) from None
        ops = list(module.body.operations)
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
    missing = set(kernels) - set(binaries)
    if missing:
        raise PipelineError(f"no SPIR-V binary for kernels {sorted(missing)}")
    return binaries


def manifest(program: SpirvProgram, weight_offsets: Mapping[int, int]) -> dict:
    buffers = []
    for i, buffer in enumerate(program.buffers):
        entry: dict = {"bytes": buffer.bytes, "init": buffer.init}
        if buffer.init == "weights":
            entry["offset"] = weight_offsets[i]
        buffers.append(entry)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "target_env": TARGET_ENV,
        "input": {"buffer": program.input_buffer, "shape": list(program.input_shape), "dtype": "float32"},
        "output": {"buffer": program.output_buffer, "shape": list(program.output_shape), "dtype": "float32"},
        "buffers": buffers,
        "kernels": [
            {
                "name": k.name,
                "module": f"{KERNEL_DIRECTORY}{k.name}.spv",
                "entry": k.name,
                "bindings": len(k.bindings),
                "workgroup_size": [WORKGROUP, 1, 1],
                "groups": list(k.groups),
            }
            for k in program.kernels.values()
        ],
        "dispatches": [
            {
                "kernel": d.kernel,
                "buffers": d.buffers,
                "groups": list(d.groups),
                "label": d.label,
                "flops": d.flops,
                "dense_flops": d.dense_flops,
            }
            for d in program.dispatches
        ],
        "flops": program.flops,
        "dense_flops": program.dense_flops,
    }


def write_artifact(program: SpirvProgram, binaries: Mapping[str, bytes], path: str) -> None:
    """Write the artifact atomically (a partial file never appears at ``path``)."""
    weights = io.BytesIO()
    offsets: dict[int, int] = {}
    for i, buffer in enumerate(program.buffers):
        if buffer.init != "weights":
            continue
        assert buffer.data is not None
        pad = -weights.tell() % WEIGHT_ALIGNMENT
        weights.write(b"\0" * pad)
        offsets[i] = weights.tell()
        weights.write(np.ascontiguousarray(buffer.data).tobytes())
    with atomic_output(path) as partial, zipfile.ZipFile(
        partial, "w", compression=zipfile.ZIP_STORED, allowZip64=True
    ) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest(program, offsets), indent=1))
        for name, data in binaries.items():
            archive.writestr(f"{KERNEL_DIRECTORY}{name}.spv", data)
        archive.writestr(WEIGHTS, weights.getbuffer())


def build_spirv_artifact(module: ir.Module, function: str, output: str, progress=None) -> SpirvProgram:
    """The forward function of ``module`` (after the sparse-convolution passes) as a SPIR-V artifact."""
    step = progress or (lambda _msg: None)
    step("gpu kernels")
    program = build_program(module, function)
    step("spir-v")
    binaries = kernels_to_spirv(program.kernels)
    step("write")
    write_artifact(program, binaries, output)
    return program
