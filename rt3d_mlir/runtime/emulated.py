"""Run artifacts built for another architecture (AArch64) under user-mode qemu.

Python cannot load a foreign shared object, so a small C harness
(``harness.c``, built once per user with the cross compiler and cached)
is run under ``qemu-aarch64 -L <sysroot>``: it ``dlopen``s the artifact,
reports its shapes, and runs ``rt3d_forward`` on an input file. An
:class:`EmulatedModel` behaves like :class:`CompiledModel` (same call
signature, ``threads``), only slower. Its kernel profile is counted, not
timed (qemu's clock says nothing of a phone's): the artifact runs once on one
thread under qemu with a TCG plugin (``qemu_insn_count.c``, built once with
the host C compiler and cached) that counts the executed instructions and
marks them at every clock read, which the profiled artifact makes before and
after each kernel. A kernel's "seconds" are then those of a core model
(:data:`CORE_MODEL`, a Cortex-A76 at 2.84 GHz): the larger of its multiply-add
instructions over two SIMD pipes and all its instructions over a 4-wide
decode, in cycles. It is a lower bound that ranks builds and layers; it is not
a phone's measured time.

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
PLUGIN_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "qemu_insn_count.c")
COUNTERS = ("instructions", "fmla", "fmla_h", "sdot", "memory")  # the plugin's, in its order
# The core the counts are turned into time on: the Snapdragon 855's prime core (Cortex-A76 at
# 2.84 GHz), with two 128-bit SIMD pipes (a multiply-add instruction each per cycle) and a 4-wide
# decode. bench/aarch64_insn_counts.py reports its builds on the same model.
CORE_MODEL = {"cpu": "cortex-a76", "ghz": 2.84, "multiply_adds_per_cycle": 2, "decode_width": 4}
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


def _cached_build(source: str, name: str, command: list[str], what: str, executable: bool,
                  libraries: tuple[str, ...] = ()) -> str:
    """``source`` built by ``command + [source, "-o", OUTPUT, *libraries]`` once per source hash, in
    the cache."""
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = cache_directory()
    path = os.path.join(cache, f"{name}-{digest}")
    if os.path.exists(path):
        return path
    os.makedirs(cache, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{name}-", dir=cache)
    os.close(fd)
    try:
        try:
            result = run_process([*command, source, "-o", partial, *libraries])
        except OSError as err:
            raise ArtifactError(f"building {what} failed: {err.strerror}") from None
        if result.returncode != 0:
            message = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise ArtifactError(f"building {what} failed: {message}")
        os.chmod(partial, 0o755 if executable else 0o644)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return path


def harness_path() -> str:
    """The AArch64 harness executable, built on first use and cached by source hash."""
    return _cached_build(HARNESS_SOURCE, "harness-aarch64", [*_cross_compiler(), "-O2"],
                         "the AArch64 run harness", executable=True, libraries=("-ldl",))


def counting_plugin() -> str:
    """The instruction-counting qemu plugin (a host shared object), built on first use and cached."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise ArtifactError("counting AArch64 instructions needs a host C compiler for the qemu plugin "
                            "(Debian: apt-get install gcc)")
    return _cached_build(PLUGIN_SOURCE, "qemu_insn_count", [compiler, "-shared", "-fPIC", "-O2"],
                         "the qemu instruction-counting plugin", executable=False)


def read_counts(path: str) -> tuple[dict[str, int], list[list[int]]]:
    """The plugin's output file: the whole run's counts by name, and the marks (the five counts, in
    :data:`COUNTERS` order, at each clock read)."""
    totals: dict[str, int] = {}
    marks: list[list[int]] = []
    with open(path) as f:
        for line in f:
            key, *values = line.split()
            if key == "mark":
                marks.append([int(v) for v in values])
            elif key in COUNTERS:
                totals[key] = int(values[0])
    return totals, marks


def modeled_seconds(counts: dict[str, int]) -> float:
    """Seconds on :data:`CORE_MODEL` for these instruction counts (a lower bound)."""
    multiply_adds = counts["fmla"] + counts["fmla_h"] + counts["sdot"]
    cycles = max(multiply_adds / CORE_MODEL["multiply_adds_per_cycle"],
                 counts["instructions"] / CORE_MODEL["decode_width"])
    return cycles / (CORE_MODEL["ghz"] * 1e9)


class EmulatedModel:
    """An AArch64 artifact run through the harness under qemu: call it like CompiledModel."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._harness = harness_path()
        self._threads = 0
        self._profiling = False
        self._profile: list | None = None
        self.counts: dict[str, int] | None = None  # of the last profiled call, whole
        self.seconds: float | None = None  # of the last profiled call on CORE_MODEL
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

    def _run(self, *args: str, plugin: str | None = None) -> str:
        """The harness's output for ``args``, under qemu (with a TCG ``plugin``, its argument string)."""
        loaded = ["-plugin", plugin] if plugin else []
        try:
            result = run_process([*qemu_command(), *loaded, self._harness, self.path, *args])
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
            if self._profiling:
                self._counted_call(x_path, y_path, tmp)
            else:
                self._run("run", x_path, y_path, str(self._threads), "1")
            y = np.fromfile(y_path, dtype=np.float32).reshape(self.output_shape)
        if out is not None:
            out[...] = y
            return out
        return y

    def set_profiling(self, on: bool) -> None:
        """While on, a call is also counted (see the module's text; one thread, whatever
        :attr:`threads` says) and :meth:`kernel_profile` returns the counts of the last call."""
        self._profiling = bool(on)
        self._profile = None

    def kernel_profile(self) -> list:
        """The last profiled call's kernels (``KernelProfile``; seconds on :data:`CORE_MODEL`)."""
        if not self._profiling:
            raise ArtifactError("turn profiling on (set_profiling(True)) and call the model first")
        return list(self._profile or [])

    def _counted_call(self, x_path: str, y_path: str, tmp: str) -> None:
        from rt3d_mlir.runtime.profile import KernelProfile

        counts_path = os.path.join(tmp, "counts.txt")
        output = self._run("run", x_path, y_path, "1", "1", "profile",
                           plugin=f"{counting_plugin()},out={counts_path}")
        kernels = [line.split() for line in output.splitlines() if line.startswith("kernel ")]
        _, marks = read_counts(counts_path)
        # the harness reads the clock around the call, the artifact around each kernel (once each)
        if any(int(kernel[2]) != 1 for kernel in kernels) or len(marks) != 2 + 2 * len(kernels):
            raise ArtifactError(f"'{self.path}': the instruction marks do not pair with its kernels "
                                f"({len(marks)} marks, {len(kernels)} kernels)")

        def between(first: list[int], last: list[int]) -> dict[str, int]:
            return {name: b - a for name, a, b in zip(COUNTERS, first, last, strict=True)}

        self.counts = between(marks[0], marks[-1])
        profile = []
        glue = dict(self.counts)  # what runs between the kernels
        for index, (_, name, calls, flops, dense, moved) in enumerate(kernels):
            counts = between(marks[1 + 2 * index], marks[2 + 2 * index])
            glue = {key: glue[key] - counts[key] for key in COUNTERS}
            profile.append(KernelProfile(name, modeled_seconds(counts), int(calls), float(flops),
                                         float(dense), float(moved)))
        self._profile = profile
        # each kernel's own bound (its pipes or its decode), and the glue's: they add up
        self.seconds = sum(k.seconds for k in profile) + modeled_seconds(glue)

    def __repr__(self) -> str:
        return (
            f"EmulatedModel('{self.path}', target={self.target}, "
            f"input_shape={self.input_shape}, output_shape={self.output_shape})"
        )
