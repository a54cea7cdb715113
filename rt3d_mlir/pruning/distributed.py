"""Single-process or ``torchrun`` multi-process training, behind one small API.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group uses gloo on CPU
and nccl when CUDA devices exist; rank 0 alone writes files and logs.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """DistributedDataParallel around ``model`` when distributed."""
        if not self.enabled:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def all_sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def setup_distributed() -> Distributed:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    rank = int(os.environ["RANK"])
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        # A bounded timeout: a peer that never arrives (or a collective that
        # never completes) ends the run with an error instead of a hang.
        # RT3D_DISTRIBUTED_TIMEOUT (seconds) overrides the 5-minute default.
        seconds = float(os.environ.get("RT3D_DISTRIBUTED_TIMEOUT", "300"))
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=seconds))
    return Distributed(rank=rank, world_size=world_size, device=device)


def teardown_distributed(env: Distributed) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()
