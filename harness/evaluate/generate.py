"""Batched generation with Hugging Face ``generate``: left padding, EOS and solution-end stops.

A batch of prompts (token ids) is padded on the LEFT with an attention mask, so every
prompt ends where generation starts; ``generate`` derives position ids from the mask, and
greedy outputs equal one-at-a-time outputs (``batch_size=1``, no padding at all).

Rows stop at an EOS token (``generation_config.eos_token_id`` plus the tokenizer's) or, with
``stop_at`` set (the spec's solution end tag), right after the token that completes that
string in the generated text (:class:`StopAfterString` checks the decoded tail each step).
:func:`finish` then cuts each row the same way afterwards: at the first EOS token (kept, so
the validator sees the EOS string the model produced) or right after the stop string,
whichever comes first, so padding added to finished rows is never part of a completion
even when pad == EOS. With ``constrained`` (a spec), decoding goes through the llguidance
logits processor of ``harness.constrained``, so every completion is valid for the spec.
Not handled: beam search, speculative decoding, streaming.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Sampling:
    """Decoding settings. ``temperature == 0`` means greedy (the default)."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict:
        return asdict(self) | {"greedy": self.greedy}

    @classmethod
    def from_any(cls, value) -> "Sampling":
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        return cls(**{k: v for k, v in dict(value).items() if k != "greedy"})


@dataclass(frozen=True)
class Generation:
    """One completion: text (prompt excluded), generated token count, why it stopped."""

    text: str
    n_tokens: int
    finish_reason: str  # "eos" | "stop" (solution end tag) | "length" (max_new_tokens)
    prompt_tokens: int


def eos_token_ids(model, tokenizer) -> list[int]:
    """Token ids that end generation: the generation config's EOS ids plus the tokenizer's."""
    from harness.models import eos_token_ids as ids

    return ids(getattr(getattr(model, "generation_config", None), "eos_token_id", None), tokenizer)


def _decode(tokenizer, ids) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def stop_window(tokenizer, stop: str) -> int:
    """Tokens of generated tail to decode so a just-completed ``stop`` is always inside."""
    return len(tokenizer.encode(stop, add_special_tokens=False)) + len(stop) + 2


def finish(tokenizer, ids: list[int], eos_ids, stop: str | None, prompt_tokens: int = 0) -> Generation:
    """Cut generated ids at the first EOS (kept) or right after ``stop``, whichever is first."""
    eos_set = set(eos_ids)
    cut, reason = len(ids), "length"
    for i, t in enumerate(ids):
        if t in eos_set:
            cut, reason = i + 1, "eos"
            break
    if stop is not None and stop in _decode(tokenizer, ids[:cut]):
        lo, hi = 1, cut  # smallest prefix whose text holds the stop string
        while lo < hi:
            mid = (lo + hi) // 2
            if stop in _decode(tokenizer, ids[:mid]):
                hi = mid
            else:
                lo = mid + 1
        cut, reason = lo, "stop"
    return Generation(_decode(tokenizer, ids[:cut]), cut, reason, prompt_tokens)


def _stopping_criteria_class():
    import torch
    from transformers import StoppingCriteria

    class StopAfterString(StoppingCriteria):
        """Stop a row once its generated text (after ``prompt_len``) contains ``stop``."""

        def __init__(self, tokenizer, stop: str, prompt_len: int):
            self.tokenizer, self.stop, self.prompt_len = tokenizer, stop, prompt_len
            self.window = stop_window(tokenizer, stop)

        def __call__(self, input_ids, scores, **kwargs):
            n = input_ids.shape[1]
            start = max(self.prompt_len, n - self.window)
            tails = input_ids[:, start:].tolist()
            done = [self.stop in _decode(self.tokenizer, row) for row in tails]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StopAfterString


def left_pad(batch: list[list[int]], pad_id: int):
    """(input_ids, attention_mask) tensors, padded on the left."""
    import torch

    width = max(len(x) for x in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, x in enumerate(batch):
        if x:
            ids[i, width - len(x) :] = torch.tensor(x, dtype=torch.long)
            mask[i, width - len(x) :] = 1
    return ids, mask


class HFBackend:
    """Generate with ``model.generate`` on batches of prompt token ids."""

    name = "hf"

    def __init__(self, model, tokenizer, *, max_new_tokens: int = 512, sampling: Sampling | None = None, stop: str | None = None,
                 constrained=None):
        self.model, self.tokenizer = model, tokenizer
        self.constrained = constrained  # a FormatSpec: decode through harness.constrained (valid by construction)
        self.max_new_tokens = max_new_tokens
        self.sampling = Sampling.from_any(sampling)
        self.stop = stop
        self.eos_ids = eos_token_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.eos_ids[0]
        self._batches = 0
        if constrained is not None:
            from harness.constrained import check_budget, require_engine

            require_engine()
            check_budget(constrained, tokenizer, eos_ids=self.eos_ids, max_new_tokens=max_new_tokens)

    def generation_config(self):
        """A fresh config: plain decoding, no repetition penalty or top-k from the model's defaults."""
        from transformers import GenerationConfig

        s = self.sampling
        return GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=not s.greedy,
            temperature=1.0 if s.greedy else s.temperature,
            top_p=1.0 if s.greedy else s.top_p,
            top_k=None if s.greedy else 0,  # 0: no top-k cut when sampling
            num_beams=1,
            repetition_penalty=1.0,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )

    def generate(self, prompt_ids: list[list[int]]) -> tuple[list[Generation], float]:
        """Completions for one batch, and the seconds generation took."""
        import torch

        ids, mask = left_pad(prompt_ids, self.pad_id)
        device = self.model.device
        ids, mask = ids.to(device), mask.to(device)
        kwargs = {}
        if self.stop is not None:
            from transformers import StoppingCriteriaList

            kwargs["stopping_criteria"] = StoppingCriteriaList([_stopping_criteria_class()(self.tokenizer, self.stop, ids.shape[1])])
        if self.constrained is not None:
            from transformers import LogitsProcessorList

            from harness.constrained import processor

            kwargs["logits_processor"] = LogitsProcessorList([processor(
                self.constrained, self.tokenizer, eos_ids=self.eos_ids, max_new_tokens=self.max_new_tokens,
                prompt_width=ids.shape[1])])
        if not self.sampling.greedy:
            torch.manual_seed(self.sampling.seed + self._batches)
        self._batches += 1
        cuda = device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, generation_config=self.generation_config(), **kwargs
            )
        if cuda:
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        new = out[:, ids.shape[1] :].tolist()
        gens = [finish(self.tokenizer, row, self.eos_ids, self.stop, len(p)) for row, p in zip(new, prompt_ids)]
        return gens, seconds
