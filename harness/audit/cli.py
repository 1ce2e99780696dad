"""CLI commands ``audit`` (the tag audit) and ``reward-audit`` (the reward red-team).

Thin: load, call ``harness.audit``, print. Exit status as ``validate``: 0 no finding / no
hack, 1 findings / a hack scores above a valid wrong answer, 2 usage, spec or load error.
"""

from __future__ import annotations

import importlib
import json
import sys

import click

from harness.cliutil import UserError, spec_option


@click.command("audit")
@spec_option()
@click.option("--model", "model_name", default=None,
              help="Model whose tokenizer (and weights) to audit (default: the spec's [train] model).")
@click.option("--tokenizer-only", is_flag=True, help="Do not load the weights (skips the untrained-embedding check).")
@click.option("--completion-only-loss/--whole-conversation-loss", "completion_only", default=None,
              help="Loss mask to check the stop token against (default: the spec's [train] completion_only_loss).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def audit_cmd(spec, model_name: str | None, tokenizer_only: bool, completion_only: bool | None, as_json: bool) -> None:
    """Audit the spec's tags and EOS strings against a model before training on it."""
    from harness import models

    from .tags import audit

    model_name = model_name or spec.train.model
    notes: list[str] = []
    try:
        tokenizer = models.load_tokenizer(model_name, spec, notes=notes)
        model = None if tokenizer_only else models.load_model(model_name)
    except models.ModelLoadError as exc:
        raise UserError(str(exc)) from None
    notes = [f"load fixes: {n}" for n in notes]
    if tokenizer_only:
        notes.append("--tokenizer-only: embedding rows not checked")
    report = audit(spec, tokenizer, model, model_name=model_name, completion_only=completion_only, notes=notes)
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False) if as_json else "\n".join(report.lines()))
    sys.exit(1 if report.findings else 0)


def load_reward(ref: str) -> list:
    """``module:attribute`` -> reward callables (the attribute may be a callable or a list of them)."""
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise UserError(f"--reward {ref!r}: expected module:function, e.g. trl.rewards:think_format_reward")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise UserError(f"--reward {ref!r}: cannot import {module!r} ({exc})") from None
    except AttributeError:
        raise UserError(f"--reward {ref!r}: {module!r} has no attribute {attr!r}") from None
    funcs = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    if not funcs or not all(callable(f) for f in funcs):
        raise UserError(f"--reward {ref!r} is not a function (or a list of functions)")
    return funcs


@click.command("reward-audit")
@spec_option()
@click.option("--reward", "refs", multiple=True,
              help="module:function with TRL's reward signature (repeatable; default: the spec's own rewards).")
@click.option("--form", type=click.Choice(["auto", "conversational", "standard"]), default="auto", show_default=True,
              help="Completions as TRL passes them for a conversational or a standard (raw text) dataset; auto: "
              "conversational, then raw strings when the function raises on it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def reward_audit_cmd(spec, refs: tuple[str, ...], form: str, as_json: bool) -> None:
    """Score completions that try to game the rewards (derived from the spec) against a valid wrong answer.

    Exit 0 when no invalid completion scores above a valid wrong answer, 1 when one does.
    """
    from . import redteam

    if refs:
        funcs = [f for ref in refs for f in load_reward(ref)]
    else:
        from reasoning_kit import rewards

        funcs = rewards.build(spec)
    try:
        report = redteam.run(spec, funcs, form=form)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False) if as_json else "\n".join(redteam.lines(report)))
    sys.exit(1 if report.hacks else 0)
