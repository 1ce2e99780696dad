"""Side-by-side comparison of evaluation runs (e.g. base vs tuned): a Markdown table.

:func:`compare_table` reads each directory's report.json and returns one column per run:
the headline rates with their counts, output length, stop reasons, throughput, the run
facts that differ between columns, and one row per validator error code seen in any run.
Columns are named by directory name (parent/name when two names clash). Not handled:
significance tests; rows are not re-scored, the reports are taken as written.
"""

from __future__ import annotations

from pathlib import Path

from .report import load_report


def labels_for(report_dirs: list[str | Path]) -> list[str]:
    """Short, unique column names for run directories."""
    paths = [Path(d).resolve() for d in report_dirs]
    names = [p.name if p.name != "report.json" else p.parent.name for p in paths]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}/{p.name}" if p.name != "report.json" else f"{p.parent.parent.name}/{p.parent.name}" for p in paths]
    if len(set(names)) < len(names):
        names = [f"{i + 1}:{n}" for i, n in enumerate(names)]
    return names


def _pct(x, num=None, den=None) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.1f}%" + (f" ({num}/{den})" if num is not None else "")


def _rows(reports: list[dict]) -> list[tuple[str, list[str]]]:
    ms = [r["metrics"] for r in reports]
    runs = [r["run"] for r in reports]
    rows = [
        ("model", [f"`{r['model']}`" for r in runs]),
        ("adapter", [f"`{r['adapter']}`" if r["adapter"] else "-" for r in runs]),
        ("prompt style", [r["prompt_style"] for r in runs]),
        ("prompts", [str(m["n"]) for m in ms]),
        ("**format compliance**", [_pct(m["format_compliance"], m["valid"], m["n"]) for m in ms]),
        ("**answer accuracy**", [_pct(m["accuracy"], m["correct"], m["graded"]) for m in ms]),
        ("accuracy among compliant", [_pct(m["accuracy_compliant"]) for m in ms]),
        ("extractable answer", [_pct(m["extractable_rate"]) for m in ms]),
        ("lenient accuracy", [_pct(m["lenient_accuracy"], m["lenient_correct"], m["graded"]) for m in ms]),
        ("output tokens (mean)", [f"{m['length']['tokens_mean']:.0f}" if m["length"]["tokens_mean"] is not None else "n/a" for m in ms]),
        ("stopped by eos/stop/length", ["/".join(str(m["finish_reasons"].get(k, 0)) for k in ("eos", "stop", "length")) for m in ms]),
        ("tokens/s", [f"{m['generation']['tokens_per_s']:.0f}" if m["generation"]["tokens_per_s"] else "n/a" for m in ms]),
    ]
    for label, key in (("spec", None), ("dataset", "dataset"), ("max new tokens", "max_new_tokens"), ("device", "device")):
        vals = [r["spec"]["name"] if key is None else str(r[key]) for r in runs]
        rows.append((label, vals))
    codes: dict[str, int] = {}
    for m in ms:
        for c, k in m["error_codes"].items():
            codes[c] = codes.get(c, 0) + k
    for c in sorted(codes, key=lambda c: (-codes[c], c)):
        rows.append((f"error: {c}", [str(m["error_codes"].get(c, 0)) for m in ms]))
    return rows


def compare_table(report_dirs: list[str | Path]) -> str:
    """A Markdown table comparing the runs in ``report_dirs`` side by side."""
    from . import EvalError

    reports = [load_report(d) for d in report_dirs]
    labels = labels_for(report_dirs)
    lines = ["| | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    try:
        rows = _rows(reports)
    except KeyError as exc:
        raise EvalError(f"a report.json lacks the field {exc}: was it written by another reasoning-kit version? "
                        "run eval again for that run") from None
    lines += [f"| {name} | " + " | ".join(vals) + " |" for name, vals in rows]
    return "\n".join(lines) + "\n"


def compare_chart(report_dirs: list[str | Path], path: str | Path) -> Path:
    """One chart with every run of ``report_dirs`` side by side."""
    from harness.outputs import OutputError, refuse_same_file, refuse_symlink

    from . import EvalError
    from .chart import chart

    reports = [Path(d) / "report.json" if Path(d).is_dir() else Path(d) for d in report_dirs]
    try:
        refuse_same_file(reports, Path(path), "--chart")
        refuse_symlink(Path(path), "--chart")
    except OutputError as exc:
        raise EvalError(str(exc)) from None
    return chart([load_report(d) for d in report_dirs], labels_for(report_dirs), path)
