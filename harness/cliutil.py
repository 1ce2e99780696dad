"""Shared pieces of the CLI: the --spec option and one-line user errors.

Library errors that a user can fix (a bad spec, a missing file, a bad column) become
:class:`UserError`: click prints ``Error: <one line>`` and exits with status 2, never a
traceback. Ctrl-C ends every command the same way (:func:`exit_interrupted`): one line saying
what is kept and how to continue, exit status 130.
"""

from __future__ import annotations

import click

from reasoning_kit.schema import SpecError


class UserError(click.ClickException):
    """A one-line error the user can act on; exit status 2 (usage, spec or input error)."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()) if "\n" in str(message) else str(message))


INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C


def exit_interrupted(message: str):
    """Print ``message`` (what is kept, how to continue) on stderr and exit with status 130."""
    import sys

    click.echo(f"\n{message}", err=True)
    sys.exit(INTERRUPTED)


def load_spec_or_fail(value: str):
    from reasoning_kit.spec import load_spec

    try:
        return load_spec(value)
    except SpecError as exc:
        raise UserError(exc.one_line()) from None


def _spec_callback(ctx: click.Context, param: click.Parameter, value: str):
    return load_spec_or_fail(value)


def spec_option(default: str | None = "working_out", **kw):
    """``--spec``: a path to a spec TOML or the name of a shipped spec (loaded and checked)."""
    return click.option(
        "--spec",
        "spec",
        default=default,
        show_default=True,
        callback=_spec_callback,
        help="Spec file (path) or shipped spec name (working_out, think_answer).",
        **kw,
    )


def session_summary(what: str, result) -> str:
    """``trained 14 steps (6 -> 20 of 20) in 222 s on DEVICE``: this session's steps, not the run's total."""
    m = result.metrics
    steps = m.get("steps_this_session", result.global_step)
    span = f" ({result.global_step - steps} -> {result.global_step} of {result.max_steps})" if steps != result.global_step else ""
    return f"{what} {steps} steps{span} in {m.get('train_seconds', 0):.0f} s on {m.get('device', '?')}"


def shown(value) -> str:
    """A config value as a spec file writes it: true/false, "" for an empty string, a list as a, b."""
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return '""'
    if isinstance(value, (tuple, list)):
        return ", ".join(map(str, value))
    return str(value)


def key_help(config: type, table: str, key: str, text: str) -> str:
    """``text`` plus "[table] key, default X (--offline: Y)", read from the config dataclass.

    The default (and the ``--offline`` preset's value, when the preset sets the key) comes from
    the schema (``reasoning_kit.train_config`` / ``grpo_config``), so help cannot drift from it.
    A spec's own [table] values override these defaults.
    """
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(config)}
    help_text = f"{text} [{table}] {key}, default {shown(fields[key].default)}"
    preset = fields["offline"].default.as_dict() if "offline" in fields else {}
    if key in preset and preset[key] != fields[key].default:
        help_text += f" (--offline: {shown(preset[key])})"
    return help_text + "."


def offline_help(config: type, table: str, what: str) -> str:
    """``--offline``'s help: what the preset is for, then every key it sets with its value."""
    import dataclasses

    preset = next(f for f in dataclasses.fields(config) if f.name == "offline").default
    keys = ", ".join(f"{k}={shown(v)}" for k, v in preset.values)
    return f"Apply the [{table}.offline] preset: {what} It sets {keys} (a spec's [{table}.offline] table may change them)."
