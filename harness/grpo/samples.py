"""Sample completions of a GRPO run, written every N steps to ``samples.jsonl``.

Imports transformers: ``harness.grpo.run`` imports this module only after the backend (and
so unsloth, which must come first) is loaded.
"""

from __future__ import annotations

from pathlib import Path

from transformers import TrainerCallback

from reasoning_kit import jsonl
from reasoning_kit.spec import FormatSpec


class SampleWriter(TrainerCallback):
    """Every ``every`` steps, append the step's completions (from the trainer's log buffer) to ``path``.

    Only the main process writes; TRL's buffer already holds every process's completions.
    """

    def __init__(self, spec: FormatSpec, path: Path, every: int):
        self.spec, self.path, self.every = spec, path, every
        self.trainer = None
        self.written = 0

    def on_step_end(self, args, state, control, **kw):
        if not self.every or self.trainer is None or state.global_step % self.every or not state.is_world_process_zero:
            return control
        from reasoning_kit.validator import validate

        logs = getattr(self.trainer, "_logs", None)  # TRL's buffer of the latest generation batch
        if not logs or not logs.get("completion"):
            return control
        rewards = {name: list(values) for name, values in logs["rewards"].items()}
        from harness.outputs import open_append

        with open_append(self.path) as fh:  # never through a link
            for i, (prompt, completion) in enumerate(zip(logs["prompt"], logs["completion"])):
                row = {
                    "step": state.global_step,
                    "prompt": prompt,
                    "completion": completion,
                    "rewards": {n: (v[i] if i < len(v) else None) for n, v in rewards.items()},
                    "errors": list(validate(self.spec, completion, transcript=False).codes),
                }
                fh.write(jsonl.dumps(row))
                self.written += 1
        return control
