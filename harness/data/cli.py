"""``reasoning-kit data``: prepare SFT data with the spec, and look at it.

``prepare`` checks ``--out`` first (``harness.outputs.check_output_file``: not an input, not a
link, an existing file only with ``--overwrite``), calls
:func:`harness.data.prepare.prepare_dataset`, prints the summary and writes JSONL atomically
(a temporary file renamed over ``--out`` at the end, so an interrupted run leaves any earlier
file intact). ``show`` prints rendered examples with
the spec's tags highlighted (plain text when stdout is not a terminal). pandas,
datasets and transformers are imported only inside ``prepare``.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import click

from harness.cliutil import UserError, spec_option
from reasoning_kit import jsonl

# Colours for highlighted markers: reasoning tags, solution tags, end-of-sequence strings.
STYLES = {"reasoning": dict(fg="cyan", bold=True), "solution": dict(fg="green", bold=True), "eos": dict(fg="magenta")}


@click.group("data")
def data_group() -> None:
    """Prepare and inspect SFT data formatted by the spec."""


def write_jsonl_atomic(path: Path, rows) -> int:
    """Write ``rows`` as JSON Lines to ``path`` via a temporary file and a rename; returns the count.

    The temporary file sits in ``path``'s directory and gets the user's umask; a link at
    ``path`` is replaced, never written through (``harness.outputs``).
    """
    from harness.outputs import _mode

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    n = 0
    try:
        os.fchmod(fd, _mode())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(jsonl.dumps(row))
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


@data_group.command("prepare")
@spec_option()
@click.option(
    "--dataset",
    required=True,
    help="Hub id, local dataset dir, .parquet/.jsonl/.csv path, 'gsm8k' (vendored GSM8K train split) or "
    "'arithmetic[:LEVEL]' (generated problems, docs/data.md).",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output JSONL file.")
@click.option(
    "--tokenizer",
    default=None,
    help="Model dir, .gguf file, alias (smollm2-135m-instruct) or hub id whose tokenizer counts tokens "
    "(enables the length filter).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N rows of the dataset.")
@click.option(
    "--max-seq-length",
    type=click.IntRange(min=2),
    default=2048,
    show_default=True,
    help="Keep rows of at most max_seq_length/2 tokens (the seed).",
)
@click.option("--split", default=None, help="Split of a hub dataset or dataset directory (default: 'cot' for "
              "OpenMathReasoning-mini, else 'train'); refused for files and built-in splits.")
@click.option(
    "--format",
    "recipe",
    type=click.Choice(["auto", "openmath", "gsm8k", "generic"]),
    default="auto",
    show_default=True,
    help="Column layout (auto: detected from the columns).",
)
@click.option("--for-eval", is_flag=True, help="Allow an evaluation-only split (gsm8k-test); never train on the result.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def prepare_cmd(spec, dataset, out, tokenizer, limit, max_seq_length, split, recipe, for_eval, overwrite) -> None:
    """Format a dataset for SFT with the spec and write it as JSON Lines."""
    from harness.outputs import OutputError, check_output_file

    try:  # before anything is read: the source is never the output, an existing file needs --overwrite
        check_output_file(out, overwrite=overwrite, inputs=(dataset, tokenizer))
    except OutputError as exc:
        raise UserError(str(exc)) from None
    missing = [m for m in ("pandas", "datasets") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"'data prepare' needs {' and '.join(missing)}: pip install 'reasoning-kit[train]'")
    from .prepare import DataError, prepare_dataset, summary_lines

    try:
        prepared = prepare_dataset(
            spec, dataset, tokenizer=tokenizer, max_seq_length=max_seq_length, limit=limit,
            split=split, for_eval=for_eval, recipe=recipe,
        )  # fmt: skip
    except DataError as exc:
        raise UserError(str(exc)) from None
    for line in summary_lines(prepared.summary):
        click.echo(line)
    try:
        n = write_jsonl_atomic(out, iter(prepared.dataset))
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {n} examples to {out}")


def highlight(spec, text: str) -> str:
    """``text`` with the spec's tags and end-of-sequence strings wrapped in click styles."""
    kinds = {spec.tags.reasoning_start: "reasoning", spec.tags.reasoning_end: "reasoning"}
    kinds |= {spec.tags.solution_start: "solution", spec.tags.solution_end: "solution"}
    kinds |= {e: "eos" for e in spec.eos}
    out, i = [], 0
    while i < len(text):
        hits = [(text.find(m, i), m) for m in kinds]
        hits = [(p, m) for p, m in hits if p != -1]
        if not hits:
            out.append(text[i:])
            break
        p, m = min(hits, key=lambda h: (h[0], -len(h[1])))
        out.append(text[i:p] + click.style(m, **STYLES[kinds[m]]))
        i = p + len(m)
    return "".join(out)


def _read_examples(path: Path) -> list[dict]:
    try:
        parsed, bad = jsonl.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if bad:
        raise UserError(f"{path} line {bad[0][0]} is {bad[0][1]}")
    rows = []
    for lineno, row in parsed:
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise UserError(f"{path} line {lineno} has no 'text' field (write the file with 'reasoning-kit data prepare')")
        rows.append(row)
    if not rows:
        raise UserError(f"{path} holds no examples")
    return rows


@data_group.command("show")
@spec_option()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-n", "count", type=click.IntRange(min=1), default=3, show_default=True, help="How many examples to print.")
def show_cmd(spec, file, count) -> None:
    """Print the first N rendered examples of a prepared JSONL file, tags highlighted."""
    rows = _read_examples(file)
    for i, row in enumerate(rows[:count], 1):
        facts = [f"answer {row['answer']}"] if "answer" in row else []
        facts += [f"{row['n_tokens']} tokens"] if "n_tokens" in row else []
        head = f"--- example {i} of {len(rows)}" + (f" ({', '.join(facts)})" if facts else "") + " ---"
        click.echo(click.style(head, bold=True))
        click.echo(highlight(spec, row["text"]))
