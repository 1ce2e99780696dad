"""The generated ``arithmetic`` datasets: the generator, and its use by data prepare, train, grpo and eval.

Answers are recomputed here without the generator's code: the canonical expression and the
expression a question shows are evaluated by a small ``ast`` interpreter, and the numbers of a
word problem are read back from its text in order.
"""

from __future__ import annotations

import ast
import json
import operator
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.data import arithmetic
from harness.data.arithmetic import LEVELS, TEST_SIZE, TRAIN_SIZE, canonical, generate, is_test
from harness.data.prepare import eval_questions, prepare_dataset
from harness.data.sources import DataError, eval_only_reason, load_source
from reasoning_kit.answers import extract, is_correct
from reasoning_kit.spec import load_spec
from reasoning_kit.validator import validate

SPEC = load_spec("working_out")
SPLITS = [(split, level) for level in LEVELS for split in ("train", "test")]
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
NUMBER = re.compile(r"\d+")
STEP = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)\.")  # one line of working: "12 + 7 = 19."


def evaluate(expr: str) -> int:
    """An integer expression of +, -, * and parentheses, by Python's own precedence rules."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            return OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"unexpected {ast.dump(node)} in {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


@pytest.fixture(scope="module")
def problems():
    """Every generated problem of every level and split, by (split, level)."""
    return {(split, level): generate(split, level) for split, level in SPLITS}


class TestGenerator:
    @pytest.mark.parametrize("split, level", SPLITS)
    def test_sizes(self, problems, split, level):
        assert len(problems[split, level]) == (TRAIN_SIZE if split == "train" else TEST_SIZE)

    @pytest.mark.parametrize("level", LEVELS)
    def test_deterministic_for_a_seed(self, level):
        fresh = generate.__wrapped__  # past the cache: generated again from scratch
        assert fresh("test", level) == fresh("test", level) == generate("test", level)
        assert fresh("train", level, 300) == fresh("train", level, 300)
        assert fresh("test", level, seed=1) != fresh("test", level)

    def test_same_problems_in_another_process(self):
        code = (
            "import hashlib, sys; from harness.data.arithmetic import generate;"
            "print(hashlib.sha256(repr([generate(s, l) for s in ('train', 'test') for l in (1, 2, 3)]).encode()).hexdigest())"
        )
        digests = {
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("0", "1")
        }  # fmt: skip
        assert len(digests) == 1 and len(digests.pop()) == 65

    def test_train_and_test_are_disjoint(self, problems):
        # Over the full generated sets, across all levels: no expression and no question in both.
        train = [p for (split, _), ps in problems.items() if split == "train" for p in ps]
        test = [p for (split, _), ps in problems.items() if split == "test" for p in ps]
        assert not {canonical(p.start, p.steps) for p in train} & {canonical(p.start, p.steps) for p in test}
        assert not {p.question for p in train} & {p.question for p in test}
        assert all(is_test(p.start, p.steps) for p in test) and not any(is_test(p.start, p.steps) for p in train)

    @pytest.mark.parametrize("level", LEVELS)
    def test_test_problems_are_distinct(self, problems, level):
        assert len({canonical(p.start, p.steps) for p in problems["test", level]}) == TEST_SIZE

    @pytest.mark.parametrize("split, level", SPLITS)
    def test_answers_are_right(self, problems, split, level):
        for p in problems[split, level]:
            assert evaluate(canonical(p.start, p.steps)) == p.answer >= 0, p
            if p.question.startswith("What is "):  # the expression as shown, with its precedence
                assert evaluate(p.question.removeprefix("What is ").removesuffix("?").replace(" ", "")) == p.answer, p
            else:  # a word problem mentions the start and each operand, in order, and nothing else
                assert [int(n) for n in NUMBER.findall(p.question)] == [p.start, *(n for _, n in p.steps)], p

    @pytest.mark.parametrize("split, level", SPLITS)
    def test_working_is_each_step_in_turn(self, problems, split, level):
        for p in problems[split, level]:
            lines = STEP.findall(p.reasoning)
            assert " ".join(f"{a} {op} {b} = {c}." for a, op, b, c in lines) == p.reasoning, p
            assert [(op, int(b)) for _, op, b, _ in lines] == list(p.steps), p
            values = [p.start] + [int(c) for *_, c in lines]
            assert [int(a) for a, *_ in lines] == values[:-1], p
            assert all(evaluate(f"{a}{op}{b}") == int(c) for a, op, b, c in lines), p
            assert values[-1] == p.answer

    @pytest.mark.parametrize("level", LEVELS)
    def test_level_sets_the_steps_and_ranges(self, problems, level):
        spec = LEVELS[level]
        ps = problems["train", level] + problems["test", level]
        assert {len(p.steps) for p in ps} == {spec.steps}
        assert {op for p in ps for op, _ in p.steps} == {"+", "-", "*"}
        lo, hi = spec.operand
        assert all(lo <= p.start <= hi for p in ps)
        assert all(lo <= n <= hi for p in ps for op, n in p.steps if op != "*")
        assert all(spec.factor[0] <= n <= spec.factor[1] for p in ps for op, n in p.steps if op == "*")
        assert max(p.answer for p in ps) <= spec.max_value
        both = {p.question.startswith("What is ") for p in ps}
        assert both == {True, False}  # expressions and word problems

    def test_higher_levels_are_harder(self, problems):
        # More steps, and at level 3 larger numbers than level 2 can hold.
        steps = [LEVELS[level].steps for level in sorted(LEVELS)]
        assert steps == sorted(set(steps))
        assert max(p.answer for p in problems["train", 3]) > LEVELS[2].max_value
        assert max(n for p in problems["train", 3] for op, n in p.steps if op != "*") > LEVELS[2].operand[1]

    @pytest.mark.parametrize("args, message", [
        (("dev", 2), "unknown arithmetic split 'dev' (known: train, test)"),
        (("train", 4), "unknown arithmetic difficulty 4 (levels: 1, 2, 3)"),
        (("test", 1, 2000), "cannot draw 2000 distinct test problems at level 1"),
    ])  # fmt: skip
    def test_bad_arguments(self, args, message):
        with pytest.raises(ValueError, match=re.escape(message)):
            generate.__wrapped__(*args)


class TestDatasetNames:
    @pytest.mark.parametrize("name, split, level", [
        ("arithmetic", "train", arithmetic.DEFAULT_LEVEL), ("arithmetic:1", "train", 1), ("arithmetic:3", "train", 3),
        ("arithmetic-test", "test", arithmetic.DEFAULT_LEVEL), ("arithmetic-test:1", "test", 1),
    ])  # fmt: skip
    def test_rows_are_the_generated_problems(self, name, split, level):
        source = load_source(name)
        ps = generate(split, level)
        assert source.kind == "generated"
        assert source.frame["question"].tolist() == [p.question for p in ps]
        assert source.frame["answer"].tolist() == [str(p.answer) for p in ps]
        assert (eval_only_reason(name) is not None) == (split == "test")

    @pytest.mark.parametrize("name", ["arithmetic:0", "arithmetic:4", "arithmetic-test:x", "arithmetic:"])
    def test_unknown_level_is_one_line(self, name):
        level = name.partition(":")[2]
        with pytest.raises(DataError) as err:
            load_source(name)
        prefix = name.partition(":")[0]
        assert str(err.value) == f"{name!r}: unknown arithmetic difficulty {level!r} (levels 1, 2, 3, e.g. {prefix}:1)"


@pytest.fixture(scope="module")
def prepared():
    return prepare_dataset(SPEC, "arithmetic:3", limit=300, progress=False)


class TestSftRows:
    def test_every_row_is_kept(self, prepared):
        assert prepared.summary["rows_in"] == prepared.summary["rows_kept"] == 300
        assert prepared.summary["format"] == "generic"

    def test_reasoning_ends_in_the_answer_and_validates(self, prepared):
        problems = generate("train", 3)
        for row, p in zip(prepared.dataset, problems, strict=False):
            assert row["question"] == p.question and row["answer"] == str(p.answer)
            completion = row["messages"][-1]["content"]
            check = validate(SPEC, completion, transcript=False)
            assert check.valid, (completion, check.codes)
            assert check.reasoning.strip().endswith(f"= {p.answer}.")
            assert check.answer == str(p.answer)
            assert is_correct(SPEC, extract(SPEC, completion), str(p.answer)) is True
            assert validate(SPEC, row["text"], transcript=True).answer == str(p.answer)


def data_cli(*args):
    return CliRunner().invoke(main, ["data", *args])


class TestDataPrepareCli:
    def test_prepare_arithmetic(self, tmp_path):
        out = tmp_path / "arith.jsonl"
        result = data_cli("prepare", "--dataset", "arithmetic:1", "--limit", "40", "--out", str(out))
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[:3] == ["dataset: arithmetic:1 (generic format)", "rows in: 40", "rows kept: 40"]
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["answer"] for r in rows] == [str(p.answer) for p in generate("train", 1)[:40]]

    @pytest.mark.parametrize("dataset, message", [
        ("arithmetic-test", "Error: 'arithmetic-test' is the arithmetic test split, reserved for evaluation: "
                            "never train on it (use 'arithmetic', the train split)"),
        ("arithmetic-test:3", "Error: 'arithmetic-test:3' is the arithmetic test split, reserved for evaluation: "
                              "never train on it (use 'arithmetic', the train split)"),
        ("arithmetic:9", "Error: 'arithmetic:9': unknown arithmetic difficulty '9' (levels 1, 2, 3, e.g. arithmetic:1)"),
    ])  # fmt: skip
    def test_refused_in_one_line(self, tmp_path, dataset, message):
        out = tmp_path / "x.jsonl"
        result = data_cli("prepare", "--dataset", dataset, "--out", str(out))
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [message]
        assert not out.exists()

    def test_for_eval_allows_the_test_split(self, tmp_path):
        out = tmp_path / "t.jsonl"
        result = data_cli("prepare", "--dataset", "arithmetic-test", "--for-eval", "--out", str(out))
        assert result.exit_code == 0, result.output
        assert len(out.read_text(encoding="utf-8").splitlines()) == TEST_SIZE


class TestTrainingRefusesTheTestSplit:
    def test_train(self, tmp_path):
        from tests.tiny import corpus, save_tiny

        model = save_tiny(tmp_path / "model", SPEC, corpus(SPEC, 10))
        out = tmp_path / "out"
        args = ["train", "--model", str(model), "--dataset", "arithmetic-test", "--backend", "hf", "--output", str(out),
                "--no-progress"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert result.output.splitlines()[-1] == (
            "Error: 'arithmetic-test' is the arithmetic test split, reserved for evaluation: never train on it "
            "(use 'arithmetic', the train split)"
        )
        assert not out.exists()

    @pytest.mark.parametrize("dataset", ["arithmetic-test", "arithmetic-test:2"])
    def test_grpo(self, tmp_path, dataset):
        out = tmp_path / "o"
        result = CliRunner().invoke(main, ["grpo", "--out", str(out), "--dataset", dataset])
        assert result.exit_code == 2
        assert result.output.splitlines()[-1] == (
            f"Error: {dataset!r} is the arithmetic test split, reserved for evaluation: never train on it "
            "(use 'arithmetic', the train split)"
        )
        assert not out.exists()


class TestEvaluationAndGrpoData:
    def test_eval_loads_the_test_split_with_gold_answers(self):
        from harness.evaluate.questions import load_questions

        questions = load_questions(SPEC, "arithmetic-test")
        problems = generate("test", arithmetic.DEFAULT_LEVEL)
        assert [(q["question"], q["answer"]) for q in questions] == [(p.question, str(p.answer)) for p in problems]
        assert len({q["id"] for q in questions}) == TEST_SIZE
        assert eval_questions(SPEC, "arithmetic-test:1", limit=5)[0]["answer"] == str(generate("test", 1)[0].answer)

    def test_grpo_prompts_carry_the_gold_answers(self):
        from harness.grpo.data import prepare_prompts
        from tests.tiny import corpus, make_tokenizer

        tok = make_tokenizer(SPEC, corpus(SPEC, 10))
        data = prepare_prompts(SPEC, "arithmetic", tok, max_seq_length=512, max_prompt_length=400, limit=50,
                               progress=False)
        problems = generate("train", arithmetic.DEFAULT_LEVEL)[:50]
        assert data.dataset[SPEC.answer.column] == [str(p.answer) for p in problems]
        assert [m[-1]["content"] for m in data.dataset["prompt"]] == [p.question for p in problems]
