"""The ``reasoning-kit`` command: a thin click group over the library.

Subcommands live in their own modules and are imported only when invoked, so
``reasoning-kit validate`` never pays for torch, transformers or unsloth.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from harness.cliutil import UserError

# name -> ("module:attribute" of a click command or group, one-line help shown by --help).
COMMANDS = {
    "validate": ("harness.cli_format:validate_cmd", "Check model outputs against the spec's format."),
    "template": ("harness.cli_format:template_cmd", "Print the spec's Jinja chat template."),
    "regex": ("harness.cli_format:regex_cmd", "Print the spec's reward regex."),
    "render": ("harness.cli_format:render_cmd", "Render a conversation (JSON) with the spec's chat template."),
    "reward": ("harness.cli_reward:reward_cmd", "Score completions with the spec's GRPO reward functions."),
    "data": ("harness.data.cli:data_group", "Prepare and inspect SFT data formatted by the spec."),
    "train": ("harness.train.cli:train_cmd", "Fine-tune a model to answer in the spec's format (SFT)."),
    "fetch-model": ("harness.train.cli:fetch_model_cmd", "Fetch the offline SmolLM2-135M-Instruct model."),
    "grpo": ("harness.grpo.cli:grpo_cmd", "GRPO with the spec's reward functions on an SFT adapter."),
    "eval": ("harness.evaluate.cli:eval_group", "Measure format compliance and answer accuracy; compare runs."),
    "export": ("harness.cli_export:export_group", "Print the spec's response_template for transformers, TRL and vLLM."),
    "audit": ("harness.audit.cli:audit_cmd", "Audit the spec's tags and EOS strings against a model before training."),
    "reward-audit": ("harness.audit.cli:reward_audit_cmd", "Try completions that game the rewards (exit 1 when one pays)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (help texts come from COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[name][0].partition(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        """A bad option value of a subcommand is one ``Error:`` line, like every other user error (click
        would print the usage and a hint first); ``--help`` shows the usage."""
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if exc.ctx is None or exc.ctx.command is self or type(exc).__name__ == "NoArgsIsHelpError":
                raise  # the root's own errors keep click's usage; a bare group prints its help
            name = exc.ctx.command_path
            raise UserError(f"{name}: {exc.format_message()} (see {name} --help)") from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reasoning-kit")
def main() -> None:
    """reasoning-kit: one TOML spec for an R1-style reasoning format.

    The spec generates the chat template, the validator and the reward regex; the
    commands below prepare data, train, evaluate and score completions with it.
    """


@main.result_callback()
def _leave(*_args, **_kwargs) -> None:
    """A launched process other than rank 0 leaves as soon as its command is done, without the interpreter's
    teardown: it has written nothing and has nothing left to do, and C++ threads (gloo, the launcher's store) that
    were still joinable at teardown aborted a rank now and then ("terminate called without an active exception",
    seen once in the 2-process GRPO test on a loaded 2-core machine, after ``ranks.finish``), failing the launch."""
    from harness import ranks

    here = ranks.current()
    if here.distributed and not here.is_main:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
