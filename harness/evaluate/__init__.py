"""``reasoning-kit eval``: format compliance and answer accuracy of a model under a spec.

Modules: ``loading`` (model, tokenizer, adapter), ``questions`` (evaluation prompts),
``prompts`` (rendering), ``generate`` (batched HF generation and stopping), ``vllm_backend``,
``outputs`` (resumable outputs.jsonl), ``report`` (scoring and metrics), ``chart``,
``compare`` and ``run`` (the :func:`~harness.evaluate.run.evaluate` entry point).
Nothing heavy is imported here, so the CLI starts fast.
"""


class EvalError(ValueError):
    """A problem the user can fix (bad path, bad option, mismatched resume); one line."""
