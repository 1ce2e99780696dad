"""`reasoning-kit grpo`: real GRPO runs (TRL GRPOTrainer, CPU) on a tiny model built here.

A tiny Llama is first fine-tuned (SFT, ``harness.train``) on formatted sums, then GRPO continues
its adapter for two steps with the spec's rewards. The tests check that the rewards scored the
completions the model produced under the spec's prompts, that the curves, samples, adapter and
metrics are written, resume and overwrite rules, the [grpo] config, and the prompt data.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from harness.grpo import GRPOError
from harness.grpo.config import base_model, loading_config, resolve_config
from harness.grpo.curves import curves, summary
from harness.grpo.data import prepare_prompts
from harness.stats import quantile
from harness.grpo.run import grpo
from harness.train import TrainError
from harness.train.config import parse_set
from harness.train.config import resolve_config as train_config
from harness.train.run import train
from reasoning_kit import rewards
from reasoning_kit.grpo_config import GRPOTrainConfig
from reasoning_kit.spec import load_spec
from reasoning_kit.template import prompt_messages, render
from reasoning_kit.validator import CODES, validate
from tests.tiny import corpus, make_model, make_tokenizer

SPEC = load_spec("working_out")
PAIRS = [(2, 1), (3, 4), (5, 7), (6, 2), (8, 9), (4, 4), (7, 1), (9, 3)]
ROWS = [{"question": f"What is {a} + {b}?", "reasoning": f"We add {a} and {b} to get {a + b}.", "answer": str(a + b)}
        for a, b in PAIRS]
GOLD = {r["question"]: r["answer"] for r in ROWS}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny model, SFT data, and an SFT adapter trained on it (a few seconds).

    No assertion depends on how well the SFT went: the tests check what GRPO recorded against
    what it generated (rewards recomputed from the logged completions, counts, files), never the
    completions themselves; they also pass with a 1-step lr 1e-6 SFT adapter.
    """
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("grpo")
    tok = make_tokenizer(SPEC, corpus(SPEC, 40))
    model = make_model(tok)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    cfg = train_config(SPEC.train, {
        "model": str(root / "model"), "dataset": str(root / "data.jsonl"), "output_dir": str(root / "sft"),
        "backend": "hf", "max_steps": 60, "learning_rate": 1e-2, "per_device_train_batch_size": 8, "warmup_steps": 0,
        "lora_r": 16, "lora_alpha": 32, "gradient_checkpointing": False, "completion_only_loss": True,
        "max_seq_length": 512, "packing": False,
    })
    sft = train(SPEC, cfg, progress=False, log=lambda m: None)
    assert sft.status == "completed"
    return root


def grpo_config(workdir, out, **overrides):
    base = {
        "adapter": str(workdir / "sft" / "adapter"), "dataset": str(workdir / "data.jsonl"), "output_dir": str(out),
        "backend": "hf", "max_steps": 2, "max_completion_length": 24, "optim": "adamw_torch",
        "gradient_checkpointing": False, "learning_rate": 1e-3, "sample_every": 1, "per_device_train_batch_size": 2,
        "save_steps": 0, "steps_per_generation": 0,  # a generation round per step: a curve row and a sync per step
    }
    return resolve_config(SPEC.grpo, base | overrides)


@pytest.fixture(scope="module")
def run(workdir):
    import torch

    torch.set_num_threads(1)
    # merged_generation on: every test of this run also checks sampling from the merged copy
    return grpo(SPEC, grpo_config(workdir, workdir / "grpo", merged_generation=True), progress=False, log=lambda m: None)


def samples(result) -> list[dict]:
    return [json.loads(line) for line in (result.output_dir / "samples.jsonl").read_text().splitlines()]


class TestRun:
    def test_completes_two_steps_from_the_sft_adapter(self, run, workdir):
        assert (run.status, run.global_step, run.max_steps) == ("completed", 2, 2)
        assert run.start_adapter == str(workdir / "sft" / "adapter")
        assert run.model == str(workdir / "model")  # read from the adapter's adapter_config.json

    def test_files(self, run):
        out = run.output_dir
        for name in ("metrics.json", "data_summary.json", "grpo_config.json", "spec.toml", "samples.jsonl",
                     "adapter/adapter_config.json", "adapter/adapter_model.safetensors"):
            assert (out / name).is_file(), name
        png = (out / "curves.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
        assert (out / "spec.toml").read_text() == SPEC.text

    def test_adapter_continues_the_sft_adapter(self, run, workdir):
        from safetensors.torch import load_file

        before = load_file(workdir / "sft" / "adapter" / "adapter_model.safetensors")
        after = load_file(run.adapter_dir / "adapter_model.safetensors")
        assert set(before) == set(after)
        assert any(not before[k].equal(after[k]) for k in before)

    def test_curves_hold_every_reward_and_error_code_per_step(self, run):
        m = json.loads((run.output_dir / "metrics.json").read_text())
        assert m["rewards"] == list(SPEC.rewards.enabled)
        assert [row["step"] for row in m["curves"]] == [1, 2]
        for row in m["curves"]:
            for name in m["rewards"]:
                assert isinstance(row[f"rewards/{name}/mean"], float)
            assert set(CODES) <= {k.split("/", 1)[1] for k in row if k.startswith("format_errors/")}
            assert 0.0 <= row["format/valid_fraction"] <= 1.0
        assert m["reward_summary"]["first"]["reward"] == pytest.approx(m["curves"][0]["reward"], abs=1e-4)
        assert m["backend"] == "hf" and m["device"].startswith("cpu") and m["versions"]["trl"]

    def test_sampled_from_the_merged_copy_once_per_generation_round(self, run):
        m = json.loads((run.output_dir / "metrics.json").read_text())
        assert m["config"]["merged_generation"] is True
        assert m["merged_generation_syncs"] == 2  # 2 steps, one generation round each
        assert m["config"]["fast_decoding"] is True and m["fast_decoding_calls"] == 2  # the default, on the copy
        # decode_graphs (default true) needs CUDA: on this CPU every call says so and decodes un-graphed
        assert m["decode_graphed_steps"] == 0 and m["decode_not_graphed"] == ["the model is not on a GPU"]

    def test_prompts_are_what_the_model_saw(self, run, workdir):
        """Each prompt is the spec's rendered prompt with its special tokens (TRL logs it without them)."""
        from transformers import AutoTokenizer

        from harness.models import eos_text

        tok = AutoTokenizer.from_pretrained(workdir / "model")
        eos = eos_text(SPEC, tok)
        assert eos in tok.all_special_tokens  # the template's EOS after the system prompt is a special token
        rows = samples(run)
        assert len(rows) == 2 * 2 * SPEC.grpo.num_generations  # 2 steps x 2 prompts x 4 completions
        for row in rows:
            question = next(q for q in GOLD if q in row["prompt"])
            seen = render(SPEC, prompt_messages(SPEC, question), add_generation_prompt=True, eos_token=eos)
            assert (row["prompt"], "prompt_decoded" in row) == (seen, False)

    def test_rewards_scored_the_logged_completions(self, run):
        """Each completion's recorded rewards equal the spec's reward functions called on it directly."""
        funcs = rewards.build(SPEC)
        rows = samples(run)
        for row in rows:
            question = next(q for q in GOLD if q in row["prompt"])
            completion = [[{"role": "assistant", "content": row["completion"]}]]
            for f in funcs:
                expected = f(prompts=[row["prompt"]], completions=completion, answer=[GOLD[question]])[0]
                assert row["rewards"][f.__name__] == pytest.approx(expected), (f.__name__, row["completion"])
            assert row["errors"] == list(validate(SPEC, row["completion"]).codes)

    def test_error_counts_match_the_samples(self, run):
        m = json.loads((run.output_dir / "metrics.json").read_text())
        rows = samples(run)
        for curve in m["curves"]:
            batch = [r for r in rows if r["step"] == curve["step"]]
            valid = sum(1 for r in batch if not r["errors"]) / len(batch)
            assert curve["format/valid_fraction"] == pytest.approx(valid)


class TestOutputDirectory:
    def test_refuses_a_non_empty_directory(self, run, workdir):
        with pytest.raises(TrainError, match="not empty: pass --overwrite"):
            grpo(SPEC, grpo_config(workdir, run.output_dir), progress=False, log=lambda m: None)

    def test_checkpoint_then_resume(self, workdir, tmp_path):
        out = tmp_path / "resumable"
        first = grpo(SPEC, grpo_config(workdir, out, max_steps=1, save_steps=1, sample_every=0), progress=False,
                     log=lambda m: None)
        assert first.global_step == 1 and (out / "checkpoint-1").is_dir()
        again = grpo(SPEC, grpo_config(workdir, out, max_steps=2, save_steps=1, sample_every=0), resume=True,
                     progress=False, log=lambda m: None)
        assert again.global_step == 2 and again.metrics["resumed_from"].endswith("checkpoint-1")
        assert again.metrics["steps_this_session"] == 1

    def test_evaluation_split_is_refused_before_loading(self, workdir, tmp_path):
        with pytest.raises(GRPOError, match="GSM8K test split, reserved for evaluation: never train on it"):
            grpo(SPEC, grpo_config(workdir, tmp_path / "o", dataset="gsm8k-test"), progress=False, log=lambda m: None)
        assert not (tmp_path / "o").exists()

    def test_the_dataset_is_checked_once(self, workdir, tmp_path, dataset_checks):
        """Before the model loads (harness.lifecycle step 1); prepare_prompts takes that result unchecked."""
        result = grpo(SPEC, grpo_config(workdir, tmp_path / "o", max_steps=1, sample_every=0), progress=False,
                      log=lambda m: None)
        assert result.status == "completed"
        assert sorted(dataset_checks) == ["check_split", "eval_only_reason"]

    def test_fewer_prompts_than_one_round_is_refused_before_writing(self, workdir, tmp_path):
        """TRL serves whole generation rounds only: 1 prompt at 2 prompts per step would have 'trained' 0 steps."""
        one = tmp_path / "one.jsonl"
        one.write_text((workdir / "data.jsonl").read_text().splitlines()[0] + "\n")
        for over, need in (({"per_device_train_batch_size": 2}, 2),
                           ({"per_device_train_batch_size": 1, "steps_per_generation": 3}, 3)):
            with pytest.raises(GRPOError, match=rf"1 prompt\(s\) kept, but one generation round needs {need} "):
                grpo(SPEC, grpo_config(workdir, tmp_path / "o", dataset=str(one), **over), progress=False,
                     log=lambda m: None)
            assert not (tmp_path / "o").exists()

    def test_missing_adapter(self, workdir, tmp_path):
        with pytest.raises(GRPOError, match="is not a directory"):
            grpo(SPEC, grpo_config(workdir, tmp_path / "o", adapter=str(tmp_path / "nope")), progress=False)
        (tmp_path / "empty").mkdir()
        with pytest.raises(GRPOError, match="no adapter_config.json"):
            grpo(SPEC, grpo_config(workdir, tmp_path / "o", adapter=str(tmp_path / "empty")), progress=False)


class TestCli:
    def test_cli_run_prints_the_summary(self, workdir, tmp_path):
        from harness.cli import main

        out = tmp_path / "cli"
        args = ["grpo", "--adapter", str(workdir / "sft" / "adapter"), "--dataset", str(workdir / "data.jsonl"),
                "--backend", "hf", "--max-steps", "1", "--out", str(out), "--no-progress", "--set", "max_completion_length=16",
                "--set", "optim='adamw_torch'", "--set", "gradient_checkpointing=false", "--set", "sample_every=0",
                "--eval-limit", "2", "--set", "eval_max_new_tokens=8"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert re.search(r"GRPO: 1 steps in \d+ s on cpu", result.output)
        assert re.search(r"mean reward -?[\d.]+ -> -?[\d.]+ \(rewards logged at steps 1-1 vs 1-1\)", result.output)
        assert f"adapter: {out / 'adapter'}" in result.output
        # the before/after evaluation: starting model (base + SFT adapter) vs the GRPO adapter
        assert "Before / after GRPO" in result.output and (out / "eval" / "before_after.md").is_file()
        start = json.loads((out / "eval" / "start" / "report.json").read_text())
        after = json.loads((out / "eval" / "grpo" / "report.json").read_text())
        assert start["metrics"]["n"] == after["metrics"]["n"] == 2
        assert str(start["run"]["adapter"]).endswith("sft/adapter") and str(after["run"]["adapter"]).endswith("cli/adapter")

    @pytest.mark.parametrize("args, message", [
        (["--set", "num_generations=1"], "grpo.num_generations: must be at least 2, got 1"),
        (["--set", "bogus=1"], "grpo.bogus: unknown key"),
        (["--lr", "0"], "grpo.learning_rate: must be above 0.0, got 0.0"),
        (["--set", "warmup_ratio=1.5"], "grpo.warmup_ratio: must be below 1.0, got 1.5"),
        (["--set", "loss_type=ppo"], "grpo.loss_type: must be one of 'grpo', 'dr_grpo', 'dapo'"),
        (["--set", "epsilon_high=0.1"], "grpo.epsilon_high: (0.1) must be 0 or at least epsilon (0.2)"),
        (["--dataset", "gsm8k-test"], "reserved for evaluation: never train on it"),
    ])
    def test_one_line_errors(self, args, message, tmp_path):
        from harness.cli import main

        result = CliRunner().invoke(main, ["grpo", "--out", str(tmp_path / "o"), *args])
        assert result.exit_code == 2
        last = result.output.strip().splitlines()[-1]
        assert last.startswith("Error: ") and message in last


class TestConfig:
    @pytest.mark.parametrize("key, value", [
        ("num_generations", 4), ("learning_rate", 5e-6), ("temperature", 1.0), ("min_p", 0.1), ("top_p", 1.0),
        ("seed", 3407), ("max_steps", 100), ("optim", "adamw_8bit"), ("weight_decay", 0.001), ("warmup_ratio", 0.1),
        ("lr_scheduler_type", "linear"), ("per_device_train_batch_size", 1), ("gradient_accumulation_steps", 1),
        ("logging_steps", 1), ("save_steps", 0), ("max_seq_length", 2048), ("max_prompt_length", 0),
        ("max_completion_length", 0), ("dataset", "open-r1/DAPO-Math-17k-Processed"),
    ])
    def test_defaults_are_the_seed_grpo_stage(self, key, value):
        assert getattr(GRPOTrainConfig(), key) == value
        assert getattr(SPEC.grpo, key) == value

    def test_spec_table_and_overrides(self):
        from reasoning_kit.spec import parse_spec

        spec = parse_spec(SPEC.text + "\n[grpo]\nnum_generations = 8\nlearning_rate = 1e-5\n")
        assert (spec.grpo.num_generations, spec.grpo.learning_rate) == (8, 1e-5)
        cfg = resolve_config(spec.grpo, parse_set(["max_steps=7", "target_modules=['q_proj']"]))
        assert (cfg.max_steps, cfg.target_modules, cfg.num_generations) == (7, ("q_proj",), 8)

    def test_unknown_key_in_the_spec(self):
        from reasoning_kit.schema import SpecError
        from reasoning_kit.spec import parse_spec

        with pytest.raises(SpecError, match="grpo.num_gens"):
            parse_spec(SPEC.text + "\n[grpo]\nnum_gens = 8\n")

    def test_problems_are_listed_together(self):
        with pytest.raises(GRPOError) as err:
            resolve_config(SPEC.grpo, {"max_steps": 0, "top_p": 0, "max_prompt_length": 4096})
        text = str(err.value)
        assert text == ("invalid grpo option: grpo.max_steps: must be at least 1, got 0; grpo.top_p: must be above 0.0, got 0.0; "
                        "grpo.max_prompt_length: (4096) must be below max_seq_length (2048)")

    def test_base_model_comes_from_the_adapter(self, workdir):
        adapter = str(workdir / "sft" / "adapter")
        assert base_model(resolve_config(SPEC.grpo, {"adapter": adapter}), SPEC.train) == str(workdir / "model")
        assert base_model(resolve_config(SPEC.grpo, {"adapter": adapter, "model": "m"}), SPEC.train) == "m"
        assert base_model(SPEC.grpo, SPEC.train) == SPEC.train.model

    def test_epsilon_high_reaches_the_trainer_explicitly(self):
        """0 means 'same as epsilon'; passed as None, Unsloth would put DAPO's 0.28 in its place for loss_type dapo."""
        from harness.grpo.run import grpo_args

        def eps(**over):
            args = grpo_args(resolve_config(SPEC.grpo, over), output_dir="o", max_completion_length=8, bf16=False,
                             fp16=False, optim="adamw_torch", progress=False, gradient_checkpointing=None)
            return args["epsilon"], args["epsilon_high"]

        assert SPEC.grpo.loss_type == "dapo" and eps() == (0.2, 0.2)
        assert eps(epsilon=0.1) == (0.1, 0.1) and eps(epsilon_high=0.28) == (0.2, 0.28)

    def test_loading_config_carries_the_grpo_model_settings(self):
        cfg = resolve_config(SPEC.grpo, {"model": "m", "lora_r": 8, "backend": "hf", "max_seq_length": 1024})
        tc = loading_config(cfg, SPEC.train)
        assert (tc.model, tc.lora_r, tc.backend, tc.max_seq_length, tc.optim, tc.seed) == ("m", 8, "hf", 1024, "adamw_8bit", 3407)


class TestPrompts:
    @pytest.fixture(scope="class")
    @classmethod
    def tok(cls):
        return make_tokenizer(SPEC, corpus(SPEC, 8))

    def test_seed_length_rule_on_gsm8k(self, tok):
        data = prepare_prompts(SPEC, "gsm8k", tok, max_seq_length=2048, limit=200, progress=False)
        s = data.summary
        lengths = []
        for row in data.dataset:
            from reasoning_kit.template import render

            text = render(SPEC, row["prompt"], add_generation_prompt=True, eos_token=tok.eos_token)
            lengths.append(len(tok(text, add_special_tokens=False).input_ids))
        assert s["rows_in"] == 200 and s["rows_kept"] == len(data.dataset) == 200 - s["dropped"]["prompt_too_long"]
        assert 10 <= s["dropped"]["prompt_too_long"] <= 30  # about the top 10 %
        assert max(lengths) <= data.max_prompt_length - 1
        assert data.max_completion_length == 2048 - data.max_prompt_length
        row = data.dataset[0]
        assert row["prompt"][0] == {"role": "system", "content": SPEC.system_prompt}
        assert row["prompt"][1]["role"] == "user" and row[SPEC.answer.column] == "72"  # GSM8K train row 0

    def test_explicit_lengths(self, tok):
        data = prepare_prompts(SPEC, "gsm8k", tok, max_seq_length=2048, max_prompt_length=5000,
                               max_completion_length=300, limit=20, progress=False)
        assert (data.summary["rows_kept"], data.max_prompt_length, data.max_completion_length) == (20, 5000, 300)
        with pytest.raises(GRPOError, match="no room for completions"):
            prepare_prompts(SPEC, "gsm8k", tok, max_seq_length=100, max_prompt_length=100, limit=5, progress=False)

    def test_dapo_layout_and_markers(self, tok, tmp_path):
        path = tmp_path / "dapo.jsonl"
        rows = [{"prompt": "Compute 2+2.", "solution": "4"}, {"prompt": "Say <SOLUTION> then 3.", "solution": "3"},
                {"prompt": "Half of 1,000?", "solution": "500"}]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        data = prepare_prompts(SPEC, str(path), tok, max_seq_length=2048, max_prompt_length=1000, progress=False)
        assert data.dataset["answer"] == ["4", "500"]
        assert data.summary["dropped"] == {"marker_in_question": 1}

    def test_dapo_layout_is_not_sft_data(self, tok, tmp_path):
        from harness.data.prepare import prepare_dataset
        from harness.data.sources import DataError

        path = tmp_path / "dapo.jsonl"
        path.write_text(json.dumps({"prompt": "Compute 2+2.", "solution": "4"}) + "\n")
        with pytest.raises(DataError, match="no worked solutions to fine-tune on"):
            prepare_dataset(SPEC, str(path), tokenizer=None)

    def test_missing_answer_column(self, tok, tmp_path):
        path = tmp_path / "q.jsonl"
        path.write_text(json.dumps({"question": "2+2?"}) + "\n")
        with pytest.raises(GRPOError, match="missing column answer"):
            prepare_prompts(SPEC, str(path), tok, max_seq_length=2048, progress=False)


class TestCurves:
    def test_quantile_matches_numpy(self):
        import numpy as np

        for values in ([5], [1, 2], [3, 1, 4, 1, 5, 9, 2, 6], list(range(0, 1000, 7))):
            assert int(quantile(values, 0.9)) == int(np.quantile(values, 0.9))

    def test_rows_and_summary(self):
        history = [{"loss": 0.1, "step": 1}] + [
            {"step": s, "reward": float(s), "rewards/format_exact/mean": 3.0 * s / 20, "format/valid_fraction": s / 20,
             "format_errors/truncated": 20 - s, "other": 1}
            for s in range(1, 21)
        ]
        rows = curves(history)
        assert len(rows) == 20 and "other" not in rows[0] and rows[0]["format_errors/truncated"] == 19
        s = summary(rows)
        assert s["window_steps"] == 10 and (s["first_steps"], s["last_steps"]) == ([1, 10], [11, 20])
        assert s["first"]["reward"] == pytest.approx(5.5) and s["last"]["reward"] == pytest.approx(15.5)
        assert s["last"]["rewards/format_exact/mean"] == pytest.approx(3 * 15.5 / 20)
