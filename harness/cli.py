"""The ``reasoning-kit`` command: a thin click group over the library.

Subcommands live in their own modules and are imported only when invoked, so
``reasoning-kit validate`` never pays for torch, transformers or unsloth.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group.
COMMANDS = {
    "validate": "harness.cli_format:validate_cmd",
    "template": "harness.cli_format:template_cmd",
    "regex": "harness.cli_format:regex_cmd",
    "render": "harness.cli_format:render_cmd",
    "reward": "harness.cli_reward:reward_cmd",
    "data": "harness.data.cli:data_group",
    "train": "harness.train.cli:train_cmd",
    "fetch-model": "harness.train.cli:fetch_model_cmd",
    "eval": "harness.evaluate.cli:eval_group",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reasoning-kit")
def main() -> None:
    """reasoning-kit: one TOML spec for an R1-style reasoning format.

    The spec generates the chat template, the validator and the reward regex; the
    commands below prepare data, train, evaluate and score completions with it.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
