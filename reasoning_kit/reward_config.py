"""The [rewards] table of a spec: which GRPO rewards to build and their scores.

Defaults reproduce the constants of the seed notebook's four reward functions
(match_format_exactly, match_format_approximately, check_answer, check_numbers), so the
recipe can be reproduced; every score can be changed in the spec. Two more rewards are
opt-in: ``closeness`` (a smooth score for numbers near the gold answer) and ``length``
(a truncation / over-length penalty). The reward functions themselves live in
``reasoning_kit.rewards``; this module only declares the settings.

``[rewards.weights]`` gives each reward's weight in the total GRPO reward (TRL's
``reward_weights``, by reward name); names in ``enabled`` and every number are checked when
the spec loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .schema import option

# Every reward reasoning_kit.rewards.build can make, in its default order.
REWARD_NAMES = ("format_exact", "format_approx", "answer", "numbers", "closeness", "length")
# The seed notebook's four functions.
DEFAULT_REWARDS = ("format_exact", "format_approx", "answer", "numbers")


@dataclass(frozen=True, kw_only=True)
class RewardWeights:
    """[rewards.weights]: each reward's weight in the total reward (TRL's reward_weights)."""

    format_exact: float = option(1.0, help="Weight of format_exact.")
    format_approx: float = option(1.0, help="Weight of format_approx.")
    answer: float = option(1.0, help="Weight of answer.")
    numbers: float = option(1.0, help="Weight of numbers.")
    closeness: float = option(1.0, help="Weight of closeness.")
    length: float = option(1.0, help="Weight of length.")

    def of(self, names) -> list[float]:
        """The weights of ``names`` (reward function names), in order."""
        return [getattr(self, n) for n in names]


@dataclass(frozen=True, kw_only=True)
class RewardConfig:
    """Scores for the reward functions built by ``reasoning_kit.rewards.build``."""

    enabled: tuple[Literal[REWARD_NAMES], ...] = option(  # type: ignore[valid-type]
        DEFAULT_REWARDS,
        help="Rewards build(spec) returns, in order; choose from " + ", ".join(REWARD_NAMES)
        + " (default: the seed notebook's four).",
    )
    format_exact: float = option(3.0, help="format_exact: score when the completion matches the strict format.")
    format_tag_ok: float = option(0.5, help="format_approx: score per tag seen exactly once.")
    format_tag_bad: float = option(-1.0, help="format_approx: score per tag seen zero or several times.")
    answer_exact: float = option(5.0, help="answer: the solution block holds the gold answer exactly as written.")
    answer_stripped: float = option(
        3.5, help="answer: equal after stripping whitespace / normalising (1,000 = 1000, 2.50 = 2.5, case, math-verify)."
    )
    answer_within_10pct: float = option(2.0, help="answer: number within 10% of the gold answer.")
    answer_within_20pct: float = option(1.5, help="answer: number within 20% of the gold answer.")
    answer_wrong: float = option(-2.5, help="answer: an answer that is wrong.")
    answer_missing: float = option(-2.0, help="answer: no answer could be extracted.")
    numbers_correct: float = option(3.5, help="numbers: the number in the solution block equals the gold number.")
    numbers_wrong: float = option(-1.5, help="numbers: a number that differs from the gold number.")
    numbers_missing: float = option(-2.5, help="numbers: no number in the solution block.")
    closeness_max: float = option(
        1.0, help="closeness (opt-in): score for a number equal to the gold number; falls linearly to 0."
    )
    closeness_tolerance: float = option(
        0.5, help="closeness: relative error abs(x - gold) / abs(gold) at which the score reaches 0 (gold 0: exact only).",
        gt=0.0,
    )
    length_truncated: float = option(
        -1.0, help="length (opt-in): score for a truncated completion (no EOS token, or stopped inside the format)."
    )
    length_max_tokens: int = option(
        0, help="length: soft over-length limit in completion tokens (usually max_completion_length); 0 turns it off.",
        ge=0,
    )
    length_buffer_tokens: int = option(
        256, help="length: the penalty ramps linearly over this many tokens before length_max_tokens.", ge=1
    )
    length_overlong: float = option(
        -1.0, help="length: the soft penalty at length_max_tokens (DAPO's overlong reward shaping)."
    )
    weights: RewardWeights = option(RewardWeights(), help="[rewards.weights] table.")
    log_error_codes: bool = option(
        True, help="Log per-error-code counts of each batch through TRL's log_metric (format_errors/<code>)."
    )

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if not self.enabled:
            out.append(("enabled", "name at least one reward"))
        if len(set(self.enabled)) != len(self.enabled):
            out.append(("enabled", "names a reward twice"))
        return out
