"""One compact console line per logging step, for `train` and `grpo`, instead of the trainer's raw dict.

transformers prints every log record as a Python dict (a GRPO record is ~1,800 characters,
most of it zero error counters). :func:`line` turns a record into one line with what a user
watches — SFT: loss, learning rate, grad norm, tokens/s; GRPO: total reward, valid %, correct %,
share of zero-variance groups, completion length and where the step's seconds went — and
:class:`CompactProgress` prints it above the progress bar (or alone with ``--no-progress``).
The full record stays in ``metrics.json``.

:class:`ZeroVarianceWatch` says once, in plain words, when most GRPO groups gave every
completion the same reward for several logged steps (the advantage is then 0 and nothing is
learned), with what to change. Not handled: multi-process output (only the main process prints).
"""

from __future__ import annotations

import math
import sys
import time

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback


def _num(value, fmt: str) -> str | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return format(value, fmt)


def _pct(value) -> str | None:
    return None if value is None else f"{100 * value:.0f}%"


def line(logs: dict, *, step: int, max_steps: int, seconds_per_step: float | None = None) -> str:
    """The console line for one log record (GRPO when it carries ``reward``, else SFT)."""
    parts = [f"step {step}/{max_steps}"]
    if "reward" in logs:
        fields = [
            ("reward", _num(logs.get("reward"), ".3f")),
            ("valid", _pct(logs.get("format/valid_fraction"))),
            ("correct", _pct(logs.get("answer/correct_fraction"))),
            ("zero-std groups", _pct(logs.get("frac_reward_zero_std"))),
            ("len", _num(logs.get("completions/mean_length"), ".0f")),
        ]
    else:
        fields = [
            ("loss", _num(logs.get("loss"), ".4f")),
            ("lr", _num(logs.get("learning_rate"), ".2e")),
            ("grad", _num(logs.get("grad_norm"), ".3f")),
        ]
    parts += [f"{name} {value}" for name, value in fields if value is not None]
    if seconds_per_step:
        timing = f"{seconds_per_step:.2f} s/step"
        split = [(k, logs.get(f"timing/{k}_s")) for k in ("generation", "reward", "update")]
        if any(v is not None for _, v in split):
            timing += " (" + ", ".join(f"{k} {v:.2f}" for k, v in split if v is not None) + ")"
        parts.append(timing)
    return " · ".join(parts)


class CompactProgress(ProgressCallback):
    """transformers' progress bar, labelled, with :func:`line` instead of the raw dict on each log."""

    def __init__(self, label: str, *, bar: bool = True, out=None):
        super().__init__()
        self.label, self.bar, self.out = label, bar, out or sys.stderr
        self._last_time = self._last_step = None

    def on_train_begin(self, args, state, control, **kwargs):
        if self.bar and state.is_world_process_zero:
            from tqdm.auto import tqdm

            # A resumed run starts where it stopped: ``initial`` keeps the rate (and the ETA) to this session's steps.
            self.training_bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.label,
                                     dynamic_ncols=True)
        self.current_step = state.global_step
        self._last_time, self._last_step = time.perf_counter(), state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar:
            super().on_step_end(args, state, control, **kwargs)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or not ({"loss", "reward"} & set(logs)):
            return
        now = time.perf_counter()
        steps = state.global_step - (self._last_step or 0)
        per_step = (now - self._last_time) / steps if steps > 0 and self._last_time is not None else None
        if steps > 0:
            self._last_time, self._last_step = now, state.global_step
        text = line(logs, step=state.global_step, max_steps=state.max_steps, seconds_per_step=per_step)
        if self.bar and self.training_bar is not None:
            self.training_bar.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar and self.training_bar is not None:
            super().on_train_end(args, state, control, **kwargs)


class ZeroVarianceWatch(TrainerCallback):
    """Warn once when ``frac_reward_zero_std`` stays at or above ``threshold`` for ``patience`` logged steps."""

    def __init__(self, warn, *, threshold: float = 0.75, patience: int = 3):
        self.warn, self.threshold, self.patience = warn, threshold, patience
        self.run = 0
        self.warned_at: int | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        share = (logs or {}).get("frac_reward_zero_std")
        if share is None or self.warned_at is not None:
            return
        self.run = self.run + 1 if share >= self.threshold else 0
        if self.run >= self.patience and state.is_world_process_zero:
            self.warned_at = state.global_step
            self.warn(
                f"for {self.run} logged steps, {100 * share:.0f}% of the groups gave every completion the same reward, "
                "so their advantage is 0 and GRPO learns nothing from them: sample more completions per prompt "
                "(--num-generations), use a task within the model's reach (--dataset arithmetic), raise the "
                "temperature, or add a partial-credit reward (closeness in [rewards] enabled)"
            )


class LogLastStep(TrainerCallback):
    """Log the last two steps, so the final record holds the loss of the last step alone (not a window mean)."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps - 1 or control.should_training_stop:
            control.should_log = True
        return control


def install(trainer, label: str, *, progress: bool, quiet: bool = False) -> CompactProgress | None:
    """Replace the trainer's raw-dict printer (progress bar or printer) with :class:`CompactProgress`.

    ``quiet`` (a process other than the main one) prints nothing at all.
    """
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    if quiet:
        return None
    compact = CompactProgress(label, bar=progress)
    trainer.add_callback(compact)
    return compact
