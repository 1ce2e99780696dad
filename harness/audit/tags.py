"""``reasoning-kit audit``: the tag audit of a spec against a model, each finding with its fix.

:func:`audit` takes the tokenizer as ``train`` loads it and first applies the fixes ``train``
applies itself (``tokens.check_tokenizer``: pad != eos, an EOS from the spec); those are
notes, not findings. It then reports, for each tag and each EOS string, the facts of
``tokens.string_facts``, and lists as findings:

- ``eos_unusable``: ``train`` would refuse the tokenizer (its EOS is not one of the spec's);
- ``tag_special``: a tag is a special token, so TRL's ``skip_special_tokens=True`` decoding
  hides it from the rewards;
- ``tag_missing`` / ``eos_missing``: the tokenizer cannot write the tag, or the stop token
  (the EOS the run will use), e.g. it encodes to an unknown token;
- ``whitespace_merge``: a tag's tokens change next to a space or newline;
- ``untrained_embedding``: a one-token tag or the stop token has an embedding row that looks
  untrained in the base model (``training.untrained_rows``; needs the model's weights);
- ``stop_token_not_trained``: the stop token is not the last token with loss in an SFT example;
- ``template_not_prefix_preserving``: the template, or the tokens of the prompt, are not
  prefix-preserving across turns (``training.prefix_problems``).

EOS strings of the spec other than the stop token are reported but not checked as findings
(the validator accepts them; the model is not trained to emit them). Not handled: loading
(``cli``), the reward functions (``redteam``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from reasoning_kit.spec import TAG_NAMES, FormatSpec

from . import tokens, training


@dataclass(frozen=True)
class Finding:
    code: str
    subject: str  # the tag, EOS string or "template"
    problem: str
    fix: str


@dataclass
class AuditReport:
    spec: str
    model: str
    eos: str | None
    pad: str | None
    completion_only_loss: bool
    notes: list[str] = field(default_factory=list)
    strings: list[dict] = field(default_factory=list)
    loss: dict | None = None
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"audit of spec {self.spec!r} with {self.model}: eos {self.eos!r}, pad {self.pad!r}"]
        out += [f"  note: {n}" for n in self.notes]
        for s in self.strings:
            flags = [k for k in ("special", "missing") if s[k]] + (["merges " + ", ".join(s["whitespace_merges"])]
                                                                 if s["whitespace_merges"] else [])
            flags += [f"untrained ({s['untrained']})"] if s.get("untrained") else []
            pieces = " ".join(repr(p) for p in s["pieces"])
            out.append(f"  {s['role']} {s['text']!r}: {len(s['ids'])} token(s) {pieces}"
                       + (f" [{'; '.join(flags)}]" if flags else ""))
        if self.loss is not None:
            where = "assistant turn" if self.completion_only_loss else "whole conversation"
            ok = "gets loss" if self.loss["eos_trained"] else "gets NO loss"
            out.append(f"  stop token (loss on the {where}): {ok}; last trained tokens "
                       + " ".join(repr(p) for p in self.loss["trained_tail"]))
        if not self.findings:
            out.append("no findings")
        for f in self.findings:
            out += [f"finding {f.code}: {f.subject!r}: {f.problem}", f"  fix: {f.fix}"]
        return out


def _string_findings(facts: tokens.StringFacts, role: str, stop: bool) -> list[Finding]:
    t = facts.text
    if role != "eos" and facts.special:
        return [Finding("tag_special", t, "a special token: TRL decodes completions with skip_special_tokens=True, "
                        "so the rewards and the validator never see it",
                        "choose another tag in [tags], or register it as a normal token (tokenizer.add_tokens) so "
                        "decoding keeps it")]
    if facts.missing:
        decoded = "an unknown token" if facts.pieces else "nothing"
        code = "eos_missing" if stop else "tag_missing"
        what = "stop token" if stop else "tag"
        return [Finding(code, t, f"missing from the vocabulary: the tokenizer cannot write this {what} (it encodes "
                        f"to {decoded}: {' '.join(repr(p) for p in facts.pieces)})",
                        f"add it with tokenizer.add_tokens([{t!r}]) and resize the embeddings, or choose "
                        + ("an EOS the tokenizer has (first in [output] eos)" if stop else "a tag made of characters the tokenizer knows"))]
    if role != "eos" and facts.whitespace_merges:
        return [Finding("whitespace_merge", t, "BPE merges it with neighbouring whitespace "
                        f"({', '.join(facts.whitespace_merges)}): the model sees several spellings of one tag",
                        "add the tag as one token (tokenizer.add_tokens) so merges cannot cross it, or keep "
                        "whitespace away from it in the data and the template")]
    return []


def audit(spec: FormatSpec, tokenizer, model=None, *, model_name: str = "", completion_only: bool | None = None,
          notes: list[str] | None = None) -> AuditReport:
    """Audit ``spec`` against ``tokenizer`` (changed as ``train`` changes it) and, if given, ``model``'s weights."""
    from harness.train import TrainError

    completion_only = spec.train.completion_only_loss if completion_only is None else completion_only
    report = AuditReport(spec.name, model_name, None, None, completion_only, list(notes or []))
    try:
        checked = tokens.check_tokenizer(spec, tokenizer, fix=True)
        report.notes += [f"train fixes: {f}" for f in checked.fixes]
    except TrainError as exc:
        report.findings.append(Finding("eos_unusable", str(tokenizer.eos_token), str(exc),
                                       "list the tokenizer's EOS in [output] eos, or set an EOS the tokenizer has"))
    report.eos, report.pad = tokenizer.eos_token, tokenizer.pad_token
    stop = tokenizer.eos_token if tokenizer.eos_token in spec.eos else None
    named = [(n, t) for n, t in zip(TAG_NAMES, spec.tag_list)] + [("eos", e) for e in spec.eos]
    facts = {t: tokens.string_facts(tokenizer, t) for _, t in named}
    matrices = training.embedding_matrices(model) if model is not None else {}
    candidates = {facts[t].ids[0]: t for n, t in named if facts[t].in_vocab and (n != "eos" or t == stop)}
    untrained: dict[str, list[str]] = {}
    for which, weight in matrices.items():
        for i, why in training.untrained_rows(weight, candidates).items():
            untrained.setdefault(candidates[i], []).append(f"{which} embeddings: {why}")
    for role, text in named:
        f = facts[text]
        entry = {"role": role, "text": text, **asdict(f), "n_tokens": f.n_tokens, "stop_token": text == stop,
                 "untrained": "; ".join(untrained.get(text, [])) or None}
        report.strings.append(entry)
        if role != "eos" or text == stop:
            report.findings += _string_findings(f, role, text == stop)
        if text in untrained:
            report.findings.append(Finding(
                "untrained_embedding", text, f"its embedding looks untrained in the base model ({entry['untrained']}); "
                "LoRA does not train embedding rows, so the model cannot learn to " + ("stop" if text == stop else "use it"),
                ("use a stop token the base model was trained on (put it first in [output] eos)" if text == stop else
                 "choose a tag the base model has seen, or spell it so it is not one untrained token")
                + ", or train the embedding rows (embed_tokens / lm_head)"))
    if report.eos is not None:
        report.findings += _template_findings(spec, tokenizer, completion_only, report)
    return report


def _template_findings(spec: FormatSpec, tokenizer, completion_only: bool, report: AuditReport) -> list[Finding]:
    from harness.train import TrainError

    out = [Finding("template_not_prefix_preserving", "template", p,
                   "make [prompt] generation the start of every assistant turn (the default '{reasoning_start}' is)")
           for p in training.prefix_problems(spec, tokenizer.eos_token)]
    try:
        loss = training.stop_token_loss(spec, tokenizer, completion_only=completion_only)
    except TrainError:  # training_columns refuses a prompt that is not a prefix: reported above
        return out
    report.loss = asdict(loss)
    if completion_only and not loss.prompt_tokens_prefix:
        out.append(Finding("template_not_prefix_preserving", "template",
                           "the tokenized prompt is not a prefix of the tokenized prompt + answer (tokens merge across "
                           "the boundary): SFT trains on a context the model never sees at inference",
                           "end the generation prompt on a token boundary, e.g. with a tag that is one token"))
    if not loss.eos_trained:
        out.append(Finding("stop_token_not_trained", str(tokenizer.eos_token),
                           f"the stop token (id {loss.eos_id}) is not the last token with loss in an SFT example "
                           f"(last trained tokens: {' '.join(repr(p) for p in loss.trained_tail)}): the model never "
                           "learns to stop",
                           "use an EOS that is one token of the vocabulary (first in [output] eos)"))
    return out
