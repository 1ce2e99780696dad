"""GRPO learns: the real `grpo` path raises the reward of a tiny model, and does not with learning rate 0.

The policy is made by construction: a tiny Llama is fine-tuned (plain cross-entropy, to a
measured end point) on two completions of the same prompts, one valid in the spec's format with
the right answer and one that breaks the format, so sampling gives a ~50/50 mix and every GRPO
group has reward variance. GRPO (TRL GRPOTrainer through ``harness.grpo.run.grpo``, the spec's
``format_exact`` and ``answer`` rewards) must then lift the mean reward of the last steps above
the first steps' by a margin that sampling noise cannot reach (the same run with learning rate 0
is the control; its expected change is 0 and the margin is > 5 standard deviations of its noise).
"""

from __future__ import annotations

import dataclasses
import json
import statistics

import pytest

from harness.grpo.run import grpo
from harness.grpo.config import resolve_config
from reasoning_kit.spec import load_spec
from reasoning_kit.template import render
from tests.tiny import make_model, make_tokenizer

SPEC = load_spec("working_out")
QUESTIONS = [f"What is {a} + {b}?" for a, b in ((2, 2), (1, 3), (3, 1), (0, 4))]
GOOD = SPEC.completion("Add them.", "4", with_start=False)  # the prompt already ends with the reasoning start
BAD = "No idea at all."
STEPS, WINDOW, MARGIN, MIN_P = 10, 3, 6.0, 0.3


def _prompt(tokenizer, question: str) -> str:
    messages = [{"role": "system", "content": SPEC.system_prompt}, {"role": "user", "content": question}]
    return render(SPEC, messages, add_generation_prompt=True, eos_token=tokenizer.eos_token)


def _fit_mixture(model, tokenizer, prompts: list[str]) -> float:
    """Cross-entropy on GOOD and BAD after each prompt until the first token is a coin and the rest near-certain."""
    import torch

    eos = tokenizer.eos_token
    seqs = [(p, c + eos) for p in prompts for c in (GOOD, BAD)]
    rows = [(tokenizer(p, add_special_tokens=False).input_ids, tokenizer(c, add_special_tokens=False).input_ids)
            for p, c in seqs]
    width = max(len(a) + len(b) for a, b in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full_like(ids, -100)
    mask = torch.zeros_like(ids)
    for i, (a, b) in enumerate(rows):
        ids[i, : len(a) + len(b)] = torch.tensor(a + b)
        labels[i, len(a): len(a) + len(b)] = torch.tensor(b)
        mask[i, : len(a) + len(b)] = 1
    first_good = tokenizer(GOOD, add_special_tokens=False).input_ids[0]
    first_bad = tokenizer(BAD, add_special_tokens=False).input_ids[0]
    assert first_good != first_bad
    starts = torch.tensor([len(a) - 1 for a, _ in rows])  # the position that predicts the first completion token
    targets = labels[:, 1:]
    later = targets != -100
    later[torch.arange(len(rows)), starts] = False  # every completion token after the first
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(600):
        model.train()
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            logits = out.logits[:, :-1].float()
            first = logits[torch.arange(len(rows)), starts].softmax(-1)
            p_good = first[::2, first_good]
            sure = logits.softmax(-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)[later].min().item()
        # Done when the first token is a fair coin between the two and every later token has p >= 0.8: with
        # GRPO's min_p = 0.3 (MIN_P) every other token is then cut, so each sample is exactly GOOD or BAD.
        if bool(((p_good > 0.35) & (p_good < 0.65)).all()) and sure >= 0.8:
            model.eval()
            return float(p_good.mean())
    raise AssertionError("the tiny policy did not reach a 50/50 mixture")


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("learns")
    tok = make_tokenizer(SPEC, [GOOD, BAD, *QUESTIONS, SPEC.system_prompt] * 4)
    model = make_model(tok)
    p_good = _fit_mixture(model, tok, [_prompt(tok, q) for q in QUESTIONS])
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    (root / "data.jsonl").write_text("".join(json.dumps({"question": q, "answer": "4"}) + "\n" for q in QUESTIONS * 8))
    return root, p_good


def _run(root, out, lr: float, steps: int = STEPS, **fast) -> list[float]:
    fast = {"steps_per_generation": 0} | fast  # the seed's on-policy cadence unless a test asks for more
    cfg = resolve_config(SPEC.grpo, fast | {
        "model": str(root / "model"), "dataset": str(root / "data.jsonl"), "output_dir": str(out), "backend": "hf",
        "max_steps": steps, "learning_rate": lr or 1.0, "num_generations": 8, "per_device_train_batch_size": 4,
        "max_completion_length": 24, "optim": "adamw_torch", "gradient_checkpointing": False, "warmup_ratio": 0.0,
        "lora_r": 8, "lora_alpha": 16, "min_p": MIN_P, "save_steps": 0, "sample_every": 0, "logging_steps": 1,
        "seed": 1,
    })
    cfg = dataclasses.replace(cfg, learning_rate=lr)  # 0 is the control: the [grpo] schema refuses it from users
    result = grpo(SPEC, cfg, progress=False, log=lambda m: None)
    assert result.status == "completed"
    return [row["reward"] for row in result.metrics["curves"]]


pytestmark = pytest.mark.usefixtures("one_thread")


class TestGRPOLearns:
    def test_the_policy_starts_as_a_mixture(self, policy):
        assert 0.35 < policy[1] < 0.65

    def test_reward_rises(self, policy, tmp_path):
        rewards = _run(policy[0], tmp_path / "lr", 5e-3)
        assert len(rewards) == STEPS
        first, last = statistics.mean(rewards[:WINDOW]), statistics.mean(rewards[-WINDOW:])
        assert last - first > MARGIN, rewards

    def test_reward_rises_with_the_fast_generation_settings(self, policy, tmp_path):
        """steps_per_generation = 2 and merged_generation: one sampling round serves two updates, from the merged copy."""
        rewards = _run(policy[0], tmp_path / "fast", 5e-3, steps=2 * STEPS, steps_per_generation=2,
                       merged_generation=True)
        assert len(rewards) == STEPS  # TRL logs the reward of each generation round once
        # Two updates per round learn faster than the test above: its first window already holds a learned round,
        # so the start is the first round alone (64 samples of the 50/50 policy: its noise is ~1.3, the margin 6).
        assert statistics.mean(rewards[-WINDOW:]) - rewards[0] > MARGIN, rewards

    def test_no_rise_with_learning_rate_zero(self, policy, tmp_path):
        rewards = _run(policy[0], tmp_path / "lr0", 0.0)
        first, last = statistics.mean(rewards[:WINDOW]), statistics.mean(rewards[-WINDOW:])
        assert last - first < MARGIN, rewards
