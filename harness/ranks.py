"""Which process this is, in one place: rank-0-only I/O for ``train`` and ``grpo`` under a launcher.

``accelerate launch`` and ``torchrun`` start one process per device and tell each its place
through the environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``); :func:`current` reads it,
and ``harness.lifecycle`` derives ``is_main_process`` from it. A plain ``reasoning-kit train``
is rank 0 of 1. :func:`engine` names the launcher's engine (``ACCELERATE_USE_DEEPSPEED``,
``ACCELERATE_USE_FSDP``), and :func:`launch_problem` refuses, in one line and before anything
loads, what cannot run: a DeepSpeed config without the ``deepspeed`` package, and Unsloth
under anything but DDP. :func:`prepare` makes a multi-process run on a machine without CUDA use
gloo on CPU (transformers would otherwise fall back to one process).

The collectives (:func:`barrier`, :func:`share_from_main`, :func:`gather`, :func:`any_rank`)
are no-ops in one process; with several, every rank must call them in the same order.

Not handled: MPI launchers that set no ``RANK``/``WORLD_SIZE`` (``accelerate launch --cpu``
with several processes runs ``mpirun``), several machines that do not share the output's file
system (every rank must see the run directory rank 0 creates).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

ENGINES = ("single", "ddp", "fsdp", "deepspeed")
DOCS = "docs/multi_gpu.md"


@dataclass(frozen=True)
class Ranks:
    """This process's place among the launched processes."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _int(environ, name: str, default: int) -> int:
    try:
        return int(environ.get(name, default))
    except ValueError:
        return default


def current(environ=None) -> Ranks:
    """The launcher's ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (0, 0, 1 when not launched)."""
    env = os.environ if environ is None else environ
    return Ranks(_int(env, "RANK", 0), _int(env, "LOCAL_RANK", 0), max(1, _int(env, "WORLD_SIZE", 1)))


def _true(value: str | None) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


def engine(environ=None) -> str:
    """``deepspeed``, ``fsdp``, ``ddp`` (several processes) or ``single``, as the launcher set it."""
    env = os.environ if environ is None else environ
    if _true(env.get("ACCELERATE_USE_DEEPSPEED")):
        return "deepspeed"
    if _true(env.get("ACCELERATE_USE_FSDP")):
        return "fsdp"
    return "ddp" if current(env).distributed else "single"


def launch_problem(engine_name: str, backend: str, *, resume: bool = False, deepspeed_installed: bool | None = None,
                   cuda: bool | None = None) -> str | None:
    """One line saying why ``backend`` cannot run under ``engine_name`` here, or None.

    FSDP and DeepSpeed need CUDA: on CPU, accelerate 1.15 makes the processes MULTI_CPU (gloo) and
    drops the FSDP plugin and DeepSpeed without a word (``AcceleratorState``), so the run would be DDP.
    ``--resume`` under several CPU processes fails inside transformers 5.17 (the optimizer state is
    loaded with ``map_location`` ``cpu:0``, which torch 2.13 refuses), so it is refused here.
    """
    if deepspeed_installed is None:
        deepspeed_installed = importlib.util.find_spec("deepspeed") is not None
    if cuda is None and (engine_name in ("fsdp", "deepspeed") or (resume and engine_name != "single")):
        import torch

        cuda = torch.cuda.is_available()
    if resume and engine_name != "single" and not cuda:
        return ("--resume under several processes on CPU is not supported (transformers loads the optimizer state with "
                "map_location cpu:0, which torch refuses): resume with one process, or on CUDA GPUs")
    if engine_name in ("fsdp", "deepspeed"):
        if not cuda:
            return (f"launched with {'an FSDP' if engine_name == 'fsdp' else 'a DeepSpeed'} config on a machine without "
                    "CUDA: accelerate would run it as plain DDP; launch with configs/accelerate/ddp.yaml on CPU")
    if engine_name == "deepspeed" and not deepspeed_installed:
        return ("launched with a DeepSpeed config but the deepspeed package is not installed: "
                "pip install 'reasoning-kit[deepspeed]', or launch with configs/accelerate/ddp.yaml or fsdp2.yaml")
    if backend == "unsloth" and engine_name in ("fsdp", "deepspeed"):
        return (f"backend 'unsloth' runs only under DDP (configs/accelerate/ddp.yaml), not {engine_name}: "
                f"use --backend hf with this config, or the DDP config (see {DOCS})")
    return None


# What torchrun (and so ``accelerate launch`` with a multi-GPU config) sets for each process it starts.
LAUNCHER_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
                      "ROLE_RANK", "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT")


def prepare(ranks: Ranks | None = None, environ=None) -> None:
    """Set up this process for its launcher, before transformers/accelerate read the environment.

    Several processes without CUDA: have transformers/accelerate use gloo on CPU (ACCELERATE_USE_CPU).
    One process started by a launcher (``accelerate launch --num_processes 1`` with the DDP config,
    ``torchrun --nproc-per-node 1``): run as a plain process. accelerate would otherwise set up a
    process group of one and wrap the model in DistributedDataParallel, which only adds gradient
    bucketing and an all-reduce with nobody (measured 9 % slower at 4B on an H200, docs/multi_gpu.md).
    FSDP and DeepSpeed configs keep their engine even on one process."""
    env = os.environ if environ is None else environ
    ranks = ranks or current(env)
    if ranks.distributed:
        import torch

        if not torch.cuda.is_available():
            env.setdefault("ACCELERATE_USE_CPU", "true")
    elif "LOCAL_RANK" in env and engine(env) == "single":
        for name in LAUNCHER_VARIABLES:
            env.pop(name, None)


def quiet() -> None:
    """No progress bars from transformers and datasets in this process (a rank other than the main one)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from datasets.utils import logging as datasets_logging
    from transformers.utils import logging as transformers_logging

    datasets_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def _dist():
    """``torch.distributed`` when a process group of several processes is up, else None."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist
    return None


def barrier() -> None:
    dist = _dist()
    if dist:
        dist.barrier()


def share_from_main(value):
    """Rank 0's ``value`` on every rank (a picklable object)."""
    dist = _dist()
    if not dist:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value) -> list:
    """Every rank's ``value``, in rank order, on every rank."""
    dist = _dist()
    if not dist:
        return [value]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on one (so all ranks stop at the same step)."""
    dist = _dist()
    if not dist:
        return bool(flag)
    import torch

    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def finish() -> None:
    """Wait for every rank, then destroy the process group (gloo's threads otherwise race the interpreter's exit
    and a rank can abort with "terminate called without an active exception")."""
    dist = _dist()
    if dist:
        dist.barrier()
        dist.destroy_process_group()
