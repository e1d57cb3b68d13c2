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

from s2s_aws.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["WorldPlan", "plan_world", "validate_resourceconfig", "init_process", "spawn", "barrier", "broadcast_flags", "cleanup"]

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


def _bad_resourceconfig(problem: str) -> InputError:
    return InputError(
        f"resourceconfig.json is not usable: {problem}. SageMaker writes this file; outside SageMaker "
        "write {\"current_host\": \"algo-1\", \"hosts\": [\"algo-1\", ...]} with this host's name "
        "in hosts (or remove the file to train on one host). Nothing was started, so no host waits for "
        "the others.")


def validate_resourceconfig(resourceconfig: Any) -> tuple[list[str], str]:
    """``(hosts, current_host)`` from ``resourceconfig.json``, or :class:`InputError` saying what is wrong.

    ``None`` (no file) is one host, ``localhost``. ``hosts`` must be a non-empty list of distinct,
    non-empty strings and ``current_host`` one of them (either may be left out: ``hosts`` defaults to
    ``[current_host]``, ``current_host`` to the only host). Checked before anything starts: a host
    that is not in the list would otherwise wait for the 2 h rendezvous timeout.
    """
    if resourceconfig is None:
        return ["localhost"], "localhost"
    if not isinstance(resourceconfig, dict):
        raise _bad_resourceconfig(f"it holds a JSON {type(resourceconfig).__name__}, not an object")
    hosts = resourceconfig.get("hosts")
    current = resourceconfig.get("current_host")
    if current is not None and (not isinstance(current, str) or not current.strip()):
        raise _bad_resourceconfig(f"current_host is {current!r}; it must be a host name (a non-empty string)")
    if hosts is None:
        if current is None:
            return ["localhost"], "localhost"
        hosts = [current]
    if not isinstance(hosts, list):
        raise _bad_resourceconfig(f"hosts is a {type(hosts).__name__} ({str(hosts)[:80]!r}), not a list of "
                                  "host names")
    if not hosts:
        raise _bad_resourceconfig("hosts is an empty list; it must name every host of the job")
    for host in hosts:
        if not isinstance(host, str) or not host.strip():
            raise _bad_resourceconfig(f"hosts holds {host!r}; every entry must be a host name (a non-empty "
                                      "string)")
    repeated = sorted({h for h in hosts if hosts.count(h) > 1})
    if repeated:
        raise _bad_resourceconfig(f"hosts names {', '.join(repeated)} more than once")
    if current is None:
        if len(hosts) > 1:
            raise _bad_resourceconfig(f"current_host is missing and hosts has {len(hosts)} entries, so this "
                                      "host's rank is unknown")
        current = hosts[0]
    if current not in hosts:
        shown = ", ".join(hosts[:8]) + (", ..." if len(hosts) > 8 else "")
        raise _bad_resourceconfig(f"current_host {current} is not in hosts ({shown})")
    return list(hosts), current


def _master_port() -> int | None:
    text = os.environ.get(MASTER_PORT_ENV)
    if not text:
        return None
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise InputError(f"{MASTER_PORT_ENV}={text!r} is not a TCP port; give a number from 1 to 65535 "
                         "or unset it")
    return port


def plan_world(resourceconfig: dict[str, Any] | None) -> WorldPlan:
    """The plan from ``resourceconfig.json`` (None: a single host) and the visible GPUs."""
    hosts, current = validate_resourceconfig(resourceconfig)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    procs = int(os.environ.get(PROCS_ENV) or 0) or max(1, gpus)
    if gpus:
        procs = min(procs, gpus)
    port = _master_port()
    if port is None:
        # one host: any free port; several: every host must agree without talking first
        port = _free_port() if len(hosts) == 1 else 29500
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
