"""One JSONL reader (reasoning_kit.jsonl) for validate, reward, eval resume and data loading.

Issue 10 section 5: ``str.splitlines()`` broke valid files on U+2028 / U+0085 inside JSON
strings. Each command below reads such a file; random bytes and random JSON shapes never
give a traceback, and the exit codes are the documented ones (0 valid, 1 invalid, 2 input).
"""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from harness.cli import main
from harness.evaluate import EvalError
from harness.evaluate.outputs import read_outputs
from reasoning_kit import jsonl, rewards
from reasoning_kit.reward_config import REWARD_NAMES
from reasoning_kit.spec import load_spec

SPEC = load_spec("working_out")
R0, R1, S0, S1 = SPEC.tag_list
# Characters str.splitlines() breaks on that JSON writes raw inside strings (ensure_ascii=False).
SPLITLINES_ONLY = ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"]
VALID = f"Six blue\u2028balls\x85 and\x1c two.{R1}{S0}8{S1}"


def write_rows(path, rows, newline="\n"):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + newline for r in rows), encoding="utf-8", newline="")
    return path


class TestReader:
    @pytest.mark.parametrize("ch", SPLITLINES_ONLY, ids=[f"U+{ord(c):04X}" for c in SPLITLINES_ONLY])
    def test_splitlines_characters_are_string_data(self, ch):
        text = json.dumps({"q": f"a{ch}b"}, ensure_ascii=False) + "\n"
        assert jsonl.parse(text) == ([(1, {"q": f"a{ch}b"})], [])

    def test_crlf_bom_and_blank_lines(self):
        text = '\ufeff{"a": 1}\r\n\r\n  \n{"a": 2}\r\n'
        assert jsonl.parse(text) == ([(1, {"a": 1}), (4, {"a": 2})], [])

    def test_bad_lines_are_numbered_and_the_rest_kept(self):
        rows, bad = jsonl.parse('{"a": 1}\n{oops\n{"a": 3}\n[\n')
        assert rows == [(1, {"a": 1}), (3, {"a": 3})]
        assert [n for n, _ in bad] == [2, 4]
        assert bad[0][1] == "not valid JSON (Expecting property name enclosed in double quotes)"

    def test_deep_nesting_is_a_bad_line(self):
        assert jsonl.parse("[" * 100_000 + "\n")[1][0][0] == 1

    def test_an_integer_too_long_to_convert_is_a_bad_line(self):
        rows, bad = jsonl.parse('{"a": 1}\n{"answer": ' + "9" * 5000 + "}\n")
        assert rows == [(1, {"a": 1})]
        assert bad == [(2, "not valid JSON (Exceeds the limit (4300 digits) for integer string conversion)")]

    @pytest.mark.parametrize("text, reason", [
        ("[1,\n 2", "not valid JSON (Expecting ',' delimiter at line 2)"),
        ("[" * 100_000, "not valid JSON (nested too deeply)"),
        ("[" + "1" * 5000 + "]", "not valid JSON (Exceeds the limit (4300 digits) for integer string conversion)"),
    ])
    def test_loads_gives_one_reason_for_every_failure(self, text, reason):
        with pytest.raises(jsonl.NotJSON) as err:
            jsonl.loads(text, where=True)
        assert str(err.value) == reason and isinstance(err.value, ValueError)

    @pytest.mark.parametrize("name, expected", [("a.jsonl", True), ("a.JSONL", True), ("a.JsonL", True),
                                                ("a.json", False), ("a.jsonl.txt", False), ("-", False)])
    def test_extension(self, name, expected):
        assert jsonl.is_jsonl(name) is expected

    def test_summary_lists_the_first_lines(self):
        bad = [(n, "not valid JSON (x)") for n in range(1, 9)]
        assert jsonl.summarise("f", bad, limit=2) == "f:1: not valid JSON (x); f:2: not valid JSON (x); and 6 more bad lines"

    def test_dumps_round_trips(self):
        row = {"q": "".join(SPLITLINES_ONLY) + "é\n", "n": [1, 2.5, None]}
        assert jsonl.parse(jsonl.dumps(row) * 2)[0] == [(1, row), (2, row)]


class TestCommands:
    def test_validate(self, tmp_path):
        path = write_rows(tmp_path / "outs.JSONL", [{"completion": VALID}, {"text": f"t{R1}{S0}4{S1}"}], "\r\n")
        result = CliRunner().invoke(main, ["validate", str(path)])
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == "2/2 valid"

    def test_validate_reports_every_bad_line(self, tmp_path):
        path = tmp_path / "outs.jsonl"
        path.write_text('{"completion": "x"}\nnot json\n{"answer": 4}\n[1]\n', encoding="utf-8")
        result = CliRunner().invoke(main, ["validate", str(path)])
        # the good line is checked, then one last line names every bad one (exit 2)
        assert result.exit_code == 2 and result.stdout.startswith(f"{path}:1: invalid")
        assert result.stderr == (
            f"Error: {path}:2: not valid JSON (Expecting value); {path}:3: needs a 'completion' or 'text' field "
            f"(found: answer); {path}:4: needs a 'completion' or 'text' field (found: list)\n")

    def test_reward(self, tmp_path):
        path = write_rows(tmp_path / "c.jsonl", [{"completion": VALID, "answer": "8"}])
        result = CliRunner().invoke(main, ["reward", str(path), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["rows"][0]["scores"] == {
            "format_exact": 3.0, "format_approx": 1.5, "answer": 5.0, "numbers": 3.5}

    def test_reward_reports_every_bad_line(self, tmp_path):
        path = tmp_path / "c.jsonl"
        path.write_text('{"completion": "x", "answer": "4"}\n{bad\n"str"\n', encoding="utf-8")
        result = CliRunner().invoke(main, ["reward", str(path)])
        assert (result.exit_code, result.output) == (2, (
            f"Error: {path}:2: not valid JSON (Expecting property name enclosed in double quotes); "
            f"{path}:3: expected a JSON object, got str\n"))

    def test_eval_resume_reads_rows_with_line_separators(self, tmp_path):
        rows = [{"id": "1", "completion": VALID}, {"id": "2", "completion": "b\u2029c"}]
        write_rows(tmp_path / "outputs.jsonl", rows)
        assert read_outputs(tmp_path) == {"1": rows[0], "2": rows[1]}

    def test_eval_resume_names_every_bad_line(self, tmp_path):
        (tmp_path / "outputs.jsonl").write_text('{"id": "1"}\n{oops\n{"no": "id"}\n', encoding="utf-8")
        with pytest.raises(EvalError) as err:
            read_outputs(tmp_path)
        path = tmp_path / "outputs.jsonl"
        assert str(err.value) == (f"{path}:2: not valid JSON (Expecting property name enclosed in double quotes); "
                                  f"{path}:3: a row without an 'id'; fix or delete those lines, then run again")

    @pytest.mark.parametrize("head", [b'{oops\n', b'{"id": "1"}\n\xff\xfe\n'])
    def test_eval_resume_error_changes_nothing(self, tmp_path, head):
        """A bad line before a torn last line: the error comes first, and the file keeps every byte."""
        path = tmp_path / "outputs.jsonl"
        data = head + b'{"id": "2", "completion": "to'  # torn: the process died mid-write
        path.write_bytes(data)
        with pytest.raises(EvalError):
            read_outputs(tmp_path)
        assert path.read_bytes() == data

    def test_eval_resume_cuts_only_the_torn_line(self, tmp_path):
        path = tmp_path / "outputs.jsonl"
        path.write_bytes(b'{"id": "1"}\n{"id": "2", "comp')
        assert read_outputs(tmp_path) == {"1": {"id": "1"}}
        assert path.read_bytes() == b'{"id": "1"}\n'

    def test_data_source(self, tmp_path):
        from harness.data.sources import read_file

        path = write_rows(tmp_path / "d.JSONL", [{"question": VALID, "answer": "#### 8"}])
        assert read_file(path).to_dict("records") == [{"question": VALID, "answer": "#### 8"}]


# --- random input: never a traceback --------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
completion_like = st.one_of(
    json_values,
    st.lists(st.sampled_from([R0, R1, S0, S1, "4", " ", "\n", "\u2028", "x"]), max_size=8).map("".join),
    st.builds(lambda t: [{"role": "assistant", "content": t}], st.text(max_size=20)),
)
records = st.dictionaries(st.sampled_from(["completion", "text", "answer", "prompt", "completion_ids", "id"]),
                          completion_like, max_size=5)
lines = st.one_of(records.map(lambda r: json.dumps(r, ensure_ascii=False)), json_values.map(json.dumps),
                  st.text(max_size=30))
files = st.one_of(
    st.binary(max_size=200),
    st.lists(lines, max_size=6).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")),
)


def finished(result) -> int:
    """The exit code, after checking the command ended on purpose (no traceback)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result.exit_code


class TestRandomInput:
    @given(files)
    @example(b'{"completion": "a\xe2\x80\xa8b"}\n').via("U+2028 inside a string")
    def test_reader(self, data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return
        rows, bad = jsonl.parse(text)
        numbers = sorted([n for n, _ in rows] + [n for n, _ in bad])
        assert numbers == [n for n, line in enumerate(text.removeprefix("\ufeff").split("\n"), 1)
                           if line.removesuffix("\r").strip()]

    @given(files, st.sampled_from(["x.jsonl", "x.JSONL", "x.txt"]), st.booleans())
    @example(b'{"completion": "t<end_working_out><SOLUTION>4</SOLUTION>"}\n', "x.jsonl", False)
    @example(b"\xff\xfe", "x.jsonl", False)
    def test_validate_cli(self, tmp_path_factory, data, name, as_json):
        path = tmp_path_factory.mktemp("v") / name
        path.write_bytes(data)
        result = CliRunner().invoke(main, ["validate", str(path), *(["--json"] if as_json else [])])
        assert finished(result) in (0, 1, 2)

    @given(files)
    def test_reward_cli(self, tmp_path_factory, data):
        path = tmp_path_factory.mktemp("r") / "c.jsonl"
        path.write_bytes(data)
        result = CliRunner().invoke(main, ["reward", str(path), "--rewards", "all"])
        assert finished(result) in (0, 2)

    @given(st.lists(records, min_size=1, max_size=5))
    def test_reward_set(self, rows):
        funcs = rewards.build(SPEC, REWARD_NAMES)
        for f in funcs:
            out = f(prompts=[r.get("prompt") for r in rows], completions=[r.get("completion") for r in rows],
                    answer=[r.get("answer") for r in rows], completion_ids=[r.get("completion_ids") for r in rows])
            assert len(out) == len(rows) and all(v is None or math.isfinite(v) for v in out)
