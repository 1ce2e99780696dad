"""Faster batched decoding with transformers: grouped-query SDPA under a padding mask, and a growing cache.

**Grouped SDPA.** transformers 5.17's ``sdpa`` attention only uses PyTorch's native grouped-query attention
(``enable_gqa``) when there is no attention mask; with one (left-padded prompts, as GRPO and
``eval`` batch them) it first copies every key/value head ``num_key_value_groups`` times
(``repeat_kv``). While decoding, that copy is the whole key/value cache of every layer at every
step: for a Qwen3-4B-shaped model (8 key/value heads, 32 query heads) at batch 512 it is four
times the cache written and read again per token.

This implementation computes the same attention without the copy: the ``G`` query heads that
share a key/value head are laid out as ``G`` times as many query rows of that key/value head,
``(batch, kv_heads, G * q_len, head_dim)``, and the mask (one per batch row, identical over the
heads) is repeated over those rows. ``scaled_dot_product_attention`` then sees as many heads as
the cache holds. The result is the same attention up to the kernels' rounding (a test compares
it with transformers' ``sdpa`` on a tiny GQA model, left-padded). Without a mask, or without
grouping, it is transformers' ``sdpa`` unchanged.

``register()`` adds it to transformers' attention and mask registries under :data:`NAME`; a
model uses it after ``use(model)`` (or ``attn_implementation=NAME`` once registered).

**Growing cache.** transformers' default ``DynamicCache`` appends each step's keys and values with
``torch.cat``: every decoding step copies the whole cache of every layer into a fresh, one token
longer allocation. :class:`GrowingLayer` keeps one preallocated buffer per layer, writes each step's
keys and values into it and hands attention a view of the filled part; the buffer grows by
:data:`CHUNK` tokens when full (the old part copied once). :func:`growing_cache` returns an empty
``DynamicCache`` built from these layers, to pass as ``past_key_values`` to ``generate``.

**install** puts both behind a model's ``generate`` (GRPO's sampling, ``eval``'s hf backend), with the decoding steps replayed as CUDA
graphs on a GPU (:mod:`harness.decodegraph`), and turns gradient checkpointing off for each call:
transformers 5.17 drops the KV cache in checkpointed layers of a model in training mode.
"""

from __future__ import annotations

import contextlib
import functools

NAME = "grouped_sdpa"
CHUNK = 256  # tokens a growing cache layer adds when full


def grouped_sdpa_forward(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                         is_causal=None, **kwargs):
    """transformers' attention-function signature: (batch, heads, q, d) in, ((batch, q, heads, d), None) out."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    if (attention_mask is None or groups <= 1 or kwargs.get("position_bias") is not None
            or query.shape[1] != key.shape[1] * groups):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    batch, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    # head h = k * groups + g (repeat_kv's order): (b, k, g, q, d) -> (b, k, g*q, d)
    q = query.reshape(batch, kv_heads, groups * q_len, dim)
    mask = attention_mask
    if mask.shape[-2] == q_len and q_len > 1:  # one row per query position: repeat it for each group
        mask = mask[:, :, None].expand(mask.shape[0], mask.shape[1], groups, q_len, mask.shape[-1])
        mask = mask.reshape(mask.shape[0], mask.shape[1], groups * q_len, mask.shape[-1])
    out = torch.nn.functional.scaled_dot_product_attention(q, key, value, attn_mask=mask, dropout_p=dropout,
                                                           scale=scaling, is_causal=False)
    out = out.reshape(batch, heads, q_len, out.shape[-1])
    return out.transpose(1, 2).contiguous(), None


def register() -> str:
    """Make :data:`NAME` an attention implementation transformers knows (idempotent); returns the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, grouped_sdpa_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


def use(model) -> str:
    """Switch ``model`` (a transformers model, or a PEFT model around one) to :data:`NAME`; returns the name."""
    register()
    _inner(model).set_attn_implementation(NAME)
    return NAME


def _inner(model):
    """The transformers model inside a PEFT model (or ``model`` itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@functools.cache
def _growing_layer_class():
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A ``DynamicLayer`` whose keys/values are views of a preallocated buffer (no per-step ``torch.cat``)."""

        def __init__(self, capacity: int = 0):
            super().__init__()
            self.capacity = capacity

        def lazy_initialization(self, key_states, value_states) -> None:
            super().lazy_initialization(key_states, value_states)
            self._k = self._v = None

        def _adopt(self, n: int, need: int, like) -> None:
            """A new, zeroed buffer of at least ``need`` tokens holding the current ``n`` keys/values (after growth,
            or after transformers replaced ``self.keys`` itself: crop, beam reordering, batch selection); the
            layer's ``capacity`` when that is enough (it then never grows)."""
            import torch

            size = self.capacity if need <= self.capacity else need + CHUNK
            shape = (*like.shape[:-2], size, like.shape[-1])
            k, v = (torch.zeros(shape, dtype=like.dtype, device=like.device) for _ in range(2))
            if n:
                k[..., :n, :].copy_(self.keys)
                v[..., :n, :].copy_(self.values)
            self._k, self._v = k, v

        def _owns(self, n: int, like) -> bool:
            if self._k is None or self._k.shape[:-2] != like.shape[:-2] or self._k.shape[-1] != like.shape[-1]:
                return False
            return n == 0 or (self.keys.data_ptr() == self._k.data_ptr() and self.keys.stride() == self._k.stride())

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = self.get_seq_length()
            need = n + key_states.shape[-2]
            if not self._owns(n, key_states) or need > self._k.shape[-2]:
                self._adopt(n, need, key_states)
            self._k[..., n:need, :].copy_(key_states)
            self._v[..., n:need, :].copy_(value_states)
            self.keys, self.values = self._k[..., :need, :], self._v[..., :need, :]
            return self.keys, self.values

    return GrowingLayer


def growing_cache(capacity: int = 0):
    """An empty ``DynamicCache`` whose layers are :class:`GrowingLayer` (pass as ``generate(past_key_values=...)``),
    each allocated for ``capacity`` positions at once when that holds the prompt."""
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layer_class_to_replicate = functools.partial(_growing_layer_class(), capacity)
    return cache


def reason(backend: str, *, paged: bool = False) -> str | None:
    """Why fast decoding cannot run with ``backend``, or ``None`` when it can."""
    if backend == "unsloth":
        return "Unsloth has its own attention and inference path"
    if paged:
        return "use_transformers_paged generates with its own paged cache and attention"
    return None


def graphs_mode(decode_graphs: bool, engine: str) -> tuple[str, str | None]:
    """``install``'s ``graphs`` for the ``[grpo] decode_graphs`` setting under ``engine`` (``harness.ranks.engine``),
    and why graphs are off when the setting asked for them. FSDP and DeepSpeed ZeRO-3 gather sharded weights inside
    each forward: a captured step would replay one gather's addresses, so decoding stays un-graphed there."""
    if not decode_graphs:
        return "off", None
    if engine in ("fsdp", "deepspeed"):
        return "off", f"{engine} gathers sharded weights inside each forward"
    return "auto", None


class Installed:
    """What :func:`install` changed on a model (its ``generate``), to undo it; counts of what it did."""

    def __init__(self, model, generate, fast: bool):
        self.model, self.generate, self.fast = model, generate, fast
        self.calls = 0  # generate calls
        self.bucketed_steps = 0  # decoding steps run by harness.decodegraph (graphs="eager": without graphs)
        self.graphed_steps = 0  # those of them replayed as CUDA graphs
        self.graph_skips: set[str] = set()  # why a call's steps were not graphed

    def count(self, stepper) -> None:
        self.bucketed_steps += stepper.steps
        self.graphed_steps += stepper.replays
        if stepper.failure:
            self.graph_skips.add(stepper.failure)

    def undo(self) -> None:
        if self.model is not None and self.model.__dict__.get("generate") is self.generate:
            del self.model.generate
        self.model = None


@contextlib.contextmanager
def _without_checkpointing(model):
    """Gradient checkpointing off for the call. transformers 5.17 drops the KV cache in every checkpointed layer of
    a model in training mode, while ``generate`` still feeds one token a step: each token would be predicted from
    the previous token alone (TRL samples with the training model in training mode)."""
    layers = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False) is True]
    for m in layers:
        m.gradient_checkpointing = False
    try:
        yield
    finally:
        for m in layers:
            m.gradient_checkpointing = True


def _graph_reason(inner, kwargs, args) -> tuple[str | None, int]:
    """Why this call's decoding steps cannot be graphed (or ``None``), and the cache capacity they need."""
    import torch

    from harness import decodegraph

    ids = kwargs.get("input_ids", args[0] if args else None)
    config = kwargs.get("generation_config") or inner.generation_config
    new = kwargs.get("max_new_tokens") or getattr(config, "max_new_tokens", None)
    cap = decodegraph.capacity(ids.shape[-1], new) if isinstance(ids, torch.Tensor) and ids.dim() == 2 else None
    if cap is None:
        return "max_new_tokens or input_ids not given", 0
    return decodegraph.reason(inner), cap


def install(model, *, fast: bool = True, graphs: str = "auto") -> Installed:
    """Give ``model`` a ``generate`` that always keeps the KV cache (gradient checkpointing off for the call) and,
    with ``fast``, decodes with grouped SDPA (where the model uses ``sdpa``; switched back after each call, so
    training forwards are untouched) into a growing cache (where the generation config asks for transformers'
    default cache), its single-token steps replayed as CUDA graphs (:mod:`harness.decodegraph`) when
    ``graphs`` is ``"auto"`` and the model is on a GPU (``"eager"``: the same bucketed steps without graphs,
    ``"off"``: none). Exact: the same attention and the same cache contents."""
    from harness import decodegraph

    plain = model.generate

    def generate(*args, **kwargs):
        installed.calls += 1
        inner = _inner(model)
        with contextlib.ExitStack() as stack:
            stack.enter_context(_without_checkpointing(model))
            impl = getattr(inner.config, "_attn_implementation", None)
            if not fast:
                return plain(*args, **kwargs)
            config = kwargs.get("generation_config")
            if kwargs.get("past_key_values") is None and getattr(config, "cache_implementation", None) is None:
                why, cap = _graph_reason(inner, kwargs, args) if graphs != "off" else (None, 0)
                if graphs == "auto" and not why and inner.device.type != "cuda":
                    why = "the model is not on a GPU"
                if graphs != "off" and not why:
                    kwargs["past_key_values"] = growing_cache(cap)
                    stepper = decodegraph.Stepper(inner.forward, kwargs["past_key_values"], cap,
                                                  graphs=graphs == "auto")
                    stack.enter_context(_forward_replaced(inner, stepper))
                    stack.callback(installed.count, stepper)
                else:
                    if why:
                        installed.graph_skips.add(why)
                    kwargs["past_key_values"] = growing_cache()
            if impl == "sdpa":
                use(inner)
                stack.callback(inner.set_attn_implementation, impl)
            return plain(*args, **kwargs)

    installed = Installed(model, generate, fast)
    model.generate = generate
    return installed


@contextlib.contextmanager
def _forward_replaced(inner, stepper):
    """``inner.forward`` is ``stepper.forward`` for the call (an instance attribute, as accelerate's hooks do)."""
    had = inner.__dict__.get("forward")

    @functools.wraps(inner.forward)  # generate reads forward's signature (whether to pass position_ids)
    def forward(*args, **kwargs):
        return stepper.forward(*args, **kwargs)

    inner.forward = forward
    try:
        yield
    finally:
        if had is None:
            del inner.forward
        else:
            inner.forward = had
        stepper.close()
