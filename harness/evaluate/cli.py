"""``reasoning-kit eval``: evaluate a model under a spec; ``reasoning-kit eval compare``: compare runs.

Thin: parses options, calls :func:`harness.evaluate.run.evaluate` or
:func:`harness.evaluate.compare.compare_table`, prints. Torch and transformers are imported
only once a run starts, so ``--help`` and ``compare`` are fast.
"""

from __future__ import annotations

import click

from harness.cliutil import UserError, spec_option


class RunOption(click.Option):
    """An option required to run an evaluation, but not for ``eval compare``: help marks it [required].

    Click cannot require a group's option only when no subcommand follows, so the command
    checks it (``Missing option '--model'.``) and this class only shows it.
    """

    def get_help_extra(self, ctx: click.Context):
        return {**super().get_help_extra(ctx), "required": "required"}


class EvalGroup(click.Group):
    """``eval`` runs an evaluation; ``eval compare`` is its one subcommand. Usage shows both."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] --model M --out DIR")
        formatter.write_usage(ctx.command_path, "compare RUNS... [--chart FILE]", prefix="   or: ")


@click.group(cls=EvalGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@spec_option()
@click.option("--model", "model", cls=RunOption, default=None, metavar="M", help="Hub id, local model directory, .gguf file or alias (smollm2-135m-instruct).")
@click.option("--adapter", default=None, help="LoRA adapter directory to apply on top of --model.")
@click.option("--dataset", default="gsm8k-test", show_default=True, help="Questions: gsm8k-test, or a dataset the data loader accepts.")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N questions.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Prompts per generate call (hf: padded batch; vllm: chunk).")
@click.option("--max-new-tokens", type=int, default=512, show_default=True, help="Generation budget per prompt.")
@click.option("--backend", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True, help="hf: transformers generate; vllm: needs the vllm extra.")
@click.option("--prompt-style", type=click.Choice(["spec", "native"]), default="spec", show_default=True,
              help="spec: the spec's chat template + generation prompt; native: the model's own chat template (baseline).")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 = greedy decoding.")
@click.option("--top-p", type=float, default=1.0, show_default=True, help="Nucleus sampling (only when --temperature > 0).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed (only when --temperature > 0).")
@click.option("--stop-at-solution-end/--no-stop-at-solution-end", default=True, show_default=True,
              help="Stop a prompt right after the solution end tag (else only at EOS or the budget).")
@click.option("--constrained", is_flag=True,
              help="Decode through the spec's grammar (llguidance; extra 'constrained'): every output is valid.")
@click.option("--fast-decoding/--no-fast-decoding", default=True, show_default=True,
              help="hf backend: decode with the exact fast path (grouped-query SDPA, a preallocated KV cache, "
                   "CUDA-graph steps on a GPU); off: transformers' own decoding.")
@click.option("--device", default=None, help="torch device (default: cuda if available, else cpu).")
@click.option("--out", "out_dir", cls=RunOption, default=None, metavar="DIR", type=click.Path(file_okay=False), help="Output directory (resumes if it holds outputs.jsonl).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def eval_group(ctx: click.Context, spec, model, adapter, dataset, limit, batch_size, max_new_tokens, backend,
               prompt_style, temperature, top_p, seed, stop_at_solution_end, constrained, fast_decoding, device, out_dir,
               quiet) -> None:
    """Measure format compliance and answer accuracy of MODEL (+ ADAPTER) on a dataset.

    \b
      reasoning-kit eval --spec working_out --model M --adapter outputs/working_out --limit 200 --out runs/tuned
      reasoning-kit eval --spec working_out --model M --prompt-style native --limit 200 --out runs/base
      reasoning-kit eval compare runs/base runs/tuned --chart runs/compare.png
    """
    if ctx.invoked_subcommand is not None:
        return
    for name, value in (("--model", model), ("--out", out_dir)):
        if value is None:
            raise click.UsageError(f"Missing option '{name}'.")
    from harness.cliutil import exit_interrupted
    from harness.outputs import OutputError

    from . import EvalError
    from .run import evaluate

    try:
        report = evaluate(
            spec, model, adapter=adapter, dataset=dataset, limit=limit, batch_size=batch_size,
            max_new_tokens=max_new_tokens, backend=backend, out_dir=out_dir, prompt_style=prompt_style,
            sampling={"temperature": temperature, "top_p": top_p, "seed": seed}, progress=not quiet,
            stop_at_solution_end=stop_at_solution_end, device=device, constrained=constrained,
            fast_decoding=fast_decoding,
        )
    except (EvalError, OutputError) as exc:
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        exit_interrupted(f"aborted (Ctrl-C): finished rows are kept in {out_dir}/outputs.jsonl; "
                         "run the same command again to continue")
    m = report["metrics"]
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    click.echo(
        f"{m['n']} prompts: format compliance {pct(m['format_compliance'])}, accuracy {pct(m['accuracy'])}, "
        f"accuracy among compliant {pct(m['accuracy_compliant'])}, lenient accuracy {pct(m['lenient_accuracy'])}"
    )
    click.echo(f"report: {out_dir}/report.md")


@eval_group.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--chart", "chart_path", default=None, type=click.Path(dir_okay=False), help="Also write a combined PNG chart here.")
def compare_cmd(runs, chart_path) -> None:
    """Print a side-by-side table of evaluation RUNS (directories holding report.json).

    Runs are compared on the prompts they share (by id); a warning line on stderr names each
    difference that makes the columns unlike: prompt sets, dataset, prompt style, spec, max new
    tokens, sampling, stop at the solution end, constrained decoding.
    """
    from . import EvalError
    from .compare import check_chart_path, compare_chart, compare_table, compare_warnings

    try:
        if chart_path:
            check_chart_path(list(runs), chart_path)  # before the table: an error prints one line only
        for line in compare_warnings(list(runs)):
            click.echo(line, err=True)
        click.echo(compare_table(list(runs)), nl=False)
        if chart_path:
            compare_chart(list(runs), chart_path)
            click.echo(f"chart: {chart_path}")
    except EvalError as exc:
        raise UserError(str(exc)) from None
