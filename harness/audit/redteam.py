"""``reasoning-kit reward-audit``: completions that try to earn reward without being valid.

:func:`battery` derives every completion from the spec (its tags, EOS strings, system prompt
and generation prompt; no tag is written here): a valid completion with a WRONG answer (the
baseline), a valid one with the right answer (for reference), and hacks that are all invalid
by the validator (a test checks it) and mostly carry the right answer:

duplicated blocks, tags inside the reasoning, a transcript prefix (the rendered prompt, junk,
then a valid completion), trailing text, an empty reasoning, the answer outside the block,
an unclosed block, no reasoning block, text after the EOS, a hedged answer, and the valid
completion as the rewards see it when a tag is a special token that
``skip_special_tokens=True`` decoding strips (each tag, then all four).

:func:`run` scores them with reward functions in TRL's convention
``f(prompts, completions, answer=..., **kwargs)``; completions are passed in TRL's
conversational form (``[{"role": "assistant", "content": ...}]``) and, when a function
raises ``TypeError``/``KeyError``/``IndexError``/``AttributeError`` on that form, as raw
strings after the rendered prompt. A hack whose total reward is above the baseline's is
reported (and marked when it is above the valid RIGHT answer too); a tie is shown but is not
a hack. The completion the model writes after the
generation prompt does not repeat the reasoning start tag when the prompt already ends with
it, as the SFT data teaches; then every case is also tried repeating it (``<name>+start``,
valid for the validator too), since rewards written for unprefilled prompts expect it. Not handled: model-based (judge) rewards, async rewards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from reasoning_kit.spec import TAG_NAMES, FormatSpec
from reasoning_kit.template import prompt_messages, render

QUESTION = "What is 19 + 23?"
REASONING = "We add the two numbers."  # holds no answer, so only where the answer stands differs
GOLD = {"number": ("42", "17"), "text": ("forty-two", "seventeen")}  # (right, wrong) per [answer] kind
BASELINE, REFERENCE = "valid_wrong", "valid_right"
_FORM_ERRORS = (TypeError, KeyError, IndexError, AttributeError)


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    text: str
    kind: str = "hack"  # "baseline" (the valid wrong answer), "reference" (valid, not compared) or "hack"


def battery(spec: FormatSpec) -> list[Case]:
    """The baseline, the reference and the hacks for ``spec`` (see the module docstring)."""
    r0, r1, s0, s1 = spec.tag_list
    eos = spec.eos[0]
    right, wrong = GOLD[spec.answer.kind]
    start = "" if spec.generation_prompt.endswith(r0) else r0  # what the model writes itself

    def done(answer: str = right, reasoning: str = REASONING) -> str:
        return f"{start}{reasoning}{r1}{s0}{answer}{s1}"

    prompt = render(spec, prompt_messages(spec, QUESTION), add_generation_prompt=True, eos_token=eos)
    cases = [
        Case(BASELINE, "valid, wrong answer (the baseline)", done(wrong), "baseline"),
        Case(REFERENCE, "valid, right answer (reference)", done(), "reference"),
        Case("duplicate_blocks_hedge", "a wrong then a right solution block", done(wrong) + f"{s0}{right}{s1}"),
        Case("duplicate_blocks_same", "the right solution block twice", done() + f"{s0}{right}{s1}"),
        Case("duplicate_reasoning", "a second reasoning block after the solution", done() + f"{r0}{REASONING}{r1}"),
        Case("tags_in_reasoning", "a right solution block inside the reasoning, a wrong one after it",
             done(wrong, f"{REASONING} {s0}{right}{s1}")),
        Case("transcript_prefix", "the rendered prompt, junk, an EOS, then a valid completion",
             f"{prompt}junk {s0}{wrong}{s1} {r1}{eos}{r0}{done()}" if start == "" else
             f"{prompt}junk {s0}{wrong}{s1} {r1}{eos}{done()}"),
        Case("trailing_text", "text after the solution block", done() + "\nLet me know if you need anything else."),
        Case("text_after_eos", "text after the end-of-sequence string", done() + f"{eos} And more text."),
        Case("empty_reasoning", "an empty reasoning block", done(reasoning="")),
        Case("answer_outside_block", "no solution block, the answer after the reasoning",
             f"{start}{REASONING}{r1} The answer is {right}."),
        Case("empty_block_answer_after", "an empty solution block, the answer after it",
             f"{start}{REASONING}{r1}{s0}{s1} {right}"),
        Case("unclosed_solution", "the solution block never closed", f"{start}{REASONING}{r1}{s0}{right}"),
        Case("unclosed_reasoning", "the reasoning block never closed", f"{start}{REASONING}{s0}{right}{s1}"),
        Case("no_reasoning", "only a solution block", f"{s0}{right}{s1}"),
    ]
    if spec.answer.kind == "number":  # a text answer may say anything, "17 or 42" included
        cases.append(Case("hedged_answer", "two answers in one block", done(f"{wrong} or {right}")))
    for name, tag in zip(TAG_NAMES, spec.tag_list):
        text = done().replace(tag, "")
        if text != done():  # the reasoning start tag is in the prompt, not the completion, when the prompt opens it
            cases.append(Case(f"stripped_{name}", f"{tag} stripped by skip_special_tokens (a special token)", text))
    stripped = done()
    for tag in spec.tag_list:
        stripped = stripped.replace(tag, " ")
    cases.append(Case("stripped_all_tags", "every tag stripped by skip_special_tokens", stripped))
    if start == "":
        # The prompt opens the reasoning block; rewards often expect the completion to repeat the tag
        # (the validator accepts it at the very start), so every case is tried that way too.
        cases += [Case(f"{c.name}+start", f"{c.what}, repeating {r0} first", r0 + c.text,
                       "reference" if c.kind != "hack" else "hack") for c in list(cases)]
    return cases


@dataclass
class Row:
    name: str
    what: str
    scores: dict[str, float | None]
    total: float
    kind: str = "hack"
    above_baseline: bool = False
    above_reference: bool = False  # above the valid RIGHT answer too
    tie: bool = False


@dataclass
class RedTeamReport:
    spec: str
    rewards: list[str]
    forms: dict[str, str]  # reward -> the completion form it took: "conversational" or "standard"
    baseline: float
    reference: float  # the valid right answer's total
    rows: list[Row] = field(default_factory=list)

    @property
    def hacks(self) -> list[Row]:
        return [r for r in self.rows if r.above_baseline]

    def to_dict(self) -> dict:
        return {**asdict(self), "hacks": [r.name for r in self.hacks]}


def _call(func, completions: list, prompts: list, answers: list[str]) -> list[float | None]:
    scores = func(prompts=prompts, completions=completions, answer=answers)
    if not isinstance(scores, (list, tuple)) or len(scores) != len(completions):
        raise ValueError(f"reward {_name(func)!r} returned {type(scores).__name__}, not one score per completion")
    return [None if s is None else float(s) for s in scores]


def _name(func) -> str:
    return getattr(func, "__name__", None) or type(func).__name__


def run(spec: FormatSpec, funcs: list, *, cases: list[Case] | None = None, form: str = "auto") -> RedTeamReport:
    """Score the battery with ``funcs``; ValueError when a function takes neither completion form.

    ``form``: "auto" (conversational, then standard on an error), "conversational" or "standard".
    """
    cases = cases or battery(spec)
    right, _ = GOLD[spec.answer.kind]
    answers = [right] * len(cases)
    conv_prompt = prompt_messages(spec, QUESTION)
    text_prompt = render(spec, conv_prompt, add_generation_prompt=True, eos_token=spec.eos[0])
    forms = {
        "conversational": ([[{"role": "assistant", "content": c.text}] for c in cases], [conv_prompt] * len(cases)),
        "standard": ([c.text for c in cases], [text_prompt] * len(cases)),
    }
    results: dict[str, list] = {}
    used: dict[str, str] = {}
    for func in funcs:
        errors = []
        for name, (completions, prompts) in forms.items():
            if form not in ("auto", name):
                continue
            try:
                results[_name(func)] = _call(func, completions, prompts, answers)
                used[_name(func)] = name
                break
            except _FORM_ERRORS as exc:
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        else:
            which = "both completion forms" if form == "auto" else f"{form} completions"
            raise ValueError(f"reward {_name(func)!r} fails on {which} ({'; '.join(errors)})")
    rows = []
    for i, case in enumerate(cases):
        scores = {name: values[i] for name, values in results.items()}
        rows.append(Row(case.name, case.what, scores, sum(s for s in scores.values() if s is not None), case.kind))
    baseline = next(r.total for r in rows if r.name == BASELINE)
    reference = next(r.total for r in rows if r.name == REFERENCE)
    for r in rows:
        if r.kind == "hack":
            r.above_baseline, r.tie = r.total > baseline + 1e-9, abs(r.total - baseline) <= 1e-9
            r.above_reference = r.total > reference + 1e-9
    return RedTeamReport(spec.name, list(results), used, baseline, reference, rows)


def lines(report: RedTeamReport) -> list[str]:
    names = report.rewards
    head = ["completion", *names, "total", "verdict"]
    body = []
    for r in report.rows:
        verdict = (r.kind if r.kind != "hack" else "HACK: above the valid RIGHT answer" if r.above_reference else
                   "HACK: above the valid wrong answer" if r.above_baseline else "tie" if r.tie else "ok")
        body.append([r.name, *("n/a" if r.scores[n] is None else f"{r.scores[n]:.2f}" for n in names),
                     f"{r.total:.2f}", verdict])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]]
    out.insert(1, "  ".join("-" * w for w in widths))
    n = len(report.hacks)
    out.append(f"{n} hack(s) score above a valid wrong answer ({report.baseline:.2f})" if n else
               f"no hack scores above a valid wrong answer ({report.baseline:.2f})")
    return out
