"""Trainer callbacks: throughput recording, and Ctrl-C -> a checkpoint at the next step boundary.

:class:`Recorder` measures the wall time of ``trainer.train()`` (this session) and the tokens
it processed (``state.num_input_tokens_seen``, non-padding tokens) for trained tokens/s, and the
same over the steps after the first ``WARMUP_STEPS`` of the session (kernel selection, allocator
growth and the first batches' loading make them slow: the figure to compare runs by).

:class:`StopOnInterrupt` with :func:`sigint_saves` turns the first Ctrl-C (SIGINT) into "save
a checkpoint when the current optimizer step ends, then stop", so the checkpoint is always
consistent (weights, optimizer, scheduler, RNG and data position); a second Ctrl-C aborts at
once. ``--resume`` continues from that checkpoint. Under several processes both callbacks agree
across ranks (``harness.ranks.any_rank``) so every rank stops at the same step.
:func:`sigterm_exits` turns SIGTERM (``kill``, ``timeout``, a scheduler) into ``SystemExit(143)`` so
the run's ``except`` blocks remove what it staged instead of leaving it behind. Not handled:
SIGKILL, crashes (the next run into the same output removes their staged directory).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager

from transformers import TrainerCallback

from harness import ranks


WARMUP_STEPS = 5


class Recorder(TrainerCallback):
    """Wall time and tokens of this training session (all steps, and after ``WARMUP_STEPS``)."""

    def __init__(self):
        self.start = self.end = self.warm = None
        self.tokens_start = self.tokens_end = self.tokens_warm = 0
        self.step_start = self.step_end = self.step_warm = 0

    def on_train_begin(self, args, state, control, **kw):
        self.start = time.perf_counter()
        self.tokens_start = state.num_input_tokens_seen
        self.step_start = state.global_step

    def on_step_end(self, args, state, control, **kw):
        self.end = time.perf_counter()
        self.tokens_end = state.num_input_tokens_seen
        self.step_end = state.global_step
        if self.step_end - self.step_start == WARMUP_STEPS:
            self.warm, self.tokens_warm, self.step_warm = self.end, self.tokens_end, self.step_end

    def summary(self) -> dict:
        seconds = (self.end - self.start) if self.start is not None and self.end is not None else 0.0
        tokens = self.tokens_end - self.tokens_start
        steps = self.step_end - self.step_start
        return {
            "train_seconds": round(seconds, 3),
            "steps_this_session": steps,
            "tokens_this_session": tokens,
            "trained_tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
            "seconds_per_step": round(seconds / steps, 4) if steps else None,
            **self._after_warmup(),
        }

    def _after_warmup(self) -> dict:
        """Tokens/s over the steps after the first ``WARMUP_STEPS`` (None with fewer than 2 such steps)."""
        steps = self.step_end - self.step_warm if self.warm is not None else 0
        seconds = (self.end - self.warm) if steps >= 2 else 0.0
        rate = round((self.tokens_end - self.tokens_warm) / seconds, 1) if seconds > 0 else None
        return {"trained_tokens_per_s_after_warmup": rate, "warmup_steps": WARMUP_STEPS}


class StopOnInterrupt(TrainerCallback):
    """When ``requested`` is set, save a checkpoint at the end of the current step and stop."""

    def __init__(self):
        self.requested = False
        self.stopped_at: int | None = None

    def on_step_end(self, args, state, control, **kw):
        if ranks.any_rank(self.requested):  # several processes stop at the same step, or none does
            self.requested = True
        if self.requested and self.stopped_at is None:
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control


class TimeBudget(TrainerCallback):
    """Stop at the first step boundary after ``minutes`` of training (0: never)."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.start = None
        self.stopped_at: int | None = None

    def on_train_begin(self, args, state, control, **kw):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self.seconds > 0 and self.stopped_at is None and ranks.any_rank(time.perf_counter() - self.start >= self.seconds):
            self.stopped_at = state.global_step
            control.should_training_stop = True
        return control


@contextmanager
def _handling(signum: int, handler):
    """``handler`` for ``signum`` while active, the previous one after (main thread only: elsewhere, nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def sigint_saves(stop: StopOnInterrupt):
    """While active, the first SIGINT sets ``stop.requested``; the second raises KeyboardInterrupt."""

    def handler(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True
        print("\nCtrl-C: saving a checkpoint at the end of this step (press Ctrl-C again to abort without saving)",
              file=sys.stderr, flush=True)

    return _handling(signal.SIGINT, handler)


def sigterm_exits():
    """While active (main thread only), SIGTERM raises ``SystemExit(143)`` where the program is, as Ctrl-C would."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    return _handling(signal.SIGTERM, handler)
