"""Hypothesis properties: render -> validate round trip, regex <=> validator, never raises.

Specs are generated with random tag strings full of regex and Jinja metacharacters and
loaded through the real TOML loader; specs the loader rejects (tags that contain or
overlap each other) are skipped with ``assume``. Run with HYPOTHESIS_PROFILE=dev for more
examples; CI uses the derandomized "ci" profile from conftest.py.
"""

from __future__ import annotations

from hypothesis import assume, example, given
from hypothesis import strategies as st

from reasoning_kit.regex import compile_reward_regex, reward_pattern
from reasoning_kit.schema import SpecError
from reasoning_kit.spec import load_spec, parse_spec
from reasoning_kit.template import render
from reasoning_kit.validator import CODES, validate

META = list("<>/[](){}*+?.^$|\\'\"%#-_=:!&~`@;,") + ["{{", "}}", "{%", "%}", "é", "☃", "𝄞", "\t", " "]
OPEN, CLOSE = "<[{(«", ">]})»"


def toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def soup(alphabet, min_size=0, max_size=8):
    """Strings made of atoms (some atoms, like '{{', are longer than one character)."""
    return st.lists(st.sampled_from(alphabet), min_size=min_size, max_size=max_size).map("".join)


middle = soup(META + list("abcXYZ019"), 1, 8)
bracketed = st.builds(lambda o, m, c: o + m + c, st.sampled_from(OPEN), middle, st.sampled_from(CLOSE))
plain = soup(META + list("abcXYZ019"), 1, 6)
tag = st.one_of(bracketed, bracketed, plain)


@st.composite
def specs(draw, kind=None):
    tags = draw(st.lists(tag, min_size=4, max_size=4))
    eos = draw(st.lists(tag, min_size=1, max_size=2))
    system = draw(soup(META + list("ab \n"), 0, 30))
    kind = kind or draw(st.sampled_from(["number", "text"]))
    text = "\n".join(
        [
            "spec_version = 1",
            'name = "random"',
            "[tags]",
            *(f"{k} = {toml_string(v)}" for k, v in zip(("reasoning_start", "reasoning_end", "solution_start", "solution_end"), tags)),
            "[prompt]",
            f"system = {toml_string(system + ' {reasoning_start}')}",
            "[output]",
            "eos = [" + ", ".join(toml_string(e) for e in eos) + "]",
            "[answer]",
            f'kind = "{kind}"',
            f"allow_percent = {str(draw(st.booleans())).lower()}",
        ]
    )
    try:
        return parse_spec(text, "random.toml")
    except SpecError as exc:
        assume(all(p.key.startswith(("tags.", "output.eos")) for p in exc.problems))  # only tag clashes are expected
        assume(False)


def scrub(spec, s: str) -> str:
    """Remove marker occurrences (repeatedly: a removal can join a new one)."""
    for _ in range(4):
        before = s
        for m in spec.markers:
            s = s.replace(m, "")
        if s == before:
            break
    return s


def free_text(spec, draw, min_non_space: bool):
    s = scrub(spec, draw(soup(META + list("ab12 \n"), 0, 40)))
    assume(not any(m in s for m in spec.markers))
    if min_non_space:
        assume(s.strip())
    return s


numbers = st.from_regex(r"[+-]?(?:[1-9][0-9]{0,2}(?:,[0-9]{3}){1,2}|[0-9]{1,6})(?:\.[0-9]{1,3})?", fullmatch=True)
percents = numbers.map(lambda n: n + "%")
ws = st.text(st.sampled_from(" \n\t\u00a0\u2003"), max_size=3)


@st.composite
def valid_completions(draw, spec=None):
    spec = spec or draw(specs())
    reasoning = free_text(spec, draw, True)
    if spec.answer.kind == "number":
        answer = draw(percents if spec.answer.allow_percent and draw(st.booleans()) else numbers)
        assume(not any(m in answer for m in spec.markers))  # only tags made of digits/commas clash
    else:
        answer = free_text(spec, draw, True).strip()
        assume(answer)
    r0, r1, s0, s1 = spec.tag_list
    start = r0 if draw(st.booleans()) else ""
    eos = draw(st.sampled_from(("",) + spec.eos))
    text = (
        start + reasoning + r1 + draw(ws) + s0 + draw(ws) + answer + draw(ws) + s1 + draw(ws)
        + (eos + draw(ws) if eos else "")
    )
    return spec, text, reasoning, answer


class TestRoundTrip:
    @given(valid_completions())
    def test_completion_validates_with_its_fields(self, case):
        spec, text, reasoning, answer = case
        result = validate(spec, text, transcript=False)
        assert result.valid, result.errors
        assert (result.reasoning, result.answer) == (reasoning, answer)
        match = compile_reward_regex(spec).fullmatch(text)
        assert match is not None
        assert (match.group("reasoning"), match.group("answer")) == (reasoning, answer)

    @given(valid_completions(), st.data())
    def test_rendered_transcript_validates_its_last_turn(self, case, data):
        spec, text, reasoning, answer = case
        question = free_text(spec, data.draw, False)
        r0 = spec.tags.reasoning_start
        completion = text[len(r0):] if text.startswith(r0) else text
        prompt = render(spec, [{"role": "user", "content": question}], add_generation_prompt=True)
        assume(not any(m in spec.system_prompt.replace(r0, "") for m in spec.markers))
        result = validate(spec, prompt + completion)
        assert result.valid, result.errors
        assert (result.reasoning, result.answer) == (reasoning, answer)


def mutate(spec, text: str, data) -> str:
    markers = list(spec.markers)
    op = data.draw(st.sampled_from(["drop", "duplicate", "move", "trailing", "truncate", "insert", "case", "char"]))
    present = [m for m in markers if m in text]
    pos = data.draw(st.integers(0, len(text)))
    if op in ("drop", "duplicate", "move", "case") and present:
        m = data.draw(st.sampled_from(present))
        i = text.find(m)
        if op == "drop":
            return text[:i] + text[i + len(m):]
        if op == "duplicate":
            return text[:pos] + m + text[pos:]
        if op == "case":
            return text[:i] + m.swapcase() + text[i + len(m):]
        rest = text[:i] + text[i + len(m):]
        pos = min(pos, len(rest))
        return rest[:pos] + m + rest[pos:]
    if op == "trailing":
        return text + data.draw(st.sampled_from(["x", "\nmore text", " " + markers[0], "\n\n1"]))
    if op == "truncate":
        return text[:pos]
    if op == "insert":
        return text[:pos] + data.draw(st.sampled_from(markers)) + text[pos:]
    return text[:pos] + data.draw(st.sampled_from(META + ["a", "7", ","])) + text[pos:]


class TestRegexValidatorAgreement:
    @given(valid_completions(), st.data())
    @example(
        case=(load_spec("working_out"), "a<end_working_out><SOLUTION>1</SOLUTION>", "a", "1"),
        data=None,
    ).via("a valid seed-format completion with no mutation")
    def test_on_mutations(self, case, data):
        spec, text, _, _ = case
        for _ in range(data.draw(st.integers(1, 3)) if data else 0):
            text = mutate(spec, text, data)
        self.check(spec, text)

    @given(specs(), st.data())
    def test_on_tag_soup(self, spec, data):
        parts = data.draw(st.lists(st.one_of(st.sampled_from(spec.markers), st.sampled_from(["x", " ", "\n", "12", "1,000", "-3.5"])), max_size=12))
        self.check(spec, "".join(parts))

    @given(st.data())
    def test_strings_the_regex_generates_are_valid(self, data):
        spec = data.draw(st.sampled_from([load_spec("working_out"), load_spec("think_answer")]))
        text = data.draw(st.from_regex(reward_pattern(spec), fullmatch=True))
        result = validate(spec, text, transcript=False)
        assert result.valid, (text, result.errors)

    @staticmethod
    def check(spec, text):
        result = validate(spec, text, transcript=False)
        match = compile_reward_regex(spec).fullmatch(text)
        assert result.valid == (match is not None), (text, result.errors)
        assert result.valid == (not result.errors)
        assert all(e.code in CODES and 0 <= e.start <= e.end <= len(text) for e in result.errors)
        if match:
            assert (match.group("reasoning"), match.group("answer")) == (result.reasoning, result.answer)


class TestNeverRaises:
    @given(st.text(max_size=300), st.sampled_from([None, True, False]))
    def test_any_text(self, text, transcript):
        result = validate(load_spec("working_out"), text, transcript=transcript)
        assert result.valid == (not result.errors)

    @given(specs(), st.text(max_size=100))
    def test_any_spec_any_text(self, spec, text):
        result = validate(spec, text)
        assert result.valid == (not result.errors)


class TestMarkerScan:
    """The validator's single-pass marker scan equals a plain regex scan (both of its paths)."""

    @given(st.data())
    def test_hop_and_regex_paths_agree(self, data):
        import re

        from reasoning_kit.validator import _HOPS, _occurrences

        spec = data.draw(st.one_of(st.sampled_from([load_spec("working_out"), load_spec("think_answer")]), specs()))
        atoms = list(spec.markers) + ["<", "x", " ", "<<", spec.markers[0][:-1]]
        n = data.draw(st.sampled_from([5, _HOPS + 20]))
        text = "".join(data.draw(st.lists(st.sampled_from(atoms), max_size=n)))
        pattern = re.compile("|".join(re.escape(m) for m in sorted(spec.markers, key=len, reverse=True)))
        assert _occurrences(spec.markers, text) == [(m.start(), m.group()) for m in pattern.finditer(text)]


class TestCompletionsAreNotTranscripts:
    """The reward path: a completion that starts like a rendered transcript is still a completion."""

    @given(valid_completions(), st.data())
    def test_regex_validator_and_format_reward_agree(self, case, data):
        from reasoning_kit import rewards

        spec, text, _, _ = case
        junk = data.draw(soup(list(spec.markers) + ["x", " ", "4"], 0, 6))
        looks_like_transcript = spec.system_prompt + data.draw(st.sampled_from(spec.eos)) + junk + text
        result = validate(spec, looks_like_transcript, transcript=False)
        match = compile_reward_regex(spec).fullmatch(looks_like_transcript)
        assert result.valid == (match is not None)
        format_exact = rewards.build(spec, ["format_exact"])[0](completions=[looks_like_transcript])[0]
        assert (format_exact == spec.rewards.format_exact) == result.valid
