"""Backend choice and the settings each backend derives from [train] (no GPU needed for these)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.train import TrainError
from harness.train.backends import choose
from harness.train.backends.hf import plan
from harness.train.backends.unsloth import from_pretrained_kwargs, peft_kwargs, precision
from harness.train.config import resolve_config
from harness.train.sft import sft_args, training_columns
from reasoning_kit.spec import load_spec
from reasoning_kit.train_config import TrainConfig

SPEC = load_spec("working_out")
SEED = TrainConfig()


class TestChoose:
    @pytest.mark.parametrize(
        "requested, cuda, unsloth, expected",
        [
            ("auto", True, True, ("unsloth", "auto: a CUDA GPU and the unsloth package are available")),
            ("auto", False, True, ("hf", "auto: no CUDA GPU, so transformers + PEFT + TRL on CPU")),
            ("auto", False, False, ("hf", "auto: no CUDA GPU, so transformers + PEFT + TRL on CPU")),
            (
                "auto", True, False,
                ("hf", "auto: CUDA GPU but unsloth is not installed (pip install 'reasoning-kit[gpu]'), so transformers + PEFT + TRL"),
            ),
            ("hf", True, True, ("hf", "requested: transformers + PEFT + TRL")),
            ("unsloth", True, True, ("unsloth", "requested")),
        ],
    )
    def test_choice(self, requested, cuda, unsloth, expected):
        assert choose(requested, cuda=cuda, unsloth=unsloth) == expected

    @pytest.mark.parametrize(
        "cuda, unsloth, message",
        [
            (False, True, "backend 'unsloth' needs a CUDA GPU; use --backend hf (or auto) on this machine"),
            (True, False, "backend 'unsloth' needs the unsloth package: pip install 'reasoning-kit[gpu]'"),
        ],
    )
    def test_unsloth_unavailable(self, cuda, unsloth, message):
        with pytest.raises(TrainError) as err:
            choose("unsloth", cuda=cuda, unsloth=unsloth)
        assert str(err.value) == message

    def test_this_machine_without_cuda(self):
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
        assert choose("auto") == ("hf", "auto: no CUDA GPU, so transformers + PEFT + TRL on CPU")


class TestHfPlan:
    def test_seed_recipe_on_cpu(self):
        p = plan(SEED, cuda=False, bf16_ok=False, bnb=False)
        assert (p.device, p.weights, p.bf16, p.fp16, p.optim, p.gradient_checkpointing) == (
            "cpu", "float32", False, False, "adamw_torch", True,
        )
        assert p.notes == (
            "optim 'adamw_8bit' needs bitsandbytes and CUDA (no CUDA here): using 'adamw_torch'",
            "gradient_checkpointing 'unsloth' is Unsloth's offloaded variant: the hf backend uses plain checkpointing",
            "precision auto -> fp32 (CPU)",
        )

    def test_seed_recipe_on_a_bf16_gpu_with_bitsandbytes(self):
        p = plan(SEED, cuda=True, bf16_ok=True, bnb=True)
        assert (p.device, p.weights, p.bf16, p.fp16, p.optim) == ("cuda", "bfloat16", True, False, "adamw_8bit")

    def test_fp16_gpu_without_bitsandbytes(self):
        p = plan(SEED, cuda=True, bf16_ok=False, bnb=False)
        assert (p.weights, p.bf16, p.fp16, p.optim) == ("float16", False, True, "adamw_torch")
        assert "optim 'adamw_8bit' needs bitsandbytes and CUDA (no bitsandbytes here): using 'adamw_torch'" in p.notes

    @pytest.mark.parametrize(
        "overrides, cuda, bf16_ok, message",
        [
            ({"load_in_4bit": True}, False, False, "load_in_4bit needs a CUDA GPU and bitsandbytes; set train.load_in_4bit = false"),
            ({"precision": "fp16"}, False, False, "precision fp16 needs a CUDA GPU; use precision fp32 (or bf16) on CPU"),
            ({"precision": "bf16"}, True, False, "this GPU does not support bf16; use precision fp16 or auto"),
        ],
    )
    def test_impossible_settings(self, overrides, cuda, bf16_ok, message):
        with pytest.raises(TrainError) as err:
            plan(resolve_config(SEED, overrides), cuda=cuda, bf16_ok=bf16_ok, bnb=False)
        assert str(err.value) == message

    def test_checkpointing_off(self):
        assert plan(resolve_config(SEED, {"gradient_checkpointing": False}), cuda=False, bf16_ok=False, bnb=False).gradient_checkpointing is False


class TestUnslothCalls:
    def test_from_pretrained_is_the_seeds_call(self):
        assert from_pretrained_kwargs(SEED, "unsloth/Qwen3-4B-Base", vllm=True) == dict(
            model_name="unsloth/Qwen3-4B-Base", max_seq_length=2048, load_in_4bit=False, fast_inference=True,
            max_lora_rank=32, gpu_memory_utilization=0.7,
        )

    def test_no_fast_inference_without_vllm(self):
        kw = from_pretrained_kwargs(SEED, "/models/x", vllm=False)
        assert kw["fast_inference"] is False and "gpu_memory_utilization" not in kw

    def test_get_peft_model_is_the_seeds_call(self):
        assert peft_kwargs(SEED) == dict(
            r=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            lora_alpha=64, lora_dropout=0.0, use_gradient_checkpointing="unsloth", random_state=3407,
        )

    @pytest.mark.parametrize("value, expected", [(True, True), (False, False), ("unsloth", "unsloth")])
    def test_checkpointing_values(self, value, expected):
        assert peft_kwargs(resolve_config(SEED, {"gradient_checkpointing": value}))["use_gradient_checkpointing"] == expected

    @pytest.mark.parametrize(
        "value, supported, expected", [("auto", True, (True, False)), ("auto", False, (False, True)), ("fp32", True, (False, False))]
    )
    def test_precision_follows_is_bfloat16_supported(self, value, supported, expected):
        assert precision(resolve_config(SEED, {"precision": value}), supported) == expected


class TestSftArgs:
    def test_seed_sftconfig_arguments(self):
        args = sft_args(SEED, output_dir=Path("out"), bf16=True, fp16=False, optim="adamw_8bit")
        seed = dict(
            dataset_text_field="text", per_device_train_batch_size=1, bf16=True, fp16=False, gradient_accumulation_steps=1,
            warmup_steps=5, num_train_epochs=2.0, learning_rate=2e-4, logging_steps=5, optim="adamw_8bit",
            weight_decay=0.01, lr_scheduler_type="linear", seed=3407, report_to="none",
        )
        assert {k: args[k] for k in seed} == seed
        assert args["max_length"] == 2048 and args["save_strategy"] == "no" and "gradient_checkpointing" not in args

    def test_builds_a_real_sftconfig(self, tmp_path):
        from trl import SFTConfig

        kwargs = sft_args(SEED, output_dir=tmp_path, bf16=False, fp16=False, optim="adamw_torch",
                          gradient_checkpointing=True, cpu=True)
        config = SFTConfig(**kwargs)
        assert config.gradient_checkpointing and config.gradient_checkpointing_kwargs == {"use_reentrant": False}
        assert config.max_length == 2048 and config.include_num_input_tokens_seen == "non_padding"


class TestTrainingColumns:
    @pytest.fixture
    def prepared(self):
        from datasets import Dataset

        from reasoning_kit.template import render, training_messages

        msgs = [training_messages(SPEC, f"What is {i} + 1?", f"{i} plus one is {i + 1}.", str(i + 1)) for i in range(3)]
        return Dataset.from_dict({"messages": msgs, "text": [render(SPEC, m, eos_token="<|im_end|>") for m in msgs]})

    def test_text_only(self, prepared):
        assert training_columns(prepared, SPEC, "<|im_end|>", completion_only=False).column_names == ["text"]

    def test_prompt_completion_split_at_the_generation_prompt(self, prepared):
        cols = training_columns(prepared, SPEC, "<|im_end|>", completion_only=True)
        row = cols[0]
        assert row["prompt"].endswith("What is 0 + 1?<start_working_out>")
        assert row["completion"] == "0 plus one is 1.<end_working_out><SOLUTION>1</SOLUTION><|im_end|>"
        assert row["prompt"] + row["completion"] == prepared[0]["text"]

    def test_mismatched_eos_is_an_error(self, prepared):
        with pytest.raises(TrainError, match="does not start with its rendered prompt"):
            training_columns(prepared, SPEC, "<|endoftext|>", completion_only=True)


class TestRowPackedCollator:
    @pytest.mark.parametrize("arch", ["llama", "qwen3"])
    def test_packed_loss_equals_separate_losses(self, arch):
        import torch

        from harness.train.sft import RowPackedCollator
        from tests.tiny import corpus, make_model, make_tokenizer

        tok = make_tokenizer(SPEC, corpus(SPEC, 5))
        model = make_model(tok, arch=arch).eval()
        g = torch.Generator().manual_seed(0)
        seqs = [torch.randint(2, len(tok), (n,), generator=g).tolist() for n in (5, 7, 4)]
        rows = [{"input_ids": seqs[0] + seqs[1], "seq_lengths": [5, 7]}, {"input_ids": seqs[2], "seq_lengths": [4]}]
        batch = RowPackedCollator(tok.pad_token_id)(rows)
        assert batch["position_ids"].tolist() == [list(range(5)) + list(range(7)), list(range(4)) + list(range(8))]
        assert "attention_mask" not in batch
        with torch.no_grad():
            packed = model(**batch).loss
            total = sum(model(input_ids=torch.tensor([s]), labels=torch.tensor([s])).loss * (len(s) - 1) for s in seqs)
        assert torch.allclose(packed, total / sum(len(s) - 1 for s in seqs), atol=1e-5)

    def test_examples_do_not_attend_to_each_other(self):
        import torch

        from harness.train.sft import RowPackedCollator
        from tests.tiny import corpus, make_model, make_tokenizer

        tok = make_tokenizer(SPEC, corpus(SPEC, 5))
        model = make_model(tok).eval()
        a, b, c = [5, 6, 7, 8], [9, 10, 11], [12, 13, 14]
        with torch.no_grad():
            one = model(**RowPackedCollator(tok.pad_token_id)([{"input_ids": a + b, "seq_lengths": [4, 3]}])).logits
            two = model(**RowPackedCollator(tok.pad_token_id)([{"input_ids": c + b, "seq_lengths": [3, 3]}])).logits
        assert torch.allclose(one[0, 4:], two[0, 3:], atol=1e-5)  # b's logits do not depend on what precedes it


class TestImportOrder:
    def test_nothing_imports_transformers_before_the_backend_is_chosen(self):
        """unsloth must be imported before transformers/trl/peft: the train and grpo paths up to backends.get stay clean."""
        import subprocess
        import sys

        code = (
            "import sys\n"
            "import harness.train.cli as c, harness.train.run, harness.train.mainjob\n"
            "c._user_errors()\n"
            "from harness.train.config import resolve_config\n"
            "from reasoning_kit.spec import load_spec\n"
            "resolve_config(load_spec('working_out').train, {'lora_r': 8}, offline=True)\n"
            "import harness.grpo.cli, harness.grpo.run, harness.grpo.mainjob\n"
            "from harness.grpo.config import resolve_config as grpo_config\n"
            "grpo_config(load_spec('working_out').grpo, {'lora_r': 8})\n"
            "from harness.train import backends\n"
            "backends.choose('auto')\n"
            "print(sorted(m for m in ('transformers', 'trl', 'peft', 'datasets') if m in sys.modules))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parents[1])
        assert out.stdout.strip() == "[]"
