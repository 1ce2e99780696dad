"""GRPO reward functions generated from a spec, in TRL's ``GRPOTrainer`` convention.

``build(spec)`` returns callables ``f(prompts=..., completions=..., **columns) -> list[float | None]``
that TRL can take as ``reward_funcs``. Every one reads completions through the validator,
so the format the chat template teaches and the format the reward pays for cannot drift.
Completions may be strings or TRL's conversational form ``[[{"role": "assistant", "content": ...}]]``.

The rewards (scores from the spec's ``[rewards]`` table; defaults: the seed notebook's):

- ``format_exact``: ``format_exact`` (3.0) if the validator accepts the completion, else 0.
- ``format_approx``: per tag, ``format_tag_ok`` (+0.5) if it occurs once, else ``format_tag_bad``
  (-1.0). The reasoning start tag is not counted when the prompt already ends with it
  (the generation prompt); it then only costs ``format_tag_bad`` if it occurs again.
- ``answer``: 5.0 if the solution block holds the gold answer as written, 3.5 if equal after
  normalising, 2.0 / 1.5 within 10 % / 20 % of a non-zero gold number, -2.5 wrong,
  -2.0 no answer; ``None`` when the gold answer cannot be parsed.
- ``numbers``: 3.5 if the answer is the gold number, -1.5 if another number, -2.5 if none.
- ``closeness`` (opt-in): ``closeness_max`` falling linearly to 0 at ``closeness_tolerance``
  relative error.
- ``length`` (opt-in): ``length_truncated`` for a truncated completion (from TRL's
  ``completion_ids`` and the tokenizer's EOS ids when ``build`` got a tokenizer, else from the
  validator's ``truncated`` code) plus DAPO's soft over-length penalty (token counts only).

Completions are validated strictly (``transcript=False``): text that merely looks like a
rendered transcript earns nothing from what follows its last reasoning start tag. Every
reward returns a finite float or ``None`` for any input (huge numbers, numpy golds).

The seed notebook's bugs are fixed: a gold ``0`` is no division by zero, ``1,000`` is a
number, numbers outside the solution block are never read, two solution blocks are not
captured together, and trailing lines after the solution block fail ``format_exact``.

The first reward built also logs, through TRL's ``log_metric``, how many completions of the
batch carry each validator error code (``format_errors/<code>``) and the valid fraction, and
adds a ``format_errors`` column to TRL's completions table through ``log_extra``.

Not handled: model-based (judge) rewards, tool-call transcripts, and async reward functions.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from operator import is_

from .answers import Verdict, compare, raw_answer
from .completions import completion_text
from .reward_config import REWARD_NAMES, RewardConfig
from .spec import FormatSpec
from .validator import CODES, Validation, tag_counts, validate

_TENTH, _FIFTH = Fraction(1, 10), Fraction(2, 10)  # the answer tiers: within 10 % / 20 % of the gold
_TRL_KWARGS = {"trainer_state", "log_extra", "log_metric", "completion_ids", "environments"}


class _Batch:
    """One batch as the rewards see it: texts, validations and (on demand) answer verdicts.

    TRL calls every reward function with the same ``completions`` list and the same column
    lists, so the first reward validates and compares and the others reuse the result. A
    batch is recognised by the identity of the list and of each item; both are kept alive
    here, so an id cannot be reused by a different batch.
    """

    def __init__(self, spec: FormatSpec, completions: list | tuple):
        self.source = completions
        self.items = tuple(completions)
        self.texts = [completion_text(spec, c) for c in self.items]  # text, message list or parsed dict
        self.checks = [validate(spec, t, transcript=False) for t in self.texts]  # completions, strictly
        self._golds: tuple[object, tuple] | None = None
        self._verdicts: list[Verdict] = []

    def matches(self, completions: object) -> bool:
        return completions is self.source and _same_items(completions, self.items)

    def verdicts(self, spec: FormatSpec, column: object, golds: list) -> list[Verdict]:
        """Each completion's answer against its gold answer (math-verify at most once per item)."""
        if self._golds is not None and column is self._golds[0] and _same_items(golds, self._golds[1]):
            return self._verdicts
        seen: dict[tuple, Verdict] = {}  # a GRPO batch repeats each gold, and often the answer
        self._verdicts = []
        for text, check, gold in zip(self.texts, self.checks, golds):
            raw = raw_answer(spec, text, check) if text is not None else None
            key = (check.answer, raw, gold) if type(gold) in (str, int, type(None)) else None  # not bool: True == 1
            verdict = seen.get(key) if key is not None else None
            if verdict is None:
                verdict = compare(spec, check.answer, gold, raw=raw)
                if key is not None:
                    seen[key] = verdict
            self._verdicts.append(verdict)
        self._golds = (column, tuple(golds))
        return self._verdicts


def _same_items(a, b) -> bool:
    return len(a) == len(b) and all(map(is_, a, b))  # item by item identity, in C


class _Context:
    """What the rewards built together share: the spec, the gold column, EOS ids, the last batch."""

    def __init__(self, spec: FormatSpec, answer_column: str, eos_token_ids: tuple[int, ...]):
        self.spec = spec
        self.tags = spec.tag_list
        self.answer_column = answer_column
        self.eos_token_ids = frozenset(eos_token_ids)
        self.last: _Batch | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "last": None}

    def batch(self, completions: object) -> _Batch:
        if not isinstance(completions, (list, tuple)):
            return _Batch(self.spec, [])
        if self.last is None or not self.last.matches(completions):
            self.last = _Batch(self.spec, completions)
        return self.last


class Reward:
    """Base class: a picklable reward callable in TRL's convention, named by ``__name__``."""

    name = "reward"

    def __init__(self, context: _Context, *, weight: float = 1.0, log_codes: bool = False):
        self.ctx = context
        self.cfg: RewardConfig = context.spec.rewards
        self.weight = float(weight)
        self.log_codes = log_codes
        self.__name__ = self.name

    def __repr__(self) -> str:
        return f"<reward {self.__name__} spec={self.ctx.spec.name!r} weight={self.weight}>"

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        batch = self.ctx.batch(completions)
        if self.log_codes and self.cfg.log_error_codes:
            _log_codes(batch.checks, kwargs.get("log_metric"), kwargs.get("log_extra"))
        prompts = list(prompts) if isinstance(prompts, (list, tuple)) else []
        scores = self.score(batch, prompts, kwargs)
        return [None if s is None else float(s) * self.weight for s in scores]

    def score(self, batch: _Batch, prompts: list, kwargs: dict) -> list[float | None]:  # pragma: no cover
        raise NotImplementedError

    def verdicts(self, batch: _Batch, kwargs: dict) -> list[Verdict]:
        """The batch's answer verdicts (a missing gold column is a setup mistake: say so)."""
        column = self.ctx.answer_column
        if column not in kwargs:
            names = ", ".join(sorted(k for k in kwargs if k not in _TRL_KWARGS)) or "none"
            raise ValueError(
                f"reward {self.__name__!r} needs the gold answer column {column!r}, but the batch has none "
                f"(columns: {names}); set [answer] column in the spec or build(..., answer_column=...)"
            )
        values = kwargs[column]
        n = len(batch.items)
        golds = list(values)[:n] if isinstance(values, (list, tuple)) else [values] * n
        golds += [None] * (n - len(golds))
        return batch.verdicts(self.ctx.spec, values, golds)


class FormatExact(Reward):
    """``format_exact``: full score when the validator accepts the completion, else 0.

    >>> from reasoning_kit.spec import load_spec
    >>> f = FormatExact(_Context(load_spec("working_out"), "answer", ()))
    >>> f(completions=["I add.<end_working_out><SOLUTION>4</SOLUTION>", "4"])
    [3.0, 0.0]
    """

    name = "format_exact"

    def score(self, batch, prompts, kwargs):
        return [self.cfg.format_exact if c.valid else 0.0 for c in batch.checks]


class FormatApprox(Reward):
    """``format_approx``: per-tag counts, partial credit while the format is still being learnt.

    >>> from reasoning_kit.spec import load_spec
    >>> f = FormatApprox(_Context(load_spec("working_out"), "answer", ()))
    >>> f(completions=["I add.<end_working_out><SOLUTION>4</SOLUTION>", "4"])
    [1.5, -3.0]
    """

    name = "format_approx"

    def score(self, batch, prompts, kwargs):
        spec, r0 = self.ctx.spec, self.ctx.tags[0]
        ok, bad = self.cfg.format_tag_ok, self.cfg.format_tag_bad
        conversational = r0 in spec.generation_prompt  # the chat template adds the start tag
        n_prompts = len(prompts)
        out = []
        for i, (text, check) in enumerate(zip(batch.texts, batch.checks)):
            text = text or ""
            n_r0, *counts = tag_counts(spec, text, check)  # from the validator's markers
            total = 0  # summed in tag order, as sum() would
            for n in counts:
                total += ok if n == 1 else bad
            prompt = prompts[i] if i < n_prompts else None
            # A standard prompt is the text the model continues; any other is conversational.
            if prompt.rstrip().endswith(r0) if isinstance(prompt, str) else conversational:
                # The generation prompt already opened the block; the completion may repeat it once
                # at its very start (the validator accepts that), anywhere else it is a stray tag.
                total += bad if n_r0 - text.startswith(r0) > 0 else 0.0
            else:
                total += ok if n_r0 == 1 else bad
            out.append(total)
        return out


class AnswerReward(Reward):
    """``answer``: the seed's check_answer tiers, through the validator and exact numbers.

    >>> from reasoning_kit.spec import load_spec
    >>> f = AnswerReward(_Context(load_spec("working_out"), "answer", ()))
    >>> c = lambda a: f"I add.<end_working_out><SOLUTION>{a}</SOLUTION>"
    >>> f(completions=[c("1000"), c("1,000"), c(" 950 "), c("7"), "no answer"], answer=["1000"] * 5)
    [5.0, 3.5, 2.0, -2.5, -2.0]
    """

    name = "answer"

    def score(self, batch, prompts, kwargs):
        cfg = self.cfg
        out: list[float | None] = []
        verdicts = self.verdicts(batch, kwargs)
        for check, v in zip(batch.checks, verdicts):
            if not v.gold_ok:
                out.append(None)
            elif check.answer is None:
                out.append(cfg.answer_missing)
            elif v.exact:
                out.append(cfg.answer_exact)
            elif v.correct:
                out.append(cfg.answer_stripped)
            elif v.within(_TENTH):  # never for a gold 0: only an exact match scores (no division)
                out.append(cfg.answer_within_10pct)
            elif v.within(_FIFTH):
                out.append(cfg.answer_within_20pct)
            else:
                out.append(cfg.answer_wrong)
        log_metric = kwargs.get("log_metric")
        if self.cfg.log_error_codes and callable(log_metric):
            scorable = [v.correct for v in verdicts if v.gold_ok]
            log_metric("answer/unscorable_gold", float(len(out) - len(scorable)))
            if scorable:
                log_metric("answer/correct_fraction", sum(scorable) / len(scorable))
        return out


class NumbersReward(Reward):
    """``numbers``: the seed's check_numbers, reading only the solution block.

    >>> from reasoning_kit.spec import load_spec
    >>> f = NumbersReward(_Context(load_spec("working_out"), "answer", ()))
    >>> c = lambda a: f"I add.<end_working_out><SOLUTION>{a}</SOLUTION>"
    >>> f(completions=[c("1,000"), c("999"), c("lots")], answer=["1000"] * 3)
    [3.5, -1.5, -2.5]
    """

    name = "numbers"

    def score(self, batch, prompts, kwargs):
        cfg = self.cfg
        out: list[float | None] = []
        for v in self.verdicts(batch, kwargs):
            if v.gold_value is None:
                out.append(None)
            elif v.answer_value is None:
                out.append(cfg.numbers_missing)
            else:
                out.append(cfg.numbers_correct if v.answer_value == v.gold_value else cfg.numbers_wrong)
        return out


class ClosenessReward(Reward):
    """``closeness`` (opt-in): a smooth score for numbers near the gold number.

    >>> from reasoning_kit.spec import load_spec
    >>> f = ClosenessReward(_Context(load_spec("working_out"), "answer", ()))
    >>> c = lambda a: f"I add.<end_working_out><SOLUTION>{a}</SOLUTION>"
    >>> f(completions=[c("100"), c("75"), c("10"), "none"], answer=["100"] * 4)
    [1.0, 0.5, 0.0, 0.0]
    """

    name = "closeness"

    def score(self, batch, prompts, kwargs):
        cfg = self.cfg
        out: list[float | None] = []
        for v in self.verdicts(batch, kwargs):
            if v.gold_value is None:
                out.append(None)
            elif v.answer_value is None:
                out.append(0.0)
            elif v.answer_value == v.gold_value:
                out.append(cfg.closeness_max)
            elif v.relative_error is None or cfg.closeness_tolerance <= 0:  # gold 0: exact only, no division
                out.append(0.0)
            else:  # exact until below the tolerance: a 400-digit answer would overflow float()
                left = 1 - v.relative_error / Fraction(cfg.closeness_tolerance)
                out.append(cfg.closeness_max * float(left) if left > 0 else 0.0)
        return out


class LengthReward(Reward):
    """``length`` (opt-in): a penalty for truncated and over-long completions.

    >>> from reasoning_kit.spec import load_spec
    >>> f = LengthReward(_Context(load_spec("working_out"), "answer", (0,)))
    >>> f(completions=["t<end_working_out><SOLUTION>4</SOLUTION>", "still thinking"], completion_ids=[[5, 0], [5, 6]])
    [0.0, -1.0]
    """

    name = "length"

    def score(self, batch, prompts, kwargs):
        cfg, eos_ids = self.cfg, self.ctx.eos_token_ids
        ids_list = kwargs.get("completion_ids")
        ids_list = list(ids_list) if isinstance(ids_list, (list, tuple)) else []
        out = []
        for i, check in enumerate(batch.checks):
            ids = ids_list[i] if i < len(ids_list) else None
            ids = list(ids) if isinstance(ids, (list, tuple)) else None
            if ids is not None and eos_ids:
                truncated = not ids or not _is_eos_id(ids[-1], eos_ids)
            else:
                truncated = not check.valid and "truncated" in check.codes
            total = cfg.length_truncated if truncated else 0.0
            if ids is not None and cfg.length_max_tokens > 0:
                buffer = max(1, cfg.length_buffer_tokens)
                over = len(ids) - (cfg.length_max_tokens - buffer)
                if over > 0:
                    total += cfg.length_overlong * min(1.0, over / buffer)
            out.append(total)
        return out


def _is_eos_id(token: object, eos_ids: frozenset[int]) -> bool:
    try:
        return token in eos_ids
    except TypeError:  # an unhashable "token id" (a nested list): not an EOS
        return False


REWARDS: dict[str, type[Reward]] = {
    cls.name: cls for cls in (FormatExact, FormatApprox, AnswerReward, NumbersReward, ClosenessReward, LengthReward)
}
assert tuple(REWARDS) == REWARD_NAMES


_METRICS = tuple((code, f"format_errors/{code}") for code in CODES)  # every code, in CODES order


def _log_codes(checks: list[Validation], log_metric, log_extra) -> None:
    """Per-error-code counts of the batch (every code, zeros included, so averages stay fair).

    Reads ``Validation.codes``: the usual broken shapes are read off the validator's cut,
    the rest diagnosed (once each); no message or span is built for the counts.
    """
    if not (callable(log_metric) or callable(log_extra)):
        return  # nothing to log to (not called by TRL): no diagnosis
    codes = [c.codes for c in checks]
    if callable(log_metric):
        counts = dict.fromkeys(CODES, 0)
        for found in codes:
            if found:
                for code in found if len(found) == 1 else set(found):  # an output counts once per code
                    counts[code] += 1
        for code, name in _METRICS:
            log_metric(name, float(counts[code]))
        if checks:
            log_metric("format/valid_fraction", [c.valid for c in checks].count(True) / len(checks))
    if callable(log_extra):
        log_extra("format_errors", [",".join(found) if found else "" for found in codes])


def check_tokenizer(spec: FormatSpec, tokenizer) -> list[str]:
    """Problems that make a tokenizer hide part of the format from the rewards (one line each).

    TRL decodes completions with ``skip_special_tokens=True``: a tag registered as a special
    token vanishes before any reward sees it, and a special EOS token is always stripped.
    """
    problems = []
    for tag in spec.tag_list:
        if not _survives_decoding(tokenizer, tag):
            problems.append(
                f"tag {tag!r} is a special token of the tokenizer: TRL decodes completions with "
                "skip_special_tokens=True, so it never reaches the rewards and format rewards stay low; "
                "add it with tokenizer.add_tokens([...]) (not as a special token)"
            )
    stripped = [e for e in spec.eos if not _survives_decoding(tokenizer, e)]
    if stripped:
        names = ", ".join(repr(e) for e in stripped)
        problems.append(
            f"end-of-sequence {names} is stripped when TRL decodes completions (special token): "
            "rewards see completions without it, so truncation is detected from TRL's completion_ids "
            "and the tokenizer's EOS ids (handled; nothing to do)"
        )
    return problems


def _survives_decoding(tokenizer, text: str) -> bool:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return text in tokenizer.decode(ids, skip_special_tokens=True)


def eos_token_ids(spec: FormatSpec, tokenizer) -> tuple[int, ...]:
    """Token ids that end a completion: the tokenizer's EOS and every spec EOS that is one token."""
    ids = set()
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    for e in spec.eos:
        encoded = tokenizer.encode(e, add_special_tokens=False)
        if len(encoded) == 1:
            ids.add(int(encoded[0]))
    return tuple(sorted(ids))


def build(
    spec: FormatSpec,
    names: list[str] | tuple[str, ...] | None = None,
    weights: dict[str, float] | list[float] | tuple[float, ...] | None = None,
    *,
    tokenizer=None,
    answer_column: str | None = None,
    eos_ids: tuple[int, ...] | None = None,
) -> list[Reward]:
    """The spec's reward functions for ``GRPOTrainer(reward_funcs=...)``.

    Args:
        spec: a loaded spec; scores and the default set come from its ``[rewards]`` table.
        names: which rewards, in order (default ``spec.rewards.enabled``); see ``REWARDS``.
        weights: a multiplier per reward, as ``{name: w}`` or a list aligned with ``names``
            (TRL's ``GRPOConfig.reward_weights`` works as well).
        tokenizer: the training tokenizer: checked with :func:`check_tokenizer` (each problem
            is warned once) and used for the EOS ids that tell a stop from a truncation.
        answer_column: the dataset column with gold answers (default ``spec.answer.column``).
        eos_ids: EOS token ids, overriding those taken from ``tokenizer``.

    Returns:
        A list of picklable callables, each with ``__name__`` set to its reward name.

    >>> from reasoning_kit.spec import load_spec
    >>> rewards = build(load_spec("working_out"))
    >>> [f.__name__ for f in rewards]
    ['format_exact', 'format_approx', 'answer', 'numbers']
    >>> done = [[{"role": "assistant", "content": "2 + 2 = 4<end_working_out><SOLUTION>4</SOLUTION>"}]]
    >>> [f(prompts=[[{"role": "user", "content": "2 + 2?"}]], completions=done, answer=["4"])[0] for f in rewards]
    [3.0, 1.5, 5.0, 3.5]
    """
    names = tuple(spec.rewards.enabled if names is None else names)
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward {unknown[0]!r} (known: {', '.join(REWARD_NAMES)})")
    if len(set(names)) != len(names):
        raise ValueError(f"reward names repeat: {', '.join(names)}")
    if isinstance(weights, dict):
        extra = sorted(set(weights) - set(names))
        if extra:
            raise ValueError(f"weight for a reward that is not built: {extra[0]!r} (built: {', '.join(names)})")
        scale = [weights.get(n, 1.0) for n in names]
    elif weights is not None:
        scale = list(weights)
        if len(scale) != len(names):
            raise ValueError(f"{len(scale)} weights for {len(names)} rewards ({', '.join(names)})")
    else:
        scale = [1.0] * len(names)
    if not all(isinstance(w, (int, float)) and math.isfinite(w) for w in scale):
        raise ValueError(f"weights must be finite numbers, got {scale}")
    if spec.answer.math_verify:
        import importlib.util

        if importlib.util.find_spec("math_verify") is None:
            raise ValueError("[answer] math_verify = true needs math-verify: pip install 'reasoning-kit[math]'")
    ids: tuple[int, ...] = ()
    if tokenizer is not None:
        for problem in check_tokenizer(spec, tokenizer):
            warnings.warn(problem, UserWarning, stacklevel=2)
        ids = eos_token_ids(spec, tokenizer)
    if eos_ids is not None:
        ids = tuple(int(i) for i in eos_ids)
    ctx = _Context(spec, answer_column or spec.answer.column, ids)
    return [REWARDS[n](ctx, weight=w, log_codes=(i == 0)) for i, (n, w) in enumerate(zip(names, scale))]


__all__ = ["REWARDS", "Reward", "build", "check_tokenizer", "eos_token_ids"]
