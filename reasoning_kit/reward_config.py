"""The [rewards] table of a spec: which GRPO rewards to build and their scores.

Defaults reproduce the constants of the seed notebook's four reward functions
(match_format_exactly, match_format_approximately, check_answer, check_numbers), so the
recipe can be reproduced; every score can be changed in the spec. The reward functions
themselves live in ``reasoning_kit.rewards``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import option


@dataclass(frozen=True, kw_only=True)
class RewardConfig:
    """Scores for the reward functions built by ``reasoning_kit.rewards.build``."""

    format_exact: float = option(3.0, help="format_exact: score when the completion matches the strict format.")
    format_tag_ok: float = option(0.5, help="format_approx: score per tag seen exactly once.")
    format_tag_bad: float = option(-1.0, help="format_approx: score per tag seen zero or several times.")
    answer_exact: float = option(5.0, help="answer: extracted answer equals the gold answer as written.")
    answer_stripped: float = option(3.5, help="answer: equal after stripping whitespace / normalising.")
    answer_within_10pct: float = option(2.0, help="answer: number within 10% of the gold answer.")
    answer_within_20pct: float = option(1.5, help="answer: number within 20% of the gold answer.")
    answer_wrong: float = option(-2.5, help="answer: an answer that is wrong.")
    answer_missing: float = option(-2.0, help="answer: no answer could be extracted.")
    numbers_correct: float = option(3.5, help="numbers: the number in the solution block equals the gold number.")
    numbers_wrong: float = option(-1.5, help="numbers: a number that differs from the gold number.")
    numbers_missing: float = option(-2.5, help="numbers: no number in the solution block.")
