"""harness.data: the seed's OpenMathReasoning recipe, the GSM8K adapter, sources and guards.

The seed recipe runs on a local Parquet file with the columns of
unsloth/OpenMathReasoning-mini (split cot), created here; token counts come from a real
BPE tokenizer trained in the test (tests/tiny.py). GSM8K tests use the vendored files.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path

import pytest

from harness.data import recipes, sources
from harness.data.prepare import eval_questions, prepare_dataset
from harness.data.sources import DataError
from reasoning_kit.spec import load_spec
from reasoning_kit.validator import validate
from tests.fixtures.omr import KEPT, OMR_COLUMNS, OMR_ROWS, OmrRow, omr_frame, seed_count, seed_messages, tokenizer_texts
from tests.seed_reference import seed_chat_template
from tests.tiny import corpus, make_tokenizer

SPEC = load_spec("working_out")
THINK = load_spec("think_answer")
GSM8K_TRAIN = sources.BUILTIN["gsm8k"]
GSM8K_TEST = sources.BUILTIN["gsm8k-test"]


@pytest.fixture(scope="module")
def omr_parquet(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("omr") / "cot-00000-of-00001.parquet"
    omr_frame().to_parquet(path)
    return path


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer(SPEC, tokenizer_texts(SPEC))


@pytest.fixture(scope="module")
def short_limit(tok) -> int:
    """A max_seq_length whose half holds every fixture row except the long one."""
    return 2 * max(seed_count(tok, seed_messages(SPEC, OMR_ROWS[i])) for i in KEPT) + 20


def seed_recipe(frame, tokenizer, max_seq_length):
    """The seed article's data code, verbatim but for the token count (transformers 5), the tag
    names (from the spec) and a ``.copy()`` before adding columns (pandas copy-on-write)."""
    import numpy as np
    import pandas as pd

    reasoning_start, reasoning_end = SPEC.tags.reasoning_start, SPEC.tags.reasoning_end
    solution_start, solution_end = SPEC.tags.solution_start, SPEC.tags.solution_end
    system_prompt = SPEC.system_prompt
    dataset = frame[["expected_answer", "problem", "generated_solution"]]
    is_number = pd.to_numeric(pd.Series(dataset["expected_answer"]), errors="coerce").notnull()
    dataset = dataset.iloc[np.where(is_number)[0]]

    def format_dataset(x):
        expected_answer = x["expected_answer"]
        problem = x["problem"]
        thoughts = x["generated_solution"]
        thoughts = thoughts.replace("<think>", "").replace("</think>", "")
        thoughts = thoughts.strip()
        final_prompt = reasoning_start + thoughts + reasoning_end + solution_start + expected_answer + solution_end
        return [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": problem},
            {"role": "assistant", "content": final_prompt},
        ]

    dataset = dataset.copy()
    dataset["Messages"] = dataset.apply(format_dataset, axis=1)
    dataset["N"] = dataset["Messages"].apply(lambda x: seed_count(tokenizer, x))
    dataset = dataset.loc[dataset["N"] <= max_seq_length / 2].copy()
    dataset["text"] = tokenizer.apply_chat_template(dataset["Messages"].values.tolist(), tokenize=False)
    return dataset


@pytest.fixture(scope="module")
def omr_prepared(omr_parquet, tok, short_limit):
    return prepare_dataset(SPEC, str(omr_parquet), tokenizer=tok, max_seq_length=short_limit, progress=False)


class TestPrepareDatasetSeedRecipe:
    def test_detects_the_openmath_layout(self, omr_prepared):
        assert omr_prepared.summary["format"] == "openmath"

    def test_drop_reasons_are_counted(self, omr_prepared):
        expected = Counter(r.reason for r in OMR_ROWS if r.reason)
        assert omr_prepared.summary["dropped"] == dict(expected)
        assert (omr_prepared.summary["rows_in"], omr_prepared.summary["rows_kept"]) == (len(OMR_ROWS), len(KEPT))

    def test_kept_rows_are_the_expected_ones(self, omr_prepared):
        assert omr_prepared.dataset["source_row"] == KEPT

    def test_columns(self, omr_prepared):
        assert set(omr_prepared.dataset.column_names) == {"text", "messages", "answer", "question", "n_tokens", "source_row"}

    def test_think_tags_stripped_and_whitespace_trimmed(self, omr_prepared):
        assistant = omr_prepared.dataset[0]["messages"][2]["content"]
        assert assistant == (
            "<start_working_out>Okay, P + 5N = 82 and P + 10N = 147, so N = 13 and P = 17.\n\n\nThus \\(\\boxed{17}\\)."
            "<end_working_out><SOLUTION>17</SOLUTION>"
        )

    def test_answer_used_as_written_and_gold_stripped(self, omr_prepared):
        row = omr_prepared.dataset[1]
        assert row["messages"][2]["content"].endswith("<SOLUTION> 42 </SOLUTION>")
        assert row["answer"] == "42"

    def test_messages_are_system_user_assistant(self, omr_prepared):
        msgs = omr_prepared.dataset[0]["messages"]
        assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
        assert msgs[0]["content"] == SPEC.system_prompt
        assert msgs[1]["content"] == OMR_ROWS[0].problem

    def test_matches_the_seed_code(self, omr_parquet, omr_prepared, tok, short_limit):
        import pandas as pd

        seed_tok = make_tokenizer(SPEC, tokenizer_texts(SPEC))
        seed_tok.chat_template = seed_chat_template()
        frame = pd.read_parquet(omr_parquet)
        frame = frame[frame["problem"].notnull()]  # the seed has no answer for a missing problem
        seed = seed_recipe(frame, seed_tok, short_limit)
        format_drops = {"answer_not_a_number", "tag_in_reasoning", "empty_reasoning", "marker_in_question"}
        # The seed keeps exactly our rows plus those our format check drops.
        assert sorted(seed.index) == sorted(KEPT + [i for i, r in enumerate(OMR_ROWS) if r.reason in format_drops])
        ours = omr_prepared.dataset
        assert ours["text"] == seed.loc[KEPT, "text"].tolist()
        assert ours["n_tokens"] == seed.loc[KEPT, "N"].tolist()

    def test_every_example_passes_the_validator(self, omr_prepared):
        for_text = [validate(SPEC, t, transcript=True) for t in omr_prepared.dataset["text"]]
        for_turn = [validate(SPEC, m[2]["content"], transcript=False) for m in omr_prepared.dataset["messages"]]
        assert [v.codes for v in for_text + for_turn] == [()] * (2 * len(KEPT))
        assert [v.answer for v in for_text] == omr_prepared.dataset["answer"]

    def test_token_counts_are_apply_chat_template_lengths(self, omr_prepared, tok):
        assert omr_prepared.dataset["n_tokens"] == [seed_count(tok, m) for m in omr_prepared.dataset["messages"]]

    def test_token_length_percentiles(self, omr_prepared):
        counts = sorted(omr_prepared.dataset["n_tokens"])
        rank = {f"p{q}": counts[math.ceil(q / 100 * len(counts)) - 1] for q in (50, 90, 99)}
        assert omr_prepared.summary["token_length"] == {**rank, "max": counts[-1]}

    def test_text_kind_keeps_non_numeric_answers(self, omr_parquet):
        prepared = prepare_dataset(THINK, str(omr_parquet), progress=False)
        # <SOLUTION> is plain text for think_answer; empty reasoning and EOS in a question still drop.
        assert prepared.summary["dropped"] == {
            "empty_reasoning": 1, "marker_in_question": 1, "missing_expected_answer": 1, "missing_problem": 1,
        }  # fmt: skip
        assert prepared.dataset["answer"] == ["17", "42", "\\frac{1}{2}", "1,000", "1e5", "3", "301"]

    def test_without_tokenizer_no_length_filter(self, omr_parquet):
        prepared = prepare_dataset(SPEC, str(omr_parquet), progress=False)
        assert prepared.summary["token_length"] is None
        assert "n_tokens" not in prepared.dataset.column_names
        assert prepared.dataset["source_row"] == KEPT + [len(OMR_ROWS) - 1]

    def test_limit_takes_the_first_rows(self, omr_parquet):
        prepared = prepare_dataset(SPEC, str(omr_parquet), limit=3, progress=False)
        assert (prepared.summary["rows_in"], prepared.summary["dropped"]) == (3, {"answer_not_numeric": 1})

    def test_tokenizer_eos_renders_and_is_a_marker(self, tmp_path):
        rows = [OMR_ROWS[0], OmrRow("eos", "2", "One plus one?</s>", "<think>1+1</think>", "marker_in_question")]
        path = tmp_path / "eos.parquet"
        omr_frame(rows).to_parquet(path)
        tokenizer = make_tokenizer(SPEC, corpus(SPEC), eos="</s>")
        prepared = prepare_dataset(SPEC, str(path), tokenizer=tokenizer, progress=False)
        assert prepared.summary["dropped"] == {"marker_in_question": 1}
        assert prepared.dataset[0]["text"] == tokenizer.apply_chat_template(prepared.dataset[0]["messages"], tokenize=False)
        assert prepared.dataset[0]["text"].endswith("</SOLUTION></s>")


class TestPrepareDatasetLengthFilter:
    def test_row_at_max_seq_length_over_two_is_kept(self, omr_parquet, tok):
        n = seed_count(tok, seed_messages(SPEC, OMR_ROWS[0]))
        prepared = prepare_dataset(SPEC, str(omr_parquet), tokenizer=tok, max_seq_length=2 * n, limit=1, progress=False)
        assert prepared.dataset["n_tokens"] == [n]

    def test_odd_limit_compares_with_the_half(self, omr_parquet, tok):
        n = seed_count(tok, seed_messages(SPEC, OMR_ROWS[0]))
        with pytest.raises(DataError) as err:
            prepare_dataset(SPEC, str(omr_parquet), tokenizer=tok, max_seq_length=2 * n - 1, limit=1, progress=False)
        assert str(err.value) == (
            f"{omr_parquet}: no rows left (1 in): 1 dropped by the length filter: "
            f"more than {n - 1} tokens = max_seq_length/2 (too_long)"
        )


class TestSeedNumericMask:
    @pytest.mark.parametrize(
        "value, numeric",
        [
            ("17", True), (" 17 ", True), ("-3", True), ("2.5", True), ("1e5", True), (".5", True), ("inf", True),
            ("1,000", False), ("\\frac{1}{2}", False), ("1/2", False), ("nan", False), ("", False), (None, False),
        ],
    )  # fmt: skip
    def test_pandas_to_numeric_coerce(self, value, numeric):
        assert recipes.seed_numeric_mask([value]) == [numeric]


class TestStripAnnotations:
    @pytest.mark.parametrize(
        "text, expected",
        [
            ("Natalia sold 48/2 = <<48/2=24>>24 clips.", "Natalia sold 48/2 = 24 clips."),
            ("$<<12/60=0.2>>0.2 and $<<0.2*50=10>>10", "$0.2 and $10"),
            ("if x < 5 and y > 3", "if x < 5 and y > 3"),
            ("no annotations", "no annotations"),
        ],
    )
    def test_removes_calculator_annotations(self, text, expected):
        assert recipes.strip_annotations(text) == expected


class TestNormaliseNumber:
    @pytest.mark.parametrize(
        "text, expected",
        [(" 1,080", "1080"), ("109,200,000", "109200000"), ("-1,000.5", "-1000.5"), ("72 ", "72"),
         ("1,00", "1,00"), ("12,34,567", "12,34,567"), ("Paris", "Paris")],
    )  # fmt: skip
    def test_commas_follow_the_number_grammar(self, text, expected):
        assert recipes.normalise_number(text) == expected


class TestSplitGsm8kAnswer:
    @pytest.mark.parametrize(
        "text, expected",
        [
            (
                "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
                ("Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips.", "72"),
            ),
            ("He earns 36 * 30 = $<<36*30=1080>>1080.\n#### 1,080", ("He earns 36 * 30 = $1080.", "1080")),
            ("Only working, no final line.", None),
        ],
    )
    def test_reasoning_and_answer(self, text, expected):
        assert recipes.split_gsm8k_answer(text) == expected


@pytest.fixture(scope="module")
def gsm8k_prepared():
    return prepare_dataset(SPEC, "gsm8k", progress=False)


def gsm8k_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class TestPrepareDatasetGsm8k:
    def test_every_training_row_is_kept(self, gsm8k_prepared):
        n = len(gsm8k_lines(GSM8K_TRAIN))
        assert (gsm8k_prepared.summary["rows_in"], gsm8k_prepared.summary["rows_kept"]) == (n, n)
        assert gsm8k_prepared.summary["dropped"] == {}
        assert gsm8k_prepared.summary["format"] == "gsm8k"

    def test_first_example_text(self, gsm8k_prepared):
        assert gsm8k_prepared.dataset[0]["text"] == (
            SPEC.system_prompt + "<|endoftext|>Natalia sold clips to 48 of her friends in April, and then she sold half"
            " as many clips in May. How many clips did Natalia sell altogether in April and May?<start_working_out>"
            "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May."
            "<end_working_out><SOLUTION>72</SOLUTION><|endoftext|>"
        )

    def test_no_annotation_left(self, gsm8k_prepared):
        assert [i for i, t in enumerate(gsm8k_prepared.dataset["text"]) if "<<" in t or ">>" in t] == []

    def test_answers_are_the_final_values_without_commas(self, gsm8k_prepared):
        raw = [row["answer"].rpartition("####")[2].strip() for row in gsm8k_lines(GSM8K_TRAIN)]
        with_commas = [i for i, a in enumerate(raw) if "," in a]
        assert len(with_commas) > 0
        answers = gsm8k_prepared.dataset["answer"]
        assert [answers[i] for i in with_commas] == [raw[i].replace(",", "") for i in with_commas]
        assert [i for i, a in enumerate(answers) if a != raw[i].replace(",", "")] == []

    def test_every_example_passes_the_validator(self, gsm8k_prepared):
        bad = [i for i, t in enumerate(gsm8k_prepared.dataset["text"]) if not validate(SPEC, t, transcript=True).valid]
        assert bad == []

    def test_unformattable_rows_are_dropped_with_reasons(self, tmp_path):
        rows = [
            {"question": "Q1?", "answer": "It is 2+2 = <<2+2=4>>4.\n#### 4"},
            {"question": "Q2?", "answer": "No final line here."},
            {"question": "Q3?", "answer": "<<1+1=2>>\n#### 2"},
            {"question": "Q4?", "answer": "Bad grouping.\n#### 1,00"},
            {"question": "", "answer": "Blank question.\n#### 5"},
            {"question": "Q6?", "answer": "Uses a tag </SOLUTION> here.\n#### 6"},
        ]
        path = tmp_path / "mini.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        prepared = prepare_dataset(SPEC, str(path), progress=False)
        assert prepared.summary["dropped"] == {
            "answer_not_numeric": 1, "empty_reasoning": 1, "missing_question": 1,
            "no_final_answer": 1, "tag_in_reasoning": 1,
        }  # fmt: skip
        assert prepared.dataset["messages"][0][2]["content"] == (
            "<start_working_out>It is 2+2 = 4.<end_working_out><SOLUTION>4</SOLUTION>"
        )


class TestPrepareDatasetGeneric:
    @pytest.mark.parametrize(
        "spec, kept_answers, dropped",
        [(SPEC, ["1000"], {"answer_not_numeric": 1}), (THINK, ["1000", "Paris"], {})],
        ids=["number", "text"],
    )
    def test_question_reasoning_answer(self, tmp_path, spec, kept_answers, dropped):
        path = tmp_path / "generic.csv"
        path.write_text(
            'question,reasoning,answer\n"How many?","  Ten hundreds.\n",1,000\n"Capital?",It is Paris.,Paris\n'.replace(
                "1,000", '"1,000"'
            ),
            encoding="utf-8",
        )
        prepared = prepare_dataset(spec, str(path), progress=False)
        assert (prepared.summary["format"], prepared.dataset["answer"], prepared.summary["dropped"]) == (
            "generic", kept_answers, dropped,
        )  # fmt: skip
        assert prepared.dataset["messages"][0][2]["content"] == spec.completion("Ten hundreds.", "1000")


class TestPrepareDatasetTestSplitGuard:
    def test_refuses_gsm8k_test(self):
        with pytest.raises(DataError) as err:
            prepare_dataset(SPEC, "gsm8k-test", progress=False)
        assert str(err.value) == (
            "'gsm8k-test' is the GSM8K test split, reserved for evaluation: never train on it (use 'gsm8k', the train split)"
        )

    def test_refuses_a_copy_of_the_test_file(self, tmp_path):
        copy = tmp_path / "data.jsonl"
        shutil.copy(GSM8K_TEST, copy)
        with pytest.raises(DataError) as err:
            prepare_dataset(SPEC, str(copy), progress=False)
        assert str(err.value) == (
            f"{copy} is a copy of the GSM8K test split, reserved for evaluation: never train on it (use 'gsm8k', the train split)"
        )

    def test_refuses_a_test_split(self):
        with pytest.raises(DataError) as err:
            prepare_dataset(SPEC, "openai/gsm8k", split="test", progress=False)
        assert str(err.value) == (
            "split 'test' of 'openai/gsm8k' is a test split, reserved for evaluation: never train on it (use 'gsm8k', the train split)"
        )

    def test_allowed_for_evaluation(self):
        prepared = prepare_dataset(SPEC, "gsm8k-test", limit=4, for_eval=True, progress=False)
        assert prepared.dataset["question"] == [r["question"] for r in gsm8k_lines(GSM8K_TEST)[:4]]


class TestSplitThatDoesNotApply:
    """A --split given for a built-in name or a file is refused with one message, whichever command reads the data.

    The split check lives in ``check_source`` alone (every loader goes through it); the test-split guard only reads
    a split that chooses rows, so
    data prepare (and train), grpo and eval all say the same (grpo used to call split 'test' of gsm8k a test split).
    """

    @pytest.fixture
    def file(self, tmp_path):
        path = tmp_path / "x.jsonl"
        path.write_text(json.dumps({"question": "1 + 1?", "answer": "#### 2"}) + "\n")
        return str(path)

    @pytest.mark.parametrize("dataset, split, message", [
        ("gsm8k", "test", "split 'test' given for 'gsm8k', a built-in split: splits apply to hub datasets and dataset "
                          "directories (name the split in the dataset instead: --dataset gsm8k-test)"),
        ("arithmetic:2", "test", "split 'test' given for 'arithmetic:2', a built-in split: splits apply to hub datasets "
                                 "and dataset directories (name the split in the dataset instead: --dataset "
                                 "arithmetic-test:2)"),
        ("{file}", "test", "split 'test' given for '{file}', one file, which holds one split: splits apply to hub "
                           "datasets and dataset directories (drop --split)"),
        ("{file}", "validation", "split 'validation' given for '{file}', one file, which holds one split: splits apply "
                                 "to hub datasets and dataset directories (drop --split)"),
    ])
    def test_every_command_says_the_same(self, file, dataset, split, message):
        from harness.grpo import GRPOError
        from harness.grpo.data import prepare_prompts

        dataset, message = dataset.format(file=file), message.format(file=file)
        with pytest.raises(DataError) as sft:
            prepare_dataset(SPEC, dataset, split=split, progress=False)
        with pytest.raises(GRPOError) as grpo:
            prepare_prompts(SPEC, dataset, None, max_seq_length=256, split=split, progress=False)
        with pytest.raises(DataError) as evaluation:
            eval_questions(SPEC, dataset, split=split)
        assert [str(e.value) for e in (sft, grpo, evaluation)] == [message] * 3

    def test_only_a_split_that_chooses_rows_can_be_a_test_split(self, tmp_path, file):
        assert sources.eval_only_reason("openai/gsm8k", "test") == "split 'test' of 'openai/gsm8k' is a test split"
        assert sources.eval_only_reason(str(tmp_path), "test") == f"split 'test' of {str(tmp_path)!r} is a test split"
        assert sources.eval_only_reason("gsm8k", "test") is None
        assert sources.eval_only_reason(file, "test") is None
        assert sources.eval_only_reason("gsm8k-test", "test") == "'gsm8k-test' is the GSM8K test split"


class TestCheckSource:
    """``check_source``: the one check before rows are read, whose result the loaders take without checking again."""

    def test_returns_the_checked_argument(self):
        assert sources.check_source("openai/gsm8k", "train", training=True) == sources.Checked("openai/gsm8k", "train", True)
        assert sources.check_source("arithmetic-test") == sources.Checked("arithmetic-test", None, False)

    def test_a_checked_argument_is_not_checked_again(self, dataset_checks):
        checked = sources.check_source("gsm8k", training=True)
        assert sorted(dataset_checks) == ["check_split", "eval_only_reason"]
        assert sources.check_source(checked) is checked and sources.check_source(checked, training=True) is checked
        assert prepare_dataset(SPEC, checked, limit=2, progress=False).summary["rows_in"] == 2
        assert sorted(dataset_checks) == ["check_split", "eval_only_reason"]

    def test_checked_for_evaluation_is_checked_again_for_training(self):
        checked = sources.check_source("gsm8k-test")
        with pytest.raises(DataError, match="^'gsm8k-test' is the GSM8K test split, reserved for evaluation"):
            prepare_dataset(SPEC, checked, progress=False)

    def test_a_second_split_for_a_checked_argument_is_a_programming_error(self):
        with pytest.raises(TypeError, match="holds its own split"):
            sources.load_source(sources.check_source("openai/gsm8k", "train"), "test")


class TestPrepareDatasetBadInput:
    def test_all_rows_dropped_names_the_filters(self, tmp_path):
        path = tmp_path / "none.parquet"
        omr_frame(OMR_ROWS[2:5] + OMR_ROWS[6:7]).to_parquet(path)
        with pytest.raises(DataError) as err:
            prepare_dataset(SPEC, str(path), progress=False)
        assert str(err.value) == (
            f"{path}: no rows left (4 in): 3 dropped by the numeric-answer filter: the answer is not numeric for "
            "pd.to_numeric (answer_not_numeric); 1 dropped by the spec's validator: a tag inside the reasoning block (tag_in_reasoning)"
        )

    def test_empty_dataset(self, tmp_path):
        path = tmp_path / "empty.parquet"
        omr_frame([]).to_parquet(path)
        with pytest.raises(DataError) as err:
            prepare_dataset(SPEC, str(path), progress=False)
        assert str(err.value) == f"{path}: the dataset has no rows"

    @pytest.mark.parametrize("limit", [0, -2])
    def test_limit_must_be_positive(self, limit):
        with pytest.raises(DataError) as err:
            prepare_dataset(SPEC, "gsm8k", limit=limit, progress=False)
        assert str(err.value) == f"limit must be a positive number of rows, got {limit}"


class TestEvalQuestions:
    def test_default_is_the_gsm8k_test_split(self):
        questions = eval_questions(SPEC)
        rows = gsm8k_lines(GSM8K_TEST)
        assert len(questions) == len(rows)
        assert questions[0] == {"id": 0, "question": rows[0]["question"], "answer": "18"}

    def test_commas_removed_from_gold(self):
        raw = [r["answer"].rpartition("####")[2].strip() for r in gsm8k_lines(GSM8K_TEST)]
        i = next(i for i, a in enumerate(raw) if "," in a)
        assert eval_questions(SPEC)[i]["answer"] == raw[i].replace(",", "")

    def test_limit(self):
        assert [q["id"] for q in eval_questions(SPEC, "gsm8k-test", limit=3)] == [0, 1, 2]

    def test_id_column_and_plain_answers(self, tmp_path):
        path = tmp_path / "eval.jsonl"
        path.write_text('{"id": "a7", "question": "1+1?", "answer": "2"}\n{"id": "b", "question": "Name?", "answer": "Bob"}\n')
        assert eval_questions(SPEC, str(path)) == [{"id": "a7", "question": "1+1?", "answer": "2"}]
        assert [q["answer"] for q in eval_questions(THINK, str(path))] == ["2", "Bob"]

    def test_openmath_layout(self, omr_parquet):
        assert [q["id"] for q in eval_questions(SPEC, str(omr_parquet))] == [0, 1, 5, 6, 7, 8, 10]


class TestLoadSource:
    @pytest.mark.parametrize(
        "name, content, message",
        [
            ("missing.parquet", None, "cannot read {path}: no such file"),
            ("./missing_dir", None, "cannot read {path}: no such file or directory"),
            ("notes.txt", "hello", "cannot read {path}: unsupported file type '.txt' (use .parquet, .jsonl, .json or .csv)"),
            ("bad.jsonl", '{"question": "a"}\n{oops\n', "cannot read {path}: line 2 is not valid JSON (Expecting property name enclosed in double quotes)"),
            ("list.jsonl", '{"question": "a"}\n[1, 2]\n', "cannot read {path}: line 2 is a JSON list, not an object"),
            ("long.jsonl", '{"question": "a", "answer": ' + "9" * 5000 + "}\n",
             "cannot read {path}: line 1 is not valid JSON (Exceeds the limit (4300 digits) for integer string conversion)"),
            ("deep.json", "[" * 100_000, "cannot read {path}: not valid JSON (nested too deeply)"),
            ("long.json", '[{"question": "a", "answer": ' + "9" * 5000 + "}]",
             "cannot read {path}: not valid JSON (Exceeds the limit (4300 digits) for integer string conversion)"),
            ("bad.parquet", b"PAR1 this is not parquet", "cannot read {path}: Could not open Parquet input source '{path}': Parquet magic bytes not found in footer. "
             "Either the file is corrupted or this is not a parquet file."),
            ("latin1.csv", b"question,answer\n\xe9t\xe9,1\n", "cannot read {path}: 'utf-8' codec can't decode byte 0xe9 in position 0: invalid continuation byte"),
        ],
    )  # fmt: skip
    def test_unreadable_paths_are_one_line_errors(self, tmp_path, monkeypatch, name, content, message):
        monkeypatch.chdir(tmp_path)
        path = Path(name)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif isinstance(content, bytes):
            path.write_bytes(content)
        with pytest.raises(DataError) as err:
            sources.load_source(name)
        assert str(err.value) == message.format(path=path)
        assert "\n" not in str(err.value)

    def test_unreachable_hub_id(self):
        with pytest.raises(DataError) as err:
            sources.load_source("unsloth/OpenMathReasoning-mini")
        assert str(err.value) == (
            "cannot load 'unsloth/OpenMathReasoning-mini' (split 'cot') from the Hugging Face hub, and it is not a "
            "local file: Couldn't reach 'unsloth/OpenMathReasoning-mini' on the Hub (OfflineModeIsEnabled); use a local "
            ".parquet/.jsonl/.csv file, 'gsm8k' or 'arithmetic' as the dataset"
        )

    def test_local_copy_of_the_hub_repo(self, tmp_path, monkeypatch, omr_parquet):
        import datasets

        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
        repo = tmp_path / "OpenMathReasoning-mini"
        (repo / "data").mkdir(parents=True)
        shutil.copy(omr_parquet, repo / "data" / "cot-00000-of-00001.parquet")
        (repo / "README.md").write_text(
            "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: cot\n    path: data/cot-*\n---\n"
        )
        source = sources.load_source(str(repo))
        assert (source.kind, source.location, list(source.frame.columns)) == ("directory", f"{repo} (cot)", list(OMR_COLUMNS))
        answers = [recipes.as_text(a) for a in source.frame["expected_answer"].tolist()]
        assert answers == [r.expected_answer for r in OMR_ROWS]

    def test_csv_cells_stay_text(self, tmp_path):
        path = tmp_path / "a.csv"
        path.write_text("question,answer\nq,007\nr,\n", encoding="utf-8")
        assert sources.load_source(str(path)).frame["answer"].tolist()[0] == "007"
        assert recipes.as_text(sources.load_source(str(path)).frame["answer"].tolist()[1]) is None

    def test_jsonl_lines_split_on_newline_only(self, tmp_path):
        path = tmp_path / "u2028.jsonl"
        rows = [{"question": "Balls.\u2028Six blue\x85 ones?", "answer": "6 balls.\n#### 6"}, {"question": "q", "answer": "#### 1"}]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows), encoding="utf-8")
        assert sources.load_source(str(path)).frame.to_dict("records") == rows

    def test_json_array(self, tmp_path):
        path = tmp_path / "a.json"
        path.write_text('[{"question": "q", "answer": "#### 1"}]', encoding="utf-8")
        assert sources.load_source(str(path)).frame.to_dict("records") == [{"question": "q", "answer": "#### 1"}]


class TestDetectRecipe:
    @pytest.mark.parametrize(
        "columns, name",
        [(OMR_COLUMNS, "openmath"), (("question", "answer"), "gsm8k"), (("question", "reasoning", "answer", "id"), "generic")],
    )
    def test_by_columns(self, columns, name):
        assert recipes.detect_recipe(columns, "d").name == name

    @pytest.mark.parametrize(
        "columns, forced, message",
        [
            (("problem", "generated_solution", "source"), None,
             "d: missing column expected_answer for the OpenMathReasoning format (needs expected_answer, problem, "
             "generated_solution); present columns: problem, generated_solution, source"),
            (("question", "text"), None,
             "d: missing column answer for the GSM8K format (needs question, answer); present columns: question, text"),
            (("text", "completion"), None,
             "d: no known column layout (OpenMathReasoning: expected_answer, problem, generated_solution; "
             "question/reasoning/answer: question, reasoning, answer; GSM8K: question, answer; "
             "DAPO-Math (prompt/solution): prompt, solution); present columns: text, completion"),
            (("prompt", "completion"), None,
             "d: missing column solution for the DAPO-Math (prompt/solution) format (needs prompt, solution); "
             "present columns: prompt, completion"),
            (("question", "answer"), "generic",
             "d: missing column reasoning for the question/reasoning/answer format (needs question, reasoning, answer); "
             "present columns: question, answer"),
            (("question", "answer"), "alpaca", "unknown format 'alpaca' (known: auto, openmath, generic, gsm8k, dapo)"),
        ],
    )  # fmt: skip
    def test_missing_columns_name_missing_and_present(self, columns, forced, message):
        with pytest.raises(DataError) as err:
            recipes.detect_recipe(columns, "d", forced)
        assert str(err.value) == message
