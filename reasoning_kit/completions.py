"""One completion, whatever shape it arrives in, as the text the validator reads.

TRL's ``GRPOTrainer`` hands reward functions a completion in one of three shapes:

- raw text (standard prompts): ``"I add.<end_working_out><SOLUTION>4</SOLUTION>"``;
- the conversational list: ``[{"role": "assistant", "content": "I add.<end_working_out>..."}]``;
- the parsed message, when the tokenizer carries the spec's ``response_template``
  (``reasoning_kit.response_template``): ``[{"role": "assistant", "thinking": "I add.",
  "content": "<SOLUTION>4</SOLUTION>"}]`` (also accepted as a bare dict, and with vLLM's
  ``reasoning`` / ``reasoning_content`` names for ``thinking``).

:func:`completion_text` turns each into the completion text, so the same completion scores the
same in all three. A parsed message is put back together as ``thinking + reasoning_end +
content`` (``content`` empty: no end tag), minus what the generation prompt wrote after its
reasoning start tag; when the generation prompt does not open the reasoning block, the
reasoning start tag is put back in front. This is exact for every valid completion and for
every invalid one except the two shapes the parser cannot tell apart (an empty reasoning
block, and a reasoning end tag with nothing after it; see ``reasoning_kit.response_template``).

Not handled: tool calls, several assistant turns (the last assistant message is used).
"""

from __future__ import annotations

from .answers import _content_text as _text  # one reader of message content parts

from .response_template import CONTENT, THINKING, generation_tail
from .spec import FormatSpec

REASONING_KEYS = (THINKING, "reasoning_content", "reasoning")  # transformers/TRL, then vLLM's API names


def completion_text(spec: FormatSpec, completion: object) -> str | None:
    """The text of ``completion`` (a string, a message dict or a list of messages), else None.

    >>> from reasoning_kit.spec import load_spec
    >>> spec = load_spec("working_out")
    >>> completion_text(spec, [{"role": "assistant", "thinking": "I add.", "content": "<SOLUTION>4</SOLUTION>"}])
    'I add.<end_working_out><SOLUTION>4</SOLUTION>'
    >>> completion_text(spec, [{"role": "assistant", "content": "I add.<end_working_out><SOLUTION>4</SOLUTION>"}])
    'I add.<end_working_out><SOLUTION>4</SOLUTION>'
    """
    if isinstance(completion, str):
        return completion
    if type(completion) is list and len(completion) == 1 and type(completion[0]) is dict:
        message = completion[0]  # TRL's conversational form (what _last_message picks, faster)
    else:
        message = _last_message(completion)
    if message is None:
        return None
    if type(message.get(CONTENT)) is str and message.keys().isdisjoint(REASONING_KEYS):
        return message[CONTENT]  # plain content, no reasoning field (the usual case, faster)
    content = _text(message.get(CONTENT)) if message.get(CONTENT) is not None else ""
    thinking = next((message[k] for k in REASONING_KEYS if isinstance(message.get(k), str)), None)
    if thinking is None:
        return content if message.get(CONTENT) is not None else None
    if content is None:
        return None
    tail = generation_tail(spec)
    if spec.tags.reasoning_start in spec.generation_prompt:  # the prompt opened the block
        head = thinking[len(tail) :] if thinking.startswith(tail) else thinking
    else:
        head = spec.tags.reasoning_start + thinking
    return head + (spec.tags.reasoning_end + content if content else "")


def _last_message(completion: object) -> dict | None:
    if isinstance(completion, dict):
        return completion
    if isinstance(completion, (list, tuple)):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role") == "assistant"] or messages
        return assistant[-1] if assistant else None
    return None


__all__ = ["completion_text"]
