"""The compact console line, the zero-variance warning, and the GRPO step-time breakdown in a real run."""

from __future__ import annotations

import json

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from harness.console import LogLastStep, ZeroVarianceWatch, line

GRPO_LOG = {"loss": 0.01, "reward": 3.25, "format/valid_fraction": 0.9375, "answer/correct_fraction": 0.25,
            "frac_reward_zero_std": 0.5, "completions/mean_length": 87.4, "timing/generation_s": 2.5,
            "timing/reward_s": 0.01, "timing/update_s": 1.2, **{f"format_errors/code{i}": 0 for i in range(20)}}


class TestLine:
    def test_grpo_line(self):
        text = line(GRPO_LOG, step=5, max_steps=42, seconds_per_step=3.71)
        assert text == ("step 5/42 · reward 3.250 · valid 94% · correct 25% · zero-std groups 50% · len 87 · "
                        "3.71 s/step (generation 2.50, reward 0.01, update 1.20)")

    def test_sft_line(self):
        logs = {"loss": 0.5575364112854004, "learning_rate": 0.0019, "grad_norm": 1.2345, "epoch": 0.3}
        assert line(logs, step=10, max_steps=50, seconds_per_step=7.0) == (
            "step 10/50 · loss 0.5575 · lr 1.90e-03 · grad 1.234 · 7.00 s/step")

    def test_missing_and_non_finite_values_are_left_out(self):
        assert line({"loss": float("nan")}, step=1, max_steps=2) == "step 1/2"

    def test_far_shorter_than_the_record(self):
        assert len(line(GRPO_LOG, step=5, max_steps=42, seconds_per_step=3.7)) < len(str(GRPO_LOG)) / 3


def _state(step: int) -> TrainerState:
    state = TrainerState()
    state.global_step, state.max_steps = step, 100
    return state


class TestZeroVarianceWatch:
    @pytest.fixture()
    def args(self, tmp_path):
        return TrainingArguments(output_dir=str(tmp_path), report_to="none")

    def test_warns_once_after_patience_steps(self, args):
        said = []
        watch = ZeroVarianceWatch(said.append, threshold=0.75, patience=3)
        for step, share in enumerate([1.0, 0.9, 0.5, 1.0, 0.8, 1.0, 1.0, 1.0], start=1):
            watch.on_log(args, _state(step), TrainerControl(), logs={"frac_reward_zero_std": share})
        assert watch.warned_at == 6 and len(said) == 1
        assert "same reward" in said[0] and "--num-generations" in said[0] and "arithmetic" in said[0]

    def test_silent_when_groups_vary(self, args):
        said = []
        watch = ZeroVarianceWatch(said.append)
        for step in range(1, 20):
            watch.on_log(args, _state(step), TrainerControl(), logs={"frac_reward_zero_std": 0.5})
        assert said == [] and watch.warned_at is None


class TestLogLastStep:
    @pytest.mark.parametrize("step, expected", [(97, False), (98, False), (99, True), (100, True)])
    def test_logs_the_last_two_steps(self, tmp_path, step, expected):
        control = TrainerControl()
        LogLastStep().on_step_end(TrainingArguments(output_dir=str(tmp_path), report_to="none"), _state(step), control)
        assert control.should_log is expected


class TestGRPORunRecordsTheBreakdown:
    def test_timing_and_console_lines(self, tmp_path):
        """A real two-step GRPO run: metrics.json has the per-step breakdown, and the console shows compact lines."""
        import io
        from contextlib import redirect_stderr

        from harness.grpo.config import resolve_config
        from harness.grpo.run import grpo
        from reasoning_kit.spec import load_spec
        from tests.tiny import corpus, save_tiny

        spec = load_spec("working_out")
        model = save_tiny(tmp_path / "model", spec, corpus(spec, 20))
        (tmp_path / "data.jsonl").write_text("".join(json.dumps({"question": f"{i} + 1?", "answer": str(i + 1)}) + "\n"
                                                     for i in range(8)))
        cfg = resolve_config(spec.grpo, {
            "model": str(model), "dataset": str(tmp_path / "data.jsonl"), "output_dir": str(tmp_path / "out"),
            "backend": "hf", "max_steps": 2, "max_completion_length": 8, "optim": "adamw_torch",
            "gradient_checkpointing": False, "per_device_train_batch_size": 2, "learning_rate": 1e-3,
            "steps_per_generation": 0,  # a generation round per step: a timing row per step
        })
        err = io.StringIO()
        with redirect_stderr(err):
            result = grpo(spec, cfg, progress=False)
        timing = result.metrics["timing"]
        assert timing["steps_timed"] == 2 and timing["generation_s_per_step"] > 0 and timing["update_s_per_step"] > 0
        assert timing["completion_tokens"] == sum(r["completions/mean_length"] for r in result.metrics["curves"]) * 8
        rows = result.metrics["curves"]
        assert all("timing/generation_s" in r for r in rows)
        lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("step ")]
        assert [ln.split(" · ")[0] for ln in lines] == ["step 1/2", "step 2/2"]
        assert all(" · reward " in ln and " s/step (generation " in ln for ln in lines[1:])
        assert "{'loss'" not in err.getvalue()
