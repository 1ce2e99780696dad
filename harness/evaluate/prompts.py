"""Render evaluation prompts, in the spec's chat template or in the model's own.

``spec`` style (the default, what a tuned model saw in training): the spec's template with
``add_generation_prompt=True`` (so the prompt ends with the generation prompt, e.g. the
reasoning start tag) and the tokenizer's EOS token as ``eos_token``, tokenized like the seed
recipe does (``tokenizer(text)``, special tokens added the tokenizer's usual way).

``native`` style (the fair baseline for a model that never saw the spec): the tokenizer's own
chat template with the spec's system prompt, ``add_generation_prompt=True``, tokenized without
adding special tokens (the template writes them). The output is then scored leniently too.

Not handled: few-shot prompts, tools, multimodal messages.
"""

from __future__ import annotations

from reasoning_kit.spec import FormatSpec
from reasoning_kit.template import prompt_messages, render

from . import EvalError

STYLES = ("spec", "native")


def prompt_eos(spec: FormatSpec, tokenizer) -> str:
    """The string the spec template writes after the system turn: the tokenizer's EOS token."""
    from harness.models import eos_text

    return eos_text(spec, tokenizer)


def render_prompt(spec: FormatSpec, tokenizer, question: str, style: str = "spec") -> str:
    """The prompt text for one question."""
    messages = prompt_messages(spec, question)
    if style == "spec":
        return render(spec, messages, add_generation_prompt=True, eos_token=prompt_eos(spec, tokenizer))
    if style == "native":
        if not getattr(tokenizer, "chat_template", None):
            raise EvalError("the tokenizer has no chat template of its own; use --prompt-style spec")
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise EvalError(f"unknown prompt style {style!r} (choose from: {', '.join(STYLES)})")


def add_special_tokens(style: str) -> bool:
    """Whether to let the tokenizer add its special tokens (BOS) when encoding a prompt."""
    return style == "spec"


def encode_prompts(tokenizer, prompts: list[str], style: str = "spec") -> list[list[int]]:
    """Token ids of each prompt (no padding)."""
    enc = tokenizer(prompts, add_special_tokens=add_special_tokens(style))
    return [list(ids) for ids in enc["input_ids"]]
