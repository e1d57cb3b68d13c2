"""Data-parallel training over every GPU of every host.

One process per GPU on each host (``torch.multiprocessing.spawn``), ``torch.distributed`` across the
hosts of ``resourceconfig.json`` with the first host as master; NCCL on GPUs, gloo on CPUs. Without
GPUs a host runs one process (``S2S_PROCESSES_PER_HOST`` overrides the count, e.g. to exercise the
gloo path on a CPU machine).
"""
from __future__ import annotations

import datetime
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

__all__ = ["WorldPlan", "plan_world", "init_process", "spawn", "barrier", "broadcast_flags", "cleanup"]

MASTER_PORT_ENV = "S2S_MASTER_PORT"
PROCS_ENV = "S2S_PROCESSES_PER_HOST"


@dataclass
class WorldPlan:
    """Where this host sits in the job."""

    hosts: list[str] = field(default_factory=lambda: ["localhost"])
    current_host: str = "localhost"
    gpus_per_host: int = 0
    procs_per_host: int = 1
    master_port: int = 29500

    @property
    def host_rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def world_size(self) -> int:
        return len(self.hosts) * self.procs_per_host

    @property
    def master_addr(self) -> str:
        return "127.0.0.1" if len(self.hosts) == 1 else self.hosts[0]

    @property
    def backend(self) -> str:
        return "nccl" if self.gpus_per_host > 0 else "gloo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plan_world(resourceconfig: dict[str, Any] | None) -> WorldPlan:
    """The plan from ``resourceconfig.json`` (None: a single host) and the visible GPUs."""
    hosts = list((resourceconfig or {}).get("hosts") or ["localhost"])
    current = (resourceconfig or {}).get("current_host") or hosts[0]
    if current not in hosts:
        hosts.append(current)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    procs = int(os.environ.get(PROCS_ENV) or 0) or max(1, gpus)
    if gpus:
        procs = min(procs, gpus)
    port_env = os.environ.get(MASTER_PORT_ENV)
    if port_env:
        port = int(port_env)
    elif len(hosts) == 1:
        port = _free_port()
    else:
        port = 29500   # every host must agree without talking first
    return WorldPlan(hosts=hosts, current_host=current, gpus_per_host=gpus, procs_per_host=procs,
                     master_port=port)


def init_process(plan: WorldPlan, local_rank: int) -> tuple[int, torch.device]:
    """Join the process group (when the world has more than one process); the global rank and device."""
    rank = plan.host_rank * plan.procs_per_host + local_rank
    if plan.gpus_per_host:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if plan.world_size > 1:
        dist.init_process_group(plan.backend, init_method=f"tcp://{plan.master_addr}:{plan.master_port}",
                                rank=rank, world_size=plan.world_size,
                                timeout=datetime.timedelta(hours=2))
        logger.info("joined process group: rank %d of %d (%s)", rank, plan.world_size, plan.backend)
    return rank, device


def spawn(fn: Callable[..., None], plan: WorldPlan, *args: Any) -> None:
    """Run ``fn(local_rank, plan, *args)`` in one process per local device (in-process when only one)."""
    if plan.procs_per_host == 1:
        fn(0, plan, *args)
        return
    import torch.multiprocessing as mp

    mp.spawn(fn, args=(plan, *args), nprocs=plan.procs_per_host, join=True)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_flags(values: list[float], device: torch.device) -> list[float]:
    """Rank 0's ``values`` on every rank."""
    if not is_distributed():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return t.tolist()


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()
