"""How the spec's tags and EOS strings tokenize, and the tokenizer check before training.

:func:`string_facts` says, for one tag or EOS string: its tokens, whether it is one token of
the vocabulary, a *special* token (``decode(..., skip_special_tokens=True)`` drops it), missing
from the vocabulary (the tokenizer cannot write it: it decodes to something else, e.g. an
unknown token), and next to which whitespace BPE merges it (its tokens change when a space or
newline stands before or after it, so the model sees two spellings of one tag).

:func:`check_tokenizer` (run by ``train`` and ``grpo`` before the data loads) makes sure that

1. the pad token exists and differs from EOS (fixed the way Unsloth does, via
   ``harness.models.fix_tokenizer``; with ``fix=False`` this is an error), since a pad equal
   to EOS gets masked out of the loss and the model never learns to stop;
2. the tokenizer's EOS token is one of the spec's ``[output] eos`` strings: otherwise the
   first spec EOS string that is a single token of this tokenizer becomes its EOS (said in
   the report), and if none is, it is an error naming the key to edit;
3. each tag is reported with the tokens it becomes: several tokens is normal for tags the
   tokenizer does not know (the model learns the sequence); a tag that is a *special* token is
   flagged, because ``decode(..., skip_special_tokens=True)`` would drop it and the validator
   would never see it.

Not handled: merges with non-whitespace neighbours; SentencePiece tokenizers that add a dummy
prefix space may report a whitespace merge for a tag written at the start of a text. Resizing the model for a new pad token or telling the model about a new EOS
(``harness.models.align_model_tokens``), data formatting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from reasoning_kit.spec import FormatSpec

from harness.train import TrainError


@dataclass(frozen=True)
class TagTokens:
    """How one tag tokenizes."""

    tag: str
    ids: tuple[int, ...]
    pieces: tuple[str, ...]
    special: bool  # dropped by decode(skip_special_tokens=True)
    roundtrip: bool  # decode(encode(tag)) == tag


@dataclass
class TokenizerReport:
    eos: str
    pad: str
    fixes: list[str] = field(default_factory=list)
    tags: list[TagTokens] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"tokenizer: eos {self.eos!r}, pad {self.pad!r}"]
        out += [f"  fixed: {f}" for f in self.fixes]
        for t in self.tags:
            kind = "special token, stripped by skip_special_tokens" if t.special else f"{len(t.ids)} token(s)"
            out.append(f"  tag {t.tag!r}: {kind}: {' '.join(repr(p) for p in t.pieces)}")
        out += [f"  warning: {w}" for w in self.warnings]
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def _special_strings(tokenizer) -> set[str]:
    out = set(tokenizer.all_special_tokens)
    out |= {str(t) for t in tokenizer.added_tokens_decoder.values() if getattr(t, "special", False)}
    return out


def tag_tokens(tokenizer, tag: str) -> TagTokens:
    ids = tuple(tokenizer.encode(tag, add_special_tokens=False))
    pieces = tuple(tokenizer.convert_ids_to_tokens(list(ids)))
    special = tag in _special_strings(tokenizer)
    roundtrip = tokenizer.decode(list(ids), skip_special_tokens=False) == tag
    return TagTokens(tag, ids, pieces, special, roundtrip)


def _single_token(tokenizer, text: str) -> bool:
    return len(tokenizer.encode(text, add_special_tokens=False)) == 1 and text in tokenizer.get_vocab()


def check_tokenizer(spec: FormatSpec, tokenizer, *, fix: bool = True) -> TokenizerReport:
    """Check (and with ``fix``, repair) ``tokenizer`` for training on ``spec``; raise TrainError."""
    from harness.models import fix_tokenizer

    fixes: list[str] = []
    if tokenizer.eos_token is None:
        raise TrainError("the tokenizer has no eos token: set one (it must be one of the spec's [output] eos strings)")
    if tokenizer.eos_token not in spec.eos:
        usable = [e for e in spec.eos if _single_token(tokenizer, e)]
        if not fix or not usable:
            raise TrainError(
                f"the tokenizer's eos token {tokenizer.eos_token!r} is not one of the spec's end-of-sequence strings "
                f"{list(spec.eos)} (none of which is a single token of this tokenizer): add {tokenizer.eos_token!r} "
                f"to [output] eos in {spec.source}"
            )
        old = tokenizer.eos_token
        tokenizer.eos_token = usable[0]
        fixes.append(f"eos token {old!r} -> {usable[0]!r} (the first of the spec's [output] eos that is a token)")
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        if not fix:
            raise TrainError(
                f"the tokenizer's pad token {tokenizer.pad_token!r} is missing or equal to its eos token "
                f"{tokenizer.eos_token!r}: padding would be masked as end-of-sequence and the model would not learn to stop"
            )
        fixes += fix_tokenizer(tokenizer, None)
    tags = [tag_tokens(tokenizer, t) for t in spec.tag_list]
    warnings = []
    for t in tags:
        if t.special:
            warnings.append(
                f"tag {t.tag!r} is a special token: decode with skip_special_tokens=False or the validator never sees it"
            )
        elif not t.roundtrip:
            warnings.append(f"tag {t.tag!r} does not survive encode/decode: {tokenizer.decode(list(t.ids))!r}")
    return TokenizerReport(tokenizer.eos_token, tokenizer.pad_token, fixes, tags, warnings)


# Whitespace that may stand next to a tag in templates and completions.
NEIGHBOURS = (" ", "\n")


@dataclass(frozen=True)
class StringFacts:
    """How one tag or EOS string fares with a tokenizer."""

    text: str
    ids: tuple[int, ...]
    pieces: tuple[str, ...]
    in_vocab: bool  # one token of the vocabulary
    special: bool  # dropped by decode(skip_special_tokens=True)
    missing: bool  # decode(encode(text)) != text: the tokenizer cannot write it (unknown token)
    whitespace_merges: tuple[str, ...]  # contexts such as "' '+tag" whose tokens differ from the parts'

    @property
    def n_tokens(self) -> int:
        return len(self.ids)


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def whitespace_merges(tokenizer, text: str) -> tuple[str, ...]:
    """Contexts (``repr(ws)+tag`` / ``tag+repr(ws)``) where ``text`` and the whitespace do not tokenize apart."""
    alone = _encode(tokenizer, text)
    out = []
    for ws in NEIGHBOURS:
        if _encode(tokenizer, ws + text) != _encode(tokenizer, ws) + alone:
            out.append(f"{ws!r}+tag")
        if _encode(tokenizer, text + ws) != alone + _encode(tokenizer, ws):
            out.append(f"tag+{ws!r}")
    return tuple(out)


def string_facts(tokenizer, text: str) -> StringFacts:
    ids = tuple(_encode(tokenizer, text))
    pieces = tuple(str(p) for p in tokenizer.convert_ids_to_tokens(list(ids)))
    special = text in _special_strings(tokenizer)
    missing = tokenizer.decode(list(ids), skip_special_tokens=False) != text
    in_vocab = len(ids) == 1 and not missing and text in tokenizer.get_vocab()
    merges = () if special or missing else whitespace_merges(tokenizer, text)
    return StringFacts(text, ids, pieces, in_vocab, special, missing, merges)
