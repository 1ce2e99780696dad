"""Optional vLLM generation backend (``reasoning-kit eval --backend vllm``, extra ``vllm``).

vLLM is imported only when this backend is built; without it, :func:`require_vllm` raises a
one-line EvalError saying which extra to install. Prompts go in as token ids (the same ids
the HF backend uses, so the two backends see identical prompts), the adapter as a
``LoRARequest``, and every output is cut by :func:`harness.evaluate.generate.finish` on its
token ids, exactly like the HF backend (EOS kept, stop right after the solution end tag).

:func:`sampling_kwargs` is the pure mapping from our settings to ``SamplingParams`` keyword
arguments (tested without vLLM). Not handled: tensor parallelism options, GGUF models
(vLLM's GGUF support is partial; pass a saved HF model directory), prefix caching tuning.
This module cannot be exercised in CI (no vLLM, no GPU there).
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

from . import EvalError
from .generate import Generation, Sampling, finish

INSTALL_HINT = "the vllm backend needs vLLM, which is not installed: pip install 'reasoning-kit[vllm]' (CUDA only)"


def require_vllm() -> None:
    """Raise EvalError with the install hint when vLLM cannot be imported."""
    if importlib.util.find_spec("vllm") is None:
        raise EvalError(INSTALL_HINT)


def sampling_kwargs(sampling: Sampling, *, max_new_tokens: int, stop: str | None, eos_ids: list[int]) -> dict:
    """Keyword arguments for ``vllm.SamplingParams`` equivalent to the HF backend's settings."""
    kw = {
        "n": 1,
        "temperature": 0.0 if sampling.greedy else sampling.temperature,
        "top_p": 1.0 if sampling.greedy else sampling.top_p,
        "max_tokens": max_new_tokens,
        "repetition_penalty": 1.0,
        "stop_token_ids": list(eos_ids),
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
        "include_stop_str_in_output": True,
    }
    if not sampling.greedy:
        kw["seed"] = sampling.seed
    if stop is not None:
        kw["stop"] = [stop]
    return kw


def lora_rank(adapter: str) -> int:
    """The LoRA rank in an adapter's adapter_config.json (vLLM needs max_lora_rank >= it)."""
    try:
        return int(json.loads((Path(adapter) / "adapter_config.json").read_text())["r"])
    except (OSError, ValueError, KeyError) as exc:
        raise EvalError(f"cannot read the LoRA rank from {adapter}/adapter_config.json: {exc}") from None


class VLLMBackend:
    """Generate with ``vllm.LLM`` (one engine for the whole run)."""

    name = "vllm"

    def __init__(self, model: str, tokenizer, *, adapter: str | None = None, max_new_tokens: int = 512,
                 sampling: Sampling | None = None, stop: str | None = None, eos_ids: list[int] | None = None,
                 gpu_memory_utilization: float = 0.8, max_model_len: int | None = None):
        require_vllm()
        from vllm import LLM, SamplingParams

        self.tokenizer, self.stop = tokenizer, stop
        self.sampling = Sampling.from_any(sampling)
        self.eos_ids = list(eos_ids or [tokenizer.eos_token_id])
        engine = {"model": model, "seed": self.sampling.seed, "gpu_memory_utilization": gpu_memory_utilization}
        if max_model_len is not None:
            engine["max_model_len"] = max_model_len
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            rank = 8
            while rank < lora_rank(adapter):  # vLLM accepts powers of two from 8
                rank *= 2
            engine |= {"enable_lora": True, "max_lora_rank": rank}
            self.lora = LoRARequest("adapter", 1, str(Path(adapter).resolve()))
        self.llm = LLM(**engine)
        self.params = SamplingParams(
            **sampling_kwargs(self.sampling, max_new_tokens=max_new_tokens, stop=stop, eos_ids=self.eos_ids)
        )

    def generate(self, prompt_ids: list[list[int]]) -> tuple[list[Generation], float]:
        t0 = time.perf_counter()
        outs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in prompt_ids], self.params, use_tqdm=False, lora_request=self.lora
        )
        seconds = time.perf_counter() - t0
        gens = [
            finish(self.tokenizer, list(o.outputs[0].token_ids), self.eos_ids, self.stop, len(p))
            for o, p in zip(outs, prompt_ids)
        ]
        return gens, seconds
