"""The SPIR-V artifact (``rt3d-compile --target spirv``): its constants and its manifest.

The format is described in ``docs/spirv_artifact.md``. The manifest is
:class:`Program`: the backend builds one and writes ``Program.manifest()``;
a reader checks a manifest against the format with :func:`parse_manifest`
(and the Vulkan runtime then checks it against the kernels' SPIR-V,
``rt3d_mlir.runtime.spirv_artifact``). Standard library and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rt3d_mlir.kernel_packing import GPU_PRECISIONS

FORMAT = "rt3d-spirv"
FORMAT_VERSION = 2
TARGET_ENV = "vulkan1.1"  # what the backend emits
TARGET_ENVS = {"vulkan1.0": (1, 0), "vulkan1.1": (1, 1)}  # what a runtime accepts
INIT_KINDS = ("none", "weights", "zero")
# the manifest's "precision" is one of kernel_packing.GPU_PRECISIONS (rt3d-compile --precision);
# a manifest without it is fp32
MANIFEST = "manifest.json"
WEIGHTS = "weights.bin"
KERNEL_DIRECTORY = "kernels/"

# Sizes a reader accepts before inflating anything (a ZIP member can claim any size).
MAX_MANIFEST_BYTES = 64 << 20
MAX_MODULE_BYTES = 16 << 20
MAX_MODULES_BYTES = 256 << 20


class Malformed(Exception):
    """A problem in an artifact's contents (a reader turns it into an ArtifactError with the path)."""


@dataclass(frozen=True)
class Buffer:
    bytes: int
    init: str = "none"
    offset: int = 0  # into weights.bin, for init == "weights"


@dataclass(frozen=True)
class Kernel:
    name: str
    module: str
    entry: str
    bindings: int
    workgroup_size: tuple[int, int, int]
    groups: tuple[int, int, int]  # the grid the kernel was generated for


@dataclass(frozen=True)
class Dispatch:
    kernel: str
    buffers: tuple[int, ...]
    groups: tuple[int, int, int]
    label: str
    flops: float
    dense_flops: float


@dataclass(frozen=True)
class Program:
    target_env: str
    input_buffer: int
    input_shape: tuple[int, ...]
    output_buffer: int
    output_shape: tuple[int, ...]
    buffers: list[Buffer]
    kernels: dict[str, Kernel]
    dispatches: list[Dispatch]
    flops: float = 0.0  # the whole program, kept weights
    dense_flops: float = 0.0
    precision: str = "fp32"

    def manifest(self) -> dict[str, Any]:
        """The manifest as a JSON object (what :func:`parse_manifest` reads back)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "target_env": self.target_env,
            "precision": self.precision,
            "input": {"buffer": self.input_buffer, "shape": list(self.input_shape), "dtype": "float32"},
            "output": {"buffer": self.output_buffer, "shape": list(self.output_shape), "dtype": "float32"},
            "buffers": [
                {"bytes": b.bytes, "init": b.init, **({"offset": b.offset} if b.init == "weights" else {})}
                for b in self.buffers
            ],
            "kernels": [
                {
                    "name": k.name,
                    "module": k.module,
                    "entry": k.entry,
                    "bindings": k.bindings,
                    "workgroup_size": list(k.workgroup_size),
                    "groups": list(k.groups),
                }
                for k in self.kernels.values()
            ],
            "dispatches": [
                {
                    "kernel": d.kernel,
                    "buffers": list(d.buffers),
                    "groups": list(d.groups),
                    "label": d.label,
                    "flops": d.flops,
                    "dense_flops": d.dense_flops,
                }
                for d in self.dispatches
            ],
            "flops": self.flops,
            "dense_flops": self.dense_flops,
        }


# --------------------------------------------------------------------------- manifest


def _get(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise Malformed(f"{where} must be a JSON object")
    if key not in obj:
        raise Malformed(f"{where} has no '{key}'")
    return obj[key]


def _int(value: Any, what: str, minimum: int = 0, maximum: int = (1 << 62)) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise Malformed(f"{what} must be an integer in [{minimum}, {maximum}], got {value!r}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Malformed(f"{what} must be a list, got {value!r}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise Malformed(f"{what} must be a non-empty string, got {value!r}")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise Malformed(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _triple(value: Any, what: str) -> tuple[int, int, int]:
    items = _list(value, what)
    if len(items) != 3:
        raise Malformed(f"{what} must be 3 integers, got {items!r}")
    x, y, z = (_int(v, what, 1, (1 << 31) - 1) for v in items)
    return x, y, z


def _tensor(manifest: dict[str, Any], key: str, buffers: list[Buffer]) -> tuple[int, tuple[int, ...]]:
    spec = _get(manifest, key, "the manifest")
    buffer = _int(_get(spec, "buffer", key), f"{key}.buffer")
    if buffer >= len(buffers):
        raise Malformed(f"{key}.buffer {buffer} is not one of the {len(buffers)} buffers")
    dims = _list(_get(spec, "shape", key), f"{key}.shape")
    if not 1 <= len(dims) <= 8:
        raise Malformed(f"{key}.shape must have 1 to 8 dimensions, got {dims!r}")
    shape = tuple(_int(d, f"{key}.shape", 1, (1 << 31) - 1) for d in dims)
    dtype = spec.get("dtype", "float32")
    if dtype != "float32":
        raise Malformed(f"{key}.dtype is '{dtype}'; this runtime reads float32 only")
    need = 4 * int(np.prod(shape, dtype=np.int64))
    if buffers[buffer].bytes != need:
        raise Malformed(
            f"{key} of shape {shape} is {need} bytes but buffer {buffer} has {buffers[buffer].bytes}"
        )
    return buffer, shape


def parse_manifest(manifest: Any, weights_size: int | None) -> Program:
    """Check the manifest against the format; ``weights_size`` is None without weights.bin."""
    fmt = _get(manifest, "format", "the manifest")
    if fmt != FORMAT:
        raise Malformed(f"manifest format is {fmt!r}, expected '{FORMAT}'")
    version = _get(manifest, "version", "the manifest")
    if version != FORMAT_VERSION:
        raise Malformed(f"manifest version is {version!r}; this runtime reads version {FORMAT_VERSION}")
    target_env = manifest.get("target_env", TARGET_ENV)
    if target_env not in TARGET_ENVS:
        raise Malformed(f"target_env {target_env!r} is not one of {', '.join(TARGET_ENVS)}")
    precision = manifest.get("precision", "fp32")
    if precision not in GPU_PRECISIONS:
        raise Malformed(f"precision {precision!r} is not one of {', '.join(GPU_PRECISIONS)}")

    buffers = []
    for i, spec in enumerate(_list(_get(manifest, "buffers", "the manifest"), "buffers")):
        where = f"buffers[{i}]"
        size = _int(_get(spec, "bytes", where), f"{where}.bytes", 4)
        if size % 4:
            raise Malformed(f"{where}.bytes must be a multiple of 4, got {size}")
        init = spec.get("init", "none")
        if init not in INIT_KINDS:
            raise Malformed(f"{where}.init is {init!r}, expected one of {', '.join(INIT_KINDS)}")
        offset = 0
        if init == "weights":
            offset = _int(_get(spec, "offset", where), f"{where}.offset")
            if weights_size is None:
                raise Malformed(f"{where} is initialised from weights, but the artifact has no weights.bin")
            if offset + size > weights_size:
                raise Malformed(
                    f"{where} reads weights.bin[{offset}:{offset + size}] past its end ({weights_size} bytes)"
                )
        buffers.append(Buffer(size, init, offset))

    kernels: dict[str, Kernel] = {}
    for i, spec in enumerate(_list(_get(manifest, "kernels", "the manifest"), "kernels")):
        where = f"kernels[{i}]"
        kernel = Kernel(
            name=_str(_get(spec, "name", where), f"{where}.name"),
            module=_str(_get(spec, "module", where), f"{where}.module"),
            entry=_str(_get(spec, "entry", where), f"{where}.entry"),
            bindings=_int(_get(spec, "bindings", where), f"{where}.bindings", 1, 1024),
            workgroup_size=_triple(_get(spec, "workgroup_size", where), f"{where}.workgroup_size"),
            groups=_triple(_get(spec, "groups", where), f"{where}.groups"),
        )
        if kernel.name in kernels:
            raise Malformed(f"kernel name '{kernel.name}' is used twice")
        kernels[kernel.name] = kernel

    dispatches = []
    for i, spec in enumerate(_list(_get(manifest, "dispatches", "the manifest"), "dispatches")):
        where = f"dispatches[{i}]"
        name = _get(spec, "kernel", where)
        if not isinstance(name, str) or name not in kernels:
            raise Malformed(f"{where} refers to unknown kernel {name!r}")
        ids = tuple(
            _int(b, f"{where}.buffers") for b in _list(_get(spec, "buffers", where), f"{where}.buffers")
        )
        for b in ids:
            if b >= len(buffers):
                raise Malformed(f"{where} refers to unknown buffer {b} (the manifest has {len(buffers)})")
        if len(ids) != kernels[name].bindings:
            raise Malformed(
                f"{where} binds {len(ids)} buffers, but kernel '{name}' has {kernels[name].bindings} bindings"
            )
        groups = _triple(_get(spec, "groups", where), f"{where}.groups")
        if groups != kernels[name].groups:
            raise Malformed(
                f"{where} launches a {groups} grid, but kernel '{name}' was built for {kernels[name].groups}"
            )
        label = spec.get("label") or name
        flops = _number(spec.get("flops", 0), f"{where}.flops")
        dense = _number(spec.get("dense_flops", flops), f"{where}.dense_flops")
        dispatches.append(Dispatch(name, ids, groups, str(label), flops, dense))
    if not dispatches:
        raise Malformed("the manifest has no dispatches")

    input_buffer, input_shape = _tensor(manifest, "input", buffers)
    output_buffer, output_shape = _tensor(manifest, "output", buffers)
    if buffers[input_buffer].init != "none":
        raise Malformed(f"the input buffer {input_buffer} must have init 'none'")
    return Program(
        target_env, input_buffer, input_shape, output_buffer, output_shape, buffers, kernels, dispatches,
        _number(manifest.get("flops", 0), "flops"), _number(manifest.get("dense_flops", 0), "dense_flops"),
        precision,
    )
