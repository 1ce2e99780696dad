"""Reward and error-code curves of a GRPO run: per-step rows from TRL's log history, and a PNG.

TRL logs, per logging step, ``reward`` / ``reward_std`` and ``rewards/<name>/mean`` for each
reward function; the spec's rewards add ``format_errors/<code>`` (completions of the batch
carrying each validator error code) and ``format/valid_fraction``. :func:`curves` keeps those
and the training signals (loss, learning rate, completion lengths, clipped ratio, KL) as
one row per step; :func:`summary` gives first/last-window means; :func:`chart` draws total and
per-function rewards on the left and error-code counts on the right. Not handled: multi-run plots.
"""

from __future__ import annotations

from pathlib import Path

KEEP = ("step", "epoch", "loss", "learning_rate", "grad_norm", "reward", "reward_std", "frac_reward_zero_std", "kl", "entropy",
        "completions/mean_length", "completions/clipped_ratio", "format/valid_fraction", "answer/correct_fraction",
        "num_tokens")
PREFIXES = ("rewards/", "format_errors/", "timing/")


def curves(log_history: list[dict]) -> list[dict]:
    """One row per logged training step that carries a reward."""
    rows = []
    for entry in log_history:
        if "reward" not in entry:
            continue
        rows.append({k: v for k, v in entry.items() if k in KEEP or k.startswith(PREFIXES)})
    return rows


def reward_names(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for key in row:
            if key.startswith("rewards/") and key.endswith("/mean"):
                name = key[len("rewards/"):-len("/mean")]
                if name not in names:
                    names.append(name)
    return names


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


def summary(rows: list[dict], window: int = 10) -> dict:
    """Mean reward (total, per function, valid fraction) over the first and the last ``window`` logged rows.

    A row is a logged step that carries a reward: every step at the seed's cadence, one step per
    generation round with ``steps_per_generation`` > 1 (TRL logs the reward of a round once), so
    ``first_steps`` / ``last_steps`` give the training steps each window spans."""
    if not rows:
        return {}
    w = max(1, min(window, len(rows) // 2 or 1))
    first, last = rows[:w], rows[-w:]
    keys = ["reward", "format/valid_fraction", *(f"rewards/{n}/mean" for n in reward_names(rows))]
    span = lambda part: [part[0].get("step"), part[-1].get("step")]  # noqa: E731
    return {
        "window_steps": w,
        "first_steps": span(first),
        "last_steps": span(last),
        "first": {k: _mean([r.get(k) for r in first]) for k in keys},
        "last": {k: _mean([r.get(k) for r in last]) for k in keys},
    }


def smooth(values: list, alpha: float = 0.2) -> list:
    """Exponential moving average (TensorBoard's smoothing, debiased), skipping missing values.

    >>> smooth([0, 10, 10, 10], alpha=0.5)
    [0.0, 6.666666666666667, 8.571428571428571, 9.333333333333334]
    """
    out, avg, weight = [], 0.0, 0.0
    for v in values:
        if v is not None:
            avg, weight = (1 - alpha) * avg + alpha * v, (1 - alpha) * weight + alpha
        out.append(avg / weight if weight else None)
    return out


def chart(rows: list[dict], path: str | Path, *, title: str = "") -> Path:
    """Write the reward / error-code chart of ``rows`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6))
    total = [r.get("reward") for r in rows]
    left.plot(steps, total, label="total", color="black", linewidth=1, alpha=0.35)
    left.plot(steps, smooth(total), label="total (smoothed)", color="black", linewidth=2.2)
    for name in reward_names(rows):
        left.plot(steps, [r.get(f"rewards/{name}/mean") for r in rows], label=name, linewidth=1)
    left.set_xlabel("step")
    left.set_ylabel("mean reward")
    left.set_title("rewards")
    left.legend(fontsize=7)
    codes = sorted({k for r in rows for k in r if k.startswith("format_errors/")})
    totals = {c: sum(r.get(c) or 0 for r in rows) for c in codes}
    shown = [c for c in sorted(codes, key=lambda c: -totals[c]) if totals[c] > 0][:8]
    for code in shown:
        right.plot(steps, [r.get(code) or 0 for r in rows], label=code[len("format_errors/"):], linewidth=1)
    if "format/valid_fraction" in (rows[0] if rows else {}):
        twin = right.twinx()
        twin.plot(steps, [r.get("format/valid_fraction") for r in rows], color="black", linestyle="--", label="valid fraction")
        twin.set_ylim(-0.02, 1.02)
        twin.set_ylabel("valid fraction (dashed)")
    right.set_xlabel("step")
    right.set_ylabel("completions with the error code")
    right.set_title("validator error codes per step")
    if shown:
        right.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    import io

    from harness.outputs import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write(Path(path), buf.getvalue())  # never through a link, never half-written
    plt.close(fig)
    return path
