"""One training run: backend, model, tokenizer checks, data, LoRA, SFT, outputs.

:func:`train` writes into the output directory (``cfg.output_dir``, ``{name}`` = spec name):

- ``adapter/``: the LoRA adapter and the tokenizer with the spec's chat template set;
- ``spec.toml`` (a copy of the spec), ``train_config.json`` (the effective [train] values);
- ``data_summary.json`` (rows in/kept, drops by reason, token-length percentiles);
- ``metrics.json``: status, loss curve, trained tokens/s, peak memory, wall time, device,
  backend (and why), every setting the backend had to change, tokenizer report, versions;
- ``checkpoint-N/`` when Ctrl-C stopped the run (or every ``save_steps``); ``merged/`` with ``merge``.

The run goes through ``harness.lifecycle`` (shared with ``grpo``) and the output policy of
``harness.outputs``: a non-empty output directory is refused unless ``overwrite`` (a previous
train run, replaced only once the new run has a result) or ``resume`` (training continues from
its last ``checkpoint-N``; a finished run is refused); every setting, including what
transformers would reject, is checked before anything is written. :class:`SFTRecipe` is what
is particular to SFT. Not handled: evaluation (``mainjob``), argument parsing (``cli``).
"""

from __future__ import annotations

from pathlib import Path

from reasoning_kit.spec import FormatSpec
from reasoning_kit.train_config import TrainConfig

from harness import outputs
from harness.data.sources import check_source
from harness.stats import round_loss
from harness.lifecycle import RunResult, device_info, peak_memory, run_lifecycle, run_trainer, versions  # noqa: F401

from . import TrainError
from .config import config_dict, output_path

RUN_MARK = outputs.RUN_MARK
TrainResult = RunResult
last_checkpoint = outputs.last_checkpoint


def check_output(out: Path, *, overwrite: bool = False, resume: bool = False) -> Path | None:
    """Refuse an output directory a train run cannot use; return the checkpoint to resume from (or None).

    Nothing is written or deleted here (``harness.outputs.plan_run``).
    """
    try:
        return outputs.plan_run(out, "train", overwrite=overwrite, resume=resume).checkpoint
    except outputs.OutputError as exc:
        raise TrainError(str(exc)) from None


def loss_curve(log_history: list[dict]) -> list[dict]:
    keep = ("step", "epoch", "loss", "learning_rate", "grad_norm", "num_input_tokens_seen")
    return [{k: e[k] for k in keep if k in e} for e in log_history if "loss" in e]


class SFTRecipe:
    """What ``harness.lifecycle`` needs to know about an SFT run: settings, loading, trainer, saving."""

    command = "train"
    config_file = "train_config.json"
    error = TrainError
    start_adapter = None

    def __init__(self, spec: FormatSpec, cfg: TrainConfig):
        self.spec, self.cfg = spec, cfg
        self.out = output_path(cfg, spec)
        self.backend = cfg.backend
        self.model_name = cfg.model

    def check(self) -> None:
        """The dataset and its split, before the model loads; ``load`` hands the result on, checked once."""
        self.source = check_source(self.cfg.dataset, self.cfg.dataset_split or None, training=True)

    def trainer_args(self, name: str, output_dir: Path, *, progress: bool, notes: list[str]):
        from . import backends

        return backends.get(name).training_args(self.cfg, output_dir=output_dir, progress=progress, notes=notes)

    def load(self, name, backend, notes: list[str], *, log, progress: bool) -> None:
        from harness.data.prepare import prepare_dataset
        from harness.models import align_model_tokens

        from harness.audit.tokens import check_tokenizer
        from .sft import training_columns

        cfg, spec = self.cfg, self.spec
        log(f"model: {cfg.model}")
        model, tokenizer = backend.load_base(cfg, spec, notes)
        self.report = check_tokenizer(spec, tokenizer, fix=True)
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))
            notes.append(f"resized the embeddings to {len(tokenizer)} tokens for the new pad token")
        align_model_tokens(model, tokenizer)
        for line in self.report.lines():
            log(line)
        for note in notes:
            log(f"note: {note}")
        self.data = prepare_dataset(
            spec, self.source, tokenizer=tokenizer, max_seq_length=cfg.max_seq_length, limit=cfg.dataset_limit or None,
            progress=progress,
        )
        log(f"data: {self.data.summary['rows_kept']} of {self.data.summary['rows_in']} rows kept from {cfg.dataset}")
        self.columns = training_columns(self.data.dataset, spec, tokenizer.eos_token, completion_only=cfg.completion_only_loss)
        self.model, self.tokenizer = backend.add_lora(cfg, model), tokenizer

    def files_before(self) -> dict:
        return {"data_summary.json": self.data.summary}

    def make_trainer(self, name, backend, output_dir: Path, callbacks: list, *, notes: list[str], progress: bool):
        return backend.make_trainer(self.cfg, self.model, self.tokenizer, self.columns, output_dir=output_dir,
                                    callbacks=callbacks, progress=progress, notes=notes)

    def save(self, name: str, trainer, work: Path) -> None:
        trainer.model.save_pretrained(str(work / "adapter"))
        self.tokenizer.save_pretrained(str(work / "adapter"))
        if self.cfg.merge:
            backend_merge(name, trainer.model, self.tokenizer, work / "merged")

    def run_metrics(self, trainer, work: Path) -> dict:
        state = trainer.state
        return {
            "epoch": state.epoch,
            "final_loss": round_loss(next((e["loss"] for e in reversed(state.log_history) if "loss" in e), None)),
            "final_loss_step": next((e.get("step") for e in reversed(state.log_history) if "loss" in e), None),
            "loss_curve": loss_curve(state.log_history),
            "tokens_total": state.num_input_tokens_seen,
        }

    def describe(self) -> dict:
        return {"model": self.cfg.model, "dataset": self.cfg.dataset}

    def config_dict(self) -> dict:
        return config_dict(self.cfg)


def train(
    spec: FormatSpec,
    cfg: TrainConfig,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    callbacks: tuple = (),
    log=None,
    evaluates: bool = False,
) -> RunResult:
    """Fine-tune ``cfg.model`` on ``cfg.dataset`` in the spec's format; see the module docstring.

    ``evaluates``: the caller evaluates on ``cfg.eval_dataset`` afterwards (``mainjob``); it is checked first."""
    return run_lifecycle(SFTRecipe(spec, cfg), overwrite=overwrite, resume=resume, progress=progress,
                         callbacks=callbacks, log=log, evaluates=evaluates)


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
