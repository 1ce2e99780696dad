"""CLI command ``reward``: score completions with the spec's GRPO reward functions.

For debugging a reward before a GPU run: each line of a JSON-lines file holds a
``completion`` (a string, or TRL's conversational list of messages) and the gold answer
(the spec's ``[answer] column``, or ``--column``); ``prompt`` and ``completion_ids`` are
used when present. Prints each completion's per-reward scores, its total and its error
codes, then the means; ``--json`` prints the same as one JSON object. Thin: the scoring is
``reasoning_kit.rewards``; bad input, a completion that holds no text, a ``prompt`` that is
neither text nor messages and ``completion_ids`` that are not token ids included, is a one-line
error (exit status 2) before anything is scored.

Not checked here: the gold answer's type (one the rewards cannot parse scores ``n/a``) and the
shape of each prompt message (only that it is an object).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import click

from .cliutil import UserError, spec_option

NEEDS_GOLD = {"answer", "numbers", "closeness"}
_JSON_KINDS = {int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
_NO_CONTENT = {list: "a list with no message holding string 'content'", dict: "an object without string 'content'"}
_MESSAGES = '{"role", "content"} messages'


def _kind(value: object) -> str:
    """What a JSON value is, in words: ``null``, ``true``, ``a number``, ``a list``..."""
    return json.dumps(value) if value is None or isinstance(value, bool) else _JSON_KINDS[type(value)]


def _shown(value: object) -> str:
    """A JSON value as written when it is short (``-1``, ``"5"``, ``[3]``), else its kind."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 20 else _kind(value)


def completion_problem(completion: object) -> str | None:
    """Why a ``completion`` field holds no text the rewards can score, or None when it does.

    The rewards themselves score a non-string completion as ``not_text`` (a trainer must not
    stop on one), but here it comes from the user's file: a mistake in the input, not a score.

    >>> completion_problem([{"role": "assistant", "content": "4"}]) is None
    True
    >>> print(completion_problem(None))
    'completion' is null, not text (expected a string or a list of {"role", "content"} messages)
    """
    from reasoning_kit.answers import completion_text

    if completion_text(completion) is not None:
        return None
    kind = _NO_CONTENT.get(type(completion)) or _kind(completion)
    return f"'completion' is {kind}, not text (expected a string or a list of {_MESSAGES})"


def prompt_problem(prompt: object) -> str | None:
    """Why a ``prompt`` field is neither text nor messages, or None when it is one (or null).

    The rewards take any prompt that is not a string as conversational, so a number there
    would change a score silently.

    >>> prompt_problem([{"role": "user", "content": "2 + 2?"}]) is None
    True
    >>> print(prompt_problem(["hi"]))
    'prompt' holds "hi" at index 0, not a message (expected null, a string or a list of {"role", "content"} messages)
    """
    expected = f"(expected null, a string or a list of {_MESSAGES})"
    if prompt is None or isinstance(prompt, str):
        return None
    if not isinstance(prompt, list):
        return f"'prompt' is {_kind(prompt)}, not text or messages {expected}"
    for i, message in enumerate(prompt):
        if not isinstance(message, dict):
            return f"'prompt' holds {_shown(message)} at index {i}, not a message {expected}"
    return None


def ids_problem(ids: object) -> str | None:
    """Why a ``completion_ids`` field is not token ids, or None when it is (or is null).

    Token ids are non-negative integers; ``true`` is not one, nor is ``1.0``.

    >>> ids_problem([5, 0]) is None
    True
    >>> print(ids_problem([5, True]))
    'completion_ids' holds true at index 1, not a token id (expected null or a list of non-negative integers)
    """
    expected = "(expected null or a list of non-negative integers)"
    if ids is None:
        return None
    if not isinstance(ids, list):
        return f"'completion_ids' is {_kind(ids)}, not a list of token ids {expected}"
    for i, token in enumerate(ids):
        if isinstance(token, bool) or not isinstance(token, int) or token < 0:
            return f"'completion_ids' holds {_shown(token)} at index {i}, not a token id {expected}"
    return None


OPTIONAL_FIELDS = {"prompt": prompt_problem, "completion_ids": ids_problem}


def _read_lines(name: str) -> tuple[str, str]:
    if name == "-":
        try:
            return "<stdin>", sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"<stdin> is not UTF-8 text (invalid byte at offset {exc.start})") from None
    path = Path(name)
    if path.is_dir():
        raise UserError(f"cannot read {name}: is a directory")
    try:
        return name, path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"cannot read {name}: no such file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{name} is not UTF-8 text (invalid byte at offset {exc.start})") from None
    except OSError as exc:
        raise UserError(f"cannot read {name}: {exc.strerror or exc}") from None


def read_records(name: str, column: str, need_gold: bool) -> list[tuple[str, dict]]:
    """(source, record) for each non-blank line; every record has a completion with text (and gold).

    Every bad line (its first problem) is reported at once (exit 2) before anything is scored.
    """
    from reasoning_kit import jsonl

    label, text = _read_lines(name)
    rows, bad = jsonl.parse(text)
    records = []
    for number, record in rows:
        if not isinstance(record, dict):
            bad.append((number, f"expected a JSON object, got {type(record).__name__}"))
            continue
        found = ", ".join(sorted(record)) or "none"
        if "completion" not in record:
            bad.append((number, f"no 'completion' field (found: {found})"))
        elif problem := completion_problem(record["completion"]):
            bad.append((number, problem))
        elif need_gold and column not in record:
            bad.append((number, f"no gold answer field {column!r} (found: {found}); choose it with --column"))
        elif problem := next(filter(None, (check(record.get(f)) for f, check in OPTIONAL_FIELDS.items())), None):
            bad.append((number, problem))
        else:
            records.append((f"{label}:{number}", record))
    if bad:
        raise UserError(jsonl.summarise(label, sorted(bad)))
    if not records:
        raise UserError(f"{label} holds no completions (expected one JSON object per line)")
    return records


def score(spec, records: list[tuple[str, dict]], names: tuple[str, ...], column: str) -> dict:
    """Run the rewards over the records as one batch; a JSON-ready report."""
    from reasoning_kit import rewards
    from reasoning_kit.answers import completion_text
    from reasoning_kit.validator import validate

    funcs = rewards.build(spec, names, answer_column=column)
    batch = [r for _, r in records]
    columns = {column: [r.get(column) for r in batch], "completion_ids": [r.get("completion_ids") for r in batch]}
    results = {
        f.__name__: f(prompts=[r.get("prompt") for r in batch], completions=[r["completion"] for r in batch], **columns)
        for f in funcs
    }
    rows, codes = [], Counter()
    for i, (source, record) in enumerate(records):
        scores = {name: results[name][i] for name in results}
        text = completion_text(record["completion"])
        check = validate(spec, text, transcript=False)  # a completion, as the rewards see it
        codes.update(set(check.codes))
        rows.append({
            "source": source,
            "scores": scores,
            "total": sum(s for s in scores.values() if s is not None),
            "valid": check.valid,
            "codes": list(check.codes),
            "answer": check.answer,
            "gold": record.get(column),
        })
    means = {}
    for name in list(results) + ["total"]:
        values = [r["total"] if name == "total" else r["scores"][name] for r in rows]
        values = [v for v in values if v is not None]
        means[name] = sum(values) / len(values) if values else None
    return {"spec": spec.name, "rewards": list(results), "rows": rows, "mean": means, "error_codes": dict(codes)}


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def render(report: dict) -> str:
    """The report as an aligned table for people."""
    names = report["rewards"]
    head = ["completion", *names, "total", "errors"]
    body = [[r["source"], *(_fmt(r["scores"][n]) for n in names), _fmt(r["total"]), ",".join(r["codes"]) or "-"]
            for r in report["rows"]]
    body.append(["mean", *(_fmt(report["mean"][n]) for n in names), _fmt(report["mean"]["total"]), ""])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, lines[1])
    if report["error_codes"]:
        counts = ", ".join(f"{c} {n}" for c, n in sorted(report["error_codes"].items(), key=lambda x: (-x[1], x[0])))
        lines.append(f"error codes: {counts}")
    return "\n".join(lines)


@click.command("reward")
@spec_option()
@click.argument("file", type=str)
@click.option("--column", default=None, help="Field holding the gold answer (default: the spec's [answer] column).")
@click.option(
    "--rewards", "names", default=None,
    help="Comma-separated rewards to run (default: the spec's [rewards] enabled; 'all' for every reward).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def reward_cmd(spec, file: str, column: str | None, names: str | None, as_json: bool) -> None:
    """Score completions in FILE (JSON lines; '-' for stdin) with the spec's GRPO rewards.

    Each line: {"completion": "...", "answer": "42"} (optional: "prompt", "completion_ids").
    """
    from reasoning_kit.reward_config import REWARD_NAMES

    column = column or spec.answer.column
    if names is None:
        chosen = tuple(spec.rewards.enabled)
    elif names.strip() == "all":
        chosen = REWARD_NAMES
    else:
        chosen = tuple(n.strip() for n in names.split(",") if n.strip())
    unknown = [n for n in chosen if n not in REWARD_NAMES]
    if unknown or not chosen:
        bad = unknown[0] if unknown else names
        raise UserError(f"unknown reward {bad!r} (known: {', '.join(REWARD_NAMES)})")
    records = read_records(file, column, need_gold=bool(NEEDS_GOLD & set(chosen)))
    try:
        report = score(spec, records, chosen, column)
    except ValueError as exc:  # bad reward settings in the spec (e.g. a repeated name)
        raise UserError(str(exc)) from None
    click.echo(json.dumps(report, ensure_ascii=False) if as_json else render(report))
