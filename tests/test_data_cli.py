"""``reasoning-kit data prepare`` / ``data show``: exact summaries, errors, atomic output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.data.cli import write_jsonl_atomic
from harness.data.sources import BUILTIN
from reasoning_kit.spec import load_spec
from tests.fixtures.omr import KEPT, OMR_ROWS, omr_frame, seed_count, seed_messages, tokenizer_texts
from tests.tiny import save_tiny

SPEC = load_spec("working_out")


def run(*args: str):
    return CliRunner().invoke(main, ["data", *args])


@pytest.fixture(scope="module")
def omr_parquet(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("omr") / "omr.parquet"
    omr_frame().to_parquet(path)
    return path


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    """A tiny model directory (config + weights + tokenizer), as --tokenizer accepts."""
    return save_tiny(tmp_path_factory.mktemp("tiny"), SPEC, tokenizer_texts(SPEC))


@pytest.fixture(scope="module")
def gsm8k_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gsm8k") / "gsm8k.jsonl"
    result = run("prepare", "--dataset", "gsm8k", "--limit", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


class TestPrepareCmd:
    def test_gsm8k_summary(self, tmp_path):
        out = tmp_path / "sub" / "train.jsonl"
        result = run("prepare", "--dataset", "gsm8k", "--limit", "5", "--out", str(out))
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            "dataset: gsm8k (gsm8k format)",
            "rows in: 5",
            "rows kept: 5",
            "dropped: 0",
            "token length: not measured (no tokenizer, so no length filter)",
            f"wrote 5 examples to {out}",
        ]

    def test_output_rows(self, tmp_path):
        out = tmp_path / "train.jsonl"
        run("prepare", "--dataset", "gsm8k", "--limit", "3", "--out", str(out))
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        source = [json.loads(line) for line in BUILTIN["gsm8k"].read_text(encoding="utf-8").splitlines()[:3]]
        assert [r["question"] for r in rows] == [s["question"] for s in source]
        assert [sorted(r) for r in rows] == [["answer", "messages", "question", "source_row", "text"]] * 3

    def test_progress_bar_on_stderr(self, tmp_path):
        result = run("prepare", "--dataset", "gsm8k", "--limit", "3", "--out", str(tmp_path / "t.jsonl"))
        assert "formatting: 100%" in result.stderr

    def test_seed_recipe_summary_with_tokenizer(self, tmp_path, omr_parquet, tok_dir):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tok_dir)
        counts = sorted(seed_count(tok, seed_messages(SPEC, OMR_ROWS[i])) for i in KEPT)
        limit = 2 * counts[-1] + 20
        rank = [counts[math.ceil(q / 100 * len(counts)) - 1] for q in (50, 90, 99)]
        out = tmp_path / "omr.jsonl"
        result = run(
            "prepare", "--dataset", str(omr_parquet), "--tokenizer", str(tok_dir),
            "--max-seq-length", str(limit), "--out", str(out),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        half = limit // 2
        assert result.stdout.splitlines() == [
            f"dataset: {omr_parquet} (openmath format)",
            f"rows in: {len(OMR_ROWS)}",
            f"rows kept: {len(KEPT)}",
            f"dropped: {len(OMR_ROWS) - len(KEPT)}",
            "  answer_not_numeric: 3 (the numeric-answer filter: the answer is not numeric for pd.to_numeric)",
            "  answer_not_a_number: 1 (the spec's validator: the answer is not one number)",
            "  empty_reasoning: 1 (the spec's validator: the reasoning block holds only whitespace)",
            "  marker_in_question: 1 (the question holds a tag or end-of-sequence string)",
            "  missing_problem: 1 (an empty 'problem' value)",
            "  tag_in_reasoning: 1 (the spec's validator: a tag inside the reasoning block)",
            f"  too_long: 1 (the length filter: more than {half} tokens = max_seq_length/2)",
            f"token length: p50 {rank[0]}, p90 {rank[1]}, p99 {rank[2]}, max {counts[-1]} (limit {half})",
            f"wrote {len(KEPT)} examples to {out}",
        ]
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["n_tokens"] for r in rows] == [seed_count(tok, seed_messages(SPEC, OMR_ROWS[i])) for i in KEPT]

    @pytest.mark.parametrize(
        "args, message",
        [
            (["--dataset", "gsm8k-test"],
             "Error: 'gsm8k-test' is the GSM8K test split, reserved for evaluation: never train on it "
             "(use 'gsm8k', the train split)"),
            (["--dataset", "nowhere/data.parquet"], "Error: cannot read nowhere/data.parquet: no such file"),
            (["--dataset", "gsm8k", "--format", "openmath"],
             "Error: gsm8k: missing columns expected_answer, problem, generated_solution for the OpenMathReasoning "
             "format (needs expected_answer, problem, generated_solution); present columns: question, answer"),
            (["--dataset", "openai/gsm8k", "--split", "test"],
             "Error: split 'test' of 'openai/gsm8k' is a test split, reserved for evaluation: never train on it "
             "(use 'gsm8k', the train split)"),
            (["--dataset", "gsm8k", "--spec", "no_such_spec"], None),
        ],
    )  # fmt: skip
    def test_errors_are_one_line_and_keep_the_old_output(self, tmp_path, args, message):
        out = tmp_path / "train.jsonl"
        out.write_text("earlier run\n", encoding="utf-8")
        result = run("prepare", "--out", str(out), "--overwrite", *args)
        assert result.exit_code == 2
        if message is not None:
            assert result.stderr.splitlines()[-1] == message
        assert out.read_text(encoding="utf-8") == "earlier run\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]

    def test_for_eval_allows_the_test_split(self, tmp_path):
        out = tmp_path / "test.jsonl"
        result = run("prepare", "--dataset", "gsm8k-test", "--for-eval", "--limit", "2", "--out", str(out))
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[:2] == ["dataset: gsm8k-test (gsm8k format)", "rows in: 2"]

    def test_zero_rows_names_the_length_filter(self, tmp_path, omr_parquet, tok_dir):
        result = run(
            "prepare", "--dataset", str(omr_parquet), "--tokenizer", str(tok_dir), "--limit", "2",
            "--max-seq-length", "20", "--out", str(tmp_path / "t.jsonl"),
        )  # fmt: skip
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1] == (
            f"Error: {omr_parquet}: no rows left (2 in): 2 dropped by the length filter: "
            "more than 10 tokens = max_seq_length/2 (too_long)"
        )

    def test_unloadable_tokenizer(self, tmp_path):
        result = run("prepare", "--dataset", "gsm8k", "--tokenizer", str(tmp_path / "none.gguf"), "--out", str(tmp_path / "t.jsonl"))
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1] == f"Error: model not found: {tmp_path / 'none.gguf'} (no such file or directory)"


class TestWriteJsonlAtomic:
    def test_interrupted_write_keeps_the_old_file(self, tmp_path):
        out = tmp_path / "train.jsonl"
        out.write_text('{"old": 1}\n', encoding="utf-8")

        def rows():
            yield {"a": 1}
            yield {"a": 2}
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            write_jsonl_atomic(out, rows())
        assert out.read_text(encoding="utf-8") == '{"old": 1}\n'
        assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]

    def test_writes_json_lines(self, tmp_path):
        out = tmp_path / "new" / "t.jsonl"
        assert write_jsonl_atomic(out, iter([{"a": "é"}, {"b": [1]}])) == 2
        assert out.read_text(encoding="utf-8") == '{"a": "é"}\n{"b": [1]}\n'


class TestShowCmd:
    def test_plain_when_not_a_terminal(self, gsm8k_file):
        first = json.loads(gsm8k_file.read_text(encoding="utf-8").splitlines()[0])
        result = run("show", str(gsm8k_file), "-n", "1")
        assert result.exit_code == 0, result.output
        assert result.stdout == f"--- example 1 of 2 (answer 72) ---\n{first['text']}\n"

    def test_default_shows_up_to_three(self, gsm8k_file):
        result = run("show", str(gsm8k_file))
        headers = [line for line in result.stdout.splitlines() if line.startswith("--- example")]
        assert headers == ["--- example 1 of 2 (answer 72) ---", "--- example 2 of 2 (answer 10) ---"]

    def test_tags_highlighted_in_colour(self, gsm8k_file):
        result = CliRunner().invoke(main, ["data", "show", str(gsm8k_file), "-n", "1"], color=True)
        assert "\x1b[36m\x1b[1m<start_working_out>\x1b[0m" in result.stdout
        assert "\x1b[32m\x1b[1m<SOLUTION>\x1b[0m72\x1b[32m\x1b[1m</SOLUTION>\x1b[0m\x1b[35m<|endoftext|>\x1b[0m" in result.stdout

    def test_line_separators_inside_strings(self, tmp_path):
        path = tmp_path / "u2028.jsonl"
        text = "Clive opens a box.  \u2028The box holds 6 balls.\x85"
        path.write_text(json.dumps({"text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
        result = run("show", str(path))
        assert result.exit_code == 0, result.output
        assert result.stdout == f"--- example 1 of 1 ---\n{text}\n"

    @pytest.mark.parametrize(
        "content, message",
        [
            ("", "Error: {path} holds no examples"),
            ('{"text": "a"}\nnot json\n', "Error: {path} line 2 is not valid JSON (Expecting value)"),
            ('{"question": "a"}\n', "Error: {path} line 1 has no 'text' field (write the file with 'reasoning-kit data prepare')"),
            (None, "Error: cannot read {path}: No such file or directory"),
        ],
    )
    def test_bad_files(self, tmp_path, content, message):
        path = tmp_path / "x.jsonl"
        if content is not None:
            path.write_text(content, encoding="utf-8")
        result = run("show", str(path))
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1] == message.format(path=path)


class TestDocs:
    @pytest.mark.parametrize("command", ["prepare", "show"])
    def test_every_option_is_documented(self, command):
        from harness.data.cli import data_group

        docs = (Path(__file__).resolve().parent.parent / "docs" / "data.md").read_text(encoding="utf-8")
        options = [o for p in data_group.commands[command].params for o in p.opts if o.startswith("-") and o != "--help"]
        assert [o for o in options if f"{o} " not in docs and f"`{o}`" not in docs] == []
