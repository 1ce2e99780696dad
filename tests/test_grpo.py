"""A real TRL GRPOTrainer run (2 steps, CPU, tiny model built here) with build(spec) rewards."""

import math
import warnings

import pytest

from reasoning_kit import rewards
from reasoning_kit.spec import load_spec
from reasoning_kit.validator import CODES, validate
from tests.tiny import corpus, make_model, make_tokenizer

NAMES = list(rewards.REWARDS)
SUMS = [(2, 3), (4, 1), (7, 5), (6, 6)]


def gold_for(prompt_text: str) -> str:
    return next(str(a + b) for a, b in SUMS if f"What is {a} + {b}?" in prompt_text)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    spec = load_spec("working_out")
    tok = make_tokenizer(spec, corpus(spec))
    model = make_model(tok)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        funcs = rewards.build(spec, NAMES, tokenizer=tok)
    rows = [{"prompt": [{"role": "user", "content": f"What is {a} + {b}?"}], "answer": str(a + b)} for a, b in SUMS]
    args = GRPOConfig(
        output_dir=str(tmp_path_factory.mktemp("grpo")),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=12,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-3,
        beta=0.0,
        report_to="none",
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tok)
    trainer.train()
    return spec, trainer, funcs, [str(w.message) for w in caught]


class TestGRPOTrainer:
    def test_trains_two_steps(self, run):
        _, trainer, _, _ = run
        assert trainer.state.global_step == 2

    @pytest.mark.parametrize("name", NAMES)
    def test_logs_each_reward_by_name(self, run, name):
        _, trainer, _, _ = run
        logged = [h for h in trainer.state.log_history if f"rewards/{name}/mean" in h]
        assert len(logged) == 2
        assert all(math.isfinite(h[f"rewards/{name}/mean"]) for h in logged)

    def test_length_reward_sees_truncation_from_token_ids(self, run):
        """TRL's own clipped ratio (no EOS in max_completion_length) is what the length reward charges."""
        spec, trainer, _, _ = run
        for h in (h for h in trainer.state.log_history if "reward" in h):
            assert h["rewards/length/mean"] == pytest.approx(spec.rewards.length_truncated * h["completions/clipped_ratio"])

    def test_logs_error_code_counts(self, run):
        _, trainer, _, _ = run
        for h in (h for h in trainer.state.log_history if "reward" in h):
            counts = {c: h[f"format_errors/{c}"] for c in CODES}
            assert all(v >= 0 for v in counts.values())
            invalid = round((1 - h["format/valid_fraction"]) * 4)
            # every invalid completion carries at least one code; valid ones carry none
            assert (sum(counts.values()) >= invalid) and (invalid > 0 or sum(counts.values()) == 0)

    def test_scores_match_a_direct_call(self, run):
        """What TRL recorded for the last batch equals calling the rewards on the same texts."""
        _, trainer, funcs, _ = run
        texts = list(trainer._logs["completion"])
        prompts = list(trainer._logs["prompt"])  # the rendered prompt text, ending with the generation prompt
        completions = [[{"role": "assistant", "content": t}] for t in texts]
        gold = [gold_for(p) for p in prompts]
        for f in funcs:
            if f.__name__ == "length":  # needs TRL's completion_ids, which the log does not keep
                continue
            assert f(prompts=prompts, completions=completions, answer=gold) == pytest.approx(
                list(trainer._logs["rewards"][f.__name__]), nan_ok=True
            )

    def test_error_codes_column(self, run):
        spec, trainer, _, _ = run
        expected = [",".join(validate(spec, t).codes) for t in trainer._logs["completion"]]
        assert list(trainer._logs["extra"]["format_errors"]) == expected

    def test_warns_that_eos_is_stripped(self, run):
        _, _, _, caught = run
        assert any(m.startswith("end-of-sequence '<|endoftext|>' is stripped") for m in caught)
