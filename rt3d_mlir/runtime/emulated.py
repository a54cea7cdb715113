"""Run artifacts built for another architecture (AArch64) under user-mode qemu.

Python cannot load a foreign shared object, so a small C harness
(``harness.c``, built once per user with the cross compiler and cached)
is run under ``qemu-aarch64 -L <sysroot>``: it ``dlopen``s the artifact,
reports its shapes, and runs ``rt3d_forward`` on an input file. An
:class:`EmulatedModel` behaves like :class:`CompiledModel` (same call
signature, ``threads``), only slower; kernel profiles are not available.

Environment: ``RT3D_QEMU_AARCH64`` (the emulator, default ``qemu-aarch64``
on PATH), ``RT3D_AARCH64_SYSROOT`` (default ``/usr/aarch64-linux-gnu``),
``RT3D_AARCH64_CC`` (the cross compiler for the harness, default
``aarch64-linux-gnu-gcc``, else ``clang-22 --target=aarch64-linux-gnu``),
``RT3D_CACHE_DIR`` (default ``$XDG_CACHE_HOME/rt3d-mlir``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

import numpy as np

from rt3d_mlir.errors import ArtifactError
from rt3d_mlir.fileio import cache_directory
from rt3d_mlir.processes import run_process
from rt3d_mlir.runtime.arrays import checked_input, checked_threads

HARNESS_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.c")
QEMU_PACKAGE_HINT = "Debian: apt-get install qemu-user, or run scripts/setup.sh"


def _qemu() -> str:
    qemu = os.environ.get("RT3D_QEMU_AARCH64") or shutil.which("qemu-aarch64")
    if not qemu or not os.path.exists(qemu):
        raise ArtifactError(
            f"running an AArch64 artifact here needs the qemu-aarch64 emulator, which is not installed "
            f"({QEMU_PACKAGE_HINT})"
        )
    return qemu


def _sysroot() -> str:
    sysroot = os.environ.get("RT3D_AARCH64_SYSROOT", "/usr/aarch64-linux-gnu")
    if not os.path.isdir(sysroot):
        raise ArtifactError(
            f"running an AArch64 artifact needs the AArch64 C library at {sysroot} "
            "(Debian: apt-get install libc6-dev-arm64-cross)"
        )
    return sysroot


def qemu_command() -> list[str]:
    """qemu-aarch64 with the cross C library as its root. The library path points the dynamic
    loader at that C library first: where Debian's arm64 multiarch libc is also installed (the C
    Vulkan runtime's AArch64 build needs it), the host's loader cache lists that other build, and
    the cross loader with the multiarch libc.so.6 hangs at start."""
    sysroot = _sysroot()
    return [_qemu(), "-L", sysroot, "-E", f"LD_LIBRARY_PATH={sysroot}/lib"]


def _cross_compiler() -> list[str]:
    chosen = os.environ.get("RT3D_AARCH64_CC")
    if chosen:
        return chosen.split()
    if shutil.which("aarch64-linux-gnu-gcc"):
        return ["aarch64-linux-gnu-gcc"]
    for clang in ("clang-22", "clang"):
        if shutil.which(clang):
            return [clang, "--target=aarch64-linux-gnu", "-fuse-ld=lld"]
    raise ArtifactError(
        "building the AArch64 run harness needs a cross C compiler "
        "(Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
    )


def harness_path() -> str:
    """The AArch64 harness executable, built on first use and cached by source hash."""
    with open(HARNESS_SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = cache_directory()
    path = os.path.join(cache, f"harness-aarch64-{digest}")
    if os.path.exists(path):
        return path
    os.makedirs(cache, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=".harness-", dir=cache)
    os.close(fd)
    try:
        try:
            result = run_process([*_cross_compiler(), "-O2", HARNESS_SOURCE, "-o", partial, "-ldl"])
        except OSError as err:
            raise ArtifactError(f"building the AArch64 run harness failed: {err.strerror}") from None
        if result.returncode != 0:
            message = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise ArtifactError(f"building the AArch64 run harness failed: {message}")
        os.chmod(partial, 0o755)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return path


class EmulatedModel:
    """An AArch64 artifact run through the harness under qemu: call it like CompiledModel."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._command = [*qemu_command(), harness_path(), self.path]
        self._threads = 0
        info = self._run("info")
        fields = {}
        for line in info.splitlines():
            key, _, rest = line.partition(" ")
            fields[key] = rest.split()
        try:
            self.abi_version = int(fields["abi"][0])
            self.target = fields["target"][0]
            self.input_shape = tuple(int(v) for v in fields["input"])
            self.output_shape = tuple(int(v) for v in fields["output"])
        except (KeyError, IndexError, ValueError):
            raise ArtifactError(f"'{self.path}': unexpected harness output: {info!r}") from None
        if threads is not None:
            self.threads = threads

    def _run(self, *args: str) -> str:
        try:
            result = run_process([*self._command, *args])
        except OSError as err:
            raise ArtifactError(f"cannot run qemu-aarch64 for '{self.path}': {err.strerror}") from None
        if result.returncode != 0:
            message = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            raise ArtifactError(f"'{self.path}' under qemu-aarch64: {message}")
        return result.stdout

    @property
    def threads(self) -> int:
        """Threads each kernel runs on (0: the artifact's default)."""
        return self._threads

    @threads.setter
    def threads(self, count: int) -> None:
        self._threads = checked_threads(count)

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        x = checked_input(x, self.input_shape)
        with tempfile.TemporaryDirectory(prefix="rt3d-qemu-") as tmp:
            x_path, y_path = os.path.join(tmp, "x.bin"), os.path.join(tmp, "y.bin")
            np.ascontiguousarray(x, dtype=np.float32).tofile(x_path)
            self._run("run", x_path, y_path, str(self._threads), "1")
            y = np.fromfile(y_path, dtype=np.float32).reshape(self.output_shape)
        if out is not None:
            out[...] = y
            return out
        return y

    def set_profiling(self, on: bool) -> None:
        raise ArtifactError("kernel profiles are not available for artifacts run under qemu")

    def kernel_profile(self):
        raise ArtifactError("kernel profiles are not available for artifacts run under qemu")

    def __repr__(self) -> str:
        return (
            f"EmulatedModel('{self.path}', target={self.target}, "
            f"input_shape={self.input_shape}, output_shape={self.output_shape})"
        )
