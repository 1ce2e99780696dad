"""Decoding steps replayed as CUDA graphs: transformers' ``generate`` without its per-token launch overhead.

A batched decoding step of a 4B model launches about a thousand small kernels (36 layers of norms,
projections, rotary, cache writes, attention, MLP), each from Python. At GRPO's batch sizes the GPU
then waits on the host: on an H200 a Qwen3-4B-shaped step at batch 512 took ~100 ms where its
weights and cache are read in a few (benchmarks/gpu_decode_probe.py). A CUDA graph records one
step's kernels once and replays them with one launch.

A graph needs fixed shapes and fixed addresses, which transformers' decoding does not have: the
cache grows by one token a step. :class:`Stepper` gives it both:

- **Fixed buffers.** The cache is a :func:`harness.fastdecode.growing_cache` preallocated (zeroed) for
  the whole call (prompt + ``max_new_tokens``), so it never moves. Each step's token ids, positions,
  the write position and the padding mask are copied into static input buffers.
- **Length buckets.** A step attends over the first ``L`` cache positions, ``L`` the step's length
  rounded up to :data:`BUCKET`; positions not written yet are masked (and zero, so masked scores
  never meet a NaN). One graph per bucket, captured the first time a step needs it; a 512-token
  completion after a 96-token prompt uses 5 graphs.

Prefill, sampling, logits processors and stopping stay transformers' own: :meth:`Stepper.forward`
replaces the model's ``forward`` only for the single-token steps of the cache it owns and calls the
real ``forward`` (a 4-D mask, the bucket's view of the cache) inside the graph, so the model code is
transformers'. Without CUDA (or ``graphs=False``) the same bucketed step runs eagerly: that is what
the CPU tests check against a plain forward.

Not handled (:func:`reason` says why; decoding then stays un-graphed): model types other than
:data:`SUPPORTED` (their forward was not checked to be capture-safe), sliding-window layers, attention
other than ``sdpa``, active dropout (random draws inside a step), unknown ``max_new_tokens``,
outputs that need per-step attentions or hidden states.
"""

from __future__ import annotations

BUCKET = 128  # cache positions a graph attends over, in steps of this
SUPPORTED = ("llama", "qwen2", "qwen3")
_PLAIN_KWARGS = {"input_ids", "attention_mask", "position_ids", "past_key_values", "use_cache", "return_dict",
                 "logits_to_keep", "output_attentions", "output_hidden_states"}


def reason(model) -> str | None:
    """Why the decoding steps of ``model`` (a transformers causal LM) cannot be graphed, or ``None``."""
    cfg = model.config
    if cfg.model_type not in SUPPORTED:
        return f"model type {cfg.model_type!r} is not one graphed decoding was checked on ({', '.join(SUPPORTED)})"
    if any(kind != "full_attention" for kind in getattr(cfg, "layer_types", None) or ()):
        return "the model has sliding-window layers"
    if getattr(cfg, "use_sliding_window", False):
        return "the model uses sliding-window attention"
    if getattr(cfg, "_attn_implementation", None) not in ("sdpa", "grouped_sdpa"):
        return f"attention {cfg._attn_implementation!r} (graphed steps pass sdpa's boolean mask)"
    import torch

    if any(isinstance(m, torch.nn.Dropout) and m.p > 0 and m.training for m in model.modules()):
        return "dropout is active (the model is in training mode)"
    return None


def _bucket(positions: int) -> int:
    """``positions`` rounded up to a multiple of :data:`BUCKET`."""
    return -(-positions // BUCKET) * BUCKET


def capacity(prompt_length: int, max_new_tokens: int | None) -> int | None:
    """Cache positions one call needs, rounded up to :data:`BUCKET` (``None`` when the length is unknown)."""
    if not max_new_tokens:
        return None
    return _bucket(prompt_length + max_new_tokens)


class _BucketKV:
    """What attention sees as ``past_key_values`` inside a step: writes the new key/value at the step's position
    (a tensor, so a replay writes where the current step is) and returns the first ``length`` positions."""

    def __init__(self, layers, position, length: int):
        self.layers, self.position, self.length = layers, position, length

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        layer = self.layers[layer_idx]
        layer._k.index_copy_(2, self.position, key_states)
        layer._v.index_copy_(2, self.position, value_states)
        return layer._k[:, :, :self.length], layer._v[:, :, :self.length]


class Stepper:
    """One ``generate`` call's decoding steps on ``cache`` (a preallocated growing cache of ``capacity`` positions)."""

    def __init__(self, forward, cache, capacity: int, graphs: bool):
        self.plain, self.cache, self.capacity, self.graphs = forward, cache, capacity, graphs
        self.buffers = None  # (ids, positions, write position, mask), made at the first step
        self.captured: dict[int, tuple] = {}  # bucket length -> (graph, logits it writes)
        self.pool = None
        self.steps = self.replays = 0  # bucketed steps, and those of them replayed as graphs
        self.failure: str | None = None  # why capturing failed (the steps then run eagerly)

    def _cached(self, kwargs) -> int | None:
        """Tokens in the cache before this call's step, when it is a single-token step this stepper can run."""
        ids, mask, pos = kwargs.get("input_ids"), kwargs.get("attention_mask"), kwargs.get("position_ids")
        if kwargs.get("past_key_values") is not self.cache or ids is None or ids.shape[1] != 1 or pos is None:
            return None
        if mask is None or mask.dim() != 2 or any(kwargs[k] is not None for k in set(kwargs) - _PLAIN_KWARGS):
            return None
        if kwargs.get("output_attentions") or kwargs.get("output_hidden_states"):
            return None
        n = self.cache.get_seq_length()
        if mask.shape[1] != n + 1 or n + 1 > self.capacity:
            return None
        owned = all(getattr(layer, "_k", None) is not None and layer._k.shape[-2] == self.capacity
                    and layer.keys.data_ptr() == layer._k.data_ptr() for layer in self.cache.layers)
        return n if owned else None

    def forward(self, *args, **kwargs):
        """The model's ``forward`` while this call decodes: graphed single-token steps, the real one otherwise."""
        n = None if args else self._cached(kwargs)
        if n is None:
            return self.plain(*args, **kwargs)
        import torch
        from transformers.modeling_outputs import CausalLMOutputWithPast

        ids, mask2d, pos = kwargs["input_ids"], kwargs["attention_mask"], kwargs["position_ids"]
        if self.buffers is None or self.buffers[0].shape != ids.shape:
            self.buffers = (torch.zeros_like(ids), torch.zeros_like(pos),
                            torch.zeros(1, dtype=torch.long, device=ids.device),
                            torch.zeros(ids.shape[0], 1, 1, self.capacity, dtype=torch.bool, device=ids.device))
            self.captured.clear()
        b_ids, b_pos, b_at, b_mask = self.buffers
        b_ids.copy_(ids)
        b_pos.copy_(pos)
        b_at.fill_(n)
        b_mask[:, 0, 0, :n + 1].copy_(mask2d.bool())
        length = min(self.capacity, _bucket(n + 1))
        logits = self._replay(length) if self.graphs else None
        if logits is None:
            logits = self._step(length)
        for layer in self.cache.layers:  # the bookkeeping transformers reads (get_seq_length)
            layer.keys, layer.values = layer._k[..., :n + 1, :], layer._v[..., :n + 1, :]
        self.steps += 1
        return CausalLMOutputWithPast(logits=logits, past_key_values=self.cache)

    def _step(self, length: int):
        b_ids, b_pos, b_at, b_mask = self.buffers
        out = self.plain(input_ids=b_ids, attention_mask=b_mask[..., :length], position_ids=b_pos,
                         past_key_values=_BucketKV(self.cache.layers, b_at, length), use_cache=True, logits_to_keep=1,
                         return_dict=True)
        return out.logits

    def _replay(self, length: int):
        import torch

        if length not in self.captured:
            if self.pool is None:
                self.pool = torch.cuda.graph_pool_handle()  # buckets replay in the order they were captured
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up outside the capture (lazy initialisation, workspaces)
                self._step(length)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph, pool=self.pool):
                    logits = self._step(length)
            except Exception as exc:  # a kernel or check that cannot be captured: the steps go on un-graphed
                self.graphs = False
                self.failure = f"capture failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                return None
            self.captured[length] = (graph, logits)
        graph, logits = self.captured[length]
        graph.replay()
        self.replays += 1
        return logits

    def close(self) -> None:
        self.captured.clear()
        self.buffers = self.pool = None
