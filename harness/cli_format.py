"""CLI commands over the format core: ``validate``, ``template``, ``regex``, ``render``.

Thin: parse arguments, call ``reasoning_kit``, print. Reading inputs and laying out
errors for humans live here; the rules live in the library. Exit status of ``validate``:
0 all outputs valid, 1 any invalid, 2 usage/spec/input error (one line, no traceback; a bad
.jsonl line is reported and the other lines are still checked).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click

from .cliutil import UserError, spec_option


@dataclass(frozen=True)
class Output:
    """One output to validate and where it came from (file, and line for .jsonl)."""

    source: str
    text: object


def _read_text(name: str) -> str:
    if name == "-":
        data = sys.stdin.buffer.read()
        label = "<stdin>"
    else:
        path = Path(name)
        if path.is_dir():
            raise UserError(f"cannot read {name}: is a directory")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UserError(f"cannot read {name}: no such file") from None
        except OSError as exc:
            raise UserError(f"cannot read {name}: {exc.strerror or exc}") from None
        label = name
    if b"\x00" in data:
        raise UserError(f"{label} looks binary (it contains NUL bytes); expected UTF-8 text or JSON lines")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{label} is not UTF-8 text (invalid byte at offset {exc.start})") from None


def read_outputs(names: tuple[str, ...], *, skip_bad_lines: bool = False):
    """Outputs from files: .jsonl gives one per line (field completion or text), else one per file.

    Every bad line of every file is reported at once (exit 2) before anything is validated; with
    ``skip_bad_lines`` the return value is ``(outputs, problems)`` instead, one problem per bad line.
    """
    from reasoning_kit import jsonl

    outputs: list[Output] = []
    problems: list[str] = []
    for name in names:
        text = _read_text(name)
        label = "<stdin>" if name == "-" else name
        if not jsonl.is_jsonl(name):
            outputs.append(Output(label, text))
            continue
        rows, bad = jsonl.parse(text)
        for number, record in rows:
            if not isinstance(record, dict) or not ({"completion", "text"} & record.keys()):
                keys = ", ".join(sorted(record)) if isinstance(record, dict) else type(record).__name__
                bad.append((number, f"needs a 'completion' or 'text' field (found: {keys or 'none'})"))
                continue
            outputs.append(Output(f"{label}:{number}", record.get("completion", record.get("text"))))
        if bad and skip_bad_lines:
            problems.extend(f"{label}:{number}: {reason}" for number, reason in sorted(bad))
        elif bad:
            problems.append(jsonl.summarise(label, sorted(bad)))
        elif not rows:
            problems.append(f"{label} holds no outputs (expected one JSON object per line)")
    if skip_bad_lines:
        return outputs, problems
    if problems:
        raise UserError("; ".join(problems))
    return outputs


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def caret(text: str, start: int, end: int, width: int = 100) -> list[str]:
    """The source line holding ``start`` and a caret row under [start, end)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end == -1 else line_end
    lo = max(line_start, start - width // 2)
    hi = min(line_end, lo + width)
    shown = text[lo:hi].replace("\t", " ")
    marks = max(1, min(end, hi) - start)
    prefix = "…" if lo > line_start else ""
    suffix = "…" if hi < line_end else ""
    return [f"    | {prefix}{shown}{suffix}", "    | " + " " * (len(prefix) + start - lo) + "^" * marks]


def human_report(out: Output, result) -> list[str]:
    if result.valid:
        return [f"{out.source}: valid (answer: {result.answer})"]
    lines = [f"{out.source}: invalid"]
    text = out.text if isinstance(out.text, str) else ""
    for err in result.errors:
        ln, col = line_col(text, err.start)
        lines.append(f"  {ln}:{col}: {err.code}: {err.message}")
        if text:
            lines.extend(caret(text, err.start, err.end))
    return lines


def other_spec_hint(spec, invalid: list, transcript: bool | None) -> str | None:
    """A hint line when most ``invalid`` outputs are valid under another shipped spec (the likely one), else None."""
    from reasoning_kit.spec import load_spec, shipped_specs
    from reasoning_kit.validator import validate

    if not invalid:
        return None
    best, best_n = None, 0
    for name in shipped_specs():
        other = load_spec(name)
        if other.text == spec.text:
            continue
        n = sum(validate(other, text, transcript=transcript).valid for text in invalid)
        if n > best_n:
            best, best_n = name, n
    if best is None or 2 * best_n <= len(invalid):
        return None
    return (f"hint: {best_n} of the {len(invalid)} invalid outputs are valid under the shipped spec {best}; "
            f"did you mean --spec {best}?")


@click.command("validate")
@spec_option()
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per output instead of text.")
@click.option("--transcript/--no-transcript", default=None, help="Treat inputs as rendered transcripts (default: detect).")
def validate_cmd(spec, files: tuple[str, ...], as_json: bool, transcript: bool | None) -> None:
    """Check model outputs against the spec's format.

    FILES: text files (one output each), .jsonl files (one output per line, field
    'completion' or 'text'), or - for stdin. A .jsonl line that cannot be read is
    reported on stderr ("Error: FILE:LINE: why") and the other lines are still checked.

    With --json, one object per output: source (FILE or FILE:LINE), valid, reasoning
    (also for an invalid output whose reasoning block is well-formed), answer, errors
    (code, message, start, end), start, eos.

    When most invalid outputs are valid under another shipped spec, one hint line on stderr
    names it (--spec think_answer on working_out outputs, say).

    Exit 0 if all are valid, 1 if any is not, 2 for a bad spec, an unreadable file or
    a bad .jsonl line (after checking the rest).
    """
    from reasoning_kit.validator import validate

    outputs, problems = read_outputs(files, skip_bad_lines=True)
    counts: Counter[str] = Counter()
    n_valid = 0
    invalid: list = []
    for out in outputs:
        result = validate(spec, out.text, transcript=transcript)
        n_valid += result.valid
        counts.update(result.codes)
        if not result.valid:
            invalid.append(out.text)
        if as_json:
            record = {"source": out.source, **result.to_dict()}
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            click.echo("\n".join(human_report(out, result)))
    hint = other_spec_hint(spec, invalid, transcript)
    if hint:
        click.echo(hint, err=True)
    if not as_json and len(outputs) > 1:
        summary = f"{n_valid}/{len(outputs)} valid"
        if counts:
            summary += "; errors: " + ", ".join(f"{code} {n}" for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        click.echo(summary)
    if problems:  # after the lines that could be checked, one line naming every bad one
        click.echo("Error: " + "; ".join(problems), err=True)
    sys.exit(2 if problems else 0 if n_valid == len(outputs) else 1)


@click.command("template")
@spec_option()
def template_cmd(spec) -> None:
    """Print the spec's Jinja chat template (set it as tokenizer.chat_template)."""
    from reasoning_kit.template import chat_template

    click.echo(chat_template(spec))


@click.command("regex")
@spec_option()
@click.option("--verbose", is_flag=True, help="One commented fragment per line (re.VERBOSE form).")
@click.option("--dialect", type=click.Choice(["python", "portable"]), default="python", show_default=True,
              help="python: the reward regex (re); portable: no lookarounds, for llguidance/xgrammar/outlines-core.")
def regex_cmd(spec, verbose: bool, dialect: str) -> None:
    """Print the reward regex: use it with re.fullmatch; groups 'reasoning' and 'answer'."""
    if dialect == "portable":
        from reasoning_kit.portable_regex import PortableRegexError, portable_pattern

        if verbose:
            raise UserError("--verbose is for --dialect python")
        try:
            click.echo(portable_pattern(spec))
        except PortableRegexError as exc:
            raise UserError(str(exc)) from None
        return
    from reasoning_kit.regex import reward_pattern, verbose_pattern

    click.echo(verbose_pattern(spec) if verbose else reward_pattern(spec))


@click.command("render")
@spec_option()
@click.argument("messages_file")
@click.option("--add-generation-prompt", is_flag=True, help="Append the generation prompt (prefilled reasoning start).")
@click.option("--eos-token", default=None, help="EOS token the template inserts (default: the spec's first EOS).")
def render_cmd(spec, messages_file: str, add_generation_prompt: bool, eos_token: str | None) -> None:
    """Render MESSAGES_FILE (JSON list of {role, content}, or {"messages": [...]}) with the chat template."""
    from reasoning_kit import jsonl
    from reasoning_kit.template import render, skipped_messages

    raw = _read_text(messages_file)
    try:
        data = jsonl.loads(raw, where=True)
    except jsonl.NotJSON as exc:
        raise UserError(f"{messages_file}: {exc}") from None
    messages = data.get("messages") if isinstance(data, dict) else data
    if not isinstance(messages, list):
        raise UserError(f"{messages_file}: expected a JSON list of messages or an object with 'messages'")
    try:
        text = render(spec, messages, add_generation_prompt=add_generation_prompt, eos_token=eos_token)
    except ValueError as exc:
        raise UserError(f"{messages_file}: {exc}") from None
    skipped = skipped_messages(messages)
    if skipped:
        i = skipped[0]
        raise UserError(f"{messages_file}: message {i} has role {messages[i]['role']!r}, which the chat template leaves "
                        "out (it renders a first system message, then user and assistant ones)")
    click.echo(text, nl=sys.stdout.isatty())
