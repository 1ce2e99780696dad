"""[train] config: seed defaults, the offline preset, overrides, range checks, --set parsing, configs made in code."""

from __future__ import annotations

import dataclasses

import pytest

from harness.train import TrainError
from harness.train.config import OPTION_KEYS, config_dict, output_path, parse_set, parse_value, resolve_config
from reasoning_kit.spec import load_spec, parse_spec
from reasoning_kit.train_config import OFFLINE, SEED_TARGET_MODULES, TrainConfig

SPEC = load_spec("working_out")


class TestSeedDefaults:
    @pytest.mark.parametrize(
        "key, value",
        [
            ("model", "unsloth/Qwen3-4B-Base"),
            ("dataset", "unsloth/OpenMathReasoning-mini"),
            ("max_seq_length", 2048),
            ("load_in_4bit", False),
            ("lora_r", 32),
            ("lora_alpha", 64),
            ("target_modules", SEED_TARGET_MODULES),
            ("gradient_checkpointing", "unsloth"),
            ("seed", 3407),
            ("per_device_train_batch_size", 1),
            ("gradient_accumulation_steps", 1),
            ("warmup_steps", 5),
            ("num_train_epochs", 2.0),
            ("learning_rate", 2e-4),
            ("optim", "adamw_8bit"),
            ("weight_decay", 0.01),
            ("lr_scheduler_type", "linear"),
            ("logging_steps", 5),
            ("completion_only_loss", False),
        ],
    )
    def test_default_is_the_seed_value(self, key, value):
        assert getattr(TrainConfig(), key) == value
        assert getattr(SPEC.train, key) == value  # the shipped spec keeps the seed recipe

    def test_packing_is_the_one_change_from_the_seed(self):
        assert TrainConfig().packing is True and SPEC.train.packing is True
        assert OFFLINE["packing"] is False  # the offline preset was measured without packing
        assert resolve_config(SPEC.train, {"packing": False}).packing is False

    def test_every_key_has_help(self):
        missing = [f.name for f in dataclasses.fields(TrainConfig) if not f.metadata.get("help")]
        assert missing == []


class TestOfflinePreset:
    def test_offline_values_replace_train_values(self):
        cfg = resolve_config(SPEC.train, offline=True)
        for key, value in OFFLINE.values:
            assert getattr(cfg, key) == value, key
        assert cfg.weight_decay == 0.01 and cfg.seed == 3407  # keys the preset leaves alone

    def test_preset_is_part_of_the_spec(self):
        text = SPEC.text + "\n[train.offline]\nmax_steps = 7\nlearning_rate = 1e-3\n"
        spec = parse_spec(text.replace("[answer]", "[train]\nlora_r = 8\n\n[answer]", 1))
        cfg = resolve_config(spec.train, offline=True)
        assert (cfg.max_steps, cfg.learning_rate, cfg.lora_r) == (7, 1e-3, OFFLINE["lora_r"])
        assert resolve_config(spec.train).lora_r == 8

    def test_overrides_apply_after_the_preset(self):
        cfg = resolve_config(SPEC.train, {"max_steps": 3, "model": "x/y"}, offline=True)
        assert (cfg.max_steps, cfg.model, cfg.dataset) == (3, "x/y", "gsm8k")

    def test_set_reaches_the_preset(self):
        cfg = resolve_config(SPEC.train, parse_set(["offline.max_steps=9"]), offline=True)
        assert cfg.max_steps == 9


class TestOverrides:
    @pytest.mark.parametrize("option, key", sorted(OPTION_KEYS.items()))
    def test_every_option_names_a_key(self, option, key):
        assert key in {f.name for f in dataclasses.fields(TrainConfig)}

    def test_typed_values(self):
        cfg = resolve_config(SPEC.train, parse_set(["lora_r=8", "target_modules=['q_proj']", "packing=true", "lr_scheduler_type=cosine"]))
        assert (cfg.lora_r, cfg.target_modules, cfg.packing, cfg.lr_scheduler_type) == (8, ("q_proj",), True, "cosine")

    def test_int_for_float_key(self):
        assert resolve_config(SPEC.train, {"num_train_epochs": 3}).num_train_epochs == 3.0

    def test_unknown_key_and_bad_type_together(self):
        with pytest.raises(TrainError) as err:
            resolve_config(SPEC.train, {"lora_rank": 8, "lora_r": "big"})
        msg = str(err.value)
        assert msg.startswith("invalid training option: train.lora_rank: unknown key (did you mean 'lora_r'? known keys: ")
        assert msg.endswith("; train.lora_r: must be an integer, got 'big'")

    def test_bad_choice(self):
        with pytest.raises(TrainError, match=r"train.backend: must be one of 'auto', 'unsloth', 'hf', got 'tpu'"):
            resolve_config(SPEC.train, {"backend": "tpu"})


class TestCheck:
    def test_every_problem_at_once(self):
        with pytest.raises(TrainError) as err:
            resolve_config(SPEC.train, {"per_device_train_batch_size": 0, "learning_rate": -1.0, "max_steps": 0})
        assert str(err.value) == (
            "invalid training option: train.per_device_train_batch_size: must be at least 1, got 0; "
            "train.max_steps: must be at least 1 or -1, got 0; "
            "train.learning_rate: must be above 0.0, got -1.0"
        )

    @pytest.mark.parametrize(
        "overrides, message",
        [
            ({"warmup_steps": -1}, "train.warmup_steps: must be at least 0, got -1"),
            ({"target_modules": []}, "train.target_modules: must name at least one module"),
            ({"gpu_memory_utilization": 1.5}, "train.gpu_memory_utilization: must be at most 1.0, got 1.5"),
            ({"num_train_epochs": 0.0}, "train.num_train_epochs: must be above 0.0, got 0.0"),
            ({"learning_rate": float("nan")}, "train.learning_rate: must be a finite number, got nan"),
            ({"lora_r": -1}, "train.lora_r: must be at least 1, got -1"),
            ({"offline.lora_r": 0}, "train.offline.lora_r: must be at least 1, got 0"),
            ({"report_to": "neptune"}, "train.report_to: must be one of 'none', 'tensorboard', 'wandb', 'trackio', "
                                       "'mlflow', got 'neptune'"),
        ],
    )
    def test_single_problems(self, overrides, message):
        with pytest.raises(TrainError) as err:
            resolve_config(SPEC.train, overrides)
        assert str(err.value) == "invalid training option: " + message


class TestParseSet:
    @pytest.mark.parametrize(
        "text, value",
        [("2e-4", 2e-4), ("16", 16), ("true", True), ('"a b"', "a b"), ("unsloth/Qwen3-4B", "unsloth/Qwen3-4B"), ("[1, 2]", [1, 2])],
    )
    def test_values(self, text, value):
        assert parse_value(text) == value

    def test_missing_equals(self):
        with pytest.raises(TrainError, match=r"^--set expects key=value, got 'lora_r'$"):
            parse_set(["lora_r"])


class TestOutputPath:
    def test_name_placeholder(self):
        assert str(output_path(SPEC.train, SPEC)) == "outputs/working_out"
        assert str(output_path(SPEC.train.with_offline(), SPEC)) == "outputs/working_out-offline"

    def test_config_dict_is_plain(self):
        d = config_dict(SPEC.train)
        assert "offline" not in d and d["target_modules"] == list(SEED_TARGET_MODULES)


class TestGradientCheckpointing:
    @pytest.mark.parametrize("text, value", [("false", False), ("true", True), ('"unsloth"', "unsloth"), ("unsloth", "unsloth")])
    def test_set_values(self, text, value):
        assert resolve_config(SPEC.train, parse_set([f"gradient_checkpointing={text}"])).gradient_checkpointing == value

    def test_bad_value(self):
        with pytest.raises(TrainError) as err:
            resolve_config(SPEC.train, parse_set(["gradient_checkpointing=offload"]))
        assert str(err.value) == (
            "invalid training option: train.gradient_checkpointing: must be one of 'unsloth' or true or false, got 'offload'"
        )

    def test_string_key_takes_a_number(self):
        assert resolve_config(SPEC.train, parse_set(["dataset_split=2024"])).dataset_split == "2024"


class TestConfigMadeInCode:
    """A config made in code (``dataclasses.replace``) skips --set's check; the run lifecycle applies the schema's
    type check to it, so a nan is refused with the message --set gives, before the output directory is touched."""

    @pytest.mark.parametrize("command, key, value", [
        ("train", "learning_rate", "nan"),
        ("train", "num_train_epochs", "inf"),
        ("train", "lora_r", '"big"'),
        ("grpo", "temperature", "-inf"),
        ("grpo", "beta", "nan"),
    ])
    def test_the_lifecycle_says_what_set_says(self, tmp_path, command, key, value):
        from click.testing import CliRunner

        from harness.cli import main
        from harness.grpo.config import resolve_config as grpo_config
        from harness.grpo.run import grpo
        from harness.train.run import train

        out = tmp_path / "run"
        args = [command, "--backend", "hf", "--output", str(out), "--set", f"{key}={value}"]
        cli = CliRunner().invoke(main, args + (["--adapter", ""] if command == "grpo" else []))
        assert cli.exit_code == 2, cli.output
        if command == "train":
            cfg, run, error = resolve_config(SPEC.train, {"output_dir": str(out), "backend": "hf"}), train, TrainError
        else:
            from harness.grpo import GRPOError

            cfg = grpo_config(SPEC.grpo, {"output_dir": str(out), "backend": "hf", "adapter": ""})
            run, error = grpo, GRPOError
        bad = dataclasses.replace(cfg, **{key: parse_value(value)})
        with pytest.raises(error) as err:
            run(SPEC, bad, progress=False, log=lambda msg: None)
        assert cli.output.strip().splitlines()[-1] == f"Error: {err.value}"
        assert not out.exists() and list(tmp_path.iterdir()) == []

    def test_a_range_is_left_to_code(self):
        """A learning rate of 0 (a control run in tests/test_grpo_learns.py) is outside [train]'s range, not its type."""
        from reasoning_kit.schema import type_problems

        cfg = dataclasses.replace(SPEC.train, learning_rate=0.0, lora_r=0)
        assert type_problems(cfg, "train") == []
        assert [str(p) for p in type_problems(dataclasses.replace(cfg, max_steps=2.5, backend="tpu"), "train")] == [
            "train.backend: must be one of 'auto', 'unsloth', 'hf', got 'tpu'",
            "train.max_steps: must be an integer, got 2.5",
        ]
