"""PNG charts of one or more evaluation reports (matplotlib, Agg backend, no display needed).

Left panel: format compliance, accuracy, accuracy among compliant outputs, extractable
answer rate and lenient accuracy, as grouped bars (one colour per run). Right panel: the
share of outputs carrying each validator error code, per run. Not handled: interactive
plots, per-question views.
"""

from __future__ import annotations

from pathlib import Path

METRICS = (
    ("format_compliance", "format\ncompliance"),
    ("accuracy", "answer\naccuracy"),
    ("accuracy_compliant", "accuracy\n(compliant)"),
    ("extractable_rate", "extractable\nanswer"),
    ("lenient_accuracy", "lenient\naccuracy"),
)


def chart(reports: list[dict], labels: list[str], path: str | Path, *, max_codes: int = 12) -> Path:
    """Write the chart of ``reports`` (named by ``labels``) to ``path``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(reports)
    totals: dict[str, float] = {}
    for r in reports:
        n = r["metrics"]["n"] or 1
        for code, c in r["metrics"]["error_codes"].items():
            totals[code] = totals.get(code, 0.0) + c / n
    codes = sorted(totals, key=lambda c: (-totals[c], c))[:max_codes]

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.1, 1]})
    width = 0.8 / k
    for i, (r, label) in enumerate(zip(reports, labels)):
        m = r["metrics"]
        xs = [j + (i - (k - 1) / 2) * width for j in range(len(METRICS))]
        raw = [m[key] for key, _ in METRICS]
        bars = left.bar(xs, [100 * (v or 0.0) for v in raw], width, label=label)
        left.bar_label(bars, labels=["n/a" if v is None else f"{100 * v:.0f}" for v in raw], fontsize=7, padding=1)
        n = m["n"] or 1
        ys = [j + (i - (k - 1) / 2) * width for j in range(len(codes))]
        right.barh(ys, [100 * m["error_codes"].get(c, 0) / n for c in codes], width, label=label)
    left.set_xticks(range(len(METRICS)), [name for _, name in METRICS], fontsize=8)
    left.set_ylim(0, 109)
    left.set_ylabel("% of outputs")
    left.set_title("Compliance and accuracy")
    right.set_yticks(range(len(codes)), codes, fontsize=8)
    right.invert_yaxis()
    right.set_xlim(0, 100)
    right.set_xlabel("% of outputs carrying the code")
    right.set_title("Validator error codes" if codes else "Validator error codes (none)")
    if k > 1:
        left.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import io

    from harness.outputs import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write(Path(path), buf.getvalue())  # never through a link, never half-written
    plt.close(fig)
    return path
