"""Training data formatted by the spec (``reasoning-kit data``).

- ``sources``: load a hub id, a local .parquet/.jsonl/.csv file, or the vendored GSM8K splits.
- ``recipes``: column layouts (the seed's OpenMathReasoning recipe, GSM8K, generic) -> fields.
- ``prepare``: ``prepare_dataset`` (messages, validation, rendering, length filter, summary)
  and ``eval_questions``.
- ``summary``: drop reasons in words, token-length percentiles, the printed summary.
- ``cli``: ``reasoning-kit data prepare`` and ``reasoning-kit data show``.

Importing this package imports nothing heavy; pandas and datasets load on first use.
"""
