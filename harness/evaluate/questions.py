"""Evaluation questions: ``[{id, question, answer}]`` for a dataset name or file.

A thin adapter over ``harness.data.prepare.eval_questions`` (the vendored GSM8K splits,
the generated ``arithmetic-test[:LEVEL]`` problems, hub ids and local files, gold answers
normalised there): ids become strings (outputs.jsonl
keys, which resuming relies on) and data errors become one-line EvalErrors. Not handled
here: which datasets exist or how gold answers are parsed (see ``harness.data``).
"""

from __future__ import annotations

from . import EvalError


def load_questions(spec, dataset: str = "gsm8k-test", limit: int | None = None) -> list[dict]:
    """Questions to evaluate on, each ``{id, question, answer}`` (answer = gold)."""
    from harness.data.prepare import eval_questions

    try:
        rows = eval_questions(spec, dataset, limit)
    except (OSError, ValueError, KeyError) as exc:
        raise EvalError(" ".join(str(exc).split()) or type(exc).__name__) from None
    return [{"id": str(r["id"]), "question": r["question"], "answer": str(r["answer"])} for r in rows]
