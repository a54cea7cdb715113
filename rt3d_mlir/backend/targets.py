"""Code generation targets: what each one compiles for and with which flags."""

from __future__ import annotations

from dataclasses import dataclass

from rt3d_mlir.errors import Rt3dError


@dataclass(frozen=True)
class Target:
    name: str
    triple: str
    default_cpu: str
    cpu_flag: str  # the clang flag that selects the CPU: -march or -mcpu
    description: str


TARGETS: dict[str, Target] = {
    "host": Target(
        name="host",
        triple="x86_64-linux-gnu",
        default_cpu="native",
        cpu_flag="-march",
        description="this machine's x86-64 CPU, as a shared object loaded with ctypes",
    ),
}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        known = ", ".join(sorted(TARGETS))
        raise Rt3dError(f"unknown target '{name}' (available: {known})") from None
