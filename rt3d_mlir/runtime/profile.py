"""What a runtime reports of each generated kernel (or GPU dispatch) when profiling is on."""

from __future__ import annotations

from typing import NamedTuple


class KernelProfile(NamedTuple):
    name: str
    seconds: float  # summed over calls
    calls: int
    flops: float  # per call, with the kept weights (2 x multiply-adds)
    dense_flops: float  # per call, had the layer been dense
    bytes: float = 0.0  # per call: the buffers it reads and writes, each counted once

    @property
    def gigabytes_per_second(self) -> float:
        """Achieved rate on the bytes the kernel must move at least (a lower bound on its traffic)."""
        return self.bytes * self.calls / self.seconds / 1e9 if self.seconds > 0 else 0.0

    @property
    def gflops_per_second(self) -> float:
        """Achieved rate on kept FLOPs."""
        return self.flops * self.calls / self.seconds / 1e9 if self.seconds > 0 else 0.0
