"""Load and call a compiled artifact through its C ABI (numpy only, no compiler).

See ``rt3d_mlir.backend.abi`` for the ABI. Calls release the GIL (ctypes),
so several Python threads can run inferences at once.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import tempfile
import threading
from dataclasses import dataclass

import numpy as np

from rt3d_mlir.contracts.shared_object import (
    ABI_VERSION,
    EXPORTED_SYMBOLS,
    INFO_FORMAT,
    INFO_SECTION,
)
from rt3d_mlir.errors import ArtifactError
from rt3d_mlir.runtime.arrays import checked_input, checked_threads, output_array
from rt3d_mlir.runtime.elf import ELF_MACHINES, cpu_features, is_elf, read_elf
from rt3d_mlir.runtime.profile import KernelProfile


class CompiledModel:
    """A compiled model: call it with a float32 array of ``input_shape``."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        self.path = os.fspath(path)
        info = verify_artifact(self.path)
        if info.machine != platform.machine():
            raise ArtifactError(
                f"'{self.path}' was built for {info.machine}, not for this {platform.machine()}"
            )
        self.info = info  # target, CPU, features, precision
        self._lib = _dlopen(self.path)
        lib = self._lib
        try:
            lib.rt3d_abi_version.restype = ctypes.c_uint32
            lib.rt3d_target.restype = ctypes.c_char_p
            for name in ("rt3d_input_rank", "rt3d_output_rank"):
                getattr(lib, name).restype = ctypes.c_int32
            for name in ("rt3d_input_shape", "rt3d_output_shape"):
                getattr(lib, name).restype = ctypes.POINTER(ctypes.c_int64)
            lib.rt3d_forward.restype = ctypes.c_int32
            lib.rt3d_forward.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.rt3d_set_num_threads.restype = ctypes.c_int32
            lib.rt3d_set_num_threads.argtypes = [ctypes.c_int32]
            lib.rt3d_num_threads.restype = ctypes.c_int32
            lib.rt3d_set_profiling.argtypes = [ctypes.c_int32]
            lib.rt3d_profile_entries.restype = ctypes.c_int32
            lib.rt3d_profile_name.restype = ctypes.c_char_p
            lib.rt3d_profile_name.argtypes = [ctypes.c_int32]
            lib.rt3d_profile_seconds.restype = ctypes.c_double
            lib.rt3d_profile_seconds.argtypes = [ctypes.c_int32]
            lib.rt3d_profile_calls.restype = ctypes.c_int64
            lib.rt3d_profile_calls.argtypes = [ctypes.c_int32]
            for name in ("rt3d_profile_flops", "rt3d_profile_dense_flops", "rt3d_profile_bytes"):
                getattr(lib, name).restype = ctypes.c_double
                getattr(lib, name).argtypes = [ctypes.c_int32]
        except AttributeError as err:
            raise ArtifactError(f"'{self.path}' is not an rt3d artifact: {err}") from None
        self.target = lib.rt3d_target().decode()
        self.input_shape = _shape(lib.rt3d_input_shape(), lib.rt3d_input_rank())
        self.output_shape = _shape(lib.rt3d_output_shape(), lib.rt3d_output_rank())
        # The loader maps a file once per process: models loaded from one file share its library
        # and its thread count, so each model applies its own count at each call.
        self._threads: int | None = None
        if threads is not None:
            self.threads = threads

    @property
    def threads(self) -> int:
        """Threads each kernel runs on (``RT3D_NUM_THREADS`` or the CPU count by default)."""
        if self._threads is not None:
            return self._threads
        return int(self._lib.rt3d_num_threads())

    @threads.setter
    def threads(self, count: int) -> None:
        self._threads = checked_threads(count)
        self._lib.rt3d_set_num_threads(self._threads)

    def set_profiling(self, on: bool) -> None:
        """Start (and zero) or stop timing each generated kernel's calls."""
        self._lib.rt3d_set_profiling(1 if on else 0)

    def kernel_profile(self) -> list[KernelProfile]:
        """Per kernel call site (in call order): time and calls since profiling was turned on."""
        lib = self._lib
        return [
            KernelProfile(
                name=lib.rt3d_profile_name(i).decode(),
                seconds=float(lib.rt3d_profile_seconds(i)),
                calls=int(lib.rt3d_profile_calls(i)),
                flops=float(lib.rt3d_profile_flops(i)),
                dense_flops=float(lib.rt3d_profile_dense_flops(i)),
                bytes=float(lib.rt3d_profile_bytes(i)),
            )
            for i in range(lib.rt3d_profile_entries())
        ]

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Run the model on ``x``; write into ``out`` (float32, C-contiguous) if given."""
        x = np.ascontiguousarray(checked_input(x, self.input_shape), dtype=np.float32)
        y = output_array(out, self.output_shape)
        if self._threads is not None:
            self._lib.rt3d_set_num_threads(self._threads)
        status = self._lib.rt3d_forward(x.ctypes.data, y.ctypes.data)
        if status != 0:
            raise ArtifactError(f"'{self.path}': rt3d_forward failed with status {status}")
        return y

    def __repr__(self) -> str:
        return (
            f"CompiledModel('{self.path}', target={self.target}, "
            f"input_shape={self.input_shape}, output_shape={self.output_shape})"
        )


_LOADED_PATHS: dict[str, tuple[int, int]] = {}  # absolute path -> (device, inode) dlopen'ed there
_LOADED_FILES: dict[tuple[int, int], tuple[int, int]] = {}  # (device, inode) -> (mtime ns, size) then
_LOADED_LOCK = threading.Lock()


def _dlopen(path: str) -> ctypes.CDLL:
    """``dlopen`` an artifact, never getting back a stale library for a rebuilt file.

    The dynamic loader hands back a library already loaded under the same
    name, or from a file with the same device and inode, so in one process a
    recompiled artifact would silently run the old code. A file rebuilt at a
    path loaded before is opened through a uniquely named symlink (the loader
    then maps it by its new inode); a file whose inode number was reused by a
    rebuild is copied to a fresh file first.
    """
    absolute = os.path.abspath(path)
    info = os.stat(absolute)
    identity, version = (info.st_dev, info.st_ino), (info.st_mtime_ns, info.st_size)
    with _LOADED_LOCK, tempfile.TemporaryDirectory(prefix="rt3d-load-") as directory:
        alias = os.path.join(directory, os.path.basename(absolute))
        try:
            if _LOADED_FILES.get(identity, version) != version:
                shutil.copyfile(absolute, alias)  # the loader would match the old file's inode
                identity = (os.stat(alias).st_dev, os.stat(alias).st_ino)
                target = alias
            elif _LOADED_PATHS.get(absolute, identity) != identity:
                os.symlink(absolute, alias)  # the loader would match the old library's name
                target = alias
            else:
                target = absolute
            lib = ctypes.CDLL(target, mode=ctypes.RTLD_LOCAL)
        except OSError as err:
            raise ArtifactError(f"cannot load '{path}': {err.strerror or err}") from None
        _LOADED_PATHS[absolute] = identity
        _LOADED_FILES[identity] = version
    return lib


def _shape(pointer, rank: int) -> tuple[int, ...]:
    return tuple(int(pointer[i]) for i in range(rank))


@dataclass(frozen=True)
class ArtifactInfo:
    machine: str
    target: str
    cpu: str
    features: tuple[str, ...]
    precision: str = "fp32"  # of the activations between convolutions and their weights


def verify_artifact(path: str) -> ArtifactInfo:
    """Check a shared-object artifact before anything maps it (see :mod:`rt3d_mlir.runtime.elf`).

    It must be a complete ELF shared object for a known machine that exports
    the rt3d ABI and carries an info section of this ABI version; when built
    for this machine's architecture, this CPU must have every instruction-set
    extension the code was compiled for.
    """
    if not os.path.exists(path):
        raise ArtifactError(f"artifact '{path}' does not exist")
    if not os.path.isfile(path):
        raise ArtifactError(f"'{path}' is not a regular file")
    if not is_elf(path):
        raise ArtifactError(
            f"'{path}' is not a compiled rt3d artifact (neither an ELF shared object nor a SPIR-V ZIP)"
        )
    elf = read_elf(path)
    if elf.machine not in ELF_MACHINES.values():
        raise ArtifactError(f"'{path}' was built for {elf.machine}, which this runtime cannot run")
    missing = [name for name in EXPORTED_SYMBOLS if name not in elf.exported]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ArtifactError(f"'{path}' is not an rt3d artifact: it does not export {missing[0]}{more}")
    info = elf.info
    if info is None or info.get("format") != INFO_FORMAT:
        raise ArtifactError(
            f"'{path}' is not an rt3d artifact of this version: it has no {INFO_SECTION} record"
        )
    if info.get("abi") != ABI_VERSION:
        raise ArtifactError(
            f"'{path}' uses artifact ABI version {info.get('abi')}; this runtime reads {ABI_VERSION}"
        )
    features = info.get("features")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise ArtifactError(f"'{path}': its {INFO_SECTION} record has no valid feature list")
    precision = info.get("precision", "fp32")
    if not isinstance(precision, str):
        raise ArtifactError(f"'{path}': its {INFO_SECTION} record has no valid precision")
    result = ArtifactInfo(
        elf.machine, str(info.get("target")), str(info.get("cpu")), tuple(features), precision
    )
    if elf.machine == platform.machine():
        have = cpu_features()
        lacking = sorted(set(features) - have) if have is not None else []
        if lacking:
            raise ArtifactError(
                f"'{path}' was compiled for CPU '{result.cpu}' and uses {', '.join(lacking)}, which this "
                "CPU lacks; compile it again with --cpu native (or the CPU it is to run on)"
            )
    return result
