"""``reasoning-kit train``: supervised fine-tuning into the spec's format.

- ``config``: the spec's [train] table + command-line overrides (+ the --offline preset), checked.
- tokenizer checks before training (pad != eos, the spec's EOS, how tags tokenize): ``harness.audit.tokens``.
- ``backends``: ``unsloth`` (GPU, the seed's calls), ``hf`` (transformers + PEFT + TRL, CPU or
  GPU), and ``auto``; unsloth is imported only by its backend, before transformers/trl/peft.
- ``callbacks``: loss curve / throughput recording and Ctrl-C -> checkpoint.
- ``run``: one training run and its outputs; ``mainjob``: train, then evaluate before/after.
- ``cli``: ``reasoning-kit train`` and ``reasoning-kit fetch-model``.

Importing this package imports nothing heavy.
"""


class TrainError(ValueError):
    """A problem the user can fix (bad option, output directory, checkpoint); one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
