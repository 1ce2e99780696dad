"""GRPO prompts from the spec, with gold answers, and the seed's prompt-length rule.

:func:`prepare_prompts` reads a dataset through the same loader as SFT and evaluation
(``harness.data``: GSM8K, OpenMathReasoning, question/answer files, and the seed notebook's
``open-r1/DAPO-Math-17k-Processed`` prompt/solution layout), and builds one row per problem:

- ``prompt``: ``[system = the spec's system prompt, user = the problem]`` in TRL's
  conversational form; ``GRPOTrainer`` renders it with the spec's chat template and
  ``add_generation_prompt=True``, so the prompt ends with the spec's generation prompt;
- the gold answer in the column the rewards read (``spec.answer.column``).

Then, as the seed notebook: prompt lengths are counted with the tokenizer,
``max_prompt_length`` = the 90th-percentile length + 1 unless set, prompts longer than
``max_prompt_length - 1`` are dropped, and ``max_completion_length`` = ``max_seq_length -
max_prompt_length`` unless set. Problems that contain one of the spec's tags or
end-of-sequence strings are dropped too (the rewards could not tell them from the output).
:func:`check_prompt_source` refuses, before anything loads, a split that chooses nothing and an
evaluation-only source (GSM8K test, ``arithmetic-test``), with the words ``data prepare`` and
``train`` use. Not handled: tokenization for training (TRL does it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from reasoning_kit.spec import FormatSpec
from reasoning_kit.template import prompt_messages, render

from harness.data.prepare import count_tokens, eval_questions
from harness.data.sources import Checked, DataError, check_source
from harness.stats import percentiles, quantile

from . import GRPOError

QUANTILE = 0.9  # the seed notebook's np.quantile(lengths, 0.9)


@dataclass
class PromptData:
    dataset: object  # datasets.Dataset: prompt, <answer column>, id
    summary: dict
    max_prompt_length: int
    max_completion_length: int


def check_prompt_source(dataset: str | Checked, split: str | None = None) -> Checked:
    """``sources.check_source`` for training, as a GRPOError: a split that chooses nothing, an evaluation-only source."""
    try:
        return check_source(dataset, split, training=True)
    except DataError as exc:
        raise GRPOError(str(exc)) from None


def prepare_prompts(
    spec: FormatSpec,
    dataset: str | Checked,
    tokenizer,
    *,
    max_seq_length: int,
    max_prompt_length: int = 0,
    max_completion_length: int = 0,
    limit: int | None = None,
    split: str | None = None,
    progress: bool = True,
) -> PromptData:
    """The GRPO prompts of ``dataset`` (see the module docstring); GRPOError when none are left.

    ``dataset`` is checked by :func:`check_prompt_source` unless it is the :class:`Checked` that call returned.
    """
    checked = check_prompt_source(dataset, split)
    try:
        rows = eval_questions(spec, checked, limit)
    except DataError as exc:
        raise GRPOError(str(exc)) from None
    markers = (*spec.tag_list, *spec.eos)
    dropped: Counter = Counter()
    kept = []
    for row in rows:
        if any(m in row["question"] for m in markers):
            dropped["marker_in_question"] += 1
        else:
            kept.append(row)
    if not kept:
        raise GRPOError(f"{checked.dataset}: no prompts left ({dict(dropped)})")
    from harness.models import eos_text

    eos = eos_text(spec, tokenizer)
    messages = [prompt_messages(spec, r["question"]) for r in kept]
    texts = [render(spec, m, add_generation_prompt=True, eos_token=eos) for m in messages]
    lengths = count_tokens(tokenizer, texts, progress=progress)
    longest = max_prompt_length - 1 if max_prompt_length else int(quantile(lengths, QUANTILE))
    max_prompt = longest + 1
    completion = max_completion_length or max_seq_length - max_prompt
    if completion < 1:
        raise GRPOError(
            f"no room for completions: max_seq_length {max_seq_length} - max_prompt_length {max_prompt} = {completion}; "
            "raise grpo.max_seq_length or set grpo.max_prompt_length"
        )
    column = spec.answer.column
    table = {"prompt": [], column: [], "id": []}
    for row, msgs, n in zip(kept, messages, lengths):
        if n > longest:
            dropped["prompt_too_long"] += 1
            continue
        table["prompt"].append(msgs)
        table[column].append(str(row["answer"]))
        table["id"].append(str(row["id"]))
    from datasets import Dataset

    summary = {
        "dataset": checked.dataset,
        "rows_in": len(rows),
        "rows_kept": len(table["prompt"]),
        "dropped": dict(dropped),
        "prompt_tokens": percentiles(lengths),
        "max_prompt_length": max_prompt,
        "max_completion_length": completion,
        "answer_column": column,
    }
    return PromptData(Dataset.from_dict(table), summary, max_prompt, completion)
