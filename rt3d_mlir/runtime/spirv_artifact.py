"""Reading and checking a SPIR-V artifact before anything is allocated or dispatched.

The format is ``docs/spirv_artifact.md`` (constants in
``rt3d_mlir.contracts.spirv_artifact``). Everything in the file is treated
as data until checked:

- no ZIP member is inflated past the size the format allows, and every
  member is read through a bounded stream (a member's header may lie);
- the manifest is checked against the format (types, ids, ranges);
- each kernel's SPIR-V module is parsed for what it really reads and
  writes: its entry point, its local workgroup size, and the byte size of
  every storage buffer it declares (``binding`` -> bytes). A dispatch must
  bind buffers at least that large, launch exactly the grid its kernel was
  generated for, and the input and output tensors must fill their
  buffers exactly.

A manifest edited to shrink a buffer, bind the wrong buffer, grow a grid or
misstate the output is refused with one line naming the problem. (A module
can still compute indices of its own; the Vulkan runtime turns on
``robustBufferAccess`` where the device offers it, see docs/security.md.)

Numpy only; no Vulkan.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

from rt3d_mlir.contracts.spirv_artifact import (
    FORMAT,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    MAX_MODULE_BYTES,
    MAX_MODULES_BYTES,
    WEIGHTS,
    Malformed,
    Program,
    parse_manifest,
)
from rt3d_mlir.errors import ArtifactError

ZIP_MAGIC = b"PK\x03\x04"
SPIRV_MAGIC = 0x07230203


# --------------------------------------------------------------------------- SPIR-V modules

# Opcodes and enumerants of the SPIR-V specification used below.
_OP_CAPABILITY = 17
_OP_ENTRY_POINT, _OP_EXECUTION_MODE, _OP_DECORATE, _OP_MEMBER_DECORATE = 15, 16, 71, 72
_OP_TYPE_INT, _OP_TYPE_FLOAT, _OP_TYPE_VECTOR = 21, 22, 23
_OP_TYPE_ARRAY, _OP_TYPE_RUNTIME_ARRAY, _OP_TYPE_STRUCT, _OP_TYPE_POINTER = 28, 29, 30, 32
_OP_CONSTANT, _OP_VARIABLE = 43, 59
_GL_COMPUTE, _LOCAL_SIZE = 5, 17
_DECORATION_ARRAY_STRIDE, _DECORATION_BINDING, _DECORATION_SET, _DECORATION_OFFSET = 6, 33, 34, 35
_STORAGE_BUFFER, _UNIFORM = 12, 2
_INTERESTING = {
    _OP_ENTRY_POINT, _OP_EXECUTION_MODE, _OP_DECORATE, _OP_MEMBER_DECORATE, _OP_TYPE_INT, _OP_TYPE_FLOAT,
    _OP_TYPE_VECTOR, _OP_TYPE_ARRAY, _OP_TYPE_RUNTIME_ARRAY, _OP_TYPE_POINTER, _OP_CONSTANT, _OP_VARIABLE,
    _OP_CAPABILITY,
}
# The capabilities a module may declare: the base of a Vulkan compute shader, and those of fp16 and
# int8 builds with the Vulkan device feature each needs (enabled by the runtime where the device has it)
BASE_CAPABILITIES = {0: "Matrix", 1: "Shader"}
FEATURE_CAPABILITIES = {
    9: ("Float16", "shaderFloat16"),
    4433: ("StorageBuffer16BitAccess", "storageBuffer16BitAccess"),
    6018: ("DotProductInput4x8BitPacked", "shaderIntegerDotProduct"),
    6019: ("DotProduct", "shaderIntegerDotProduct"),
}


@dataclass(frozen=True)
class ModuleInterface:
    entries: dict[str, tuple[int, int, int] | None]  # GLCompute entry point -> local size
    binding_bytes: dict[int, int]  # descriptor set 0 binding -> bytes the module declares
    features: frozenset[str] = frozenset()  # Vulkan device features its capabilities need


def module_interface(code: bytes, where: str) -> ModuleInterface:
    """Entry points, local sizes and storage-buffer sizes of a SPIR-V module (raises Malformed)."""
    if len(code) < 20 or len(code) % 4:
        raise Malformed(f"{where} is not a SPIR-V module ({len(code)} bytes)")
    words = np.frombuffer(code, dtype="<u4")
    if int(words[0]) != SPIRV_MAGIC:
        raise Malformed(f"{where} is not a SPIR-V module (bad magic number)")
    entry_ids: dict[int, str] = {}
    local_size: dict[int, tuple[int, int, int]] = {}
    decorations: dict[tuple[int, int], int] = {}  # (id, decoration) -> first literal
    member_offset: dict[int, int] = {}  # struct id -> offset of member 0
    types: dict[int, tuple] = {}
    constants: dict[int, int] = {}
    variables: list[tuple[int, int, int]] = []  # (id, pointer type, storage class)
    features: set[str] = set()
    i = 5
    while i < len(words):
        count, opcode = int(words[i]) >> 16, int(words[i]) & 0xFFFF
        if count == 0 or i + count > len(words):
            raise Malformed(f"{where} is a truncated SPIR-V module")
        op = [int(w) for w in words[i + 1 : i + min(count, 8)]] if opcode in _INTERESTING else None
        if opcode == _OP_CAPABILITY and op is not None and op:
            if op[0] in FEATURE_CAPABILITIES:
                features.add(FEATURE_CAPABILITIES[op[0]][1])
            elif op[0] not in BASE_CAPABILITIES:
                raise Malformed(f"{where} declares SPIR-V capability {op[0]}, which this runtime cannot use")
        elif opcode == _OP_ENTRY_POINT and count >= 4 and op is not None and op[0] == _GL_COMPUTE:
            name = words[i + 3 : i + count].tobytes().split(b"\0")[0].decode(errors="replace")
            entry_ids[op[1]] = name
        elif opcode == _OP_EXECUTION_MODE and op is not None and len(op) >= 5 and op[1] == _LOCAL_SIZE:
            local_size[op[0]] = (op[2], op[3], op[4])
        elif opcode == _OP_DECORATE and op is not None and len(op) >= 2:
            decorations[(op[0], op[1])] = op[2] if len(op) > 2 else 0
        elif opcode == _OP_MEMBER_DECORATE and op is not None and len(op) >= 4:
            if op[1] == 0 and op[2] == _DECORATION_OFFSET:
                member_offset[op[0]] = op[3]
        elif opcode in (_OP_TYPE_INT, _OP_TYPE_FLOAT) and op is not None and len(op) >= 2:
            types[op[0]] = ("scalar", op[1] // 8)
        elif opcode == _OP_TYPE_VECTOR and op is not None and len(op) >= 3:
            types[op[0]] = ("vector", op[1], op[2])
        elif opcode == _OP_TYPE_ARRAY and op is not None and len(op) >= 3:
            types[op[0]] = ("array", op[1], op[2])
        elif opcode == _OP_TYPE_RUNTIME_ARRAY and op is not None and len(op) >= 2:
            types[op[0]] = ("runtime_array", op[1])
        elif opcode == _OP_TYPE_STRUCT and count >= 2:
            types[int(words[i + 1])] = ("struct", [int(w) for w in words[i + 2 : i + count]])
        elif opcode == _OP_TYPE_POINTER and op is not None and len(op) >= 3:
            types[op[0]] = ("pointer", op[1], op[2])
        elif opcode == _OP_CONSTANT and op is not None and len(op) >= 3:
            constants[op[1]] = op[2]
        elif opcode == _OP_VARIABLE and op is not None and len(op) >= 3:
            variables.append((op[1], op[0], op[2]))
        i += count
    binding_bytes: dict[int, int] = {}
    for var, pointer, storage in variables:
        if storage not in (_STORAGE_BUFFER, _UNIFORM):
            continue
        binding = decorations.get((var, _DECORATION_BINDING))
        if binding is None:
            continue
        if decorations.get((var, _DECORATION_SET), 0) != 0:
            raise Malformed(f"{where} binds a buffer in descriptor set {decorations[(var, _DECORATION_SET)]}")
        size = _buffer_bytes(types, constants, decorations, member_offset, pointer, where)
        binding_bytes[binding] = max(size, binding_bytes.get(binding, 0))
    entries = {name: local_size.get(entry) for entry, name in entry_ids.items()}
    return ModuleInterface(entries, binding_bytes, frozenset(features))


def _buffer_bytes(types, constants, decorations, member_offset, pointer: int, where: str) -> int:
    """Bytes a storage buffer variable of pointer type ``pointer`` covers."""
    pointee = types.get(pointer)
    if not pointee or pointee[0] != "pointer":
        raise Malformed(f"{where} declares a buffer of an unknown type")
    struct_id = pointee[2]
    struct_type = types.get(struct_id)
    if not struct_type or struct_type[0] != "struct" or not struct_type[1]:
        raise Malformed(f"{where} declares a buffer that is not a block")
    member = types.get(struct_type[1][0])
    base = member_offset.get(struct_id, 0)
    if member is None:
        raise Malformed(f"{where} declares a buffer of an unknown member type")
    if member[0] == "runtime_array":
        raise Malformed(f"{where} declares an unsized buffer; this runtime needs every size in the module")
    if member[0] == "array":
        length = constants.get(member[2])
        stride = decorations.get((struct_type[1][0], _DECORATION_ARRAY_STRIDE))
        if length is None or stride is None:
            raise Malformed(f"{where} declares an array buffer without a constant length and stride")
        return base + length * stride
    return base + _scalar_bytes(types, member, where)


def _scalar_bytes(types, member: tuple, where: str) -> int:
    if member[0] == "scalar":
        return int(member[1])
    if member[0] == "vector":
        element = types.get(member[1])
        if element and element[0] == "scalar":
            return int(element[1]) * int(member[2])
    raise Malformed(f"{where} declares a buffer member this runtime cannot size")


def check_program_against_modules(program: Program, interfaces: dict[str, ModuleInterface]) -> None:
    """Every kernel's module agrees with its manifest entry; every dispatch binds large enough buffers."""
    for kernel in program.kernels.values():
        interface = interfaces[kernel.name]
        if kernel.entry not in interface.entries:
            found = ", ".join(sorted(interface.entries)) or "none"
            raise Malformed(f"{kernel.module} has no GLCompute entry point '{kernel.entry}' (it has {found})")
        size = interface.entries[kernel.entry]
        if size is not None and size != kernel.workgroup_size:
            raise Malformed(
                f"kernel '{kernel.name}' runs {size} invocations per workgroup, not {kernel.workgroup_size}"
            )
        if interface.binding_bytes and max(interface.binding_bytes) >= kernel.bindings:
            raise Malformed(
                f"{kernel.module} uses binding {max(interface.binding_bytes)}, but kernel '{kernel.name}' "
                f"declares {kernel.bindings} bindings"
            )
    for i, dispatch in enumerate(program.dispatches):
        interface = interfaces[dispatch.kernel]
        for binding, need in sorted(interface.binding_bytes.items()):
            buffer = dispatch.buffers[binding]
            have = program.buffers[buffer].bytes
            if have < need:
                raise Malformed(
                    f"dispatches[{i}] ('{dispatch.label}') binds buffer {buffer} of {have} bytes to binding "
                    f"{binding}, where kernel '{dispatch.kernel}' accesses {need} bytes"
                )


# --------------------------------------------------------------------------- the ZIP file


def _bounded_read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, refusing to inflate more than ``limit``."""
    if info.file_size > limit:
        raise Malformed(f"{info.filename} claims {info.file_size} bytes, more than the {limit} allowed")
    with archive.open(info) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise Malformed(f"{info.filename} inflates past {limit} bytes")
    return data


def _stored_entry(path: str, info: zipfile.ZipInfo) -> np.ndarray | None:
    """A read-only memory map of a stored (uncompressed) ZIP entry, or None if compressed."""
    if info.compress_type != zipfile.ZIP_STORED or info.file_size == 0:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    if len(header) < 30 or header[:4] != ZIP_MAGIC:
        raise Malformed(f"the ZIP header of {info.filename} is corrupt")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    if start + info.file_size > os.path.getsize(path):
        raise Malformed(f"{info.filename} is truncated")
    return np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(info.file_size,))


@dataclass(frozen=True)
class SpirvArtifact:
    program: Program  # checked against the modules
    modules: dict[str, bytes]  # kernel name -> its SPIR-V
    weights: np.ndarray  # weights.bin (maybe a memory map)
    features: frozenset[str]  # the Vulkan device features the modules' capabilities need


def read_artifact(path: str) -> SpirvArtifact:
    """The checked program, each kernel's SPIR-V bytes, weights.bin and the device features."""
    if not os.path.exists(path):
        raise ArtifactError(f"artifact '{path}' does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                manifest_info = zf.getinfo(MANIFEST)
            except KeyError:
                raise Malformed(f"it has no {MANIFEST}") from None
            try:
                manifest = json.loads(_bounded_read(zf, manifest_info, MAX_MANIFEST_BYTES))
            except (ValueError, UnicodeDecodeError) as err:
                raise Malformed(f"{MANIFEST} is not valid JSON: {err}") from None
            names = set(zf.namelist())
            weights_info = zf.getinfo(WEIGHTS) if WEIGHTS in names else None
            program = parse_manifest(manifest, None if weights_info is None else weights_info.file_size)
            modules: dict[str, bytes] = {}
            interfaces: dict[str, ModuleInterface] = {}
            total = 0
            for kernel in program.kernels.values():
                if kernel.module not in names:
                    raise Malformed(f"kernel '{kernel.name}' needs {kernel.module}, which the artifact lacks")
                modules[kernel.name] = _bounded_read(zf, zf.getinfo(kernel.module), MAX_MODULE_BYTES)
                total += len(modules[kernel.name])
                if total > MAX_MODULES_BYTES:
                    raise Malformed(f"its kernel modules exceed {MAX_MODULES_BYTES} bytes together")
                interfaces[kernel.name] = module_interface(modules[kernel.name], kernel.module)
            check_program_against_modules(program, interfaces)
            weights = np.zeros(0, dtype=np.uint8)
            if weights_info is not None:
                mapped = _stored_entry(path, weights_info)
                if mapped is not None:
                    weights = mapped
                else:
                    needed = max(
                        (b.offset + b.bytes for b in program.buffers if b.init == "weights"), default=0
                    )
                    # the writer aligns every constant; allow that slack and no more
                    data = _bounded_read(zf, weights_info, needed + 4096)
                    weights = np.frombuffer(data, np.uint8)
    except Malformed as err:
        raise ArtifactError(f"'{path}' is not a valid SPIR-V artifact: {err}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as err:
        raise ArtifactError(f"cannot read '{path}' as a SPIR-V artifact (a ZIP archive): {err}") from None
    except RuntimeError as err:  # zipfile: a member is encrypted
        raise ArtifactError(f"cannot read '{path}' as a SPIR-V artifact (a ZIP archive): {err}") from None
    features = frozenset().union(*(interface.features for interface in interfaces.values()))
    return SpirvArtifact(program, modules, weights, features)


def is_zip(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts like a ZIP archive (a SPIR-V artifact, unchecked)."""
    with open(path, "rb") as f:
        return f.read(4) == ZIP_MAGIC


def is_spirv_artifact(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a ZIP whose manifest.json says ``"format": "rt3d-spirv"``."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != ZIP_MAGIC:
                return False
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(_bounded_read(zf, zf.getinfo(MANIFEST), MAX_MANIFEST_BYTES))
            return isinstance(manifest, dict) and manifest.get("format") == FORMAT
    except (OSError, KeyError, ValueError, AttributeError, RuntimeError, zipfile.BadZipFile, Malformed):
        return False
