"""Sample completions of a GRPO run, written every N steps to ``samples.jsonl``.

Each row's ``prompt`` is what the model saw: the prompt rendered by the tokenizer's chat
template (the spec's), special tokens included. TRL logs prompts decoded *without* special
tokens, so :class:`SeenPrompts` maps that text back to the rendered prompt of the training row
(one pass over the dataset at most, spread over the run); a prompt it cannot map keeps TRL's
text and says so (``"prompt_decoded": true``). Imports transformers: ``harness.grpo.run`` imports this module only after the backend (and
so unsloth, which must come first) is loaded.
"""

from __future__ import annotations

from pathlib import Path

from transformers import TrainerCallback

from reasoning_kit import jsonl
from reasoning_kit.spec import FormatSpec


class SeenPrompts:
    """TRL's logged prompt text (decoded without special tokens) -> the rendered prompt the model saw.

    ``rows`` are the training dataset's conversational prompts; each is rendered with the
    tokenizer's chat template (``add_generation_prompt=True``, as ``GRPOTrainer`` does) and keyed
    by the decoding of its tokens without special tokens, exactly as TRL decodes it. Rows are
    rendered only until the wanted texts are found, so all calls together read the dataset once.
    """

    def __init__(self, tokenizer, rows):
        self.tokenizer, self.rows = tokenizer, rows
        self.next = 0
        self.seen: dict[str, str] = {}

    def _render(self, messages) -> tuple[str, str]:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.tokenizer.decode(ids, skip_special_tokens=True), text

    def lookup(self, logged: list[str]) -> list[str | None]:
        """The rendered prompt of each logged text (None when no training row renders to it)."""
        missing = {t for t in logged if t not in self.seen}
        while missing and self.next < len(self.rows):
            key, text = self._render(self.rows[self.next])
            self.next += 1
            self.seen.setdefault(key, text)
            missing.discard(key)
        return [self.seen.get(t) for t in logged]


class SampleWriter(TrainerCallback):
    """Every ``every`` steps, append the step's completions (from the trainer's log buffer) to ``path``.

    Only the main process writes; TRL's buffer already holds every process's completions.
    """

    def __init__(self, spec: FormatSpec, path: Path, every: int):
        self.spec, self.path, self.every = spec, path, every
        self.trainer = None
        self.written = 0
        self.prompts: SeenPrompts | None = None

    def on_step_end(self, args, state, control, **kw):
        if not self.every or self.trainer is None or state.global_step % self.every or not state.is_world_process_zero:
            return control
        from reasoning_kit.validator import validate

        logs = getattr(self.trainer, "_logs", None)  # TRL's buffer of the latest generation batch
        if not logs or not logs.get("completion"):
            return control
        rewards = {name: list(values) for name, values in logs["rewards"].items()}
        if self.prompts is None:
            self.prompts = SeenPrompts(self.trainer.processing_class, self.trainer.train_dataset["prompt"])
        logged = list(logs["prompt"])
        seen = self.prompts.lookup(logged)
        from harness.outputs import open_append

        with open_append(self.path) as fh:  # never through a link
            for i, (prompt, completion) in enumerate(zip(logged, logs["completion"])):
                row = {
                    "step": state.global_step,
                    "prompt": seen[i] if seen[i] is not None else prompt,
                    **({"prompt_decoded": True} if seen[i] is None else {}),
                    "completion": completion,
                    "rewards": {n: (v[i] if i < len(v) else None) for n, v in rewards.items()},
                    "errors": list(validate(self.spec, completion, transcript=False).codes),
                }
                fh.write(jsonl.dumps(row))
                self.written += 1
        return control
