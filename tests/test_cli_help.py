"""What ``--help`` and ``validate`` tell a newcomer (issue 16, items 10 and 12).

- ``train --help`` / ``grpo --help``: every option that stands for a [train]/[grpo] key names the
  key and its default (and the ``--offline`` value where the preset changes it), read from the
  schema; ``--offline`` lists every key its preset sets.
- ``eval --help``: the usage line is a run's (``--model M --out DIR``, both marked required), with
  ``eval compare`` as the second form; ``eval compare`` still works on its own.
- ``validate --spec X``: one hint line on stderr when most invalid outputs are valid under
  another shipped spec.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.cliutil import shown
from harness.grpo.config import OPTION_KEYS as GRPO_OPTIONS
from harness.train.config import OPTION_KEYS as TRAIN_OPTIONS
from reasoning_kit.grpo_config import GRPOTrainConfig
from reasoning_kit.spec import load_spec, shipped_specs
from reasoning_kit.train_config import TrainConfig


def invoke(*args, stdin=None):
    return CliRunner().invoke(main, list(args), input=stdin)


def help_of(command: str) -> str:
    """``reasoning-kit COMMAND --help`` unwrapped, every run of whitespace made one space."""
    result = CliRunner().invoke(main, [*command.split(), "--help"], terminal_width=100_000, max_content_width=100_000)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


TABLES = {"train": (TrainConfig, TRAIN_OPTIONS), "grpo": (GRPOTrainConfig, GRPO_OPTIONS)}


class TestTrainAndGrpoHelp:
    @pytest.mark.parametrize("command, option, key",
                             [(c, o, k) for c, (_, keys) in TABLES.items() for o, k in keys.items()])
    def test_option_names_its_key_and_default(self, command, option, key):
        config = TABLES[command][0]()  # the schema's defaults, as a config built with no spec values
        offline = config.with_offline()
        text = help_of(command)
        expected = f"[{command}] {key}, default {shown(getattr(config, key))}"
        if getattr(offline, key) != getattr(config, key):
            expected += f" (--offline: {shown(getattr(offline, key))})"
        assert expected + "." in text

    @pytest.mark.parametrize("command", TABLES)
    def test_offline_lists_every_key_its_preset_sets(self, command):
        config = TABLES[command][0]()
        offline = config.with_offline()
        text = help_of(command)
        preset_keys = config.offline.keys()
        assert preset_keys  # the preset sets something
        for key in preset_keys:
            assert f"{key}={shown(getattr(offline, key))}" in text, key

    def test_defaults_follow_the_schema(self):
        """A changed default shows up in the help of a command built after the change (no copy in the CLI)."""
        from harness.cliutil import key_help

        @dataclasses.dataclass(frozen=True)
        class Other(TrainConfig):
            learning_rate: float = 0.125

        assert "[train] learning_rate, default 0.125 (--offline: " in key_help(Other, "train", "learning_rate", "x")


class TestEvalHelp:
    def test_usage_is_a_run_and_compare(self):
        lines = invoke("eval", "--help").output.splitlines()
        assert lines[0].endswith("eval [OPTIONS] --model M --out DIR")
        assert lines[1].strip().endswith("eval compare RUNS... [--chart FILE]")

    def test_model_and_out_are_marked_required(self):
        import click

        from harness.evaluate.cli import eval_group

        ctx = click.Context(eval_group)
        records = dict(p.get_help_record(ctx) for p in eval_group.params if p.get_help_record(ctx))
        required = sorted(spec for spec, text in records.items() if text.endswith("[required]"))
        assert required == ["--model M", "--out DIR"]

    def test_missing_model_is_a_usage_error(self, tmp_path):
        result = invoke("eval", "--out", str(tmp_path / "run"))
        assert result.exit_code == 2 and "Missing option '--model'." in result.output
        assert not (tmp_path / "run").exists()

    def test_compare_still_runs(self, tmp_path):
        result = invoke("eval", "compare", str(tmp_path / "nothing"))
        assert result.exit_code == 2 and "report.json" in result.output  # compare's own one-line error


def outputs_of(spec_name: str, n: int = 4) -> list[str]:
    """Outputs valid under the shipped spec ``spec_name``, built from its tags."""
    spec = load_spec(spec_name)
    return [spec.completion(f"{i} and {i} make {2 * i}.", str(2 * i), eos=spec.eos[0]) for i in range(n)]


def write_jsonl(path, texts: list[str]):
    path.write_text("".join(json.dumps({"completion": t}) + "\n" for t in texts))
    return path


class TestOtherSpecHint:
    @pytest.mark.parametrize("made_with", shipped_specs())
    def test_names_the_spec_the_outputs_follow(self, tmp_path, made_with):
        (given,) = [s for s in shipped_specs() if s != made_with]
        path = write_jsonl(tmp_path / "out.jsonl", outputs_of(made_with))
        result = invoke("validate", "--spec", given, str(path))
        assert result.exit_code == 1
        assert result.stderr == (f"hint: 4 of the 4 invalid outputs are valid under the shipped spec {made_with}; "
                                 f"did you mean --spec {made_with}?\n")

    @pytest.mark.parametrize("made_with", shipped_specs())
    def test_no_hint_under_the_right_spec(self, tmp_path, made_with):
        path = write_jsonl(tmp_path / "out.jsonl", outputs_of(made_with))
        result = invoke("validate", "--spec", made_with, str(path))
        assert (result.exit_code, result.stderr) == (0, "")

    def test_no_hint_when_only_some_would_pass(self, tmp_path):
        texts = outputs_of("working_out", 2) + ["no format at all", "still none", "nor here"]
        path = write_jsonl(tmp_path / "out.jsonl", texts)
        result = invoke("validate", "--spec", "think_answer", str(path))
        assert (result.exit_code, result.stderr) == (1, "")

    def test_hint_with_json_output_keeps_stdout_json(self, tmp_path):
        path = write_jsonl(tmp_path / "out.jsonl", outputs_of("working_out", 3))
        result = invoke("validate", "--json", "--spec", "think_answer", str(path))
        assert [json.loads(line)["valid"] for line in result.stdout.splitlines()] == [False] * 3
        assert result.stderr.startswith("hint: 3 of the 3 invalid outputs are valid under the shipped spec working_out")
