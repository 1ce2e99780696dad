"""CLI: validate / template / regex / render — exact output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from reasoning_kit.regex import reward_pattern
from reasoning_kit.spec import load_spec
from tests.format_cases import EOS, R0, R1, S0, S1

GOLDEN = Path(__file__).parent / "golden"
GOOD = f"{R0}2 and 2 make 4.{R1}{S0}4{S1}{EOS}\n"
BAD = f"2 and 2\nmake 4.{R1}{S0}4{S1}\nThanks!\n"


def run(*args, stdin=None):
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.output


@pytest.fixture
def files(tmp_path):
    (tmp_path / "good.txt").write_text(GOOD)
    (tmp_path / "bad.txt").write_text(BAD)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "folder").mkdir()
    (tmp_path / "binary.bin").write_bytes(b"\x89PNG\x00\x01")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    lines = [{"completion": GOOD}, {"text": BAD}, {"completion": f"x{R1}{S0}five{S1}", "answer": "5"}]
    (tmp_path / "batch.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return tmp_path


class TestValidate:
    def test_valid_file(self, files):
        assert run("validate", str(files / "good.txt")) == (0, f"{files / 'good.txt'}: valid (answer: 4)\n")

    def test_invalid_file_shows_line_column_and_caret(self, files):
        code, out = run("validate", str(files / "bad.txt"))
        assert code == 1
        assert out == (
            f"{files / 'bad.txt'}: invalid\n"
            "  3:1: trailing_text: text after the solution block\n"
            "    | Thanks!\n"
            "    | ^^^^^^^\n"
        )

    def test_batch_summary(self, files):
        code, out = run("validate", str(files / "good.txt"), str(files / "batch.jsonl"))
        assert code == 1
        lines = out.splitlines()
        assert lines[0] == f"{files / 'good.txt'}: valid (answer: 4)"
        assert lines[1] == f"{files / 'batch.jsonl'}:1: valid (answer: 4)"
        assert f"{files / 'batch.jsonl'}:2: invalid" in lines
        assert f"{files / 'batch.jsonl'}:3: invalid" in lines
        assert lines[-1] == "2/4 valid; errors: answer_not_a_number 1, trailing_text 1"

    def test_json_output(self, files):
        code, out = run("validate", "--json", str(files / "bad.txt"), str(files / "good.txt"))
        assert code == 1
        first, second = (json.loads(line) for line in out.splitlines())
        assert first["valid"] is False and first["answer"] == "4"
        assert first["errors"] == [
            {"code": "trailing_text", "message": "text after the solution block", "start": BAD.index("Thanks"), "end": BAD.index("Thanks") + 7}
        ]
        assert second == {
            "source": str(files / "good.txt"), "valid": True, "reasoning": "2 and 2 make 4.", "answer": "4",
            "errors": [], "start": 0, "eos": EOS,
        }

    def test_stdin(self):
        assert run("validate", "-", stdin=GOOD) == (0, "<stdin>: valid (answer: 4)\n")

    def test_other_spec_by_name(self, tmp_path):
        path = tmp_path / "a.txt"
        path.write_text("<think>hm</think><answer>Paris</answer>")
        assert run("validate", "--spec", "think_answer", str(path)) == (0, f"{path}: valid (answer: Paris)\n")

    def test_empty_file_is_an_empty_output(self, files):
        code, out = run("validate", str(files / "empty.txt"))
        assert (code, out) == (1, f"{files / 'empty.txt'}: invalid\n  1:1: empty: the output is empty\n")

    @pytest.mark.parametrize(
        "name, message",
        [
            ("missing.txt", "cannot read {d}/missing.txt: no such file"),
            ("binary.bin", "{d}/binary.bin looks binary (it contains NUL bytes); expected UTF-8 text or JSON lines"),
            ("latin1.txt", "{d}/latin1.txt is not UTF-8 text (invalid byte at offset 3)"),
            ("folder", "cannot read {d}/folder: is a directory"),
        ],
    )
    def test_unreadable_inputs_exit_2(self, files, name, message):
        code, out = run("validate", str(files / name))
        assert (code, out) == (2, "Error: " + message.format(d=files) + "\n")

    @pytest.mark.parametrize(
        "content, message",
        [
            ('{"completion": "x"}\nnot json\n', "{p}:2: not valid JSON (Expecting value)"),
            ('{"answer": "4"}\n', "{p}:1: needs a 'completion' or 'text' field (found: answer)"),
            ("\n\n", "{p} holds no outputs (expected one JSON object per line)"),
        ],
    )
    def test_bad_jsonl(self, tmp_path, content, message):
        path = tmp_path / "x.jsonl"
        path.write_text(content)
        result = CliRunner().invoke(main, ["validate", str(path)])
        assert result.exit_code == 2
        assert result.stderr == "Error: " + message.format(p=path) + "\n"

    def test_a_bad_line_is_reported_and_the_rest_checked(self, tmp_path):
        path = tmp_path / "x.jsonl"
        path.write_text(json.dumps({"completion": GOOD}) + "\nnot json\n" + json.dumps({"completion": BAD}) + "\n")
        result = CliRunner().invoke(main, ["validate", str(path)])
        assert result.exit_code == 2
        assert result.stderr == f"Error: {path}:2: not valid JSON (Expecting value)\n"
        lines = result.stdout.splitlines()
        assert lines[0] == f"{path}:1: valid (answer: 4)" and f"{path}:3: invalid" in lines
        assert lines[-1].startswith("1/2 valid; errors: ")

    def test_bad_spec_exits_2_with_one_line(self, files, tmp_path):
        spec = tmp_path / "broken.toml"
        spec.write_text(load_spec().text.replace('kind = "number"', 'kind = "numbr"'))
        code, out = run("validate", "--spec", str(spec), str(files / "good.txt"))
        assert code == 2
        assert out == f"Error: invalid spec {spec}: 1 problem: answer.kind (line 33): must be one of 'number', 'text', got 'numbr'\n"

    def test_no_files_is_a_usage_error(self):
        code, out = run("validate")
        assert code == 2 and "Missing argument 'FILES...'" in out


class TestPrinters:
    @pytest.mark.parametrize("name", ["working_out", "think_answer"])
    def test_template_is_the_golden_file(self, name):
        assert run("template", "--spec", name) == (0, (GOLDEN / f"{name}.jinja").read_text())

    def test_regex(self):
        assert run("regex") == (0, reward_pattern(load_spec()) + "\n")

    def test_verbose_regex_compiles_to_the_same_language(self):
        import re

        code, out = run("regex", "--verbose")
        verbose = re.compile(out)
        assert code == 0 and "# answer" in out
        for text in (GOOD, BAD, f"x{R1}{S0}1,000{S1}"):
            assert bool(verbose.fullmatch(text)) == bool(re.fullmatch(reward_pattern(load_spec()), text))


class TestRender:
    def test_render_with_generation_prompt(self, tmp_path):
        path = tmp_path / "m.json"
        path.write_text(json.dumps([{"role": "user", "content": "What is 2+2?"}]))
        code, out = run("render", str(path), "--add-generation-prompt")
        assert code == 0
        assert out == load_spec().system_prompt + EOS + "What is 2+2?" + R0

    def test_render_messages_object_and_eos(self, tmp_path):
        path = tmp_path / "m.json"
        path.write_text(json.dumps({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]}))
        assert run("render", str(path), "--eos-token", "</s>") == (0, "S</s>Q")

    @pytest.mark.parametrize(
        "content, message",
        [
            ("[", "not valid JSON (Expecting value at line 1)"),
            ("[" * 100_000, "not valid JSON (nested too deeply)"),
            ('[{"role": "user", "content": ' + "7" * 5000 + "}]",
             "not valid JSON (Exceeds the limit (4300 digits) for integer string conversion)"),
            ('{"x": 1}', "expected a JSON list of messages or an object with 'messages'"),
            ('[{"role": "user"}]', "message 0 must be an object with string 'role' and 'content'"),
        ],
    )
    def test_bad_messages(self, tmp_path, content, message):
        path = tmp_path / "m.json"
        path.write_text(content)
        assert run("render", str(path)) == (2, f"Error: {path}: {message}\n")


class TestConsoleScript:
    def test_installed_entry_point_gives_one_line_errors(self, tmp_path):
        exe = Path(sys.executable).with_name("reasoning-kit")
        proc = subprocess.run([str(exe), "validate", str(tmp_path / "nope.txt")], capture_output=True, text=True)
        assert proc.returncode == 2
        assert proc.stderr == f"Error: cannot read {tmp_path / 'nope.txt'}: no such file\n"
        assert "Traceback" not in proc.stderr + proc.stdout
