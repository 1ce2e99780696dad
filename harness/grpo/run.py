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

The run goes through ``harness.lifecycle``, as ``reasoning-kit train`` does, with the same
output policy (``harness.outputs``): a non-empty directory needs ``--overwrite`` (only a
previous grpo run's, replaced once the new run has a result) or ``--resume``; every setting,
including what TRL's GRPOConfig would reject, is checked before anything is written.
:class:`GRPORecipe` is what is particular to GRPO. Not handled: vLLM generation (Unsloth uses it
by itself when vLLM is installed; never run here). Several processes: docs/multi_gpu.md.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from reasoning_kit.grpo_config import GRPOTrainConfig
from reasoning_kit.spec import FormatSpec

from harness import fastdecode, ranks
from harness.lifecycle import RunResult, run_lifecycle
from harness.train.sft import checkpointing_args

from . import GRPOError, fastgen
from .config import adapter_base, config_dict, loading_config, output_path
from .data import check_prompt_source

GRPOResult = RunResult


def grpo_args(cfg: GRPOTrainConfig, *, output_dir: Path, max_completion_length: int, bf16: bool, fp16: bool,
              optim: str, progress: bool, gradient_checkpointing: bool | None, cpu: bool = False,
              reward_weights: list[float] | None = None) -> dict:
    """``trl.GRPOConfig`` keyword arguments for ``cfg`` (the seed notebook's GRPO stage, then the [grpo] loss keys)."""
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
        loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards,
        mask_truncated_completions=cfg.mask_truncated_completions,
        epsilon=cfg.epsilon,
        # explicit: Unsloth replaces None with DAPO's 0.28 when loss_type is 'dapo' (TRL reads None as epsilon)
        epsilon_high=cfg.epsilon_high or cfg.epsilon,
        num_iterations=cfg.num_iterations,
        importance_sampling_level=cfg.importance_sampling_level,
        reward_weights=reward_weights,
        steps_per_generation=cfg.steps_per_generation or None,
        cache_implementation=None if cfg.cache_implementation == "dynamic" else cfg.cache_implementation,
        use_transformers_continuous_batching=cfg.use_transformers_paged,
        bf16=bf16,
        fp16=fp16,
        report_to=cfg.report_to,
        logging_first_step=True,
        disable_tqdm=not progress,
        dataloader_pin_memory=not cpu,
        ddp_find_unused_parameters=False,  # several processes: every LoRA weight takes part in each forward
    )
    return args | checkpointing_args(gradient_checkpointing)


class GRPORecipe:
    """What ``harness.lifecycle`` needs to know about a GRPO run: settings, loading, trainer, saving."""

    command = "grpo"
    config_file = "grpo_config.json"
    error = GRPOError

    def __init__(self, spec: FormatSpec, cfg: GRPOTrainConfig):
        self.spec, self.cfg = spec, cfg
        self.out = output_path(cfg, spec)
        self.backend = cfg.backend
        self.start_adapter = cfg.adapter or None
        self.model_name = ""
        self.data = None

    def check(self) -> None:
        """Clear errors before anything loads; ``load`` hands the checked dataset on, so it is checked once."""
        self.source = check_prompt_source(self.cfg.dataset, self.cfg.dataset_split or None)
        if self.cfg.adapter:
            adapter_base(self.cfg.adapter)

    def trainer_args(self, name: str, output_dir: Path, *, progress: bool, notes: list[str]):
        """The ``trl.GRPOConfig`` for this run (before loading: with [grpo]'s own completion length)."""
        from trl import GRPOConfig

        cfg = self.cfg
        tc = loading_config(cfg, self.spec.train)
        if name == "unsloth":
            from unsloth import is_bfloat16_supported

            from harness.train.backends.unsloth import precision

            bf16, fp16 = precision(tc, is_bfloat16_supported())
            optim, gc, cpu = cfg.optim, None, False  # Unsloth applies its own gradient checkpointing
        else:
            from harness.train.backends.hf import machine_plan

            p = machine_plan(tc)
            notes.extend(n for n in p.notes if n not in notes)
            bf16, fp16, optim, gc, cpu = p.bf16, p.fp16, p.optim, p.gradient_checkpointing, p.device == "cpu"
        length = self.data.max_completion_length if self.data else (cfg.max_completion_length or cfg.max_seq_length // 2)
        weights = self.spec.rewards.weights.of(self.spec.rewards.enabled)
        return GRPOConfig(**grpo_args(cfg, output_dir=output_dir, max_completion_length=length, bf16=bf16, fp16=fp16,
                                      optim=optim, progress=progress, gradient_checkpointing=gc, cpu=cpu,
                                      reward_weights=weights))

    def load(self, name, backend, notes: list[str], *, log, progress: bool) -> None:
        from reasoning_kit import rewards

        from .data import prepare_prompts

        cfg, spec = self.cfg, self.spec
        self.log = log
        self.model, self.tokenizer, self.tc, self.report = _load(name, backend, cfg, spec, notes)
        self.model_name = self.tc.model
        log(f"model: {self.tc.model}" + (f" + adapter {cfg.adapter}" if cfg.adapter else ""))
        for line in self.report.lines():
            log(line)
        self.data = prepare_prompts(
            spec, self.source, self.tokenizer, max_seq_length=cfg.max_seq_length, max_prompt_length=cfg.max_prompt_length,
            max_completion_length=cfg.max_completion_length, limit=cfg.dataset_limit or None, progress=progress,
        )
        self.check_enough_prompts(self.data.summary, ranks.current().world_size)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.funcs = rewards.build(spec, tokenizer=self.tokenizer)
        notes.extend(str(w.message) for w in caught)
        for note in notes:
            log(f"note: {note}")
        log(
            f"prompts: {self.data.summary['rows_kept']} of {self.data.summary['rows_in']} from {cfg.dataset}; "
            f"max_prompt_length {self.data.max_prompt_length}, max_completion_length {self.data.max_completion_length}; "
            f"rewards: {', '.join(f.__name__ for f in self.funcs)}"
        )

    def check_enough_prompts(self, summary: dict, world_size: int) -> None:
        """TRL only serves whole generation rounds: fewer prompts than one round needs would train 0 steps."""
        cfg = self.cfg
        kept = summary["rows_kept"]
        per_round = cfg.steps_per_generation or cfg.gradient_accumulation_steps
        need = cfg.per_device_train_batch_size * per_round * world_size
        if kept < need:
            dropped = {k: v for k, v in (summary.get("dropped") or {}).items() if v}
            why = f" of {summary.get('rows_in')} ({', '.join(f'{v} {k}' for k, v in dropped.items())} dropped)" if dropped else ""
            fixes = ["more rows", "a smaller batch"]
            fixes += ["a smaller steps_per_generation (0: a round per step)"] if per_round > 1 else []
            fixes += ["a larger max_prompt_length"] if dropped.get("prompt_too_long") else []
            raise GRPOError(
                f"{cfg.dataset}: {kept} prompt(s) kept{why}, but one generation round needs {need} "
                f"(per_device_train_batch_size {cfg.per_device_train_batch_size} x steps_per_generation {per_round} x "
                f"{world_size} process(es)); GRPO would train 0 steps: use {', '.join(fixes[:-1])} or {fixes[-1]}"
            )

    def files_before(self) -> dict:
        return {"data_summary.json": self.data.summary}

    def make_trainer(self, name, backend, output_dir: Path, callbacks: list, *, notes: list[str], progress: bool):
        from trl import GRPOTrainer

        from harness.console import ZeroVarianceWatch

        from .samples import SampleWriter
        from .timing import instrument

        args = self.trainer_args(name, output_dir, progress=progress, notes=notes)
        self.samples = SampleWriter(self.spec, output_dir / "samples.jsonl", self.cfg.sample_every)
        self.watch = ZeroVarianceWatch(lambda message: self.log(f"warning: {message}"))
        trainer = GRPOTrainer(model=self.model, reward_funcs=self.funcs, args=args, train_dataset=self.data.dataset,
                              processing_class=self.tokenizer,
                              callbacks=[*callbacks[:3], self.samples, self.watch, *callbacks[3:]])
        self.samples.trainer = trainer
        self.timing = instrument(trainer)
        self.fastgen = self.fastdecode = None
        if self.cfg.merged_generation:
            if why := fastgen.reason(name, trainer.model, ranks.engine()):
                notes.append(f"merged_generation: off ({why}); TRL samples with the training model")
            else:
                self.fastgen = fastgen.install(trainer.model)
        why = fastdecode.reason(name, paged=self.cfg.use_transformers_paged)
        if self.cfg.fast_decoding and why:
            notes.append(f"fast_decoding: off ({why})")
        if name != "unsloth":  # always: the wrapper keeps the KV cache under gradient checkpointing
            fast = self.cfg.fast_decoding and why is None
            graphs, off = fastdecode.graphs_mode(self.cfg.decode_graphs, ranks.engine())
            if fast and off:
                notes.append(f"decode_graphs: off ({off})")
            self.fastdecode = fastdecode.install(self.fastgen.model if self.fastgen else trainer.model, fast=fast,
                                                 graphs=graphs)
        return trainer

    def save(self, name: str, trainer, work: Path) -> None:
        if self.fastdecode:
            self.fastdecode.undo()
        fastgen.uninstall(trainer.model, self.fastgen)
        trainer.model.save_pretrained(str(work / "adapter"))
        self.tokenizer.save_pretrained(str(work / "adapter"))

    def run_metrics(self, trainer, work: Path) -> dict:
        from harness import outputs

        from .curves import chart, curves, summary

        rows = curves(trainer.state.log_history)
        if rows:
            title = f"GRPO {self.spec.name}: {self.tc.model}" + (" + SFT adapter" if self.cfg.adapter else "")
            outputs.refuse_symlink(work / "curves.png")
            chart(rows, work / "curves.png", title=title)
        return {"rewards": [f.__name__ for f in self.funcs], "reward_summary": summary(rows), "curves": rows,
                "samples_written": self.samples.written, "timing": self.timing.summary(),
                "merged_generation_syncs": self.fastgen.syncs if self.fastgen else None,
                "fast_decoding_calls": self.fastdecode.calls if self.fastdecode and self.fastdecode.fast else None,
                "decode_graphed_steps": self.fastdecode.graphed_steps if self.fastdecode else None,
                "decode_not_graphed": sorted(self.fastdecode.graph_skips) if self.fastdecode else None,
                "zero_variance_warning_at_step": self.watch.warned_at}

    def describe(self) -> dict:
        return {"model": self.tc.model, "adapter": self.cfg.adapter or None, "dataset": self.cfg.dataset,
                "data": self.data.summary}

    def config_dict(self) -> dict:
        return config_dict(self.cfg)


def _load(name: str, backend, cfg: GRPOTrainConfig, spec: FormatSpec, notes: list[str]):
    """(model with trainable LoRA, tokenizer, loading TrainConfig, tokenizer report)."""
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
        except (OSError, ValueError, RuntimeError) as exc:
            raise GRPOError(f"cannot load adapter {cfg.adapter!r} with unsloth: {models.first_line(exc)}") from None
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
    evaluates: bool = False,
) -> RunResult:
    """GRPO on ``cfg``'s model with ``reasoning_kit.rewards.build(spec)``; see the module docstring.

    ``evaluates``: the caller evaluates on ``cfg.eval_dataset`` afterwards (``mainjob``); it is checked first."""
    return run_lifecycle(GRPORecipe(spec, cfg), overwrite=overwrite, resume=resume, progress=progress,
                         callbacks=callbacks, log=log, evaluates=evaluates)
