"""The transformers ``response_template`` for a spec: parse a generation back into a message.

:func:`response_template` returns the declarative dict that transformers (>= 5.13) reads from
``tokenizer_config.json`` for ``tokenizer.parse_response(text, prefix=prompt)``, that TRL's
``GRPOTrainer`` uses to hand reward functions a parsed message, and that vLLM serves with
``--reasoning-parser response_template``. Two fields, named as vLLM accepts them:

- ``thinking``: the text between the reasoning start and end tags, unstripped (exactly the
  validator's ``reasoning``). It opens only at the very start of the assistant turn (the
  generation prompt, or the model's first characters), so a stray reasoning start tag later
  cannot reopen it and overwrite what was parsed.
- ``content``: everything after the reasoning end tag, unstripped: the solution block with its
  tags (and an end-of-sequence string if the decoded text holds one).

So for every completion whose reasoning block is non-empty and is followed by something, the
completion is exactly ``thinking + reasoning_end + content`` (see
``reasoning_kit.completions``). Two invalid shapes parse alike and cannot be told apart: an
empty reasoning block (transformers drops empty fields) and a reasoning end tag with nothing
after it. The start anchor is the position just before the last reasoning start tag of the
prompt, which is the generation prompt when it holds that tag (both shipped specs); otherwise
the end of the prompt.

Not handled: tool calls, several assistant turns in one completion, extracting the answer
from ``content`` (the validator does that).
"""

from __future__ import annotations

import re

from .spec import FormatSpec

THINKING = "thinking"  # the field names vLLM's response_template parser routes
CONTENT = "content"


def response_template(spec: FormatSpec) -> dict:
    """The ``response_template`` dict for ``spec`` (JSON-serialisable, version 1)."""
    r0, r1 = spec.tags.reasoning_start, spec.tags.reasoning_end
    opens_in_prompt = r0 in spec.generation_prompt
    return {
        "version": 1,
        "defaults": {"role": "assistant"},
        # Where the assistant turn starts in the prompt: just before the generation prompt's
        # reasoning start tag (so the parser enters `thinking` from the prompt), else at the end.
        "start_anchor_pattern": rf"(?={re.escape(r0)})" if opens_in_prompt else r"\Z",
        "fields": {
            THINKING: {
                "open_pattern": rf"\A{re.escape(r0)}",  # only at the start of the turn
                "close": r1,
                "content": "text",
                "content_args": {"strip": False},
            },
            CONTENT: {  # no open: the implicit field, everything the thinking block leaves
                "content": "text",
                "content_args": {"strip": False},
            },
        },
    }


def generation_tail(spec: FormatSpec) -> str:
    """What the generation prompt writes after its reasoning start tag (parsed into ``thinking``)."""
    gen, r0 = spec.generation_prompt, spec.tags.reasoning_start
    return gen[gen.rindex(r0) + len(r0) :] if r0 in gen else ""


__all__ = ["CONTENT", "THINKING", "generation_tail", "response_template"]
