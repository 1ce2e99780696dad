"""`reasoning-kit grpo --offline`: the preset, and the SFT adapter trained first when it is missing (CPU, tiny model)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from harness.cli import main
from harness.grpo.config import resolve_config
from reasoning_kit.spec import load_spec
from tests.tiny import corpus, save_tiny

SPEC = load_spec("working_out")


class TestPreset:
    def test_preset_values(self):
        cfg = resolve_config(SPEC.grpo, {}, offline=True, spec_name=SPEC.name)
        assert (cfg.dataset, cfg.eval_dataset, cfg.adapter) == ("arithmetic", "arithmetic-test",
                                                                 "outputs/working_out-offline/adapter")
        assert cfg.eval_limit >= 300 and cfg.num_generations >= 8
        assert resolve_config(SPEC.grpo, {}).dataset == SPEC.grpo.dataset  # without --offline: the [grpo] table

    def test_the_missing_sft_adapter_is_trained_with_the_grpo_backend(self, tmp_path, monkeypatch):
        from harness.grpo.cli import offline_sft_config

        monkeypatch.chdir(tmp_path)
        cfg = resolve_config(SPEC.grpo, {}, offline=True, spec_name=SPEC.name)  # the preset's own adapter path
        sft = offline_sft_config(SPEC, cfg, "my-model")
        assert (sft.backend, sft.model, sft.output_dir) == (cfg.backend, "my-model", "outputs/working_out-offline")
        assert sft.max_steps == SPEC.train.offline["max_steps"]  # the train --offline preset
        (tmp_path / cfg.adapter).mkdir(parents=True)
        (tmp_path / cfg.adapter / "adapter_config.json").write_text("{}")
        assert offline_sft_config(SPEC, cfg, None) is None  # there: nothing to train

    def test_a_missing_adapter_the_user_named_is_an_error_not_an_sft_run(self, tmp_path, monkeypatch):
        import pytest

        from harness.grpo import GRPOError
        from harness.grpo.cli import offline_sft_config

        monkeypatch.chdir(tmp_path)
        cfg = resolve_config(SPEC.grpo, {"adapter": "outputs/working_out-offlin/adapter"}, offline=True,
                             spec_name=SPEC.name)
        with pytest.raises(GRPOError, match=r"no adapter at outputs/working_out-offlin/adapter .*only at its own "
                                            r"path, outputs/working_out-offline/adapter"):
            offline_sft_config(SPEC, cfg, None)
        result = CliRunner().invoke(main, ["grpo", "--offline", "--adapter", "outputs/working_out-offlin/adapter"])
        assert result.exit_code == 2 and "no adapter at" in result.output.strip().splitlines()[-1]
        assert list(tmp_path.iterdir()) == []  # nothing written

    def test_set_reaches_the_preset(self):
        cfg = resolve_config(SPEC.grpo, {"offline.max_steps": 7, "learning_rate": 2e-5}, offline=True)
        assert (cfg.max_steps, cfg.learning_rate) == (7, 2e-5)


class TestCommand:
    def test_trains_the_sft_adapter_first_then_grpo_and_the_table(self, tmp_path, monkeypatch):
        model = save_tiny(tmp_path / "model", SPEC, corpus(SPEC, 20))
        # A spec whose presets are tiny, so the whole chain runs in seconds on CPU.
        text = SPEC.text + (
            "\n[train.offline]\nmax_steps = 2\ndataset_limit = 16\neval_limit = 0\n"
            "\n[grpo.offline]\nmax_steps = 1\nnum_generations = 2\nper_device_train_batch_size = 2\n"
            "max_completion_length = 8\neval_limit = 2\neval_max_new_tokens = 8\nmax_minutes = 0.0\n"
        )
        (tmp_path / "tiny.toml").write_text(text)
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(main, ["grpo", "--spec", str(tmp_path / "tiny.toml"), "--offline", "--model", str(model),
                                           "--no-progress"])
        assert result.exit_code == 0, result.output
        sft = tmp_path / "outputs" / "working_out-offline"
        run = tmp_path / "outputs" / "working_out-offline-grpo"
        assert (sft / "adapter" / "adapter_config.json").is_file()
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["adapter"] == "outputs/working_out-offline/adapter" and metrics["dataset"] == "arithmetic"
        assert "Before / after GRPO" in result.output
        start = json.loads((run / "eval" / "start" / "report.json").read_text())
        assert start["metrics"]["n"] == 2 and start["run"]["dataset"] == "arithmetic-test"


    def test_a_grpo_setting_error_comes_before_the_sft_run(self, tmp_path, monkeypatch):
        """The SFT adapter is missing (it would be trained first, minutes), but GRPO's own settings are wrong: the
        one-line error names them and the SFT run never starts (no outputs/ at all)."""
        model = save_tiny(tmp_path / "model", SPEC, corpus(SPEC, 20))
        monkeypatch.chdir(tmp_path)
        bad = {"optimizer": (["--set", "optim=adamw_tourch"], "optim"),
               "split": (["--set", "dataset_split=test"], "split 'test'"),
               # the preset evaluates after GRPO (eval_limit > 0): its dataset is read before the SFT run too
               "eval_dataset": (["--set", "eval_dataset=nope.jsonl"],
                                "grpo.eval_dataset: cannot read nope.jsonl: no such file")}
        for name, (args, says) in bad.items():
            result = CliRunner().invoke(main, ["grpo", "--offline", "--model", str(model), "--no-progress", *args])
            assert result.exit_code == 2, (name, result.output)
            last = result.output.strip().splitlines()[-1]
            assert last.startswith("Error:") and says in last, (name, last)
            assert "training it first" not in result.output, name
            assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], name  # nothing written


class TestTrainOfflineFooter:
    def test_the_table_footer_says_what_the_offline_model_learns(self, tmp_path, monkeypatch):
        from harness.train.cli import OFFLINE_FOOTER

        model = save_tiny(tmp_path / "model", SPEC, corpus(SPEC, 20))
        (tmp_path / "tiny.toml").write_text(SPEC.text + "\n[train.offline]\nmax_steps = 1\ndataset_limit = 8\n"
                                            "eval_limit = 1\neval_max_new_tokens = 4\n")
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(main, ["train", "--spec", str(tmp_path / "tiny.toml"), "--offline", "--model",
                                           str(model), "--no-progress"])
        assert result.exit_code == 0, result.output
        assert "Before / after (gsm8k-test prompts, greedy):" in result.output
        assert OFFLINE_FOOTER in result.output and "reasoning-kit grpo --offline" in OFFLINE_FOOTER
