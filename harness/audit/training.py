"""What the base model and the SFT data path make of the spec's tokens.

- :func:`untrained_rows`: which of the given token ids have an embedding row that looks
  untrained. The criterion (robust to the scale and offset of any embedding matrix): a row is
  untrained when its norm is below ``RATIO`` (0.1) x the median row norm (rows left at zero or
  at a tiny initialisation), or when its distance to the mean row is below ``RATIO`` x the
  median distance to the mean row (rows set to the mean of the others, as
  ``resize_token_embeddings`` and several checkpoints initialise new tokens). A trained row of a
  d-dimensional embedding sits near the median on both measures; a tenth of it is far outside
  what training produces, and the test is deterministic on weights built to show each case.
- :func:`stop_token_loss`: renders one training example with the spec's template, turns it into
  TRL's columns with ``harness.train.sft.training_columns`` and tokenizes it as TRL's SFTTrainer
  does (EOS appended when missing, the completion starting where the tokenized prompt and
  prompt+completion diverge), then says whether the tokenizer's EOS id is the last token that
  gets loss. When it is not, SFT never teaches the model to stop.
- :func:`prefix_problems`: whether the template is prefix-preserving: a conversation rendered
  after one exchange is a prefix of the same conversation after two, the rendered prompt
  (with the generation prompt) is a prefix of the rendered prompt + answer, and the same holds
  for their tokens (else TRL trains on a context the model never sees at inference).

Not handled: packing (each example is checked alone), truncation by max_seq_length (the data
path drops over-long rows), and the lm_head of models whose output embeddings are not a
weight matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasoning_kit.spec import FormatSpec
from reasoning_kit.template import prompt_messages, render, training_messages

RATIO = 0.1
# The one conversation every check renders (an answer that fits either answer kind).
EXAMPLE = ("What is 2 + 2?", "We add 2 and 2 to get 4.", "4")
SECOND = ("What is 3 + 5?", "We add 3 and 5 to get 8.", "8")


def untrained_rows(weight, ids) -> dict[int, str]:
    """{id: why} for the rows of ``weight`` (vocab x hidden) among ``ids`` that look untrained."""
    import torch

    w = weight.detach().float()
    norms = torch.linalg.vector_norm(w, dim=1)
    centred = torch.linalg.vector_norm(w - w.mean(dim=0, keepdim=True), dim=1)
    median_norm, median_centred = norms.median().item(), centred.median().item()
    out = {}
    for i in sorted(set(ids)):
        if not 0 <= i < w.shape[0]:
            continue
        if norms[i].item() < RATIO * median_norm:
            out[i] = f"row norm {norms[i].item():.3g} < {RATIO:g} x the median row norm {median_norm:.3g}"
        elif centred[i].item() < RATIO * median_centred:
            out[i] = (f"distance to the mean row {centred[i].item():.3g} < {RATIO:g} x the median distance "
                      f"{median_centred:.3g} (the row is the mean of the others)")
    return out


def embedding_matrices(model) -> dict[str, object]:
    """{"input": weight} plus {"output": weight} when the output embeddings are not tied to the input ones."""
    out = {"input": model.get_input_embeddings().weight}
    head = model.get_output_embeddings()
    weight = getattr(head, "weight", None)
    if weight is not None and weight.data_ptr() != out["input"].data_ptr() and weight.dim() == 2:
        out["output"] = weight
    return out


@dataclass(frozen=True)
class LossCheck:
    """Where the stop token stands in one tokenized SFT example."""

    completion_only: bool
    eos_id: int | None
    trained_tail: tuple[str, ...]  # the last tokens that get loss
    eos_trained: bool  # the tokenizer's EOS id is the last token with loss
    prompt_tokens_prefix: bool  # the tokenized prompt is a prefix of the tokenized prompt + completion


def _example(spec: FormatSpec, turns=(EXAMPLE,)) -> list[dict]:
    msgs = prompt_messages(spec, turns[0][0])
    for i, (question, reasoning, answer) in enumerate(turns):
        if i:
            msgs.append({"role": "user", "content": question})
        msgs.append(training_messages(spec, question, reasoning, answer)[-1])
    return msgs


def stop_token_loss(spec: FormatSpec, tokenizer, *, completion_only: bool) -> LossCheck:
    """Tokenize one example through ``training_columns`` as TRL does; see the module docstring."""
    from datasets import Dataset
    from trl.data_utils import common_prefix_length

    from harness.train.sft import training_columns

    eos = tokenizer.eos_token
    messages = _example(spec)
    text = render(spec, messages, eos_token=eos)
    row = training_columns(Dataset.from_dict({"messages": [messages], "text": [text]}), spec, eos,
                           completion_only=completion_only)[0]
    prompt, completion = (row["prompt"], row["completion"]) if completion_only else ("", row["text"])
    if not completion.endswith(eos):  # TRL's add_eos
        completion += eos
    full = tokenizer(text=prompt + completion)["input_ids"]
    prompt_ids = tokenizer(text=prompt)["input_ids"] if completion_only else []
    start = common_prefix_length(prompt_ids, full)
    trained = full[start:]
    tail = tuple(str(p) for p in tokenizer.convert_ids_to_tokens(trained[-3:]))
    eos_id = tokenizer.eos_token_id
    return LossCheck(completion_only, eos_id, tail, bool(trained) and eos_id is not None and trained[-1] == eos_id,
                     start == len(prompt_ids))


def prefix_problems(spec: FormatSpec, eos_token: str) -> list[str]:
    """Where the spec's template is not prefix-preserving (text level), one line each."""
    problems = []
    one, two = _example(spec), _example(spec, (EXAMPLE, SECOND))
    if not render(spec, two, eos_token=eos_token).startswith(render(spec, one, eos_token=eos_token)):
        problems.append("the conversation rendered after one exchange is not a prefix of it after two exchanges")
    prompt = render(spec, one[:-1], add_generation_prompt=True, eos_token=eos_token)
    if not render(spec, one, eos_token=eos_token).startswith(prompt):
        problems.append(
            f"the prompt with the generation prompt {spec.generation_prompt!r} is not a prefix of the prompt + answer: "
            "the answer does not start with the generation prompt"
        )
    return problems
