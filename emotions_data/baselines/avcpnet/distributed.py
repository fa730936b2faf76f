"""Device choice and DDP set-up when launched by ``torchrun`` (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from emotions_data.schema.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str | None, local_rank: int = 0) -> torch.device:
    """``cuda``/``cpu``/None (CUDA when available); under torchrun each process takes its GPU."""
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' requested but no CUDA device is available; use cpu")
        if name == "cuda":
            return torch.device("cuda", local_rank)
    elif name != "cpu":
        raise ConfigError(f"unknown device {name!r}; allowed: cuda, cpu")
    return torch.device(name)


def init_distributed(device_name: str | None) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), resolve_device(device_name)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    if device.type == "cpu":
        # share the cores between the local processes instead of oversubscribing them
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return DistInfo(rank=rank, world=world, local_rank=local_rank), device


@contextmanager
def process_group(device_name: str | None) -> Iterator[tuple[DistInfo, torch.device]]:
    """``init_distributed`` for the length of a run; the group it joined is left on success.

    Without ``destroy_process_group`` gloo's worker threads are still joinable when the
    interpreter exits, and a rank could die of ``terminate called without an active
    exception`` (SIGABRT) after its work was done. All ranks meet at a barrier first so none
    tears its connections down while another is still in a collective. On an exception the
    group is left as it is: destroying it while other ranks wait in a collective would hang
    them, and torchrun ends the job anyway.
    """
    joined = not dist.is_initialized()
    info, device = init_distributed(device_name)
    yield info, device
    if joined and info.distributed:
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    if not info.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return [float(v) for v in t.tolist()]


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()
