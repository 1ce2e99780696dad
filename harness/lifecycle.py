"""One run lifecycle for ``train`` and ``grpo``: check -> open output -> load -> train -> save -> summary.

:func:`run_lifecycle` takes a *recipe* (``harness.train.run.SFTRecipe``, ``harness.grpo.run.GRPORecipe``)
that knows its own settings, model loading and trainer; everything else happens here, once:

1. check settings: the backend choice, the output directory (``harness.outputs.plan_run``,
   nothing written), the recipe's cheap checks (the dataset and its split among them:
   ``harness.data.sources.check_source``), the config's values against the schema's types
   (``reasoning_kit.schema.type_problems``: a nan or an infinite number included), and the trainer
   arguments built by TRL/transformers in a dry step without a model (an unknown optimizer
   or scheduler is one line naming its key); when the caller evaluates after the run (``evaluates``:
   ``mainjob``), the evaluation's dataset read as the evaluation will read it (:func:`check_eval_dataset`);
2. load the model and data (``recipe.load``);
3. open the output (a new or ``--overwrite`` run is built in a temporary sibling directory);
4. train with the time budget, Ctrl-C -> checkpoint, ``save_steps`` checkpoints;
5. save the adapter (``recipe.save``), write ``metrics.json``, and commit the directory:
   the previous run is replaced only now, and only the project's files in it.

Several processes (``accelerate launch``, ``torchrun``; ``harness.ranks``): ``is_main_process``
(default: rank 0 of the launcher's environment) is the one place that decides which process
writes files and prints. Every rank runs the checks and loads; then, after a barrier, only the
main process opens the output and shares the run directory's path with the others (the
Trainer needs the same ``output_dir`` everywhere: it saves checkpoints from the main process,
plus each rank's RNG state); the other ranks write nothing of their own. ``metrics.json`` adds
``world_size``, the per-device and global batch and every rank's own step count.
Any trainer callback with a ``run_metrics()`` method (per-step timing, say) adds its dict to
``metrics.json``. Not handled: evaluation after training (``mainjob``; only its dataset is checked here).
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from harness import models, outputs, ranks

SHARDED = ("fsdp", "deepspeed")  # engines whose model every rank must take part in saving
PACKAGES = ("reasoning-kit", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth",
            "unsloth_zoo", "bitsandbytes", "vllm")


@dataclass
class RunResult:
    """What a train or grpo run produced; paths point into the final output directory."""

    output_dir: Path
    status: str  # "completed" or "interrupted"
    global_step: int
    max_steps: int
    adapter_dir: Path | None = None
    checkpoint: Path | None = None
    merged_dir: Path | None = None
    start_adapter: str | None = None  # grpo: the adapter it started from (None: a new LoRA)
    model: str = ""
    metrics: dict = field(default_factory=dict)


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


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


def trainer_args_error(exc: ValueError, cfg, table: str) -> str:
    """One line for a ValueError raised by TrainingArguments/SFTConfig/GRPOConfig, naming the key when it can."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for key in ("optim", "lr_scheduler_type"):
        value = getattr(cfg, key, None)
        if isinstance(value, str) and text.startswith(f"{value} is not a valid"):
            kind = "an optimizer" if key == "optim" else "a scheduler"
            choices = text.split("select one of", 1)[-1].strip(" .")
            return f"invalid {table} option: {table}.{key}: {value!r} is not {kind} transformers knows (one of {choices})"
    return f"invalid {table} option (rejected by transformers/TRL): {text}"


def _log_default(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_trainer(trainer, stop, budget, *, resume_from: Path | None, max_minutes: float, notes: list[str], log) -> bool:
    """``trainer.train()`` (resumed when asked) with Ctrl-C -> checkpoint; True when Ctrl-C stopped it early."""
    import torch

    from harness.train.callbacks import sigint_saves

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


def check_eval_dataset(recipe) -> None:
    """``recipe.error`` unless the evaluation after the run can read ``cfg.eval_dataset`` (``cfg.eval_limit`` prompts)
    and it is not the training dataset itself.

    The rows are read by the evaluation's own loader (``harness.evaluate.questions.load_questions``: the dataset
    argument through ``harness.data.sources.check_source``, the file, its columns, the gold answers), so this check
    and the evaluation cannot disagree. Loads no model; a local file or a built-in set takes well under a second."""
    from harness.data.sources import same_source
    from harness.evaluate import EvalError
    from harness.evaluate.questions import load_questions
    from harness.train.config import invalid_options

    cfg, table = recipe.cfg, recipe.command
    if same_source(cfg.eval_dataset, cfg.dataset):
        raise recipe.error(invalid_options(table, [
            f"{table}.eval_dataset: {cfg.eval_dataset!r} is the training dataset, so the evaluation after the run would "
            "score the model on what it was trained on; use a held-out set (gsm8k-test, arithmetic-test or a file)"]))
    try:
        load_questions(recipe.spec, cfg.eval_dataset, cfg.eval_limit)
    except EvalError as exc:
        raise recipe.error(invalid_options(table, [f"{table}.eval_dataset: {exc}; the evaluation after the run needs "
                                                   "it (eval_limit = 0 skips the evaluation)"])) from None


def check_run(recipe, *, overwrite: bool = False, resume: bool = False, here=None, log=None, progress: bool = False,
              main: bool = True, evaluates: bool = False):
    """Step 1 of the lifecycle, on its own: every check of ``recipe`` that needs no model, nothing written.

    Returns the backend's name, why it was chosen, its module and the output plan; raises ``recipe.error``.
    ``evaluates``: the caller evaluates on ``cfg.eval_dataset`` after the run, so that dataset is checked too.
    ``grpo --offline`` runs it before training the SFT adapter its GRPO run starts from, so a GRPO setting's
    error comes before that run writes anything."""
    from harness.train import backends

    here = here or ranks.current()
    log = log or (lambda msg: None)
    error = recipe.error
    name, why = backends.choose(recipe.backend)
    problem = ranks.launch_problem(ranks.engine(), name, resume=resume)
    if problem:
        raise error(problem)
    if ranks.engine() in SHARDED and getattr(recipe.cfg, "merge", False):
        raise error(f"{recipe.command}.merge needs the whole model in one process: it cannot run under "
                    f"{ranks.engine()}; merge afterwards, or launch with configs/accelerate/ddp.yaml")
    ranks.prepare(here)
    try:
        plan = outputs.plan_run(Path(recipe.out), recipe.command, overwrite=overwrite, resume=resume,
                                max_steps=recipe.cfg.max_steps)
    except outputs.OutputError as exc:
        raise error(str(exc)) from None
    recipe.check()
    # A config made in code skipped the spec loader: its values get the schema's own type check (a nan is not
    # "a finite number"), worded as for --set. Ranges stay the caller's business (a learning rate of 0 as a control).
    from harness.train.config import invalid_options
    from reasoning_kit.schema import type_problems

    if problems := type_problems(recipe.cfg, recipe.command):
        raise error(invalid_options(recipe.command, problems))
    log(f"backend: {name} ({why})")
    backend = backends.get(name)  # unsloth is imported here, before transformers
    import datasets
    import transformers

    # --no-progress: no bars from transformers' weight loading or datasets' map either (and back on for a run with them)
    (datasets.enable_progress_bars if progress else datasets.disable_progress_bars)()
    (transformers.utils.logging.enable_progress_bar if progress else transformers.utils.logging.disable_progress_bar)()
    if not main:
        ranks.quiet()
    if evaluates:  # after the backend's import: unsloth comes before anything a dataset loader imports
        check_eval_dataset(recipe)
    try:
        recipe.trainer_args(name, Path(recipe.out), progress=progress, notes=[])
    except ValueError as exc:
        if isinstance(exc, error):
            raise
        raise error(trainer_args_error(exc, recipe.cfg, recipe.command)) from None
    return name, why, backend, plan


def run_lifecycle(recipe, *, overwrite: bool = False, resume: bool = False, progress: bool = True, callbacks: tuple = (),
                  log=None, is_main_process: bool | None = None, evaluates: bool = False) -> RunResult:
    """Run ``recipe`` through the lifecycle in the module docstring; ``recipe.error`` is the one-line error type.

    ``is_main_process`` None: rank 0 of the launcher (``harness.ranks.current``); the others neither write nor log.
    ``evaluates``: the caller evaluates after the run (``mainjob``): step 1 checks the evaluation's dataset too.
    """
    here = ranks.current()
    main = here.is_main if is_main_process is None else is_main_process
    if not main:
        log, progress = (lambda msg: None), False
    log = log or _log_default
    error = recipe.error
    started = time.perf_counter()
    out = Path(recipe.out)
    # 1. check settings: nothing is written and nothing heavy is loaded before this passes.
    name, why, backend, plan = check_run(recipe, overwrite=overwrite, resume=resume, here=here, log=log,
                                         progress=progress, main=main, evaluates=evaluates)
    # 2. load.
    notes: list[str] = []
    recipe.load(name, backend, notes, log=log, progress=progress)
    # 3. open the output: every rank has passed its checks; only the main process creates the directory.
    ranks.barrier()
    run_dir, failure = None, None
    if main:
        try:
            run_dir = outputs.open_run(plan)
        except outputs.OutputError as exc:
            failure = str(exc)
    shared, failure = ranks.share_from_main((str(run_dir.path) if run_dir else None, failure))
    if failure:
        raise error(failure)
    work = Path(shared) if shared else out
    from harness.train.callbacks import sigterm_exits

    try:
        with sigterm_exits():  # SIGTERM unwinds through the except below: the staged run is removed
            result = _train_and_save(recipe, name, why, backend, plan, work, out, notes, progress, callbacks, log,
                                     started, main)
        if run_dir:
            run_dir.commit()
    except OSError as exc:
        if run_dir:
            run_dir.abandon()
        where = exc.filename or work
        raise error(f"cannot write the run in {out}: {exc.strerror or exc} ({where}); the previous run is unchanged"
                    if plan.mode != "resume" else f"cannot write the run in {out}: {exc.strerror or exc} ({where})") from None
    except BaseException:
        if run_dir:
            run_dir.abandon()
        raise
    ranks.finish()  # all ranks leave together; the process group is torn down before the interpreter exits
    return result


def parallel_metrics(trainer, sessions: list[dict]) -> dict:
    """``world_size``, how the processes ran, per-device and global batch, and each rank's session."""
    args = trainer.args
    world = max(1, getattr(args, "world_size", 1) or 1)
    per_device = args.per_device_train_batch_size
    accelerator = getattr(trainer, "accelerator", None)
    return {
        "world_size": world,
        "launch": ranks.engine(),
        "distributed_type": str(accelerator.distributed_type).rsplit(".", 1)[-1] if accelerator else None,
        "per_device_train_batch_size": per_device,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "global_batch_size": per_device * args.gradient_accumulation_steps * world,
        # Each rank's own count of its steps (tokens are already counted over all ranks by the Trainer).
        "ranks": [{k: s.get(k) for k in ("rank", "steps_this_session", "train_seconds")} for s in sessions],
    }


def _train_and_save(recipe, name, why, backend, plan, work: Path, out: Path, notes, progress, callbacks, log, started,
                    io: bool) -> RunResult:
    from harness.train.callbacks import Recorder, StopOnInterrupt, TimeBudget

    write = outputs.write_json
    recorder, stop, budget = Recorder(), StopOnInterrupt(), TimeBudget(recipe.cfg.max_minutes)
    everything = [recorder, stop, budget, *callbacks]
    logged = len(notes)
    trainer = recipe.make_trainer(name, backend, work, everything, notes=notes, progress=progress)
    from harness import console

    console.install(trainer, "SFT" if recipe.command == "train" else recipe.command.upper(), progress=progress and io,
                    quiet=not io)
    trainer.add_callback(console.LogLastStep())
    for note in notes[logged:]:
        log(f"note: {note}")
    resume_from = plan.checkpoint
    try:
        interrupted = run_trainer(trainer, stop, budget, resume_from=resume_from, max_minutes=recipe.cfg.max_minutes,
                                  notes=notes, log=log)
    except RuntimeError as exc:
        if resume_from is None or "size mismatch" not in str(exc):
            raise
        from harness.models import first_line

        raise recipe.error(f"cannot resume from {resume_from}: {first_line(exc)} (was it saved with another --model "
                           "or LoRA rank? resume with the same settings, or start over with --overwrite)") from None
    sessions = ranks.gather({"rank": ranks.current().rank, **recorder.summary()})
    state = trainer.state
    result = RunResult(out, "interrupted" if interrupted else "completed", state.global_step, state.max_steps,
                       start_adapter=recipe.start_adapter, model=recipe.model_name)
    sharded = ranks.engine() in SHARDED
    if sharded and not interrupted:  # every rank gathers its shards; the Trainer writes from the main process
        trainer.save_model(str(work / "adapter"))
    if not io:  # another rank: the main process writes the run
        return result
    # Written once training has ended, so a resume that fails at its start changes no file.
    for fname, data in recipe.files_before().items():
        write(outputs.inside(work, work / fname), data)
    outputs.atomic_write(work / "spec.toml", recipe.spec.text)
    write(work / recipe.config_file, recipe.config_dict())
    if interrupted:
        ckpt = outputs.last_checkpoint(work)
        result.checkpoint = out / ckpt.name if ckpt else None
    else:
        if sharded:
            recipe.tokenizer.save_pretrained(str(work / "adapter"))
        else:
            models.point_base_at_local_copy(trainer.model)
            recipe.save(name, trainer, work)
        models.record_base(work / "adapter", recipe.model_name)  # the name the user gave, not a cache path
        result.adapter_dir = out / "adapter"
        if (work / "merged").is_dir():
            result.merged_dir = out / "merged"
    extra = {}
    for cb in everything:
        if hasattr(cb, "run_metrics"):
            extra.update(cb.run_metrics())
    result.metrics = {
        "status": result.status,
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "stopped_by_time_budget": budget.stopped_at is not None and not interrupted,
        "resumed_from": str(resume_from) if resume_from else None,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        **recipe.run_metrics(trainer, work),
        **recorder.summary(),
        **parallel_metrics(trainer, sessions),
        **extra,
        "wall_seconds": round(time.perf_counter() - started, 3),
        "peak_memory": peak_memory(),
        **device_info(),
        "backend": name,
        "backend_reason": why,
        "notes": notes,
        "tokenizer": recipe.report.to_dict(),
        **recipe.describe(),
        "spec": {"name": recipe.spec.name, "source": recipe.spec.source},
        "config": recipe.config_dict(),
        "versions": versions(),
        "date": outputs.now(),
    }
    write(work / "metrics.json", result.metrics)
    return result
