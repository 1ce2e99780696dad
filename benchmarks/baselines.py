"""Baselines reimplemented from published code, for benchmarks only (never used by the library).

- The seed recipe's GRPO notebook (Unsloth, Qwen3-4B-Base GRPO): ``match_format`` regex and
  its four reward functions ``match_format_exactly``, ``match_format_approximately``,
  ``check_answer`` and ``check_numbers`` with their published constants, including their
  known bugs (division by zero on a gold ``0`` is caught by a bare except there; ``1,000``
  fails float(); numbers are searched anywhere after the solution tag).
- open-r1's ``format_reward`` (``^<think>\\n.*?\\n</think>\\n<answer>\\n.*?\\n</answer>$``), adapted
  to this spec's tags so it scans the same completions.

They take the tags as arguments so the same completions can be fed to every implementation.
"""

from __future__ import annotations

import re


def seed_match_format(reasoning_end: str, solution_start: str, solution_end: str, eos_token: str) -> re.Pattern:
    """The notebook's ``match_format`` (searched with ``.search``)."""
    solution_end_regex = re.escape(solution_end) + r"[\s]{0,}" + "(?:" + re.escape(eos_token) + ")?"
    return re.compile(
        rf"{re.escape(reasoning_end)}.*?"
        rf"{re.escape(solution_start)}(.+?){solution_end_regex}"
        rf"[\s]{{0,}}$",
        flags=re.MULTILINE | re.DOTALL,
    )


class SeedRewards:
    """The notebook's four reward functions, bound to one set of tags."""

    def __init__(self, reasoning_end: str, solution_start: str, solution_end: str, eos_token: str):
        self.tags = (reasoning_end, solution_start, solution_end)
        self.match_format = seed_match_format(reasoning_end, solution_start, solution_end, eos_token)
        self.match_numbers = re.compile(
            re.escape(solution_start) + r".*?[\s]{0,}([-]?[\d\.\,]{1,})", flags=re.MULTILINE | re.DOTALL
        )

    def match_format_exactly(self, completions, **kwargs):
        return [3.0 if self.match_format.search(c[0]["content"]) is not None else 0.0 for c in completions]

    def match_format_approximately(self, completions, **kwargs):
        scores = []
        for c in completions:
            response = c[0]["content"]
            score = 0.0
            for tag in self.tags:
                score += 0.5 if response.count(tag) == 1 else -1.0
            scores.append(score)
        return scores

    def check_answer(self, prompts, completions, answer, **kwargs):
        responses = [c[0]["content"] for c in completions]
        extracted = [g.group(1) if (g := self.match_format.search(r)) is not None else None for r in responses]
        scores = []
        for guess, true_answer in zip(extracted, answer):
            score = 0.0
            if guess is None:
                scores.append(-2.0)
                continue
            if guess == true_answer:
                score += 5.0
            elif guess.strip() == true_answer.strip():
                score += 3.5
            else:
                try:
                    ratio = float(guess) / float(true_answer)
                    if 0.9 <= ratio <= 1.1:
                        score += 2.0
                    elif 0.8 <= ratio <= 1.2:
                        score += 1.5
                    else:
                        score -= 2.5
                except (ValueError, ZeroDivisionError):  # the notebook uses a bare except
                    score -= 4.5
            scores.append(score)
        return scores

    def check_numbers(self, prompts, completions, answer, **kwargs):
        responses = [c[0]["content"] for c in completions]
        extracted = [g.group(1) if (g := self.match_numbers.search(r)) is not None else None for r in responses]
        scores = []
        for guess, true_answer in zip(extracted, answer):
            if guess is None:
                scores.append(-2.5)
                continue
            try:
                true_value = float(true_answer.strip())
                guess_value = float(guess.strip().replace(",", ""))
                scores.append(3.5 if guess_value == true_value else -1.5)
            except ValueError:  # the notebook uses a bare except
                scores.append(0.0)
        return scores

    def all(self):
        return [self.match_format_exactly, self.match_format_approximately, self.check_answer, self.check_numbers]


def open_r1_format_reward(reasoning_start: str, reasoning_end: str, solution_start: str, solution_end: str):
    """open-r1's ``format_reward`` with this spec's tags in place of <think>/<answer>."""
    pattern = (
        rf"^{re.escape(reasoning_start)}\n.*?\n{re.escape(reasoning_end)}\n"
        rf"{re.escape(solution_start)}\n.*?\n{re.escape(solution_end)}$"
    )

    def format_reward(completions, **kwargs):
        contents = [c[0]["content"] for c in completions]
        return [1.0 if re.match(pattern, c, re.DOTALL | re.MULTILINE) else 0.0 for c in contents]

    return format_reward
