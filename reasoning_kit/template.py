"""The chat template derived from a spec, and rendering without a tokenizer.

:func:`chat_template` returns the Jinja source of the seed recipe's template with the
spec's system prompt and generation prompt embedded as escaped Jinja string literals, so
apostrophes, quotes, backslashes, newlines, ``{{`` and ``{%`` in them render as written
(the seed built its template with ``str.replace`` and broke on an apostrophe). Turn
structure, as in the seed: ``system + eos``, then each user message as is, each assistant
message followed by ``eos``, then the generation prompt if asked for.

:func:`render` renders the template in the same sandboxed Jinja environment that
``tokenizer.apply_chat_template`` uses, so CLI output and training data agree byte for
byte with transformers. Not handled: tool calls, multimodal content lists, role markers.
"""

from __future__ import annotations

from functools import lru_cache

from .spec import FormatSpec

_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def jinja_string(text: str) -> str:
    """A single-quoted Jinja string literal whose value is exactly ``text``.

    Jinja decodes literals with Python's ``unicode-escape`` after turning non-ASCII
    characters into ``\\u`` escapes, so escaping backslash, quote and control characters
    is enough for any string to round-trip.
    """
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def chat_template(spec: FormatSpec) -> str:
    """The Jinja chat template for ``spec`` (renders byte-identically to the seed's)."""
    return (
        "{% if messages[0]['role'] == 'system' %}"
        "{{ messages[0]['content'] + eos_token }}"
        "{% set loop_messages = messages[1:] %}"
        "{% else %}"
        "{{ " + jinja_string(spec.system_prompt) + " + eos_token }}"
        "{% set loop_messages = messages %}"
        "{% endif %}"
        "{% for message in loop_messages %}"
        "{% if message['role'] == 'user' %}"
        "{{ message['content'] }}"
        "{% elif message['role'] == 'assistant' %}"
        "{{ message['content'] + eos_token }}"
        "{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ " + jinja_string(spec.generation_prompt) + " }}"
        "{% endif %}"
    )


def skipped_messages(messages: list[dict]) -> list[int]:
    """Indexes of the messages :func:`chat_template` leaves out (like the seed's): roles other than
    user and assistant, except a system message in first place.

    >>> skipped_messages([{"role": "system"}, {"role": "user"}, {"role": "tool"}, {"role": "system"}])
    [2, 3]
    """
    return [i for i, m in enumerate(messages)
            if m.get("role") not in ("user", "assistant") and not (i == 0 and m.get("role") == "system")]


@lru_cache(maxsize=32)
def _compiled(source: str):
    # The environment transformers' apply_chat_template uses (chat_template_utils.py).
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    return env.from_string(source)


def render(
    spec: FormatSpec,
    messages: list[dict],
    *,
    add_generation_prompt: bool = False,
    eos_token: str | None = None,
) -> str:
    """Render a conversation with the spec's template; ``eos_token`` defaults to the spec's first EOS."""
    if not messages:
        raise ValueError("a conversation needs at least one message")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"message {i} must be an object with string 'role' and 'content'")
    eos = spec.eos[0] if eos_token is None else eos_token
    return _compiled(chat_template(spec)).render(
        messages=messages, add_generation_prompt=add_generation_prompt, eos_token=eos
    )


def prompt_messages(spec: FormatSpec, question: str, *, system: bool = True) -> list[dict]:
    """[system, user] messages for one question (system = the spec's system prompt)."""
    msgs = [{"role": "system", "content": spec.system_prompt}] if system else []
    return msgs + [{"role": "user", "content": question}]


def training_messages(spec: FormatSpec, question: str, reasoning: str, answer: str) -> list[dict]:
    """[system, user, assistant] messages whose assistant turn is R0 reasoning R1 S0 answer S1."""
    return prompt_messages(spec, question) + [{"role": "assistant", "content": spec.completion(reasoning, answer)}]
