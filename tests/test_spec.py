"""Spec loading: shipped specs, unknown keys, types, tag sanity, every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasoning_kit.schema import SpecError
from reasoning_kit.spec import SPEC_DIR, load_spec, parse_spec, shipped_specs
from tests import seed_reference as seed

ROOT = Path(__file__).resolve().parent.parent
WORKING_OUT = (ROOT / "spec" / "working_out.toml").read_text()


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "t.toml")
    return [str(p) for p in info.value.problems]


class TestShippedSpecs:
    def test_shipped_names(self):
        assert shipped_specs() == ["think_answer", "working_out"]

    def test_spec_dir_is_the_top_level_spec_folder(self):
        assert SPEC_DIR.resolve() == (ROOT / "spec").resolve()

    def test_working_out_is_the_seed_format(self):
        spec = load_spec("working_out")
        assert spec.tag_list == (seed.reasoning_start, seed.reasoning_end, seed.solution_start, seed.solution_end)
        assert spec.system_prompt == seed.system_prompt
        assert spec.generation_prompt == seed.reasoning_start
        assert spec.eos[0] == "<|endoftext|>"
        assert spec.answer.kind == "number"

    def test_think_answer_is_a_text_format(self):
        spec = load_spec("think_answer")
        assert spec.tag_list == ("<think>", "</think>", "<answer>", "</answer>")
        assert spec.answer.kind == "text"
        assert "<think> </think>" in spec.system_prompt

    def test_load_by_path_equals_load_by_name(self):
        assert load_spec(ROOT / "spec" / "working_out.toml").tags == load_spec("working_out").tags

    def test_spec_files_begin_with_the_command_that_uses_them(self):
        for name in shipped_specs():
            head = (SPEC_DIR / f"{name}.toml").read_text().splitlines()[:8]
            assert any("reasoning-kit " in line for line in head), name

    def test_missing_spec_file(self):
        with pytest.raises(SpecError) as info:
            load_spec("nope")
        assert info.value.one_line() == (
            "cannot load spec nope: no such spec file (shipped specs: think_answer, working_out)"
        )


class TestUnknownKeysAndTypes:
    def test_unknown_top_level_key(self):
        found = problems_of("colour = 'red'\n" + WORKING_OUT)
        assert len(found) == 1 and found[0].startswith("colour (line ")
        assert "unknown key" in found[0]

    def test_unknown_key_in_table_has_its_line(self):
        text = WORKING_OUT.replace('kind = "number"', 'kind = "number"\nkinds = "text"')
        line = text.splitlines().index('kinds = "text"') + 1
        assert problems_of(text) == [
            f"answer.kinds (line {line}): unknown key (did you mean 'kind'? known keys: allow_percent, case_sensitive, "
            "collapse_whitespace, column, kind, math_verify, math_verify_timeout)"
        ]

    def test_unknown_table(self):
        found = problems_of(WORKING_OUT + "\n[extras]\nx = 1\n")
        assert found[0].startswith("extras (line ") and "unknown key" in found[0]

    def test_wrong_type_and_bad_choice(self):
        text = WORKING_OUT.replace('kind = "number"', 'kind = "numeric"').replace(
            'column = "answer"', "column = 3"
        )
        found = problems_of(text)
        assert any(p.startswith("answer.kind") and "one of 'number', 'text'" in p for p in found)
        assert any(p.startswith("answer.column") and "must be a string, got 3" in p for p in found)

    def test_empty_answer_column(self):
        for blank in ('""', '"  "'):
            found = problems_of(WORKING_OUT.replace('column = "answer"', f"column = {blank}"))
            assert found == ["answer.column (line 34): must not be empty"]

    def test_every_problem_reported_at_once(self):
        text = (
            WORKING_OUT.replace('kind = "number"', 'kind = "numeric"\nbogus = 1')
            .replace('solution_end = "</SOLUTION>"', 'solution_end = ""')
            .replace("{reasoning_end}.", "{reasoning_ending}.")
        )
        found = problems_of(text)
        keys = sorted(p.split(" ")[0].rstrip(":") for p in found)
        assert keys == ["answer.bogus", "answer.kind", "prompt.system", "tags.solution_end"]

    def test_version_mismatch(self):
        found = problems_of(WORKING_OUT.replace("spec_version = 1", "spec_version = 2"))
        assert found == ["spec_version (line 9): this reasoning-kit reads version 1, got 2"]

    def test_missing_required_keys(self):
        text = WORKING_OUT.replace('reasoning_start = "<start_working_out>"   # acts as <think>\n', "")
        found = problems_of(text)
        assert found[0].startswith("tags.reasoning_start") and "missing required key" in found[0]

    def test_toml_syntax_error_has_line(self):
        with pytest.raises(SpecError) as info:
            parse_spec('spec_version = 1\nname = "x\n', "t.toml")
        assert info.value.problems[0].line == 2
        assert info.value.one_line().startswith("invalid spec t.toml: 1 problem: <toml> (line 2): ")

    def test_no_eos(self):
        assert problems_of(WORKING_OUT.replace('eos = ["<|endoftext|>", "<|im_end|>"]', "eos = []")) == [
            "output.eos (line 30): list at least one end-of-sequence string"
        ]


def with_tags(r0="<a>", r1="</a>", s0="<b>", s1="</b>", eos='["<eos>"]') -> str:
    return (
        f"spec_version = 1\nname = 't'\n[tags]\nreasoning_start = '{r0}'\nreasoning_end = '{r1}'\n"
        f"solution_start = '{s0}'\nsolution_end = '{s1}'\n[prompt]\nsystem = 'S'\n[output]\neos = {eos}\n"
    )


class TestTagSanity:
    def test_good_tags_load(self):
        assert parse_spec(with_tags()).tag_list == ("<a>", "</a>", "<b>", "</b>")

    @pytest.mark.parametrize(
        "kwargs, expected",
        [
            ({"s0": ""}, "tags.solution_start (line 6): must not be empty"),
            ({"r1": " </a>"}, "tags.reasoning_end (line 5): ' </a>' has whitespace at its edges"),
            ({"s1": "</b>\t"}, "tags.solution_end (line 7): '</b>\\t' has whitespace at its edges"),
            ({"s0": "<a>"}, "tags.solution_start (line 6): '<a>' duplicates tags.reasoning_start"),
            ({"s0": "<a>x"}, "tags.solution_start (line 6): contains tags.reasoning_start ('<a>')"),
            ({"r0": "<b>>"}, "tags.reasoning_start (line 4): contains tags.solution_start ('<b>')"),
            ({"s1": "a>b"}, "tags.solution_end (line 7): 'a>b' overlaps tags.reasoning_start ('<a>'): the end of one is the start of the other"),
            ({"eos": '["</b>"]'}, "output.eos[0] (line 11): '</b>' duplicates tags.solution_end"),
            ({"eos": '["<eos>", "<eos>x"]'}, "output.eos[1] (line 11): contains output.eos[0] ('<eos>')"),
        ],
    )
    def test_bad_tags(self, kwargs, expected):
        assert expected in problems_of(with_tags(**kwargs))

    def test_inner_whitespace_is_allowed(self):
        assert parse_spec(with_tags(s0="<my answer>")).tags.solution_start == "<my answer>"


class TestPlaceholders:
    def test_filled_from_tags(self):
        spec = parse_spec(with_tags().replace("system = 'S'", "system = 'use {reasoning_start} then {solution_end}'"))
        assert spec.system_prompt == "use <a> then </b>"

    def test_other_braces_stay_as_written(self):
        text = with_tags().replace("system = 'S'", "system = 'json {\"k\": 1} and {{x}} and {%y%}'")
        assert parse_spec(text).system_prompt == 'json {"k": 1} and {{x}} and {%y%}'

    def test_unknown_placeholder(self):
        text = with_tags().replace("system = 'S'", "system = 'use {solution}'")
        assert problems_of(text) == [
            "prompt.system (line 9): unknown placeholder {solution} (known: {reasoning_start}, "
            "{reasoning_end}, {solution_start}, {solution_end})"
        ]

    def test_generation_prompt_default_is_reasoning_start(self):
        assert parse_spec(with_tags()).generation_prompt == "<a>"
