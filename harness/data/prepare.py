"""SFT data formatted by the spec: the seed's recipe as a library call.

:func:`prepare_dataset` loads a dataset (``sources``), turns each row into
(question, reasoning, answer) (``recipes``), then, as the seed does:

1. messages ``[system, user=question, assistant=R0 + reasoning + R1 + S0 + answer + S1]``
   built from the spec (``reasoning_kit.template.training_messages``);
2. the spec's validator must accept the assistant turn, else the row is dropped with the
   validator's first error code as its reason (a tag inside the reasoning, an empty
   reasoning, an answer outside the number grammar such as ``1e5``); a question holding a
   tag or end-of-sequence string is dropped as ``marker_in_question``;
3. ``text`` = the conversation rendered with the spec's chat template and the tokenizer's
   EOS token (byte-identical to ``tokenizer.apply_chat_template`` with that template);
4. with a tokenizer: ``n_tokens`` = the length of ``apply_chat_template(messages)`` (the
   rendered text tokenized without added special tokens, batched), and rows with
   ``n_tokens <= max_seq_length / 2`` are kept.

Every drop is counted by reason in ``summary`` (printed by ``summary.summary_lines``).
:func:`eval_questions` gives ``{id, question, answer}`` for evaluation. Not handled here:
reading files and hub access (``sources``), column layouts (``recipes``), writing files
(``cli``).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from reasoning_kit.spec import FormatSpec
from reasoning_kit.template import render, training_messages
from reasoning_kit.validator import validate

from .recipes import as_text, detect_recipe, extract_rows, gold_answer, seed_numeric_mask
from .sources import Checked, DataError, check_source, load_source
from .summary import describe, percentiles, summary_lines

__all__ = ["DataError", "PreparedData", "eval_questions", "prepare_dataset", "summary_lines"]

TOKEN_BATCH = 256


@dataclass(frozen=True)
class PreparedData:
    """``dataset``: a datasets.Dataset (text, messages, answer, question, source_row[, n_tokens]); ``summary``: counts."""

    dataset: object
    summary: dict = field(default_factory=dict)


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive number of rows, got {limit!r}")


def _load_tokenizer(source, spec: FormatSpec):
    """A tokenizer object from a model dir / .gguf / alias / hub id (``harness.models``), or the object itself."""
    if source is None or not isinstance(source, (str, os.PathLike)):
        return source
    from harness import models

    try:
        return models.load_tokenizer(str(source), spec=spec)
    except models.ModelLoadError as exc:
        raise DataError(str(exc)) from None


def count_tokens(tokenizer, texts: list[str], *, progress: bool = True) -> list[int]:
    """``len(tokenizer.apply_chat_template(messages))`` for rendered texts (no added special tokens)."""
    from tqdm.auto import tqdm

    counts: list[int] = []
    with tqdm(total=len(texts), desc="counting tokens", unit="row", disable=not progress) as bar:
        for start in range(0, len(texts), TOKEN_BATCH):
            batch = texts[start : start + TOKEN_BATCH]
            ids = tokenizer(batch, add_special_tokens=False)["input_ids"]
            counts.extend(len(x) for x in ids)
            bar.update(len(batch))
    return counts


PREPARED = ("text", "messages", "answer", "question", "source_row")  # the columns of a prepared row, in order


def _no_rows_left(name: str, rows_in: int, dropped: Counter, max_tokens: int | None, columns=()) -> DataError:
    if rows_in == 0:
        return DataError(f"{name}: the dataset has no rows")
    parts = [f"{n} dropped by {describe(r, max_tokens)} ({r})" for r, n in dropped.most_common()]
    hint = ""
    if set(PREPARED) <= {str(c) for c in columns}:
        hint = (" (this looks like the output of `reasoning-kit data prepare`: give the raw dataset it was prepared "
                "from; the formatting happens again)")
    return DataError(f"{name}: no rows left ({rows_in} in): " + "; ".join(parts) + hint)


def prepare_dataset(
    spec: FormatSpec,
    dataset: str | Checked,
    *,
    tokenizer=None,
    max_seq_length: int = 2048,
    limit: int | None = None,
    split: str | None = None,
    progress: bool = True,
    for_eval: bool = False,
    recipe: str | None = None,
) -> PreparedData:
    """Format ``dataset`` for SFT with ``spec``; raise DataError (one line) on bad input.

    ``tokenizer`` is a tokenizer object or a path/alias to load; without one the length
    filter is skipped. ``limit`` keeps the first N source rows. ``recipe`` forces a layout
    (openmath, gsm8k, generic) instead of detecting it from the columns. ``dataset`` is checked by
    ``sources.check_source`` (unless it is the :class:`~harness.data.sources.Checked` that call returned).
    """
    from tqdm.auto import tqdm

    _check_limit(limit)
    source = load_source(check_source(dataset, split, training=not for_eval))
    frame = source.frame if limit is None else source.frame.iloc[:limit]
    rec = detect_recipe(frame.columns, source.name, recipe)
    tok = _load_tokenizer(tokenizer, spec)
    from harness.models import eos_text

    eos = eos_text(spec, tok)
    extra = () if eos in spec.markers else (eos,)  # a tokenizer EOS the spec does not list
    max_tokens = int(max_seq_length // 2) if tok is not None else None

    dropped: Counter = Counter()
    kept: list[dict] = []
    rows = extract_rows(rec, frame, spec)
    for row in tqdm(rows, desc="formatting", unit="row", disable=not progress):
        if row.reason:
            dropped[row.reason] += 1
            continue
        if any(m in row.question for m in spec.markers + extra):
            dropped["marker_in_question"] += 1
            continue
        messages = training_messages(spec, row.question, row.reasoning, row.answer)
        completion = messages[-1]["content"]
        check = validate(spec, completion, transcript=False)
        if not check.valid:
            dropped[check.codes[0]] += 1
            continue
        if any(m in completion for m in extra):
            dropped["eos_token_in_completion"] += 1
            continue
        text = render(spec, messages, eos_token=eos)
        kept.append(dict(zip(PREPARED, (text, messages, check.answer, row.question, row.index))))
    if not kept:
        raise _no_rows_left(source.name, len(frame), dropped, max_tokens, frame.columns)

    if tok is not None:
        counts = count_tokens(tok, [k["text"] for k in kept], progress=progress)
        for k, n in zip(kept, counts):
            k["n_tokens"] = n
        fits = [n <= max_seq_length / 2 for n in counts]  # the seed: dataset.loc[dataset["N"] <= max_seq_length/2]
        if not all(fits):
            dropped["too_long"] += fits.count(False)
            kept = [k for k, ok in zip(kept, fits) if ok]
        if not kept:
            raise _no_rows_left(source.name, len(frame), dropped, max_tokens, frame.columns)

    from datasets import Dataset

    columns = list(kept[0])
    data = Dataset.from_dict({c: [k[c] for k in kept] for c in columns})
    summary = {
        "dataset": source.name,
        "source": source.location,
        "format": rec.name,
        "spec": spec.name,
        "rows_in": len(frame),
        "rows_kept": len(kept),
        "dropped": dict(sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0]))),
        "max_tokens": max_tokens,
        "token_length": percentiles([k["n_tokens"] for k in kept]) if tok is not None else None,
        "eos_token": eos,
    }
    return PreparedData(data, summary)


def eval_questions(
    spec: FormatSpec, dataset: str | Checked = "gsm8k-test", limit: int | None = None, *, split: str | None = None
) -> list[dict]:
    """``[{id, question, answer}]`` from the first ``limit`` rows of ``dataset`` that have both.

    ``id`` is the row's ``id`` column when there is one, else its row number. ``answer`` is
    the gold answer (GSM8K: the ``#### N`` value, commas removed). For answer kind
    ``number``, rows whose gold answer fails the seed's numeric filter are left out.
    """
    _check_limit(limit)
    source = load_source(dataset, split)
    frame = source.frame
    rec = detect_recipe(frame.columns, source.name)
    records = frame.to_dict("records")
    out = []
    for i, row in enumerate(records):
        question = row.get(rec.question)
        gold = gold_answer(rec, row)
        if not isinstance(question, str) or not question.strip() or not gold:
            continue
        ident = i if as_text(row.get("id")) is None else row["id"]
        out.append({"id": ident, "question": question, "answer": gold})
    if spec.answer.kind == "number":
        keep = seed_numeric_mask(q["answer"] for q in out)
        out = [q for q, k in zip(out, keep) if k]
    if limit is not None:
        out = out[:limit]
    if not out:
        raise DataError(f"{source.name}: no rows with a question and a gold answer")
    return out
