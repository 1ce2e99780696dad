"""One GRPO run: backend, model (+ SFT adapter), prompts, the spec's rewards, TRL GRPOTrainer, outputs.

:func:`grpo` writes into the output directory (``cfg.output_dir``, ``{name}`` = spec name):

- ``adapter/``: the LoRA adapter (the SFT adapter trained further, or a new one) and the
  tokenizer with the spec's chat template;
- ``spec.toml``, ``grpo_config.json`` (the effective [grpo] values), ``data_summary.json``;
- ``metrics.json``: status, per-step curves (total reward and each reward function's mean,
  validator error-code counts, valid fraction, completion lengths, loss, KL), first/last
  window means, wall time, peak memory, device, backend (and why), notes, versions;
- ``curves.png``: the reward and error-code curves; ``samples.jsonl``: every ``sample_every``
  steps, that step's prompts and completions with each reward and the validator's codes;
- ``checkpoint-N/`` every ``save_steps`` and on Ctrl-C (``--resume`` continues from it).

The same output-directory rules as ``reasoning-kit train`` (``harness.train.run``): a non-empty
directory needs ``--overwrite`` (only a previous run's) or ``--resume``; nothing is written
before the model and the prompts have loaded. Not handled: vLLM generation (Unsloth uses it
by itself when vLLM is installed; never run here), multi-GPU.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from reasoning_kit.grpo_config import GRPOTrainConfig
from reasoning_kit.spec import FormatSpec

from harness.train.run import (
    _now, _write_json, create_output, device_info, last_checkpoint, open_run, peak_memory, run_trainer, versions,
)
from harness.train.sft import checkpointing_args

from . import GRPOError
from .config import adapter_base, config_dict, loading_config, output_path
from .data import refuse_eval_split

@dataclass
class GRPOResult:
    output_dir: Path
    status: str  # "completed" or "interrupted"
    global_step: int
    max_steps: int
    adapter_dir: Path | None = None
    checkpoint: Path | None = None
    start_adapter: str | None = None  # the adapter GRPO started from (None: a new LoRA)
    model: str = ""
    metrics: dict = field(default_factory=dict)


def grpo_args(cfg: GRPOTrainConfig, *, output_dir: Path, max_completion_length: int, bf16: bool, fp16: bool,
              optim: str, progress: bool, gradient_checkpointing: bool | None, cpu: bool = False) -> dict:
    """``trl.GRPOConfig`` keyword arguments for ``cfg`` (the seed notebook's GRPO stage)."""
    args = dict(
        output_dir=str(output_dir),
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the steps
        lr_scheduler_type=cfg.lr_scheduler_type,
        optim=optim,
        logging_steps=cfg.logging_steps,
        # TRL counts completions; the seed's batch counts prompts (Unsloth multiplies by num_generations).
        per_device_train_batch_size=cfg.per_device_train_batch_size * cfg.num_generations,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_generations=cfg.num_generations,
        max_completion_length=max_completion_length,
        max_steps=cfg.max_steps,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        seed=cfg.seed,
        temperature=cfg.temperature,
        min_p=cfg.min_p or None,
        top_p=cfg.top_p,
        top_k=cfg.top_k,
        beta=cfg.beta,
        bf16=bf16,
        fp16=fp16,
        report_to=cfg.report_to,
        logging_first_step=True,
        disable_tqdm=not progress,
        dataloader_pin_memory=not cpu,
    )
    return args | checkpointing_args(gradient_checkpointing)


def _load(name: str, backend, cfg: GRPOTrainConfig, spec: FormatSpec, notes: list[str]):
    """(model with trainable LoRA, tokenizer, loading TrainConfig)."""
    from harness import models
    from harness.audit.tokens import check_tokenizer

    tc = loading_config(cfg, spec.train)
    if cfg.adapter and name == "unsloth":
        # Unsloth loads base + adapter from the adapter directory, trainable, and patches it for training.
        from unsloth import FastLanguageModel

        from harness.train.backends.unsloth import from_pretrained_kwargs, vllm_available

        kwargs = from_pretrained_kwargs(tc, str(models.adapter_path(cfg.adapter)), vllm=vllm_available())
        try:
            model, tokenizer = FastLanguageModel.from_pretrained(**kwargs)
        except (OSError, ValueError) as exc:
            raise GRPOError(f"cannot load adapter {cfg.adapter!r} with unsloth: {str(exc).strip().splitlines()[0]}") from None
        notes.extend(models.fix_tokenizer(tokenizer, model.config))
        models.set_spec_templates(tokenizer, spec)
    else:
        model, tokenizer = backend.load_base(tc, spec, notes)
    report = check_tokenizer(spec, tokenizer, fix=True)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
        notes.append(f"resized the embeddings to {len(tokenizer)} tokens for the new pad token")
    models.align_model_tokens(model, tokenizer)
    if cfg.adapter and name != "unsloth":
        try:
            model = models.load_adapter(model, cfg.adapter, is_trainable=True)
        except models.ModelLoadError as exc:
            raise GRPOError(str(exc)) from None
    elif not cfg.adapter:
        model = backend.add_lora(tc, model)
        notes.append(f"no --adapter: GRPO trains a new LoRA (r {tc.lora_r}) on {tc.model}")
    return model, tokenizer, tc, report


def grpo(
    spec: FormatSpec,
    cfg: GRPOTrainConfig,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    callbacks: tuple = (),
    log=None,
) -> GRPOResult:
    """GRPO on ``cfg``'s model with ``reasoning_kit.rewards.build(spec)``; see the module docstring."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.perf_counter()
    out = output_path(cfg, spec)
    # Clear errors before anything loads (prepare_prompts checks the split again for direct callers).
    checks = [lambda: refuse_eval_split(cfg.dataset, cfg.dataset_split or None)]
    if cfg.adapter:
        checks.append(lambda: adapter_base(cfg.adapter))
    name, why, backend, resume_from = open_run(cfg.backend, out, overwrite=overwrite, resume=resume, log=log,
                                               checks=checks)

    from reasoning_kit import rewards

    from .data import prepare_prompts

    notes: list[str] = []
    model, tokenizer, tc, report = _load(name, backend, cfg, spec, notes)
    log(f"model: {tc.model}" + (f" + adapter {cfg.adapter}" if cfg.adapter else ""))
    for line in report.lines():
        log(line)
    data = prepare_prompts(
        spec, cfg.dataset, tokenizer, max_seq_length=cfg.max_seq_length, max_prompt_length=cfg.max_prompt_length,
        max_completion_length=cfg.max_completion_length, limit=cfg.dataset_limit or None,
        split=cfg.dataset_split or None, progress=progress,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        funcs = rewards.build(spec, tokenizer=tokenizer)
    notes.extend(str(w.message) for w in caught)
    for note in notes:
        log(f"note: {note}")
    log(
        f"prompts: {data.summary['rows_kept']} of {data.summary['rows_in']} from {cfg.dataset}; "
        f"max_prompt_length {data.max_prompt_length}, max_completion_length {data.max_completion_length}; "
        f"rewards: {', '.join(f.__name__ for f in funcs)}"
    )
    create_output(out, resume=resume)
    _write_json(out / "data_summary.json", data.summary)
    trainer, (recorder, stop, budget, samples) = _trainer(name, cfg, tc, model, tokenizer, data, funcs, out, progress,
                                                          notes, callbacks, spec)
    (out / "spec.toml").write_text(spec.text)
    _write_json(out / "grpo_config.json", config_dict(cfg))

    interrupted = run_trainer(trainer, stop, budget, resume_from=resume_from, max_minutes=cfg.max_minutes, notes=notes,
                              log=log)
    state = trainer.state
    result = GRPOResult(out, "interrupted" if interrupted else "completed", state.global_step, state.max_steps,
                        start_adapter=cfg.adapter or None, model=tc.model)
    if interrupted:
        result.checkpoint = last_checkpoint(out)
    else:
        result.adapter_dir = out / "adapter"
        trainer.model.save_pretrained(str(result.adapter_dir))
        tokenizer.save_pretrained(str(result.adapter_dir))
    from .curves import chart, curves, summary

    rows = curves(state.log_history)
    if rows:
        chart(rows, out / "curves.png", title=f"GRPO {spec.name}: {tc.model}" + (" + SFT adapter" if cfg.adapter else ""))
    result.metrics = {
        "status": result.status,
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "stopped_by_time_budget": budget.stopped_at is not None and not interrupted,
        "resumed_from": str(resume_from) if resume_from else None,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "rewards": [f.__name__ for f in funcs],
        "reward_summary": summary(rows),
        "curves": rows,
        "samples_written": samples.written,
        **recorder.summary(),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "peak_memory": peak_memory(),
        **device_info(),
        "backend": name,
        "backend_reason": why,
        "notes": notes,
        "tokenizer": report.to_dict(),
        "model": tc.model,
        "adapter": cfg.adapter or None,
        "dataset": cfg.dataset,
        "data": data.summary,
        "spec": {"name": spec.name, "source": spec.source},
        "config": config_dict(cfg),
        "versions": versions(),
        "date": _now(),
    }
    _write_json(out / "metrics.json", result.metrics)
    return result


def _trainer(name, cfg, tc, model, tokenizer, data, funcs, out, progress, notes, callbacks, spec):
    from trl import GRPOConfig, GRPOTrainer

    from harness.train.callbacks import Recorder, StopOnInterrupt, TimeBudget

    from .samples import SampleWriter

    if name == "unsloth":
        from unsloth import is_bfloat16_supported

        from harness.train.backends.unsloth import precision

        bf16, fp16 = precision(tc, is_bfloat16_supported())
        optim, gc = cfg.optim, None  # Unsloth applies its own gradient checkpointing
        cpu = False
    else:
        from harness.train.backends.hf import machine_plan

        p = machine_plan(tc)
        notes.extend(n for n in p.notes if n not in notes)
        bf16, fp16, optim, gc = p.bf16, p.fp16, p.optim, p.gradient_checkpointing
        cpu = p.device == "cpu"
    args = GRPOConfig(
        **grpo_args(cfg, output_dir=out, max_completion_length=data.max_completion_length, bf16=bf16, fp16=fp16,
                    optim=optim, progress=progress, gradient_checkpointing=gc, cpu=cpu)
    )
    recorder, stop, budget = Recorder(), StopOnInterrupt(), TimeBudget(cfg.max_minutes)
    samples = SampleWriter(spec, out / "samples.jsonl", cfg.sample_every)
    trainer = GRPOTrainer(
        model=model, reward_funcs=funcs, args=args, train_dataset=data.dataset, processing_class=tokenizer,
        callbacks=[recorder, stop, budget, samples, *callbacks],
    )
    samples.trainer = trainer
    return trainer, (recorder, stop, budget, samples)
