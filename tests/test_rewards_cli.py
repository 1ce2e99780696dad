"""`reasoning-kit reward`: per-completion scores and totals, --json, one-line errors."""

import json

import pytest
from click.testing import CliRunner

from harness.cli import main
from reasoning_kit.spec import load_spec

SPEC = load_spec("working_out")
R0, R1, S0, S1 = SPEC.tag_list
ROWS = [
    {"completion": f"2 + 2 = 4{R1}{S0}4{S1}", "answer": "4"},
    {"completion": [{"role": "assistant", "content": f"t{R1}{S0}1,000{S1}\nmore"}], "answer": "1000"},
    {"completion": "still thinking", "answer": "4"},
    {"completion": f"t{R1}{S0}5{S1}", "answer": "four"},
]


EXPECTED_TEXT = '(expected a string or a list of {{"role", "content"}} messages)'
EXPECTED_IDS = "(expected null or a list of non-negative integers)"
EXPECTED_PROMPT = '(expected null, a string or a list of {{"role", "content"}} messages)'


def write(tmp_path, rows, name="c.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def invoke(*args, input=None):
    return CliRunner().invoke(main, ["reward", *args], input=input)


class TestRewardCommand:
    def test_table(self, tmp_path):
        path = write(tmp_path, ROWS)
        result = invoke(path)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0].split() == ["completion", "format_exact", "format_approx", "answer", "numbers", "total", "errors"]
        assert lines[2].split() == [f"{path}:1", "3.00", "1.50", "5.00", "3.50", "13.00", "-"]
        assert lines[3].split() == [f"{path}:2", "0.00", "1.50", "3.50", "3.50", "8.50", "trailing_text"]
        assert lines[4].split() == [f"{path}:3", "0.00", "-3.00", "-2.00", "-2.50", "-7.50", "truncated"]
        assert lines[5].split() == [f"{path}:4", "3.00", "1.50", "n/a", "n/a", "4.50", "-"]
        assert lines[7].split() == ["mean", "1.50", "0.38", "2.17", "1.50", "4.62"]
        assert lines[8] == "error codes: trailing_text 1, truncated 1"

    def test_json(self, tmp_path):
        result = invoke(write(tmp_path, ROWS), "--json", "--rewards", "all")
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["rewards"] == ["format_exact", "format_approx", "answer", "numbers", "closeness", "length"]
        assert [r["scores"]["length"] for r in report["rows"]] == [0.0, 0.0, -1.0, 0.0]
        assert [r["total"] for r in report["rows"]] == [14.0, 9.5, -8.5, 4.5]
        assert [r["answer"] for r in report["rows"]] == ["4", "1,000", None, "5"]
        assert report["rows"][3]["scores"]["answer"] is None
        assert report["error_codes"] == {"trailing_text": 1, "truncated": 1}

    def test_choose_rewards_and_column(self, tmp_path):
        rows = [{"completion": f"t{R1}{S0}4{S1}", "gold": "4"}]
        result = invoke(write(tmp_path, rows), "--rewards", "answer,format_exact", "--column", "gold", "--json")
        assert json.loads(result.output)["rows"][0]["scores"] == {"answer": 5.0, "format_exact": 3.0}

    def test_format_rewards_need_no_gold(self, tmp_path):
        result = invoke(write(tmp_path, [{"completion": f"t{R1}{S0}4{S1}"}]), "--rewards", "format_exact", "--json")
        assert json.loads(result.output)["rows"][0]["scores"] == {"format_exact": 3.0}

    def test_stdin(self):
        result = invoke("-", "--json", input=json.dumps(ROWS[0]) + "\n")
        assert json.loads(result.output)["rows"][0]["source"] == "<stdin>:1"

    def test_other_spec(self, tmp_path):
        t = load_spec("think_answer").tags
        rows = [{"completion": f"hmm{t.reasoning_end}{t.solution_start}Paris{t.solution_end}", "answer": "paris"}]
        result = invoke(write(tmp_path, rows), "--spec", "think_answer", "--json")
        assert json.loads(result.output)["rows"][0]["scores"]["answer"] == 3.5

    @pytest.mark.parametrize("rows, args, message", [
        (["{not json"], (), "Error: {path}:1: not valid JSON (Expecting property name enclosed in double quotes)"),
        (["[1, 2]"], (), "Error: {path}:1: expected a JSON object, got list"),
        ([{"text": "x", "answer": "4"}], (), "Error: {path}:1: no 'completion' field (found: answer, text)"),
        ([ROWS[0], {"completion": "x"}], (), "Error: {path}:2: no gold answer field 'answer' (found: completion); "
                                              "choose it with --column"),
        ([], (), "Error: {path} holds no completions (expected one JSON object per line)"),
        ([{"completion": 42, "answer": "42"}], (), "Error: {path}:1: 'completion' is a number, not text " + EXPECTED_TEXT),
        ([{"completion": None, "answer": "4"}], (), "Error: {path}:1: 'completion' is null, not text " + EXPECTED_TEXT),
        ([{"completion": False, "answer": "4"}], (), "Error: {path}:1: 'completion' is false, not text " + EXPECTED_TEXT),
        ([{"completion": ["4"], "answer": "4"}], (), "Error: {path}:1: 'completion' is a list with no message holding "
                                                     "string 'content', not text " + EXPECTED_TEXT),
        ([{"completion": [{"role": "assistant", "content": 4}], "answer": "4"}], (),
         "Error: {path}:1: 'completion' is a list with no message holding string 'content', not text " + EXPECTED_TEXT),
        ([{"completion": {"text": "4"}, "answer": "4"}], (), "Error: {path}:1: 'completion' is an object without "
                                                            "string 'content', not text " + EXPECTED_TEXT),
        ([ROWS[0], {"completion": 1.5}, ROWS[1], {"completion": []}], ("--rewards", "format_exact"),
         "Error: {path}:2: 'completion' is a number, not text " + EXPECTED_TEXT + "; {path}:4: 'completion' is a list "
         "with no message holding string 'content', not text " + EXPECTED_TEXT),
        ([ROWS[0]], ("--rewards", "speed"), "Error: unknown reward 'speed' (known: format_exact, format_approx, "
                                            "answer, numbers, closeness, length)"),
        ([ROWS[0]], ("--rewards", ","), "Error: unknown reward ',' (known: format_exact, format_approx, answer, "
                                        "numbers, closeness, length)"),
    ])
    def test_bad_input(self, tmp_path, rows, args, message):
        path = write(tmp_path, rows)
        result = invoke(path, *args)
        assert result.exit_code == 2
        assert result.output.strip() == message.format(path=path)

    @pytest.mark.parametrize("ids, problem", [
        ("5 0", "is a string, not a list of token ids"),
        ({"ids": [5]}, "is an object, not a list of token ids"),
        (5, "is a number, not a list of token ids"),
        (True, "is true, not a list of token ids"),
        ([5, "0"], 'holds "0" at index 1, not a token id'),
        ([5, 1.0], "holds 1.0 at index 1, not a token id"),
        ([True, 0], "holds true at index 0, not a token id"),
        ([5, -1], "holds -1 at index 1, not a token id"),
        ([5, None], "holds null at index 1, not a token id"),
        ([[5, 0]], "holds [5, 0] at index 0, not a token id"),
        ([5, "x" * 40], "holds a string at index 1, not a token id"),
    ])
    def test_bad_completion_ids(self, tmp_path, ids, problem):
        """Wrongly typed ids would change the length reward silently; each is a one-line error, nothing scored."""
        path = write(tmp_path, [ROWS[0], {**ROWS[0], "completion_ids": ids}])
        result = invoke(path, "--rewards", "all", "--json")
        message = f"Error: {path}:2: 'completion_ids' {problem} {EXPECTED_IDS}"
        assert (result.exit_code, result.output.splitlines()) == (2, [message])

    @pytest.mark.parametrize("prompt, problem", [
        (42, "is a number, not text or messages"),
        ({"role": "user", "content": "2 + 2?"}, "is an object, not text or messages"),
        (False, "is false, not text or messages"),
        (["2 + 2?"], 'holds "2 + 2?" at index 0, not a message'),
        ([{"role": "user", "content": "hi"}, [1]], "holds [1] at index 1, not a message"),
    ])
    def test_bad_prompt(self, tmp_path, prompt, problem):
        """A prompt that is not a string counts as conversational in format_approx: a typo must not pass as one."""
        path = write(tmp_path, [{**ROWS[0], "prompt": prompt}])
        result = invoke(path, "--json")
        message = f"Error: {path}:1: 'prompt' {problem} " + EXPECTED_PROMPT.format()
        assert (result.exit_code, result.output.splitlines()) == (2, [message])

    @pytest.mark.parametrize("extra", [
        {"completion_ids": None}, {"completion_ids": []}, {"completion_ids": [0, 5, 2**40]},
        {"prompt": None}, {"prompt": "2 + 2?"}, {"prompt": []}, {"prompt": [{"role": "user", "content": "2 + 2?"}]},
    ])
    def test_good_optional_fields(self, tmp_path, extra):
        result = invoke(write(tmp_path, [{**ROWS[0], **extra}]), "--rewards", "all", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["rows"][0]["scores"]["answer"] == 5.0

    def test_every_bad_line_is_named(self, tmp_path):
        rows = [ROWS[0], {**ROWS[0], "completion_ids": "1 2"}, ROWS[1], {**ROWS[0], "prompt": 7}]
        path = write(tmp_path, rows)
        result = invoke(path)
        assert result.exit_code == 2
        assert result.output.strip() == (
            f"Error: {path}:2: 'completion_ids' is a string, not a list of token ids {EXPECTED_IDS}; "
            f"{path}:4: 'prompt' is a number, not text or messages " + EXPECTED_PROMPT.format()
        )

    def test_a_completion_without_text_is_not_scored(self, tmp_path):
        """The rewards score a non-string completion as not_text (a trainer must go on); from a file it is a mistake."""
        path = write(tmp_path, [ROWS[0], {"completion": 7, "answer": "7"}])
        result = invoke(path, "--json")
        message = ("Error: {path}:2: 'completion' is a number, not text " + EXPECTED_TEXT).format(path=path)
        assert (result.exit_code, result.output.splitlines()) == (2, [message])  # one line, no report

    def test_doctests(self):
        import doctest

        from harness import cli_reward

        result = doctest.testmod(cli_reward)
        assert result.attempted > 0 and result.failed == 0

    def test_missing_file(self, tmp_path):
        result = invoke(str(tmp_path / "nope.jsonl"))
        assert (result.exit_code, result.output.strip()) == (2, f"Error: cannot read {tmp_path / 'nope.jsonl'}: no such file")

    def test_directory(self, tmp_path):
        result = invoke(str(tmp_path))
        assert (result.exit_code, result.output.strip()) == (2, f"Error: cannot read {tmp_path}: is a directory")

    def test_not_utf8(self, tmp_path):
        path = tmp_path / "c.jsonl"
        path.write_bytes(b'{"completion": "\xff"}\n')
        result = invoke(str(path))
        assert (result.exit_code, result.output.strip()) == (2, f"Error: {path} is not UTF-8 text (invalid byte at offset 16)")
