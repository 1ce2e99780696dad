"""GRPO reward functions: a table of completions with each reward's score, properties, API."""

import doctest
import math
import pickle

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reasoning_kit import answers, rewards
from reasoning_kit.reward_config import DEFAULT_REWARDS, REWARD_NAMES, RewardConfig
from reasoning_kit.spec import load_spec
from reasoning_kit.validator import CODES, validate
from tests.test_answers import with_answer, with_keys
from tests.tiny import corpus, make_tokenizer

SPEC = load_spec("working_out")
R0, R1, S0, S1 = SPEC.tag_list
EOS, EOS2 = SPEC.eos
CHAT_PROMPT = [{"role": "user", "content": "What is 2 + 2?"}]
NAMES = list(REWARD_NAMES)
FUNCS = rewards.build(SPEC, NAMES)
TEXT_FUNCS = rewards.build(load_spec("think_answer"), NAMES)
NO_TURN = SPEC.system_prompt + EOS + "What is 2 + 2?"  # looks like a transcript without the assistant's turn
# Issue 10 appendix: system prompt + EOS, junk, then a valid-looking last turn. As a transcript its last
# turn is valid; as the completion it is, it is not (and the answer is in three solution blocks).
APPENDIX = (
    "You are given a problem.\nThink about the problem and provide your working out.\nPlace it between "
    "<start_working_out> and <end_working_out>.\nThen, provide your solution between <SOLUTION></SOLUTION>"
    "<|endoftext|>blah <SOLUTION>999</SOLUTION> junk <end_working_out><end_working_out><|endoftext|><|endoftext|>"
    "<start_working_out>I add.<end_working_out><SOLUTION>4</SOLUTION>"
)


def scores(completion, gold="4", prompt=CHAT_PROMPT, funcs=FUNCS, **columns):
    """{reward name: score} for one completion."""
    return {f.__name__: f(prompts=[prompt], completions=[completion], answer=[gold], **columns)[0] for f in funcs}


def expect(fe, fa, ans, num, clo, length=0.0):
    return dict(zip(NAMES, (fe, fa, ans, num, clo, length)))


RIGHT = expect(3.0, 1.5, 5.0, 3.5, 1.0)
# (id, completion, gold, expected scores, the validator's codes)
TABLE = [
    # --- valid, right: every form ---
    ("valid right", f"2 + 2 = 4{R1}{S0}4{S1}", "4", RIGHT, ()),
    ("valid right, eos kept", f"2 + 2 = 4{R1}{S0}4{S1}{EOS}", "4", RIGHT, ()),
    ("valid right, chatml eos", f"2 + 2 = 4{R1}{S0}4{S1}{EOS2}\n", "4", RIGHT, ()),
    ("valid right, start tag repeated", f"{R0}2 + 2 = 4{R1}{S0}4{S1}", "4", RIGHT, ()),
    ("valid right, unicode", f"Überlegung: 2×2 = 4 ✓ 𝄞{R1}\n{S0}4{S1}", "4", RIGHT, ()),
    ("conversational", [{"role": "assistant", "content": f"2 + 2 = 4{R1}{S0}4{S1}"}], "4", RIGHT, ()),
    ("content parts", [{"role": "assistant", "content": [{"type": "text", "text": f"2+2=4{R1}{S0}4{S1}"}]}], "4", RIGHT, ()),
    # --- valid, right after normalising (the notebook's 3.5 tier), incl. its "1,000" bug ---
    ("spaces in block", f"t{R1}{S0} 4 {S1}", "4", expect(3.0, 1.5, 3.5, 3.5, 1.0), ()),
    ("answer 1,000", f"t{R1}{S0}1,000{S1}", "1000", expect(3.0, 1.5, 3.5, 3.5, 1.0), ()),
    ("gold 1,000", f"t{R1}{S0}1000{S1}", "1,000", expect(3.0, 1.5, 3.5, 3.5, 1.0), ()),
    ("trailing zero", f"t{R1}{S0}2.50{S1}", "2.5", expect(3.0, 1.5, 3.5, 3.5, 1.0), ()),
    ("plus sign", f"t{R1}{S0}+3{S1}", "3", expect(3.0, 1.5, 3.5, 3.5, 1.0), ()),
    ("zero", f"t{R1}{S0}0.0{S1}", "0", expect(3.0, 1.5, 3.5, 3.5, 1.0), ()),
    ("gold fraction", f"t{R1}{S0}0.75{S1}", "3/4", expect(3.0, 1.5, 3.5, 3.5, 1.0), ()),
    # --- valid, wrong ---
    ("within 10%", f"t{R1}{S0}95{S1}", "100", expect(3.0, 1.5, 2.0, -1.5, 0.9), ()),
    ("within 20%", f"t{R1}{S0}85{S1}", "100", expect(3.0, 1.5, 1.5, -1.5, 0.7), ()),
    ("wrong", f"t{R1}{S0}7{S1}", "4", expect(3.0, 1.5, -2.5, -1.5, 0.0), ()),
    ("wrong sign", f"t{R1}{S0}-4{S1}", "4", expect(3.0, 1.5, -2.5, -1.5, 0.0), ()),
    ("gold 0, no division by zero", f"t{R1}{S0}1{S1}", "0", expect(3.0, 1.5, -2.5, -1.5, 0.0), ()),
    # --- unparsable gold: answer rewards give None, format rewards still score ---
    ("gold in words", f"t{R1}{S0}4{S1}", "four", expect(3.0, 1.5, None, None, None), ()),
    ("gold percent, not allowed", f"t{R1}{S0}50{S1}", "50%", expect(3.0, 1.5, None, None, None), ()),
    ("gold missing", f"t{R1}{S0}4{S1}", None, expect(3.0, 1.5, None, None, None), ()),
    ("gold a boolean", f"t{R1}{S0}1{S1}", True, expect(3.0, 1.5, None, None, None), ()),
    ("gold an int", f"t{R1}{S0}1{S1}", 1, expect(3.0, 1.5, 5.0, 3.5, 1.0), ()),
    # --- every validator error code ---
    ("not text", 42, "4", expect(0.0, -3.0, -2.0, -2.5, 0.0), ("not_text",)),
    ("empty", "", "4", expect(0.0, -3.0, -2.0, -2.5, 0.0), ("empty",)),
    ("truncated", "I am still thinking about 4", "4", expect(0.0, -3.0, -2.0, -2.5, 0.0, -1.0), ("truncated",)),
    ("truncated in block", f"t{R1}{S0}4", "4", expect(0.0, 0.0, -2.0, -2.5, 0.0, -1.0), ("truncated",)),
    ("text before start", f"Sure! {R0}a{R1}{S0}4{S1}", "4", expect(0.0, 0.5, 5.0, 3.5, 1.0),
     ("text_before_reasoning_start",)),
    ("no reasoning end", f"think{S0}4{S1}", "4", expect(0.0, 0.0, 5.0, 3.5, 1.0), ("missing_reasoning_end",)),
    ("empty reasoning", f"{R0}  \n{R1}{S0}4{S1}", "4", expect(0.0, 1.5, 5.0, 3.5, 1.0), ("empty_reasoning",)),
    ("tag in reasoning", f"t {S0}x{S1} t{R1}{S0}4{S1}", "4", expect(0.0, -1.5, -2.0, -2.5, 0.0),
     ("tag_in_reasoning", "tag_in_reasoning")),
    # the notebook read "4" here: numbers outside the solution block are never used
    ("number outside the block", f"think{R1} the answer is 4{EOS}", "4", expect(0.0, -1.5, -2.0, -2.5, 0.0),
     ("missing_solution_start",)),
    ("text between blocks", f"t{R1} so {S0}4{S1}", "4", expect(0.0, 1.5, 5.0, 3.5, 1.0), ("text_between_blocks",)),
    ("no solution end", f"think{R1}{S0}4{EOS}", "4", expect(0.0, 0.0, -2.0, -2.5, 0.0), ("missing_solution_end",)),
    ("tag in answer", f"t{R1}{S0}4{R1}{S1}", "4", expect(0.0, 0.0, -2.0, -2.5, 0.0), ("tag_in_answer",)),
    ("empty answer", f"t{R1}{S0}  {S1}", "4", expect(0.0, 1.5, -2.0, -2.5, 0.0), ("empty_answer",)),
    ("answer in words", f"t{R1}{S0}four{S1}", "4", expect(0.0, 1.5, -2.0, -2.5, 0.0), ("answer_not_a_number",)),
    ("unicode digits", f"t{R1}{S0}٤{S1}", "4", expect(0.0, 1.5, -2.0, -2.5, 0.0), ("answer_not_a_number",)),
    # the notebook captured "4</SOLUTION><SOLUTION>5" and gave format credit
    ("duplicate solution blocks", f"t{R1}{S0}4{S1}{S0}5{S1}", "4", expect(0.0, -1.5, -2.0, -2.5, 0.0),
     ("duplicate_block",)),
    # the notebook's `$` with re.MULTILINE accepted this
    ("trailing lines", f"t{R1}{S0}4{S1}\n\nAnything else?", "4", expect(0.0, 1.5, 5.0, 3.5, 1.0), ("trailing_text",)),
    ("eos before end", f"t{EOS} more{R1}{S0}4{S1}", "4", expect(0.0, 1.5, 5.0, 3.5, 1.0), ("eos_before_end",)),
    ("two eos", f"t{R1}{S0}4{S1}{EOS}{EOS}", "4", expect(0.0, 1.5, 5.0, 3.5, 1.0), ("multiple_eos",)),
    ("text after eos", f"t{R1}{S0}4{S1}{EOS}\nUser: next", "4", expect(0.0, 1.5, 5.0, 3.5, 1.0), ("text_after_eos",)),
    ("tag case", f"t<END_WORKING_OUT>{S0}4{S1}", "4", expect(0.0, 0.0, 5.0, 3.5, 1.0),
     ("missing_reasoning_end", "tag_case_mismatch")),
    ("looks like a transcript", NO_TURN, "4", expect(0.0, 0.5, -2.0, -2.5, 0.0),
     ("text_before_reasoning_start", "text_between_blocks", "empty_answer", "text_after_eos")),
]


class TestScoreTable:
    @pytest.mark.parametrize("completion, gold, expected, codes", [c[1:] for c in TABLE], ids=[c[0] for c in TABLE])
    def test_scores(self, completion, gold, expected, codes):
        assert scores(completion, gold) == expected

    @pytest.mark.parametrize("completion, gold, expected, codes", [c[1:] for c in TABLE], ids=[c[0] for c in TABLE])
    def test_codes(self, completion, gold, expected, codes):
        assert validate(SPEC, answers.completion_text(completion), transcript=False).codes == codes

    def test_table_covers_every_error_code(self):
        # no_assistant_turn is a transcript code: rewards validate completions strictly, never as transcripts
        assert {code for *_, codes in TABLE for code in codes} == set(CODES) - {"no_assistant_turn"}

    @pytest.mark.parametrize("completion, gold, expected, codes", [c[1:] for c in TABLE], ids=[c[0] for c in TABLE])
    def test_format_exact_agrees_with_the_validator(self, completion, gold, expected, codes):
        assert (expected["format_exact"] == SPEC.rewards.format_exact) == (codes == ())


@pytest.fixture(scope="module")
def seed():
    from benchmarks.baselines import SeedRewards

    return SeedRewards(R1, S0, S1, EOS)


class TestSeedNotebookBugs:
    """Where the notebook's functions (benchmarks/baselines.py) go wrong, and what ours give."""

    @pytest.mark.parametrize("completion, gold, seed_score, ours", [
        (f"t{R1}{S0}1{S1}", "0", -4.5, -2.5),  # float division by zero, caught by a bare except
        (f"t{R1}{S0}1,000{S1}", "1000", -4.5, 3.5),  # float("1,000") fails
        (f"t{R1}{S0}4{S1}{S0}5{S1}", "4", -4.5, -2.0),  # "4</SOLUTION><SOLUTION>5" captured, float() fails
        (f"t{R1}{S0}4{S1}\nAnything else?", "4", 5.0, 5.0),  # same answer score; the format differs (below)
    ])
    def test_check_answer(self, seed, completion, gold, seed_score, ours):
        conv = [[{"role": "assistant", "content": completion}]]
        assert seed.check_answer([CHAT_PROMPT], conv, [gold]) == [seed_score]
        assert scores(completion, gold)["answer"] == ours

    @pytest.mark.parametrize("completion, seed_score", [
        (f"t{R1}{S0}4{S1}\nAnything else?", 3.0),  # trailing lines accepted by `$` + re.MULTILINE
        (f"t{R1}{S0}4{S1}{S0}5{S1}", 3.0),  # duplicate blocks accepted
    ])
    def test_format_exact(self, seed, completion, seed_score):
        assert seed.match_format_exactly([[{"role": "assistant", "content": completion}]]) == [seed_score]
        assert scores(completion)["format_exact"] == 0.0

    def test_numbers_outside_the_block(self, seed):
        completion = f"t{R1}{S0}four{S1} so the total is 4"
        conv = [[{"role": "assistant", "content": completion}]]
        assert seed.check_numbers([CHAT_PROMPT], conv, ["4"]) == [3.5]  # read the 4 after the block
        assert scores(completion)["numbers"] == SPEC.rewards.numbers_missing

    @pytest.mark.parametrize("completion", [
        f"t{R1}{S0}4{S1}", f"t{R1}{S0}7{S1}", f"t{R1}{S0} 4 {S1}", f"t{R1}{S0}95{S1}", "thinking",
    ])
    def test_defaults_reproduce_the_notebook_where_it_is_right(self, seed, completion):
        conv = [[{"role": "assistant", "content": completion}]]
        theirs = [f([CHAT_PROMPT], conv, answer=["100" if "95" in completion else "4"])[0] if f.__name__.startswith("check")
                  else f(conv)[0] for f in seed.all()]
        ours = scores(completion, "100" if "95" in completion else "4", funcs=rewards.build(SPEC))
        assert list(ours.values()) == theirs


class TestFormatApprox:
    """The reasoning start tag: in the prompt (generation prompt) or expected from the model."""

    @pytest.mark.parametrize("prompt, completion, expected", [
        (CHAT_PROMPT, f"t{R1}{S0}4{S1}", 1.5),  # the chat template's generation prompt holds R0
        (CHAT_PROMPT, f"{R0}t{R1}{S0}4{S1}", 1.5),  # repeated once at the start: accepted
        (CHAT_PROMPT, f"t{R0}t{R1}{S0}4{S1}", 0.5),  # a stray R0 costs format_tag_bad
        ("What is 2 + 2?" + R0, f"t{R1}{S0}4{S1}", 1.5),  # a standard prompt ending with R0
        ("What is 2 + 2?" + R0 + "\n", f"t{R1}{S0}4{S1}", 1.5),
        ("What is 2 + 2?", f"{R0}t{R1}{S0}4{S1}", 2.0),  # the model must write R0 itself: counted
        ("What is 2 + 2?", f"t{R1}{S0}4{S1}", 0.5),
        (None, f"t{R1}{S0}4{S1}", 1.5),  # no prompt: the spec's generation prompt decides
    ])
    def test_reasoning_start(self, prompt, completion, expected):
        assert scores(completion, prompt=prompt)["format_approx"] == expected

    def test_no_generation_prompt(self):
        spec = with_keys(SPEC, "prompt", generation="")
        funcs = rewards.build(spec, ["format_approx"])
        assert scores(f"t{R1}{S0}4{S1}", funcs=funcs)["format_approx"] == 0.5
        assert scores(f"{R0}t{R1}{S0}4{S1}", funcs=funcs)["format_approx"] == 2.0


class TestLength:
    LONG = with_keys(SPEC, "rewards", length_max_tokens=100, length_buffer_tokens=20, length_overlong=-2.0)

    @pytest.mark.parametrize("completion, ids, expected", [
        (f"t{R1}{S0}4{S1}", [7, 8, 0], 0.0),  # ended with EOS (id 0), the text has it stripped
        (f"t{R1}{S0}4{S1}", [7, 8, 9], -1.0),  # no EOS id: cut off at max length, whatever the text says
        ("still thinking", [7, 8, 0], 0.0),  # stopped (EOS) inside the format: format rewards handle it
        ("still thinking", [], -1.0),
        ("still thinking", None, -1.0),  # no ids: the validator's "truncated" decides
        (f"t{R1}{S0}4{S1}", None, 0.0),
    ])
    def test_truncation(self, completion, ids, expected):
        f = rewards.build(SPEC, ["length"], eos_ids=(0,))[0]
        assert f(completions=[completion], completion_ids=[ids]) == [expected]

    @pytest.mark.parametrize("n_tokens, expected", [(50, 0.0), (80, 0.0), (90, -1.0), (100, -2.0), (130, -2.0)])
    def test_soft_overlong(self, n_tokens, expected):
        f = rewards.build(self.LONG, ["length"], eos_ids=(0,))[0]
        assert f(completions=["t"], completion_ids=[[5] * (n_tokens - 1) + [0]]) == [pytest.approx(expected)]

    def test_without_eos_ids_the_text_decides(self):
        f = rewards.build(SPEC, ["length"])[0]
        assert f(completions=[f"t{R1}{S0}4{S1}", "thinking"], completion_ids=[[1, 2], [1, 2]]) == [0.0, -1.0]


class TestBuild:
    def test_default_names(self):
        assert [f.__name__ for f in rewards.build(SPEC)] == list(DEFAULT_REWARDS)

    def test_names_and_order(self):
        assert [f.__name__ for f in rewards.build(SPEC, ["numbers", "format_exact"])] == ["numbers", "format_exact"]

    def test_enabled_in_spec(self):
        spec = with_keys(SPEC, "rewards", enabled=["answer", "length"])
        assert [f.__name__ for f in rewards.build(spec)] == ["answer", "length"]

    @pytest.mark.parametrize("weights", [{"answer": 2.0}, [1.0, 1.0, 2.0, 1.0]])
    def test_weights(self, weights):
        funcs = rewards.build(SPEC, weights=weights)
        assert scores(f"t{R1}{S0}4{S1}", funcs=funcs) == {
            "format_exact": 3.0, "format_approx": 1.5, "answer": 10.0, "numbers": 3.5}

    @pytest.mark.parametrize("kwargs, message", [
        ({"names": ["format"]}, "unknown reward 'format' (known: format_exact, format_approx, answer, numbers, closeness, length)"),
        ({"names": ["answer", "answer"]}, "reward names repeat: answer, answer"),
        ({"weights": [1.0]}, "1 weights for 4 rewards (format_exact, format_approx, answer, numbers)"),
        ({"weights": {"length": 2.0}}, "weight for a reward that is not built: 'length' (built: format_exact, format_approx, answer, numbers)"),
        ({"weights": {"answer": float("nan")}}, "weights must be finite numbers, got [1.0, 1.0, nan, 1.0]"),
    ])
    def test_bad_arguments(self, kwargs, message):
        with pytest.raises(ValueError) as err:
            rewards.build(SPEC, **kwargs)
        assert str(err.value) == message

    def test_unknown_name_in_spec_is_refused_at_load(self):
        with pytest.raises(ValueError, match=r"rewards.enabled \(line \d+\): unknown name 'speed' \(known: format_exact, "):
            with_keys(SPEC, "rewards", enabled=["format_exact", "speed"])

    def test_answer_column_from_spec(self):
        spec = with_answer(SPEC, column="solution")
        f = rewards.build(spec, ["answer"])[0]
        assert f(completions=[f"t{R1}{S0}4{S1}"], solution=["4"]) == [5.0]

    def test_answer_column_override(self):
        f = rewards.build(SPEC, ["answer"], answer_column="gold")[0]
        assert f(completions=[f"t{R1}{S0}4{S1}"], gold=["4"], answer=["5"]) == [5.0]

    def test_missing_column_names_the_columns_it_saw(self):
        f = rewards.build(SPEC, ["numbers"])[0]
        with pytest.raises(ValueError) as err:
            f(prompts=["q"], completions=["x"], question=["q"], log_metric=lambda name, value: None, trainer_state=None)
        assert str(err.value) == (
            "reward 'numbers' needs the gold answer column 'answer', but the batch has none (columns: question); "
            "set [answer] column in the spec or build(..., answer_column=...)"
        )

    def test_format_rewards_need_no_gold(self):
        assert rewards.build(SPEC, ["format_exact"])[0](completions=[f"t{R1}{S0}4{S1}"]) == [3.0]

    def test_scores_from_the_spec(self):
        spec = with_keys(SPEC, "rewards", format_exact=1.0, answer_wrong=-10.0)
        assert scores(f"t{R1}{S0}7{S1}", funcs=rewards.build(spec, ["format_exact", "answer"])) == {
            "format_exact": 1.0, "answer": -10.0}

    def test_every_config_key_has_help(self):
        import dataclasses

        assert all(len(f.metadata["help"]) > 10 for f in dataclasses.fields(RewardConfig))


class TestBatchSharing:
    """The rewards built together validate and compare a batch once; sharing must not mix items."""

    @pytest.mark.parametrize("golds, expected", [
        ([True, 1], [None, 5.0]), ([1, True], [5.0, None]), (["1", 1], [5.0, 5.0]), ([1.0, "x"], [3.5, None]),
    ])
    def test_equal_looking_golds(self, golds, expected):
        c = f"t{R1}{S0}1{S1}"
        assert rewards.build(SPEC, ["answer"])[0](completions=[c, c], answer=golds) == expected

    def test_new_batch_in_the_same_list_object(self):
        f = rewards.build(SPEC, ["answer"])[0]
        batch, gold = [f"t{R1}{S0}4{S1}"], ["4"]
        assert f(completions=batch, answer=gold) == [5.0]
        batch[0], gold[0] = f"t{R1}{S0}5{S1}", "5"  # mutated in place: items differ, so it is re-read
        assert f(completions=batch, answer=gold) == [5.0]
        batch[0] = "x"
        assert f(completions=batch, answer=gold) == [-2.0]


class TestPickle:
    def test_round_trip(self):
        batch = [f"t{R1}{S0}4{S1}", f"t{R1}{S0}5{S1}{S0}", "x"]
        before = [f(prompts=[CHAT_PROMPT] * 3, completions=batch, answer=["4"] * 3) for f in FUNCS]
        copies = pickle.loads(pickle.dumps(FUNCS))
        assert [f.__name__ for f in copies] == NAMES
        assert [f(prompts=[CHAT_PROMPT] * 3, completions=batch, answer=["4"] * 3) for f in copies] == before

    def test_math_verify_rewards_pickle(self):
        funcs = rewards.build(with_answer(SPEC, math_verify=True), ["answer"])
        copy = pickle.loads(pickle.dumps(funcs))[0]
        assert copy(completions=[f"t{R1}{S0}0.5{S1}"], answer=[r"\frac{1}{2}"]) == [3.5]


class TestLogMetric:
    def test_error_code_counts(self):
        logged, extra = {}, {}
        batch = [f"t{R1}{S0}4{S1}", "thinking", f"t{R1}{S0}4{S1} more", "", f"t{R1}{S0}4{S1}\nmore"]
        FUNCS[0](completions=batch, answer=["4"] * 5, log_metric=logged.__setitem__, log_extra=extra.__setitem__)
        assert {k: v for k, v in logged.items() if v} == {
            "format_errors/truncated": 1.0, "format_errors/trailing_text": 2.0, "format_errors/empty": 1.0,
            "format/valid_fraction": 0.2}
        assert set(logged) == {f"format_errors/{c}" for c in CODES} | {"format/valid_fraction"}
        assert extra == {"format_errors": ["", "truncated", "trailing_text", "empty", "trailing_text"]}

    @pytest.mark.parametrize("seed", [0, 1])
    def test_counts_equal_the_full_diagnosis(self, seed):
        """What TRL logs (codes read off the cut where they can be) is what the full diagnosis says."""
        from tests.test_validator_fast import corpus as broken_and_valid

        batch = broken_and_valid(SPEC, 96, seed=seed)  # every kind, valid and broken, some mutated
        logged, extra = {}, {}
        rewards.build(SPEC)[0](completions=batch, answer=["4"] * len(batch), log_metric=logged.__setitem__,
                               log_extra=extra.__setitem__)
        full = [tuple(e.code for e in validate(SPEC, t, transcript=False).errors) for t in batch]
        assert extra == {"format_errors": [",".join(codes) for codes in full]}
        for code in CODES:
            assert logged[f"format_errors/{code}"] == sum(code in codes for codes in full), code
        assert logged["format/valid_fraction"] == sum(not codes for codes in full) / len(batch)
        assert 0 < logged["format/valid_fraction"] < 1

    def test_only_the_first_reward_logs_codes(self):
        names = []
        for f in FUNCS[1:]:
            f(completions=["x"], answer=["4"], log_metric=lambda name, value: names.append(name))
        assert not any(n.startswith("format") for n in names)

    def test_answer_metrics(self):
        logged = {}
        f = rewards.build(SPEC, ["answer"])[0]
        f(completions=[f"t{R1}{S0}4{S1}", f"t{R1}{S0}5{S1}", "x"], answer=["4", "4", "four"],
          log_metric=logged.__setitem__)
        assert logged["answer/unscorable_gold"] == 1.0
        assert logged["answer/correct_fraction"] == 0.5

    def test_can_be_turned_off(self):
        spec = with_keys(SPEC, "rewards", log_error_codes=False)
        logged = {}
        rewards.build(spec)[0](completions=["x"], answer=["4"], log_metric=logged.__setitem__)
        assert logged == {}


class TestCheckTokenizer:
    @pytest.fixture(scope="class")
    @classmethod
    def tok(cls):
        return make_tokenizer(SPEC, corpus(SPEC, 8))

    def test_tiny_tokenizer_strips_eos(self, tok):
        assert rewards.check_tokenizer(SPEC, tok) == [
            "end-of-sequence '<|endoftext|>' is stripped when TRL decodes completions (special token): rewards see "
            "completions without it, so truncation is detected from TRL's completion_ids and the tokenizer's EOS ids "
            "(handled; nothing to do)"
        ]

    def test_special_tag(self):
        spec = load_spec("think_answer")
        tok = make_tokenizer(spec, corpus(spec, 8))
        tok.add_tokens([SPEC.tags.solution_start], special_tokens=True)
        problems = rewards.check_tokenizer(SPEC, tok)
        assert problems[0].startswith("tag '<SOLUTION>' is a special token of the tokenizer: TRL decodes completions")
        assert len(problems) == 2  # and the EOS

    def test_build_warns_and_takes_eos_ids(self, tok):
        with pytest.warns(UserWarning, match="is stripped when TRL decodes completions"):
            funcs = rewards.build(SPEC, ["length"], tokenizer=tok)
        eos = tok.convert_tokens_to_ids(EOS)
        assert funcs[0].ctx.eos_token_ids == {eos}
        assert funcs[0](completions=["x", "x"], completion_ids=[[5, eos], [5, 5]]) == [0.0, -1.0]


class TestDocExamples:
    @pytest.mark.parametrize("module", [rewards, answers], ids=["rewards", "answers"])
    def test_doctests(self, module):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


# --- properties ---------------------------------------------------------------------------

PIECES = [R0, R1, S0, S1, EOS, EOS2, " ", "\n", "4", "1,000", "-2.5", "x", "<", "SOLUTION", "é", "𝄞"]
marker_free = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="<"), max_size=40)
messy = st.lists(st.sampled_from(PIECES), max_size=25).map("".join)
anything = st.one_of(
    messy, st.text(max_size=80), st.none(), st.integers(), st.floats(allow_nan=True),
    st.lists(st.dictionaries(st.sampled_from(["role", "content", "type"]), st.one_of(messy, st.none(), st.integers()),
                             max_size=3), max_size=3),
    st.builds(lambda t: [{"role": "assistant", "content": t}], messy),
)
golds = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                  st.sampled_from(["4", "1,000", "0", "3/4", "-2.5"]))


def total(completion: str, gold: str, funcs=FUNCS) -> float:
    return sum(v for v in scores(completion, gold, funcs=funcs).values() if v is not None)


class TestProperties:
    @pytest.mark.parametrize("funcs", [FUNCS, TEXT_FUNCS], ids=["number", "text"])
    @given(st.lists(anything, max_size=6), st.lists(golds, max_size=6), st.lists(st.one_of(st.none(), messy), max_size=6))
    @example([None, 3, {"content": 4}, [{"content": [{"text": 5}]}]], [None], [None])
    def test_never_raises(self, funcs, completions, gold, prompts):
        for f in funcs:
            out = f(prompts=prompts, completions=completions, answer=gold, completion_ids=[[1]] * len(completions))
            assert len(out) == len(completions)
            assert all(s is None or (isinstance(s, float) and math.isfinite(s)) for s in out)

    @given(st.lists(anything, max_size=4), st.lists(golds, min_size=4, max_size=4))
    def test_deterministic(self, completions, gold):
        fresh = rewards.build(SPEC, NAMES)
        first = [f(completions=completions, answer=gold) for f in FUNCS]
        assert [f(completions=list(completions), answer=list(gold)) for f in fresh] == first
        assert [f(completions=completions, answer=gold) for f in FUNCS] == first  # a batch read twice

    @given(marker_free.filter(lambda s: s.strip()), st.integers(-10**6, 10**6), st.integers(1, 10**6),
           st.sampled_from(["trailing", "duplicate", "no_end", "no_reasoning_end", "between", "empty_reasoning",
                            "eos_in_reasoning", "two_eos"]))
    def test_ordering(self, reasoning, gold, offset, corruption):
        """valid and right > valid and wrong > invalid (same wrong answer), for the default and full sets."""
        wrong = gold + offset
        right_valid = f"{reasoning}{R1}{S0}{gold}{S1}"
        wrong_valid = f"{reasoning}{R1}{S0}{wrong}{S1}"
        broken = {
            "trailing": wrong_valid + "\nmore",
            "duplicate": wrong_valid + f"{S0}{wrong}{S1}",
            "no_end": f"{reasoning}{R1}{S0}{wrong}{EOS}",
            "no_reasoning_end": f"{reasoning}{S0}{wrong}{S1}",
            "between": f"{reasoning}{R1}so{S0}{wrong}{S1}",
            "empty_reasoning": f" {R1}{S0}{wrong}{S1}",
            "eos_in_reasoning": f"{reasoning}{EOS}{reasoning}{R1}{S0}{wrong}{S1}",
            "two_eos": wrong_valid + EOS + EOS,
        }[corruption]
        assert validate(SPEC, right_valid).valid and validate(SPEC, wrong_valid).valid
        assert not validate(SPEC, broken).valid
        for funcs in (rewards.build(SPEC), FUNCS):
            assert total(right_valid, str(gold), funcs) > total(wrong_valid, str(gold), funcs) > total(broken, str(gold), funcs)

    @given(marker_free.filter(lambda s: s.strip()), st.integers(-10**9, 10**9))
    def test_thousands_commas_score_as_the_number(self, reasoning, gold):
        with_commas = f"{reasoning}{R1}{S0}{gold:,}{S1}"
        assert scores(with_commas, str(gold))["numbers"] == SPEC.rewards.numbers_correct


class TestDocs:
    DOC = (__import__("pathlib").Path(__file__).resolve().parent.parent / "docs" / "rewards.md").read_text()

    @pytest.mark.parametrize("name", NAMES)
    def test_every_reward_documented(self, name):
        assert f"| `{name}` |" in self.DOC

    @pytest.mark.parametrize("metric", ["format_errors/<code>", "format/valid_fraction", "answer/correct_fraction",
                                        "answer/unscorable_gold"])
    def test_every_metric_documented(self, metric):
        assert f"`{metric}`" in self.DOC


class TestPercentAnswers:
    PERCENT = with_answer(SPEC, allow_percent=True)

    def test_percent_gold(self):
        assert scores(f"t{R1}{S0}50{S1}", "50%", funcs=rewards.build(self.PERCENT))["answer"] == 3.5

    def test_percent_answer(self):
        assert scores(f"t{R1}{S0}50%{S1}", "50", funcs=rewards.build(self.PERCENT))["answer"] == 3.5


class TestNotGamedThroughTranscripts:
    """Issue 10 section 4: completions are scored strictly, never as rendered transcripts."""

    def test_appendix_earns_nothing(self):
        assert validate(SPEC, APPENDIX).valid  # what the auto-detecting default would have paid for
        assert scores(APPENDIX, "4") == expect(0.0, -4.0, -2.0, -2.5, 0.0)

    @pytest.mark.parametrize("form", ["text", "conversational"])
    def test_reward_regex_agrees(self, form):
        from reasoning_kit.regex import compile_reward_regex

        completion = APPENDIX if form == "text" else [{"role": "assistant", "content": APPENDIX}]
        assert compile_reward_regex(SPEC).fullmatch(APPENDIX) is None
        assert scores(completion, "4")["format_exact"] == 0.0

    def test_cli_and_samples_score_strictly(self, tmp_path):
        from harness.cli_reward import read_records, score

        path = tmp_path / "c.jsonl"
        path.write_text(__import__("json").dumps({"completion": APPENDIX, "answer": "4"}) + "\n")
        report = score(SPEC, read_records(str(path), "answer", True), tuple(DEFAULT_REWARDS), "answer")
        row = report["rows"][0]
        assert (row["valid"], row["answer"], row["scores"]["format_exact"]) == (False, None, 0.0)
        assert "no_assistant_turn" not in row["codes"] and row["codes"][0] == "text_before_reasoning_start"


class TestNumericGolds:
    """numpy golds (a pandas/datasets column) and huge numbers: a score or None, never an exception."""

    C4 = f"t{R1}{S0}4{S1}"

    @pytest.mark.parametrize("gold, like", [
        (__import__("numpy").float64(4.0), 4.0), (__import__("numpy").int64(4), 4), (__import__("numpy").int32(4), 4),
        (__import__("numpy").float32(2.5), 2.5),
    ], ids=["float64", "int64", "int32", "float32"])
    def test_numpy_gold_scores_like_the_python_number(self, gold, like):
        assert scores(self.C4, gold) == scores(self.C4, like)
        assert scores(self.C4, gold)["numbers"] is not None

    def test_numpy_bool_gold_is_no_number(self):
        assert scores(self.C4, __import__("numpy").bool_(True))["answer"] is None

    @pytest.mark.parametrize("digits", [308, 309, 400, 4000, 5000])
    def test_huge_answer_against_small_gold(self, digits):
        out = scores(f"t{R1}{S0}{'9' * digits}{S1}", "2")
        assert out["closeness"] == 0.0 and out["answer"] == SPEC.rewards.answer_wrong
        assert all(v is None or math.isfinite(v) for v in out.values())

    def test_huge_python_int_gold(self):
        out = scores(f"t{R1}{S0}{'9' * 400}{S1}", 10**5000)
        assert all(v is None or math.isfinite(v) for v in out.values())

    def test_unhashable_token_ids(self):
        f = rewards.build(SPEC, ["length"], eos_ids=(0,))[0]
        assert f(completions=["x"], completion_ids=[[[1, 0]]]) == [SPEC.rewards.length_truncated]


HUGE = st.one_of(
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
    st.integers(min_value=1, max_value=400).map(lambda n: "1" + "0" * n + ".5"),
    st.builds(lambda a, b: f"{a},{b:03d}" * 3, st.integers(1, 999), st.integers(0, 999)),
)


def numpy_golds():
    import numpy as np

    return st.one_of(
        st.integers(-(2**63), 2**63 - 1).map(np.int64), st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
        st.floats(width=32).map(np.float32), st.booleans().map(np.bool_),
    )


class TestEveryRewardIsFinite:
    """Every reward returns a finite float or None, whatever the completion and the gold."""

    @pytest.mark.parametrize("funcs", [FUNCS, TEXT_FUNCS], ids=["number", "text"])
    @given(st.lists(st.one_of(HUGE, messy), min_size=1, max_size=4),
           st.lists(st.one_of(golds, HUGE, numpy_golds(), st.integers(-(10**400), 10**400)), min_size=1, max_size=4),
           st.sampled_from(["plain", "block", "conversational"]))
    @example(["9" * 400], ["2"], "block").via("issue 10: closeness overflowed on 309+ digits against gold 2")
    def test_any_answer_any_gold(self, funcs, answers_, gold, form):
        def wrap(a):
            text = a if form == "plain" else f"t{R1}{S0}{a}{S1}"
            return [{"role": "assistant", "content": text}] if form == "conversational" else text

        completions = [wrap(a) for a in answers_]
        for f in funcs:
            out = f(prompts=[CHAT_PROMPT] * len(completions), completions=completions, answer=gold)
            assert len(out) == len(completions)
            assert all(v is None or (type(v) is float and math.isfinite(v)) for v in out), (f.__name__, out)

    @pytest.mark.parametrize("shape", ["valid", "reasoning", "tags", "answer"])
    def test_five_megabyte_completions(self, shape):
        big = 5_000_000
        text = {
            "valid": "x" * big + f"{R1}{S0}4{S1}",
            "reasoning": "y " * (big // 2),
            "tags": (S0 + R1) * (big // (len(S0) + len(R1))),
            "answer": f"t{R1}{S0}" + "1," * (big // 2) + f"0{S1}",
        }[shape]
        for f in FUNCS:
            out = f(prompts=[CHAT_PROMPT], completions=[text], answer=["4"], completion_ids=[[1, 2]])
            assert len(out) == 1 and (out[0] is None or math.isfinite(out[0]))
