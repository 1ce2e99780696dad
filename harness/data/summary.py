"""The prepare summary in words: drop reasons, token-length percentiles, the CLI's lines.

Not handled here: computing the counts (``prepare``) or printing them (``cli``).
"""

from __future__ import annotations

from reasoning_kit.validator import CODES

from .recipes import FINAL_MARK

from harness.stats import PERCENTILES, percentiles  # noqa: F401  (re-exported: one definition)


def describe(reason: str, max_tokens: int | None = None) -> str:
    """Which filter a drop reason comes from, in words."""
    if reason == "answer_not_numeric":
        return "the numeric-answer filter: the answer is not numeric for pd.to_numeric"
    if reason == "too_long":
        return f"the length filter: more than {max_tokens} tokens = max_seq_length/2"
    if reason == "no_final_answer":
        return f"the GSM8K parser: no '{FINAL_MARK} N' line"
    if reason == "marker_in_question":
        return "the question holds a tag or end-of-sequence string"
    if reason == "eos_token_in_completion":
        return "the reasoning or answer holds the tokenizer's end-of-sequence token"
    if reason.startswith("missing_"):
        return f"an empty {reason[len('missing_'):]!r} value"
    if reason in CODES:
        return f"the spec's validator: {CODES[reason]}"
    return reason


def summary_lines(summary: dict) -> list[str]:
    """The summary as the CLI prints it."""
    lines = [
        f"dataset: {summary['dataset']} ({summary['format']} format)",
        f"rows in: {summary['rows_in']}",
        f"rows kept: {summary['rows_kept']}",
        f"dropped: {sum(summary['dropped'].values())}",
    ]
    lines += [f"  {r}: {n} ({describe(r, summary['max_tokens'])})" for r, n in summary["dropped"].items()]
    t = summary["token_length"]
    if t is None:
        lines.append("token length: not measured (no tokenizer, so no length filter)")
    else:
        lines.append(
            f"token length: p50 {t['p50']}, p90 {t['p90']}, p99 {t['p99']}, max {t['max']} (limit {summary['max_tokens']})"
        )
    return lines
