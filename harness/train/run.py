"""One training run: backend, model, tokenizer checks, data, LoRA, SFT, outputs.

:func:`train` writes into the output directory (``cfg.output_dir``, ``{name}`` = spec name):

- ``adapter/``: the LoRA adapter and the tokenizer with the spec's chat template set;
- ``spec.toml`` (a copy of the spec), ``train_config.json`` (the effective [train] values);
- ``data_summary.json`` (rows in/kept, drops by reason, token-length percentiles);
- ``metrics.json``: status, loss curve, trained tokens/s, peak memory, wall time, device,
  backend (and why), every setting the backend had to change, tokenizer report, versions;
- ``checkpoint-N/`` when Ctrl-C stopped the run (or every ``save_steps``); ``merged/`` with ``merge``.

A non-empty output directory is refused unless ``overwrite`` (then it must be a previous
run's directory, marked by ``reasoning-kit-run.json``) or ``resume`` (then training continues
from its last ``checkpoint-N``); nothing is written before the model and the data have loaded.
The backend is chosen and (for unsloth) imported before anything imports transformers. Not handled: evaluation (``mainjob``), argument parsing (``cli``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from reasoning_kit.spec import FormatSpec
from reasoning_kit.train_config import TrainConfig

from . import TrainError
from .config import config_dict, output_path

RUN_MARK = "reasoning-kit-run.json"
PACKAGES = ("reasoning-kit", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth",
            "unsloth_zoo", "bitsandbytes", "vllm")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainResult:
    output_dir: Path
    status: str  # "completed" or "interrupted"
    global_step: int
    max_steps: int
    adapter_dir: Path | None = None
    checkpoint: Path | None = None
    merged_dir: Path | None = None
    metrics: dict = field(default_factory=dict)


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def last_checkpoint(out: Path) -> Path | None:
    """The ``checkpoint-N`` directory with the largest N in ``out``, or None."""
    found = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return max(found)[1] if found else None


def check_output(out: Path, *, overwrite: bool = False, resume: bool = False) -> Path | None:
    """Refuse an output directory that cannot be used; return the checkpoint to resume from (or None).

    Nothing is written or deleted here, so a run that fails while loading leaves no trace.
    """
    if overwrite and resume:
        raise TrainError("--overwrite and --resume contradict each other: choose one")
    if out.exists() and not out.is_dir():
        raise TrainError(f"output {out} exists and is not a directory")
    if resume:
        if not out.is_dir():
            raise TrainError(f"--resume: output directory {out} does not exist, so there is nothing to resume")
        ckpt = last_checkpoint(out)
        if ckpt is None:
            raise TrainError(
                f"--resume: no checkpoint-N directory in {out} (one is saved on Ctrl-C, or every train.save_steps steps)"
            )
        return ckpt
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise TrainError(
                f"output directory {out} is not empty: pass --overwrite to replace it, --resume to continue it, or --output DIR"
            )
        if not (out / RUN_MARK).is_file():
            raise TrainError(f"--overwrite: {out} is not a reasoning-kit training directory (no {RUN_MARK}), not deleting it")
    return None


def create_output(out: Path, *, resume: bool) -> None:
    """Create (or, for a checked --overwrite, empty and recreate) the output directory and mark it."""
    if not resume and (out / RUN_MARK).is_file():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / RUN_MARK).is_file():
        (out / RUN_MARK).write_text(json.dumps({"started": _now()}) + "\n")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def device_info() -> dict:
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return {"device": f"cuda ({torch.cuda.get_device_name(0)})", "gpu_memory_gib": round(props.total_memory / 2**30, 1)}
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"device": f"cpu ({cpu}, {torch.get_num_threads()} threads)", "cpu_count": os.cpu_count()}


def peak_memory() -> dict:
    import torch

    out = {"cpu_peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
    if torch.cuda.is_available():
        out["cuda_peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        out["cuda_peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 3)
    return out


def loss_curve(log_history: list[dict]) -> list[dict]:
    keep = ("step", "epoch", "loss", "learning_rate", "grad_norm", "num_input_tokens_seen")
    return [{k: e[k] for k in keep if k in e} for e in log_history if "loss" in e]


def train(
    spec: FormatSpec,
    cfg: TrainConfig,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    callbacks: tuple = (),
    log=None,
) -> TrainResult:
    """Fine-tune ``cfg.model`` on ``cfg.dataset`` in the spec's format; see the module docstring."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.perf_counter()
    out = output_path(cfg, spec)
    name, why, backend, resume_from = open_run(cfg.backend, out, overwrite=overwrite, resume=resume, log=log)

    from harness.data.prepare import prepare_dataset
    from harness.models import align_model_tokens

    from .callbacks import Recorder, StopOnInterrupt, TimeBudget
    from harness.audit.tokens import check_tokenizer
    from .sft import training_columns

    notes: list[str] = []
    log(f"model: {cfg.model}")
    model, tokenizer = backend.load_base(cfg, spec, notes)
    report = check_tokenizer(spec, tokenizer, fix=True)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
        notes.append(f"resized the embeddings to {len(tokenizer)} tokens for the new pad token")
    align_model_tokens(model, tokenizer)
    for line in report.lines():
        log(line)
    for note in notes:
        log(f"note: {note}")

    data = prepare_dataset(
        spec,
        cfg.dataset,
        tokenizer=tokenizer,
        max_seq_length=cfg.max_seq_length,
        limit=cfg.dataset_limit or None,
        split=cfg.dataset_split or None,
        progress=progress,
    )
    create_output(out, resume=resume)
    _write_json(out / "data_summary.json", data.summary)
    log(f"data: {data.summary['rows_kept']} of {data.summary['rows_in']} rows kept from {cfg.dataset}")
    columns = training_columns(data.dataset, spec, tokenizer.eos_token, completion_only=cfg.completion_only_loss)

    model = backend.add_lora(cfg, model)
    logged = len(notes)
    recorder, stop, budget = Recorder(), StopOnInterrupt(), TimeBudget(cfg.max_minutes)
    trainer = backend.make_trainer(
        cfg, model, tokenizer, columns, output_dir=out, callbacks=[recorder, stop, budget, *callbacks], progress=progress,
        notes=notes,
    )
    for note in notes[logged:]:
        log(f"note: {note}")
    (out / "spec.toml").write_text(spec.text)
    _write_json(out / "train_config.json", config_dict(cfg))

    interrupted = run_trainer(trainer, stop, budget, resume_from=resume_from, max_minutes=cfg.max_minutes, notes=notes,
                              log=log)
    state = trainer.state
    result = TrainResult(out, "interrupted" if interrupted else "completed", state.global_step, state.max_steps)
    if interrupted:
        result.checkpoint = last_checkpoint(out)
    else:
        result.adapter_dir = out / "adapter"
        trainer.model.save_pretrained(str(result.adapter_dir))
        tokenizer.save_pretrained(str(result.adapter_dir))
        if cfg.merge:
            result.merged_dir = out / "merged"
            backend_merge(name, trainer.model, tokenizer, result.merged_dir)
    result.metrics = {
        "status": result.status,
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "stopped_by_time_budget": budget.stopped_at is not None and not interrupted,
        "epoch": state.epoch,
        "resumed_from": str(resume_from) if resume_from else None,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "final_loss": next((e["loss"] for e in reversed(state.log_history) if "loss" in e), None),
        "loss_curve": loss_curve(state.log_history),
        "tokens_total": state.num_input_tokens_seen,
        **recorder.summary(),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "peak_memory": peak_memory(),
        **device_info(),
        "backend": name,
        "backend_reason": why,
        "notes": notes,
        "tokenizer": report.to_dict(),
        "model": cfg.model,
        "dataset": cfg.dataset,
        "spec": {"name": spec.name, "source": spec.source},
        "config": config_dict(cfg),
        "versions": versions(),
        "date": _now(),
    }
    _write_json(out / "metrics.json", result.metrics)
    return result


def open_run(requested: str, out: Path, *, overwrite: bool, resume: bool, log, checks=()):
    """(backend name, why, backend module, checkpoint to resume or None) for a run writing to ``out``.

    Chooses the backend, refuses an unusable output directory, runs ``checks`` (cheap
    callables that raise a one-line error), and only then imports the backend (unsloth first,
    before transformers). Nothing is written. Shared by ``train`` and ``harness.grpo.run.grpo``.
    """
    from . import backends

    name, why = backends.choose(requested)
    resume_from = check_output(out, overwrite=overwrite, resume=resume)
    for check in checks:
        check()
    log(f"backend: {name} ({why})")
    return name, why, backends.get(name), resume_from


def run_trainer(trainer, stop, budget, *, resume_from: Path | None, max_minutes: float, notes: list[str], log) -> bool:
    """``trainer.train()`` (resumed when asked) with Ctrl-C -> checkpoint; True when Ctrl-C stopped it early.

    Also resets the CUDA peak-memory counters and notes a stop by the time budget. Shared by
    ``train`` and ``harness.grpo.run.grpo``.
    """
    import torch

    from .callbacks import sigint_saves

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if resume_from is not None:
        log(f"resuming from {resume_from}")
    with sigint_saves(stop):
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    state = trainer.state
    interrupted = stop.stopped_at is not None and state.global_step < state.max_steps
    if budget.stopped_at is not None and not interrupted and state.global_step < state.max_steps:
        notes.append(f"stopped by the time budget (max_minutes {max_minutes:g}) at step {state.global_step}/{state.max_steps}")
        log(f"note: {notes[-1]}")
    return interrupted


def backend_merge(name: str, model, tokenizer, path: Path) -> None:
    """Write the base model with the adapter merged, in 16 bit, to ``path``."""
    if name == "unsloth":
        model.save_pretrained_merged(str(path), tokenizer, save_method="merged_16bit")
        return
    import torch

    merged = model.merge_and_unload()
    merged = merged.to(torch.bfloat16)
    merged.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
