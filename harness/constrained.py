"""Constrained decoding with llguidance: every completion ``generate`` makes is valid for the spec.

:class:`SpecLogitsProcessor` is a transformers ``LogitsProcessor``: for each row it keeps an
llguidance matcher of the spec's portable regex (``reasoning_kit.portable_regex``, without the
optional end-of-sequence string) and masks every token the grammar does not allow next. The
EOS token is allowed only where the grammar is complete, and only EOS tokens whose text is one
of the spec's EOS strings. A budget guard makes "valid" hold even when ``max_new_tokens`` runs
out: once the tokens left are just enough to close the format, the processor forces the
shortest closing text the grammar accepts (for a number answer, ``0`` if no digit was written;
for text, ``?``), then EOS. So a completion is valid by construction whatever the weights.

llguidance (PyPI, no dependencies, 3 MB, CPU) was chosen over xgrammar (pulls triton and
apache-tvm-ffi) and outlines-core (no token-mask helper for transformers); see docs/serving.md.
Not handled: beam search, assisted decoding, tokenizers that are not "fast" (Rust) tokenizers.
"""

from __future__ import annotations

from functools import lru_cache

ENGINE = "llguidance"


class ConstrainedError(ValueError):
    """Constrained decoding cannot run (engine missing, unsupported tokenizer or spec): one line."""


def require_engine() -> None:
    """ConstrainedError unless llguidance is importable."""
    import importlib.util

    if importlib.util.find_spec("llguidance") is None:
        raise ConstrainedError("constrained decoding needs llguidance: pip install 'reasoning-kit[constrained]'")


@lru_cache(maxsize=16)
def grammar(spec) -> str:
    """The llguidance grammar of the spec's portable regex (no EOS string: the EOS token ends it)."""
    import llguidance

    from reasoning_kit.portable_regex import PortableRegexError, portable_pattern

    try:
        return llguidance.LLMatcher.grammar_from_regex(portable_pattern(spec, eos=False))
    except PortableRegexError as exc:
        raise ConstrainedError(f"spec {spec.name!r}: {exc}") from None


def spec_eos_ids(spec, tokenizer, eos_ids) -> list[int]:
    """The EOS token ids whose text is one of the spec's EOS strings (others would fail validation)."""
    ok = [i for i in eos_ids if tokenizer.convert_ids_to_tokens(int(i)) in spec.eos]
    if not ok:
        names = ", ".join(repr(tokenizer.convert_ids_to_tokens(int(i))) for i in eos_ids)
        raise ConstrainedError(
            f"none of the model's EOS tokens ({names}) is an EOS string of spec {spec.name!r} "
            f"({', '.join(map(repr, spec.eos))}): constrained outputs could not end validly"
        )
    return ok


def _byte_chars() -> dict[int, str]:
    """GPT-2's byte-to-character table of byte-level BPE vocabularies."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def tokenizer_json(tokenizer) -> str:
    """The Rust tokenizer as JSON, with non-special added tokens (tags) moved into a byte-level
    BPE vocabulary, so llguidance treats them as the text they stand for, not as special tokens."""
    import json
    from copy import copy

    backend = copy(tokenizer.backend_tokenizer)
    backend.no_padding()
    backend.no_truncation()
    data = json.loads(backend.to_str())
    vocab = data.get("model", {}).get("vocab")
    byte_level = "ByteLevel" in json.dumps(data.get("decoder"))
    if isinstance(vocab, dict) and byte_level:
        table = _byte_chars()
        plain = [a for a in data.get("added_tokens", []) if not a.get("special")]
        for a in plain:
            vocab["".join(table[b] for b in a["content"].encode())] = a["id"]
        data["added_tokens"] = [a for a in data.get("added_tokens", []) if a.get("special")]
    return json.dumps(data)


def _ll_tokenizer(tokenizer, n_vocab: int, eos: tuple[int, ...]):
    key = (id(tokenizer), n_vocab, eos)
    cached = _TOKENIZERS.get(key)
    if cached is None or cached[0] is not tokenizer:
        import llguidance

        if not getattr(tokenizer, "is_fast", False):
            raise ConstrainedError("constrained decoding needs a fast (Rust) tokenizer")
        try:
            cached = (tokenizer, llguidance.LLTokenizer(tokenizer_json(tokenizer), n_vocab=n_vocab, eos_token=list(eos)))
        except ValueError as exc:
            raise ConstrainedError(f"constrained decoding: {exc}") from None
        _TOKENIZERS[key] = cached
    return cached[1]


_TOKENIZERS: dict = {}


def closing_texts(spec) -> list[str]:
    """Texts that can end an unfinished completion, shortest first (tried in this order)."""
    r1, s0, s1 = spec.tags.reasoning_end, spec.tags.solution_start, spec.tags.solution_end
    filler = "0" if spec.answer.kind == "number" else "?"
    tails = [s1, filler + s1, s0 + filler + s1, r1 + s0 + filler + s1, "." + r1 + s0 + filler + s1]
    more = [d + s1 for d in ("00", "000")]  # finish a thousands group ("1," -> "1,000")
    return sorted(set(tails + more), key=len)


def _processor_class():
    import torch
    from llguidance import LLMatcher
    from transformers import LogitsProcessor

    class SpecLogitsProcessor(LogitsProcessor):
        """Mask logits so each row's generated text follows the spec (see the module docstring)."""

        def __init__(self, spec, tokenizer, *, eos_ids, max_new_tokens: int, prompt_width: int):
            self.spec, self.tokenizer = spec, tokenizer
            self.eos = tuple(spec_eos_ids(spec, tokenizer, eos_ids))
            self.all_eos = frozenset(int(i) for i in eos_ids) | set(self.eos)
            self.max_new_tokens, self.prompt_width = max_new_tokens, prompt_width
            self.grammar = grammar(spec)
            self.closers = [tokenizer.encode(t, add_special_tokens=False) for t in closing_texts(spec)]
            self.reserve = max(len(c) for c in self.closers) + 1
            self.matchers: list | None = None
            self.done: list[bool] = []
            self.forced_steps = 0

        def _start(self, batch: int, n_vocab: int) -> None:
            lt = _ll_tokenizer(self.tokenizer, n_vocab, self.eos)
            self.matchers = [LLMatcher(lt, self.grammar) for _ in range(batch)]
            bad = self.matchers[0].get_error()
            if bad:
                raise ConstrainedError(f"llguidance rejected the grammar of spec {self.spec.name!r}: {bad}")
            self.done = [False] * batch

        def _closing(self, m) -> list[int] | None:
            """Token ids of the shortest closing text the grammar accepts from here, if any."""
            for ids in self.closers:
                trial = m.deep_copy()
                if trial.try_consume_tokens(ids) == len(ids) and trial.is_accepting():
                    return ids
            return None

        def __call__(self, input_ids, scores):
            batch, width = input_ids.shape
            if self.matchers is None:
                self._start(batch, scores.shape[-1])
            generated = width - self.prompt_width
            if generated > 0:
                last = input_ids[:, -1].tolist()
                for row, token in enumerate(last):
                    if self.done[row]:
                        continue
                    m = self.matchers[row]
                    if token in self.all_eos or (m.is_accepting() and m.validate_tokens([token]) == 0):
                        self.done[row] = True  # EOS, or padding after a stopping criterion ended the row
                    elif not m.consume_token(token):
                        raise RuntimeError(f"constrained decoding: token {token} left the grammar ({m.get_error()})")
            left = self.max_new_tokens - generated
            for row in range(batch):
                if self.done[row]:
                    continue
                m = self.matchers[row]
                allowed = None
                if left <= self.reserve:
                    if m.is_accepting():
                        allowed = list(self.eos)
                    else:
                        close = self._closing(m)
                        allowed = [close[0]] if close else None
                    if allowed is not None:
                        self.forced_steps += 1
                if allowed is not None:
                    keep = scores[row, allowed].clone()
                    scores[row] = float("-inf")
                    scores[row, allowed] = keep
                    continue
                bias = torch.frombuffer(bytearray(m.compute_logit_bias()), dtype=torch.uint8)
                n = min(bias.numel(), scores.shape[-1])
                mask = torch.ones(scores.shape[-1], dtype=torch.bool)
                mask[:n] = bias[:n] == 0
                scores[row].masked_fill_(mask.to(scores.device), float("-inf"))
            return scores

    return SpecLogitsProcessor


def processor(spec, tokenizer, *, eos_ids, max_new_tokens: int, prompt_width: int):
    """A fresh :class:`SpecLogitsProcessor` for one ``generate`` call (one matcher per row)."""
    require_engine()
    return _processor_class()(spec, tokenizer, eos_ids=eos_ids, max_new_tokens=max_new_tokens, prompt_width=prompt_width)


__all__ = ["ENGINE", "ConstrainedError", "closing_texts", "grammar", "processor", "require_engine", "spec_eos_ids"]
