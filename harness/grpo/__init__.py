"""``reasoning-kit grpo``: GRPO on the SFT model with the spec's rewards (the recipe's second half).

- ``config``: the spec's [grpo] table + command-line overrides, checked; the model-loading
  settings handed to the training backends.
- ``data``: prompts from the spec (system + problem; the chat template adds the generation
  prompt) with gold answers in the column the rewards read, and the seed's prompt-length rule.
- ``run``: one GRPO run (TRL ``GRPOTrainer``, unsloth or hf backend) and its outputs;
  ``curves``: reward and error-code curves as JSON and PNG; ``samples``: sample completions
  every N steps; ``cli``: the command.

Importing this package imports nothing heavy.
"""

from harness.train import TrainError


class GRPOError(TrainError):
    """A problem the user can fix (bad option, data, adapter, output directory); one line."""
