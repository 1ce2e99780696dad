"""`reasoning-kit reward-audit`: the battery is derived from the spec, and it tells a gameable reward from a sound one."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from harness.audit import redteam
from harness.cli import main
from reasoning_kit.spec import load_spec
from reasoning_kit.validator import validate

SPECS = [load_spec("working_out"), load_spec("think_answer")]


def sound_reward(prompts, completions, answer, **kwargs):
    """Pays only what the validator accepts: 1 for the format, +1 for the right answer."""
    spec = load_spec("working_out")
    out = []
    for c, gold in zip(completions, answer):
        check = validate(spec, c[0]["content"] if isinstance(c, list) else c, transcript=False)
        out.append((1.0 + (check.answer == gold)) if check.valid else 0.0)
    return out


def gameable_reward(prompts, completions, answer, **kwargs):
    """Pays 2 when the gold answer appears anywhere, as many hand-written rewards do; raw strings only."""
    return [2.0 if re.search(re.escape(gold), c) else 0.0 for c, gold in zip(completions, answer)]


class TestBattery:
    @pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
    def test_baseline_and_references_are_valid_and_every_hack_is_not(self, spec):
        for case in redteam.battery(spec):
            assert validate(spec, case.text, transcript=False).valid == (case.kind != "hack"), case.name

    @pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
    def test_cases_are_built_from_the_spec_tags(self, spec):
        text = "".join(c.text for c in redteam.battery(spec))
        assert all(tag in text for tag in spec.tag_list)
        other = SPECS[1] if spec is SPECS[0] else SPECS[0]
        assert not any(tag in text for tag in other.tag_list)

    def test_prefilled_start_tag_is_also_tried_repeated(self):
        names = {c.name for c in redteam.battery(SPECS[0])}
        assert {"trailing_text", "trailing_text+start", "valid_wrong+start"} <= names


class TestRun:
    def test_sound_reward_has_no_hack(self):
        report = redteam.run(SPECS[0], [sound_reward])
        assert report.hacks == [] and report.baseline == 1.0 and report.reference == 2.0
        assert report.forms == {"sound_reward": "conversational"}

    def test_gameable_reward_is_caught_and_called_with_raw_strings(self):
        report = redteam.run(SPECS[0], [gameable_reward])
        hacks = {r.name for r in report.hacks}
        assert {"trailing_text", "answer_outside_block", "duplicate_blocks_hedge"} <= hacks
        assert report.forms == {"gameable_reward": "standard"} and report.baseline == 0.0

    def test_forced_form(self):
        with pytest.raises(ValueError, match=r"reward 'gameable_reward' fails on conversational completions"):
            redteam.run(SPECS[0], [gameable_reward], form="conversational")
        assert redteam.run(SPECS[0], [sound_reward], form="standard").forms == {"sound_reward": "standard"}

    def test_totals_sum_the_rewards(self):
        report = redteam.run(SPECS[0], [sound_reward, gameable_reward])
        right = next(r for r in report.rows if r.name == redteam.REFERENCE)
        assert right.scores == {"sound_reward": 2.0, "gameable_reward": 2.0} and right.total == 4.0

    def test_a_reward_taking_neither_form_is_an_error(self):
        def broken(prompts, completions, **kwargs):
            raise KeyError("content")

        with pytest.raises(ValueError, match=r"reward 'broken' fails on both completion forms"):
            redteam.run(SPECS[0], [broken])

    def test_project_rewards_pay_the_transcript_prefix_today(self):
        """The hole issue 10 §4 closes: when it is fixed this row turns into a non-hack."""
        from reasoning_kit import rewards

        report = redteam.run(SPECS[0], rewards.build(SPECS[0]))
        row = next(r for r in report.rows if r.name == "transcript_prefix")
        assert row.scores["format_exact"] == (SPECS[0].rewards.format_exact if row.above_baseline else 0.0)


class TestCli:
    def test_exit_1_on_a_hack_and_0_without(self):
        runner = CliRunner()
        bad = runner.invoke(main, ["reward-audit", "--reward", "tests.test_reward_audit:gameable_reward", "--json"])
        good = runner.invoke(main, ["reward-audit", "--reward", "tests.test_reward_audit:sound_reward"])
        assert bad.exit_code == 1 and "trailing_text" in json.loads(bad.stdout)["hacks"]
        assert good.exit_code == 0 and good.stdout.splitlines()[-1] == "no hack scores above a valid wrong answer (1.00)"

    @pytest.mark.parametrize("ref, message", [
        ("nothing", "expected module:function"),
        ("tests.test_reward_audit:nope", "has no attribute 'nope'"),
        ("tests.test_reward_audit:SPECS", "is not a function"),
    ])
    def test_bad_reward_reference_is_a_usage_error(self, ref, message):
        result = CliRunner().invoke(main, ["reward-audit", "--reward", ref])
        assert result.exit_code == 2 and message in result.stderr
