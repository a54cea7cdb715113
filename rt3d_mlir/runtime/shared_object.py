"""Load and call a compiled artifact through its C ABI (numpy only, no compiler).

See ``rt3d_mlir.backend.abi`` for the ABI. Calls release the GIL (ctypes),
so several Python threads can run inferences at once.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from rt3d_mlir.errors import ArtifactError
from rt3d_mlir.runtime.arrays import checked_input, output_array
from rt3d_mlir.runtime.emulated import EmulatedModel, elf_machine

if TYPE_CHECKING:
    from rt3d_mlir.runtime.vulkan import VulkanModel

ABI_VERSION = 2
_ELF_MAGIC = b"\x7fELF"
_ZIP_MAGIC = b"PK\x03\x04"  # a SPIR-V artifact


class KernelProfile(NamedTuple):
    name: str
    seconds: float  # summed over calls
    calls: int
    flops: float  # per call, with the kept weights (2 x multiply-adds)
    dense_flops: float  # per call, had the layer been dense

    @property
    def gflops_per_second(self) -> float:
        """Achieved rate on kept FLOPs."""
        return self.flops * self.calls / self.seconds / 1e9 if self.seconds > 0 else 0.0


class CompiledModel:
    """A compiled model: call it with a float32 array of ``input_shape``."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        self.path = os.fspath(path)
        _check_file(self.path)
        try:
            self._lib = ctypes.CDLL(os.path.abspath(self.path), mode=ctypes.RTLD_LOCAL)
        except OSError as err:
            raise ArtifactError(f"cannot load '{self.path}': {err}") from None
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
            for name in ("rt3d_profile_flops", "rt3d_profile_dense_flops"):
                getattr(lib, name).restype = ctypes.c_double
                getattr(lib, name).argtypes = [ctypes.c_int32]
        except AttributeError as err:
            raise ArtifactError(f"'{self.path}' is not an rt3d artifact: {err}") from None
        version = lib.rt3d_abi_version()
        if version != ABI_VERSION:
            raise ArtifactError(
                f"'{self.path}' uses artifact ABI version {version}; this runtime reads {ABI_VERSION}"
            )
        self.target = lib.rt3d_target().decode()
        self.input_shape = _shape(lib.rt3d_input_shape(), lib.rt3d_input_rank())
        self.output_shape = _shape(lib.rt3d_output_shape(), lib.rt3d_output_rank())
        if threads is not None:
            self.threads = threads

    @property
    def threads(self) -> int:
        """Threads each kernel runs on (``RT3D_NUM_THREADS`` or the CPU count by default)."""
        return int(self._lib.rt3d_num_threads())

    @threads.setter
    def threads(self, count: int) -> None:
        if int(count) < 1:
            raise ArtifactError(f"the thread count must be at least 1, got {count}")
        self._lib.rt3d_set_num_threads(int(count))

    def set_profiling(self, on: bool) -> None:
        """Start (and zero) or stop timing each generated kernel's calls."""
        self._lib.rt3d_set_profiling(1 if on else 0)

    def kernel_profile(self) -> list[KernelProfile]:
        """Per generated kernel (in call order): time and calls since profiling was turned on."""
        lib = self._lib
        return [
            KernelProfile(
                name=lib.rt3d_profile_name(i).decode(),
                seconds=float(lib.rt3d_profile_seconds(i)),
                calls=int(lib.rt3d_profile_calls(i)),
                flops=float(lib.rt3d_profile_flops(i)),
                dense_flops=float(lib.rt3d_profile_dense_flops(i)),
            )
            for i in range(lib.rt3d_profile_entries())
        ]

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Run the model on ``x``; write into ``out`` (float32, C-contiguous) if given."""
        x = np.ascontiguousarray(checked_input(x, self.input_shape), dtype=np.float32)
        y = output_array(out, self.output_shape)
        status = self._lib.rt3d_forward(x.ctypes.data, y.ctypes.data)
        if status != 0:
            raise ArtifactError(f"'{self.path}': rt3d_forward failed with status {status}")
        return y

    def __repr__(self) -> str:
        return (
            f"CompiledModel('{self.path}', target={self.target}, "
            f"input_shape={self.input_shape}, output_shape={self.output_shape})"
        )


def _shape(pointer, rank: int) -> tuple[int, ...]:
    return tuple(int(pointer[i]) for i in range(rank))


def _magic(path: str) -> bytes:
    if not os.path.exists(path):
        raise ArtifactError(f"artifact '{path}' does not exist")
    with open(path, "rb") as f:
        return f.read(4)


def _check_file(path: str) -> None:
    if _magic(path) != _ELF_MAGIC:
        raise ArtifactError(
            f"'{path}' is not a compiled rt3d artifact (neither an ELF shared object nor a SPIR-V ZIP)"
        )


def load(
    path: str | os.PathLike[str], threads: int | None = None, device: int | str | None = None
) -> CompiledModel | EmulatedModel | VulkanModel:
    """Load a compiled artifact; the result maps a numpy input to a numpy output.

    ``threads`` sets how many threads its kernels use (default: the
    ``RT3D_NUM_THREADS`` environment variable, else all CPUs). The setting
    belongs to the loaded library, so it is shared by every ``load`` of the
    same file in one process. An artifact for another architecture
    (AArch64 on an x86-64 host) runs under qemu through a small harness
    (:mod:`rt3d_mlir.runtime.emulated`): same interface, slower.

    A SPIR-V artifact (a ZIP, ``docs/spirv_artifact.md``) runs on a Vulkan
    device (:mod:`rt3d_mlir.runtime.vulkan`): ``device`` is an index or part
    of the device's name (default: the first GPU, else the first device);
    ``threads`` is ignored for it, and ``device`` applies to nothing else.
    """
    path = os.fspath(path)
    if _magic(path) == _ZIP_MAGIC:
        from rt3d_mlir.runtime.vulkan import VulkanModel

        return VulkanModel(path, device=device)
    if device is not None:
        raise ArtifactError(f"'{path}' is not a SPIR-V artifact: a Vulkan device applies only to those")
    _check_file(path)
    machine = elf_machine(path)
    if machine is not None and machine != platform.machine():
        if machine != "aarch64":
            raise ArtifactError(f"'{path}' was built for {machine}, which this runtime cannot run")
        model = EmulatedModel(path, threads=threads)
        if model.abi_version != ABI_VERSION:
            raise ArtifactError(
                f"'{path}' uses artifact ABI version {model.abi_version}; this runtime reads {ABI_VERSION}"
            )
        return model
    return CompiledModel(path, threads=threads)
