"""``reasoning-kit grpo``: parse options, call ``harness.grpo.run``, print where things are.

Every [grpo] key can be overridden: the common ones have options, the rest go through
``--set key=value`` (a TOML value). Problems a user can fix are one-line ``Error: ...``
(exit 2); a run stopped by Ctrl-C exits with status 130 after saying where its checkpoint is.
"""

from __future__ import annotations

import click

from harness.cliutil import UserError, key_help, offline_help, session_summary, spec_option
from reasoning_kit.grpo_config import GRPOTrainConfig


def _key(key: str, text: str) -> str:
    return key_help(GRPOTrainConfig, "grpo", key, text)


@click.command("grpo")
@spec_option()
@click.option("--model", help=_key("model", "Base model: hub id, local directory, .gguf or alias (\"\": the adapter's base)."))
@click.option("--adapter", help=_key("adapter", "SFT adapter directory to continue (reasoning-kit train's <output>/adapter)."))
@click.option("--dataset", help=_key("dataset", "Prompts with gold answers: hub id, file, or gsm8k."))
@click.option("--limit", type=int, help=_key("dataset_limit", "Read only the first N dataset rows."))
@click.option("--backend", type=click.Choice(["auto", "unsloth", "hf"]), help=_key("backend", "Training backend."))
@click.option("--max-steps", type=int, help=_key("max_steps", "GRPO steps."))
@click.option("--lr", type=float, help=_key("learning_rate", "Peak learning rate."))
@click.option("--num-generations", type=int, help=_key("num_generations", "Completions per prompt."))
@click.option("--out", "--output", "output", help=_key("output_dir", "Output directory ({name}: spec name)."))
@click.option("--eval-limit", type=int, help=_key("eval_limit", "Evaluate the starting and the trained model on N prompts after GRPO."))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any [grpo] key (TOML value), repeatable.")
@click.option("--offline", is_flag=True, help=offline_help(
    GRPOTrainConfig, "grpo", "GRPO on the generated arithmetic task from the `train --offline` adapter (trained first "
    "when missing), then before/after on arithmetic-test."))
@click.option("--overwrite", is_flag=True, help="Replace a previous run in the output directory.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in the output directory.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def grpo_cmd(spec, model, adapter, dataset, limit, backend, max_steps, lr, num_generations, output, eval_limit, sets,
             offline, overwrite, resume, no_progress):
    """GRPO with the spec's reward functions, on an SFT adapter or a base model.

    Defaults come from the spec's [grpo] table (the seed notebook's GRPO stage: 4 generations,
    lr 5e-6, 100 steps, DAPO-Math-17k prompts); the defaults shown below are the schema's, which
    a spec's [grpo] table may change. Writes the adapter, metrics.json with the reward
    and error-code curves, curves.png and samples.jsonl. With --offline: the offline model learns
    the arithmetic task (no hub access; a GPU run of a few minutes, docs/grpo.md).
    """
    from harness.train.cli import _user_errors

    from .config import OPTION_KEYS, resolve_config
    from harness.train.config import parse_set

    errors = _user_errors()
    named = dict(model=model, adapter=adapter, dataset=dataset, limit=limit, backend=backend, max_steps=max_steps, lr=lr,
                 num_generations=num_generations, output=output, eval_limit=eval_limit)
    try:
        overrides = parse_set(sets)
        overrides.update({OPTION_KEYS[k]: v for k, v in named.items() if v is not None})
        cfg = resolve_config(spec.grpo, overrides, offline=offline, spec_name=spec.name)
        sft = offline_sft_config(spec, cfg, model) if offline else None
    except errors as exc:
        raise UserError(str(exc)) from None
    if offline:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        from harness.train.backends import cuda_available

        if not cuda_available():
            click.echo("note: no CUDA GPU: --offline is sized for one GPU (minutes there); on a CPU each GRPO step "
                       "takes a minute or more" + (" and the SFT adapter is trained first (about 6 minutes)" if sft else ""),
                       err=True)
    from harness.train.cli import run_to_end

    from .mainjob import run_grpo_job

    result, table = run_to_end(
        lambda: run_grpo_job(spec, cfg, overwrite=overwrite, resume=resume, progress=not no_progress, sft=sft)
    )
    if not result.metrics:  # another rank under a launcher: the main process reports
        return
    m = result.metrics
    s = m.get("reward_summary") or {}
    first, last = (s.get("first") or {}).get("reward"), (s.get("last") or {}).get("reward")
    spans, w = (s.get("first_steps"), s.get("last_steps")), s.get("window_steps", 0)
    where = (f"rewards logged at steps {spans[0][0]}-{spans[0][1]} vs {spans[1][0]}-{spans[1][1]}"
             if all(spans) else f"first and last {w} logged steps")
    click.echo(session_summary("GRPO:", result) + f"; mean reward {first} -> {last} ({where})")
    if table:
        click.echo("\nBefore / after GRPO (greedy):\n")
        click.echo(table)
    click.echo(f"adapter: {result.adapter_dir}")
    click.echo(f"curves: {result.output_dir / 'curves.png'}  metrics: {result.output_dir / 'metrics.json'}")


def offline_sft_config(spec, cfg, model: str | None):
    """The ``train --offline`` config that makes ``cfg.adapter`` when it is missing (None when it exists).

    Only the preset's own adapter path is trained when missing; another missing path is a GRPOError.

    ``{name}`` in the preset's adapter path is the spec name; ``--model`` reaches the SFT run too.
    """
    from pathlib import Path

    from harness.train.config import resolve_config as train_config
    from reasoning_kit.run_config import fill_name

    adapter = Path(cfg.adapter)
    if (adapter / "adapter_config.json").is_file():
        return None
    preset = Path(fill_name(str(spec.grpo.offline.as_dict().get("adapter", "")), spec.name))
    if adapter != preset:  # a path the user typed: a typo must not start a 6-minute SFT run into it
        from . import GRPOError

        raise GRPOError(f"no adapter at {cfg.adapter} (no adapter_config.json); --offline trains the missing SFT "
                        f"adapter only at its own path, {preset}")
    # The SFT run uses GRPO's backend: in one process, importing Unsloth for SFT would patch TRL under a hf GRPO run.
    overrides = {"output_dir": str(adapter.parent), "backend": cfg.backend}
    if model:
        overrides["model"] = model
    return train_config(spec.train, overrides, offline=True)
