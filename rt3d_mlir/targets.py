"""Code generation targets: the machine each one describes and how to compile for it.

Kept free of compiler imports so that passes (which pick vector widths and
tile sizes from a target) and the backend (which picks triples and flags)
can both use it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from rt3d_mlir.errors import Rt3dError


@dataclass(frozen=True)
class Target:
    name: str
    triple: str
    default_cpu: str
    cpu_flag: str  # the clang flag that selects the CPU: -march or -mcpu
    description: str
    vector_bits: int  # SIMD register width the generated kernels use
    vector_registers: int  # architectural SIMD registers
    l1d_bytes: int  # per-core data cache sizes, for tiling decisions
    l2_bytes: int
    gpu: bool = False  # kernels are GPU compute shaders (SPIR-V), not CPU code

    @property
    def f32_lanes(self) -> int:
        return self.vector_bits // 32


def _host_vector_bits() -> tuple[int, int]:
    """(vector bits, vector registers) of this x86-64 CPU, from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    if "avx512f" in flags:
        return 512, 32
    if "avx2" in flags and "fma" in flags:
        return 256, 16
    return 128, 16


@functools.cache
def host_target() -> Target:
    bits, registers = _host_vector_bits()
    return replace(TARGETS["host"], vector_bits=bits, vector_registers=registers)


TARGETS: dict[str, Target] = {
    "host": Target(
        name="host",
        triple="x86_64-linux-gnu",
        default_cpu="native",
        cpu_flag="-march",
        description="this machine's x86-64 CPU, as a shared object loaded with ctypes",
        vector_bits=512,  # refined from /proc/cpuinfo by host_target()
        vector_registers=32,
        l1d_bytes=32 * 1024,
        l2_bytes=1024 * 1024,
    ),
    "aarch64": Target(
        name="aarch64",
        triple="aarch64-linux-gnu",
        default_cpu="cortex-a76",
        cpu_flag="-mcpu",
        description="64-bit Arm Linux (NEON), a shared object run under qemu-aarch64 here",
        vector_bits=128,  # NEON q registers
        vector_registers=32,
        l1d_bytes=64 * 1024,  # Cortex-A76
        l2_bytes=512 * 1024,
    ),
    "spirv": Target(
        name="spirv",
        triple="spirv-vulkan1.1",
        default_cpu="",
        cpu_flag="",
        description="Vulkan compute shaders (SPIR-V), run through a Vulkan driver",
        vector_bits=512,  # a filter block of up to 16 filters: four vec4 accumulators
        vector_registers=0,
        l1d_bytes=0,
        l2_bytes=0,
        gpu=True,
    ),
}


def get_target(name: str) -> Target:
    if name == "host":
        return host_target()
    try:
        return TARGETS[name]
    except KeyError:
        known = ", ".join(sorted(TARGETS))
        raise Rt3dError(f"unknown target '{name}' (available: {known})") from None
