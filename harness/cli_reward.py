"""CLI command ``reward``: score completions with the spec's GRPO reward functions.

For debugging a reward before a GPU run: each line of a JSON-lines file holds a
``completion`` (a string, or TRL's conversational list of messages) and the gold answer
(the spec's ``[answer] column``, or ``--column``); ``prompt`` and ``completion_ids`` are
used when present. Prints each completion's per-reward scores, its total and its error
codes, then the means; ``--json`` prints the same as one JSON object. Thin: the scoring is
``reasoning_kit.rewards``; bad input, a completion that holds no text included, is a one-line
error (exit status 2) before anything is scored.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import click

from .cliutil import UserError, spec_option

NEEDS_GOLD = {"answer", "numbers", "closeness"}
_JSON_KINDS = {int: "a number", float: "a number", list: "a list with no message holding string 'content'",
               dict: "an object without string 'content'"}


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
    kind = json.dumps(completion) if completion is None or isinstance(completion, bool) else _JSON_KINDS[type(completion)]
    return f"'completion' is {kind}, not text (expected a string or a list of {{\"role\", \"content\"}} messages)"


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

    Every bad line is reported at once (exit 2) before anything is scored.
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
