"""Audits to run before spending GPU hours.

- ``tokens``: how the spec's tags and EOS strings tokenize (token count, special, missing from
  the vocabulary, merged with neighbouring whitespace), and ``check_tokenizer``, the check
  ``train`` and ``grpo`` run before they load data (pad != eos, the spec's EOS);
- ``training``: what the model and the SFT data path make of them (untrained embedding rows,
  the stop token inside the SFT loss mask, a prefix-preserving template);
- ``tags``: ``reasoning-kit audit``, the findings of both, each with its fix;
- ``redteam``: ``reasoning-kit reward-audit``, completions derived from the spec that try to
  earn format or answer credit without being valid, scored by any TRL-style reward;
- ``cli``: the two commands.

Importing this package imports nothing heavy.
"""
