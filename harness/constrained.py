"""Constrained decoding with llguidance: every completion ``generate`` makes is valid for the spec.

:class:`SpecLogitsProcessor` is a transformers ``LogitsProcessor``: for each row it keeps an
llguidance matcher of the spec's portable regex (``reasoning_kit.portable_regex``, without the
optional end-of-sequence string) and masks every token the grammar does not allow next. The
EOS token is allowed only where the grammar is complete, and only EOS tokens whose text is one
of the spec's EOS strings. A budget guard makes "valid" hold even when ``max_new_tokens`` runs
out: once the tokens left are no more than the longest closing plan, the processor picks the
shortest plan the grammar accepts from the row's state and forces ALL its tokens, one per
step, then EOS. A plan is the tokens of a closing text (for a number answer, ``0`` if no digit
was written; for text, ``?``) or of any suffix of one (to finish a tag the model half wrote:
real tokenizers spell ``<SOLUTION>`` as ``<`` ``S`` ``OL`` ``UTION`` ``>``), after whatever
continuation bytes the grammar allows to finish a character a byte-level token left half
written (e.g. the first byte of a no-break space in trailing whitespace). The plan is
committed once chosen: re-planning each step restarts at the plan's first token (``<``
forever) whenever that token is also text the grammar allows where it stands, which is the
case for every multi-token tag. So a completion is valid by construction whatever the
weights, given ``max_new_tokens`` holds the shortest valid output (:func:`check_budget`).

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


def closing_plans(spec, tokenizer) -> list[list[int]]:
    """Token sequences that may close an unfinished completion, fewest tokens first: each closing
    text and each of its suffixes (finishing a half-written tag), and ``[]`` (already complete).
    Which of them the grammar accepts is decided per row by the matcher (:func:`shortest_plan`)."""
    texts = {t[i:] for t in closing_texts(spec) for i in range(len(t) + 1)}
    plans = {tuple(tokenizer.encode(t, add_special_tokens=False)) for t in texts}
    return [list(p) for p in sorted(plans, key=lambda p: (len(p), p))]


def continuation_tokens(tokenizer) -> list[int]:
    """Ids of the single-byte tokens 0x80-0xBF (UTF-8 continuation bytes) of a byte-level
    vocabulary: they finish a character a byte-level token left half written."""
    table, ids = _byte_chars(), []
    for b in range(0x80, 0xC0):
        tid = tokenizer.convert_tokens_to_ids(table[b])
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.append(tid)
    return ids


def _char_endings(matcher, continuations) -> list[list[int]]:
    """The one-to-three continuation-byte sequences the matcher accepts next (finishing a half-written
    character; a character is at most four bytes), fewest first; none when no character is open."""
    out, layer = [], [[]]
    for _ in range(3):
        layer = [p + [c] for p in layer for c in continuations if matcher.validate_tokens(p + [c]) == len(p) + 1]
        out += layer
    return out


def shortest_plan(matcher, plans, eos: int, limit: int | None = None, continuations=()) -> list[int] | None:
    """The first plan (fewest tokens) after which the matcher's grammar is complete, using at most
    ``limit`` tokens, or None; a half-written character is first finished with continuation bytes
    (any the grammar allows there). The matcher is not changed."""
    for start in [[]] + (_char_endings(matcher, continuations) if continuations else []):
        for ids in plans:
            ids = start + ids
            if limit is not None and len(ids) > limit:
                break
            if matcher.validate_tokens(ids + [eos]) == len(ids) + 1:  # EOS is allowed only where complete
                return ids
    return None


def check_budget(spec, tokenizer, *, eos_ids, max_new_tokens: int) -> None:
    """ConstrainedError unless ``max_new_tokens`` holds the spec's shortest valid output."""
    from llguidance import LLMatcher

    eos = spec_eos_ids(spec, tokenizer, eos_ids)
    m = LLMatcher(_ll_tokenizer(tokenizer, _vocab_size(tokenizer), tuple(eos)), grammar(spec))
    plan = shortest_plan(m, closing_plans(spec, tokenizer), eos[0])
    if plan is None:
        raise ConstrainedError(f"spec {spec.name!r}: no closing text this tokenizer can write completes the grammar")
    if len(plan) > max_new_tokens:
        raise ConstrainedError(f"max_new_tokens={max_new_tokens} is too small for constrained decoding with spec "
                               f"{spec.name!r}: its shortest valid output is {len(plan)} tokens of this tokenizer")


def _vocab_size(tokenizer) -> int:
    return len(tokenizer)


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
            self.plans = closing_plans(spec, tokenizer)
            self.continuations = continuation_tokens(tokenizer)
            # start closing when no more tokens are left than the longest plan (after a half-written character)
            self.reserve = len(self.plans[-1]) + (3 if self.continuations else 0)
            self.matchers: list | None = None
            self.done: list[bool] = []
            self.queued: list[list[int] | None] = []  # each row's committed closing plan (tokens still to force)
            self.forced_steps = 0
            self.unclosed = 0  # rows the guard found no plan for (none expected: see tests)

        def _start(self, batch: int, n_vocab: int) -> None:
            lt = _ll_tokenizer(self.tokenizer, n_vocab, self.eos)
            self.matchers = [LLMatcher(lt, self.grammar) for _ in range(batch)]
            bad = self.matchers[0].get_error()
            if bad:
                raise ConstrainedError(f"llguidance rejected the grammar of spec {self.spec.name!r}: {bad}")
            self.done = [False] * batch
            self.queued = [None] * batch

        def _forced(self, row: int, left: int) -> list[int] | None:
            """The one token the budget guard forces on this row now, or None (free, masked)."""
            plan = self.queued[row]
            if plan is None:
                if left > self.reserve:
                    return None
                plan = shortest_plan(self.matchers[row], self.plans, self.eos[0], limit=left,
                                     continuations=self.continuations)
                if plan is None:
                    self.unclosed += 1
                    return None
                self.queued[row] = plan = list(plan)
            return [plan.pop(0)] if plan else list(self.eos)

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
                allowed = self._forced(row, left)
                if allowed is not None:
                    self.forced_steps += 1
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


__all__ = ["ENGINE", "ConstrainedError", "check_budget", "closing_plans", "closing_texts", "continuation_tokens",
           "grammar", "processor", "require_engine", "shortest_plan", "spec_eos_ids"]
