"""Recipes: how each dataset layout becomes (question, reasoning, answer) fields.

The layout is detected from the columns (:func:`detect_recipe`):

- ``openmath`` — the seed's ``unsloth/OpenMathReasoning-mini`` (split ``cot``):
  ``expected_answer``, ``problem``, ``generated_solution``. Exactly the seed's steps: keep
  rows whose ``expected_answer`` passes ``pd.to_numeric(..., errors="coerce").notnull()``
  (for answer kind ``number``), remove ``<think>`` and ``</think>`` from the solution, strip
  whitespace at its edges. The answer and the problem are used as written.
- ``gsm8k`` — ``question``, ``answer``: the reasoning is the worked solution before the
  ``#### N`` line with the ``<<48/2=24>>`` calculator annotations removed; the answer is N
  with its thousands commas removed when it follows the spec's number grammar
  (``1,080`` -> ``1080``), then the same numeric filter.
- ``generic`` — ``question``, ``reasoning``, ``answer``: reasoning stripped, answer as GSM8K's N.
- ``dapo`` — ``prompt``, ``solution`` (the seed notebook's GRPO data,
  ``open-r1/DAPO-Math-17k-Processed``): no worked solution, so only for GRPO and evaluation.

:func:`extract_rows` returns one :class:`Row` per input row with the first drop reason,
if any. Not handled here: the chat template, the validator and the length filter (see
``prepare``), reading files (``sources``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from reasoning_kit.regex import NUMBER_RE
from reasoning_kit.spec import FormatSpec

from .sources import DataError

_ANNOTATION = re.compile(r"<<.*?>>")  # GSM8K calculator annotation: <<48/2=24>>
FINAL_MARK = "####"  # GSM8K: the last line is "#### N"


@dataclass(frozen=True)
class Recipe:
    """A dataset layout: its required columns and a title for messages."""

    name: str
    title: str
    columns: tuple[str, ...]
    question: str = "question"  # the column holding the question


OPENMATH = Recipe("openmath", "OpenMathReasoning", ("expected_answer", "problem", "generated_solution"), "problem")
GENERIC = Recipe("generic", "question/reasoning/answer", ("question", "reasoning", "answer"))
GSM8K = Recipe("gsm8k", "GSM8K", ("question", "answer"))
# Prompts and answers without worked solutions (the seed notebook's GRPO data): GRPO and evaluation only.
DAPO = Recipe("dapo", "DAPO-Math (prompt/solution)", ("prompt", "solution"), "prompt")
RECIPES = {r.name: r for r in (OPENMATH, GENERIC, GSM8K, DAPO)}  # detection order
PROMPT_ONLY = (DAPO,)


@dataclass(frozen=True)
class Row:
    """One input row's fields, or the reason it is dropped."""

    index: int  # position in the source
    question: str | None
    reasoning: str | None
    answer: str | None
    reason: str | None = None  # first drop reason, None if the row goes on


def _join(names) -> str:
    return ", ".join(names) if names else "(none)"


def detect_recipe(columns, dataset: str, name: str | None = None) -> Recipe:
    """The recipe for these columns (or the named one); DataError naming missing and present columns."""
    present = [str(c) for c in columns]
    if name is not None and name != "auto":
        if name not in RECIPES:
            raise DataError(f"unknown format {name!r} (known: auto, {', '.join(RECIPES)})")
        candidates = [RECIPES[name]]
    else:
        for recipe in RECIPES.values():
            if set(recipe.columns) <= set(present):
                return recipe
        candidates = [r for r in RECIPES.values() if set(r.columns) & set(present)]
    if not candidates:
        layouts = "; ".join(f"{r.title}: {', '.join(r.columns)}" for r in RECIPES.values())
        raise DataError(f"{dataset}: no known column layout ({layouts}); present columns: {_join(present)}")
    # The closest layout: most of its columns present, then fewest missing.
    recipe = max(candidates, key=lambda r: (len(set(r.columns) & set(present)), -len(r.columns)))
    missing = [c for c in recipe.columns if c not in present]
    if not missing:
        return recipe
    word = "column" if len(missing) == 1 else "columns"
    raise DataError(
        f"{dataset}: missing {word} {_join(missing)} for the {recipe.title} format "
        f"(needs {', '.join(recipe.columns)}); present columns: {_join(present)}"
    )


def as_text(value) -> str | None:
    """A cell as text: None/NaN -> None, strings as is, other scalars via str()."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    try:
        import pandas as pd

        if pd.isna(value) is True:
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def seed_numeric_mask(values) -> list[bool]:
    """The seed's numeric filter: ``pd.to_numeric(pd.Series(values), errors="coerce").notnull()``."""
    import pandas as pd

    return pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").notnull().tolist()


def strip_annotations(text: str) -> str:
    """Remove GSM8K calculator annotations: ``48/2 = <<48/2=24>>24`` -> ``48/2 = 24``."""
    return _ANNOTATION.sub("", text)


def normalise_number(text: str) -> str:
    """Strip; drop thousands commas when the text is one number in the spec's grammar (1,080 -> 1080)."""
    s = text.strip()
    if "," in s and NUMBER_RE.fullmatch(s):
        return s.replace(",", "")
    return s


def split_gsm8k_answer(text: str) -> tuple[str, str] | None:
    """(reasoning without annotations, final answer) from a GSM8K answer, or None without '#### N'."""
    if FINAL_MARK not in text:
        return None
    working, _, final = text.rpartition(FINAL_MARK)
    return strip_annotations(working).strip(), normalise_number(final)


def _missing(**values: str | None) -> str | None:
    """``missing_<column>`` for the first empty value (None, or whitespace only), else None."""
    for column, value in values.items():
        if value is None or not value.strip():
            return f"missing_{column}"
    return None


def extract_rows(recipe: Recipe, frame, spec: FormatSpec) -> list[Row]:
    """One Row per row of ``frame``: the recipe's fields and the first reason to drop it."""
    cols = {c: [as_text(v) for v in frame[c].tolist()] for c in recipe.columns}
    n = len(frame)
    numeric = spec.answer.kind == "number"
    rows: list[Row] = []
    if recipe in PROMPT_ONLY:
        raise DataError(
            f"the {recipe.title} layout has no worked solutions to fine-tune on: use it for grpo or eval, "
            "or give SFT data with question, reasoning, answer columns"
        )
    if recipe is OPENMATH:
        # The seed filters on the numeric answer first, then formats the rest.
        keep = seed_numeric_mask(frame["expected_answer"].tolist()) if numeric else [True] * n
        for i in range(n):
            q, sol, a = cols["problem"][i], cols["generated_solution"][i], cols["expected_answer"][i]
            reason = None if keep[i] else "answer_not_numeric"
            reason = reason or _missing(problem=q, generated_solution=sol, expected_answer=a)
            thoughts = None if reason else sol.replace("<think>", "").replace("</think>", "").strip()
            rows.append(Row(i, q, thoughts, a, reason))
        return rows
    for i in range(n):
        q, a = cols["question"][i], cols["answer"][i]
        if recipe is GSM8K:
            reason = _missing(question=q, answer=a)
            parts = None if reason else split_gsm8k_answer(a)
            if parts is None:
                rows.append(Row(i, q, None, None, reason or "no_final_answer"))
                continue
            reasoning, answer = parts
        else:
            r = cols["reasoning"][i]
            reason = _missing(question=q, reasoning=r, answer=a)
            if reason:
                rows.append(Row(i, q, None, None, reason))
                continue
            reasoning, answer = r.strip(), normalise_number(a)
        rows.append(Row(i, q, reasoning, answer))
    if numeric:
        live = [r for r in rows if r.reason is None]
        ok = dict(zip((r.index for r in live), seed_numeric_mask(r.answer for r in live)))
        rows = [r if ok.get(r.index, True) else Row(r.index, r.question, r.reasoning, r.answer, "answer_not_numeric") for r in rows]
    return rows


def gold_answer(recipe: Recipe, row: dict) -> str | None:
    """The gold answer of one raw row for evaluation (GSM8K: the '#### N' value, or the whole answer)."""
    if recipe is OPENMATH:
        a = as_text(row["expected_answer"])
        return a.strip() if a is not None else None
    a = as_text(row["solution" if recipe is DAPO else "answer"])
    if a is None:
        return None
    if recipe is GSM8K and FINAL_MARK in a:
        a = a.rpartition(FINAL_MARK)[2]
    return normalise_number(a)
