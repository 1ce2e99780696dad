"""report_to in [train] and [grpo]: real tensorboard event files from tiny CPU runs, and the missing-package error."""

from __future__ import annotations

import json

import pytest

from harness.grpo import GRPOError
from harness.grpo.config import resolve_config as grpo_config
from harness.grpo.run import grpo_args
from harness.train import TrainError
from harness.train.config import resolve_config as train_config
from harness.tracking import PACKAGES
from reasoning_kit.spec import load_spec
from reasoning_kit.run_config import TRACKERS as REPORT_TO
from tests.tiny import corpus, make_model, make_tokenizer

SPEC = load_spec("working_out")
ROWS = [{"question": f"What is {a} + {b}?", "reasoning": f"We add {a} and {b} to get {a + b}.", "answer": str(a + b)}
        for a, b in [(2, 1), (3, 4), (5, 7), (6, 2)]]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tracking")
    tok = make_tokenizer(SPEC, corpus(SPEC, 20))
    make_model(tok).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return root


def scalars(out) -> dict[str, list[float]]:
    """Every scalar in the tensorboard event files under ``out``, read with tensorboard itself."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list(out.rglob("events.out.tfevents.*"))
    assert files, f"no event file under {out}"
    found: dict[str, list[float]] = {}
    for f in files:
        acc = EventAccumulator(str(f))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            found.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return found


class TestTensorboard:
    def test_train_writes_the_loss(self, workdir, tmp_path):
        from harness.train.run import train

        out = tmp_path / "sft"
        cfg = train_config(SPEC.train, {
            "model": str(workdir / "model"), "dataset": str(workdir / "data.jsonl"), "output_dir": str(out),
            "backend": "hf", "max_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 2, "packing": False,
            "gradient_checkpointing": False, "max_seq_length": 512, "report_to": "tensorboard",
        })
        result = train(SPEC, cfg, progress=False, log=lambda m: None)
        found = scalars(out)
        assert len(found["train/loss"]) == 2
        assert found["train/loss"][0] == pytest.approx(result.metrics["loss_curve"][0]["loss"], rel=1e-5)

    def test_grpo_writes_the_rewards_and_the_loss(self, workdir, tmp_path):
        from harness.grpo.run import grpo

        out = tmp_path / "grpo"
        cfg = grpo_config(SPEC.grpo, {
            "model": str(workdir / "model"), "dataset": str(workdir / "data.jsonl"), "output_dir": str(out),
            "backend": "hf", "max_steps": 1, "max_completion_length": 8, "optim": "adamw_torch",
            "gradient_checkpointing": False, "per_device_train_batch_size": 2, "save_steps": 0, "sample_every": 0,
            "report_to": "tensorboard", "steps_per_generation": 0,  # the 4 prompts make one round of 1 step
        })
        result = grpo(SPEC, cfg, progress=False, log=lambda m: None)
        found = scalars(out)
        assert {"train/reward", "train/loss", "train/rewards/format_exact/mean"} <= set(found)
        assert found["train/reward"][0] == pytest.approx(result.metrics["curves"][0]["reward"], rel=1e-5)


class TestChoices:
    def test_default_is_none_and_reaches_the_trainer_args(self):
        assert SPEC.train.report_to == SPEC.grpo.report_to == "none"
        args = grpo_args(grpo_config(SPEC.grpo, {"report_to": "tensorboard"}), output_dir="o", max_completion_length=8,
                         bf16=False, fp16=False, optim="adamw_torch", progress=False, gradient_checkpointing=None)
        assert args["report_to"] == "tensorboard"

    def test_every_choice_is_one_transformers_knows(self):
        from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

        assert set(PACKAGES) == set(REPORT_TO) - {"none"} and set(PACKAGES) <= set(INTEGRATION_TO_CALLBACK)

    def test_unknown_choice_is_a_one_line_error(self):
        with pytest.raises(TrainError, match=r"train.report_to.*must be one of 'none', 'tensorboard'"):
            train_config(SPEC.train, {"report_to": "comet"})

    @pytest.mark.parametrize("resolve, error, table", [(train_config, TrainError, "train"), (grpo_config, GRPOError, "grpo")])
    def test_missing_package_is_a_one_line_error_before_anything_is_written(self, resolve, error, table, tmp_path):
        import importlib.util

        missing = [t for t, (mods, _) in PACKAGES.items() if all(importlib.util.find_spec(m) is None for m in mods)]
        if not missing:
            pytest.skip("every tracker package is installed here")
        tracker, install = missing[0], PACKAGES[missing[0]][1]
        base = SPEC.train if table == "train" else SPEC.grpo
        with pytest.raises(error) as err:
            resolve(base, {"report_to": tracker, "output_dir": str(tmp_path / "out")})
        assert str(err.value).endswith(f"{table}.report_to = {tracker!r} needs the {install} package: "
                                       f"pip install {install} (or set report_to=\"none\")")
        assert not (tmp_path / "out").exists()
