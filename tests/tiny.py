"""Tiny real models and tokenizers, built inside tests (seconds on CPU, no hub).

``make_tokenizer`` trains a small byte-level BPE on the given texts with the spec's tags
added as whole (non-special) tokens, an EOS special token and a distinct pad token, and
sets the spec's chat template; ``tag_tokens=False`` leaves the tags as the BPE spells them
(several tokens each, as real tokenizers such as SmolLM2's do) and ``eos="<|im_end|>"``
gives a ChatML EOS. ``make_model`` builds a randomly initialised causal LM of
a real architecture (Llama or Qwen3) sized for that tokenizer. ``save_tiny`` writes both
to a directory that ``from_pretrained`` loads like any local model. ``train_to_outputs``
trains a model until its greedy continuation of given prompts is given completions, with a
logit margin wide enough that no CPU's floating-point details change them: tests that need
outputs of a known shape (valid, invalid, stopped, cut) build them this way, never by hoping
a random model produces them. ``smallest_margin`` measures that margin for a model trained
any other way (the real ``train`` command in tests/test_train_run.py). ``gqa_model``,
``left_padded_batch`` and ``teacher_forced`` serve the decoding tests (test_fastdecode, test_decodegraph):
a tiny grouped-query model, a batch with left padding of every width, and the plain forward that a
decoding path's per-step scores are compared with.
"""

from __future__ import annotations

from pathlib import Path

from reasoning_kit.spec import FormatSpec
from reasoning_kit.template import chat_template

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def make_tokenizer(spec: FormatSpec, texts: list[str], *, vocab_size: int = 400, eos: str = EOS, tag_tokens: bool = True):
    """A PreTrainedTokenizerFast trained on ``texts``; eos != pad; tags are single tokens
    unless ``tag_tokens`` is False (then the byte-level pre-tokenizer splits each into several)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[eos, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=PAD, bos_token=None)
    if tag_tokens:
        fast.add_tokens([t for t in spec.tag_list if t not in fast.get_vocab()])
    fast.chat_template = chat_template(spec)
    return fast


def make_model(tokenizer, *, arch: str = "llama", hidden: int = 64, layers: int = 2, heads: int = 4, seed: int = 0):
    """A randomly initialised causal LM whose vocabulary fits ``tokenizer``."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config

    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    config = Qwen3Config(head_dim=hidden // heads, **common) if arch == "qwen3" else LlamaConfig(**common)
    return AutoModelForCausalLM.from_config(config)


def save_tiny(path: Path, spec: FormatSpec, texts: list[str], **model_kw) -> Path:
    """Write a tiny model + tokenizer to ``path``; returns ``path``."""
    tok = make_tokenizer(spec, texts)
    model = make_model(tok, **model_kw)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def corpus(spec: FormatSpec, n: int = 20) -> list[str]:
    """Texts in the spec's format (rendered conversations) to train tiny tokenizers on."""
    from reasoning_kit.template import render, training_messages

    out = []
    for i in range(n):
        a, b = i + 2, 3 * i + 1
        msgs = training_messages(spec, f"What is {a} + {b}?", f"We add {a} and {b} to get {a + b}.", str(a + b))
        out.append(render(spec, msgs, eos_token=EOS))
    return out


def _batch(tokenizer, prompts: list[str], completions: list[str], max_new_tokens: int | None):
    """(input_ids, attention_mask, labels) of prompt + completion rows; labels only on completion ids."""
    import torch

    if len(prompts) != len(completions):
        raise ValueError("one completion per prompt")
    rows, starts = [], []
    for p, c in zip(prompts, completions):
        p_ids = tokenizer(p, add_special_tokens=False).input_ids
        c_ids = tokenizer(c, add_special_tokens=False).input_ids[:max_new_tokens]
        rows.append(p_ids + c_ids)
        starts.append(len(p_ids))
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (row, start) in enumerate(zip(rows, starts)):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        labels[i, start : len(row)] = ids[i, start : len(row)]
    return ids, mask, labels


def _smallest_margin(logits, labels) -> float:
    """min over completion tokens of (target logit - best other logit), position t predicting t + 1."""
    import torch

    with torch.no_grad():
        targets = labels[:, 1:]
        logits = logits[:, :-1].float()
        right = logits.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        others = logits.scatter(-1, targets.clamp(min=0).unsqueeze(-1), float("-inf")).amax(-1)
        return (right - others)[targets != -100].min().item()


def smallest_margin(model, tokenizer, prompts: list[str], completions: list[str], *,
                    max_new_tokens: int | None = None) -> float:
    """The smallest logit margin by which a completion token beats every other token (teacher forcing).

    Above ~1, greedy decoding of each prompt reproduces its completion on any CPU (kernels,
    padding and batching move logits by ~1e-5); below 0, it does not. Tokenizes as
    ``train_to_outputs`` does; runs ``model`` as it is (call ``model.eval()`` first).
    """
    import torch

    ids, mask, labels = _batch(tokenizer, prompts, completions, max_new_tokens)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    return _smallest_margin(logits, labels)


def train_to_outputs(model, tokenizer, prompts: list[str], completions: list[str], *, max_new_tokens: int | None = None,
                     margin: float = 2.0, lr: float = 3e-3, max_steps: int = 600) -> int:
    """Train ``model`` in place until greedy decoding continues each prompt with its completion.

    Prompts and completions are tokenized on their own (``add_special_tokens=False``) and
    concatenated, so the model learns exactly those token ids (an EOS string in a completion
    becomes the EOS id). ``max_new_tokens`` cuts each completion's ids to what a generation of
    that length can produce. Training (full batch, AdamW, loss on completion tokens only) stops
    once every completion token beats every other token by ``margin`` logits under teacher
    forcing, which makes greedy decoding reproduce the completions whatever the CPU's
    floating-point details (padding, batching and kernels move logits by ~1e-5). Trains the
    parameters that require grad (a PEFT model: the adapter only). ``lr`` 3e-3 reaches the margin in
    ~90-125 steps for every init seed and SIMD path tried; 1e-2 sometimes stalls near a tie. Returns the steps taken;
    raises RuntimeError if ``max_steps`` is not enough. The model is left in eval mode.
    """
    import torch

    ids, mask, labels = _batch(tokenizer, prompts, completions, max_new_tokens)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    for step in range(max_steps + 1):
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        worst = _smallest_margin(out.logits, labels)
        if worst >= margin:
            model.eval()
            return step
        if step == max_steps:
            break
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    raise RuntimeError(f"train_to_outputs: smallest margin {worst:.3f} < {margin} after {max_steps} steps")


def gqa_model(model_type: str = "qwen3", *, kv_heads: int = 2, heads: int = 8):
    """A tiny random ``model_type`` (qwen3, llama) causal LM with ``heads / kv_heads`` query heads per key/value head,
    on sdpa attention, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config

    torch.manual_seed(0)
    kind = {"qwen3": Qwen3Config, "llama": LlamaConfig}[model_type]
    cfg = kind(vocab_size=211, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=heads,
               num_key_value_heads=kv_heads, head_dim=16, bos_token_id=None, eos_token_id=None, pad_token_id=0)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").eval()


def left_padded_batch():
    """(ids, mask) of 4 rows of 11 tokens, left-padded by 5, 0, 2 and 9 (pad id 0)."""
    import torch

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 211, (4, 11), generator=g)
    mask = torch.ones_like(ids)
    for row, pad in enumerate((5, 0, 2, 9)):
        mask[row, :pad] = 0
        ids[row, :pad] = 0
    return ids, mask


def logits(model, ids, mask):
    import torch

    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits


def teacher_forced(model, sequences, prompt_mask):
    """Plain forward logits of ``sequences`` (prompt + generated) at the positions that predicted each new token."""
    import torch

    new = sequences.shape[1] - prompt_mask.shape[1]
    full = torch.cat([prompt_mask, prompt_mask.new_ones(sequences.shape[0], new)], dim=1)
    return logits(model, sequences, full)[:, prompt_mask.shape[1] - 1:-1]
