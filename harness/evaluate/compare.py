"""Side-by-side comparison of evaluation runs (e.g. base vs tuned): a Markdown table.

:func:`compare_table` reads each directory's report.json and returns one column per run:
the headline rates with their counts, output length, stop reasons, throughput, the run
facts that differ between columns, and one row per validator error code seen in any run.
Columns are named by directory name (parent/name when two names clash).

Runs are compared on the prompts they share (by id): when the prompt sets differ, each run's
metrics are summarised again from the rows of its ``outputs.jsonl`` with a common id
(``report.summarize``; rows keep the scores they were written with). :func:`compare_warnings`
gives one line per difference that makes columns unlike: the prompt sets, and each setting
that changes the outputs (dataset, prompt style, spec, max new tokens, sampling, stop at the
solution end, constrained decoding). Not handled: significance tests; re-scoring rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from reasoning_kit import jsonl

from .report import load_report, summarize

# run.json settings that change what a model outputs: (key, label)
SETTINGS = (("dataset", "dataset"), ("prompt_style", "prompt style"), ("max_new_tokens", "max new tokens"),
            ("sampling", "sampling"), ("stop_at_solution_end", "stop at solution end"), ("constrained", "constrained"))


def _rows(report_dir: str | Path) -> dict[str, dict] | None:
    """The output rows of a run by id (read only), None when it has no readable outputs.jsonl."""
    p = Path(report_dir)
    path = (p if p.is_dir() else p.parent) / "outputs.jsonl"
    try:
        parsed, _ = jsonl.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    return {str(row["id"]): row for _, row in parsed if isinstance(row, dict) and "id" in row}


def _common(report_dirs) -> tuple[list[dict], list[str]]:
    """(reports with metrics on the common prompts, warnings about the prompt sets)."""
    reports = [load_report(d) for d in report_dirs]
    rows = [_rows(d) for d in report_dirs]
    if len(reports) < 2 or any(r is None for r in rows):
        missing = ", ".join(str(d) for d, r in zip(report_dirs, rows) if r is None)
        unchecked = f"warning: no outputs.jsonl in {missing}: compared as reported, prompt sets unchecked"
        return reports, [unchecked] if missing and len(reports) > 1 else []
    ids = [set(r) for r in rows]
    common = set.intersection(*ids)
    if all(i == common for i in ids):
        return reports, []
    sizes = ", ".join(f"{label} {len(i)}" for label, i in zip(labels_for(report_dirs), ids))
    warning = (f"warning: the runs evaluated different prompts ({sizes}); the table compares the {len(common)} "
               "they share (by id)")
    out = []
    for report, by_id in zip(reports, rows):
        kept = [by_id[i] for i in sorted(common, key=_id_key)]
        out.append({**report, "metrics": summarize(kept)})
    return out, [warning]


def _id_key(value: str):
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def _setting(run: dict, key: str):
    if key == "spec":
        return (run.get("spec") or {}).get("sha256") or (run.get("spec") or {}).get("name")
    return run.get(key)


def compare_warnings(report_dirs: list[str | Path]) -> list[str]:
    """One line per difference that makes the runs' columns unlike (see the module docstring)."""
    reports = [load_report(d) for d in report_dirs]
    _, warnings = _common(report_dirs)
    labels = labels_for(report_dirs)
    runs = [r["run"] for r in reports]
    for key, label in (("spec", "spec"), *SETTINGS):
        values = [_setting(run, key) for run in runs]
        if len({json.dumps(v, sort_keys=True) for v in values}) > 1:
            shown = [(run.get("spec") or {}).get("name", "?") + f" ({str(v)[:8]})" if key == "spec" else
                     (json.dumps(v, sort_keys=True) if isinstance(v, dict) else str(v)) for run, v in zip(runs, values)]
            warnings.append(f"warning: {label} differs: " + ", ".join(f"{lab} {v}" for lab, v in zip(labels, shown)))
    return warnings


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


def _table_rows(reports: list[dict]) -> list[tuple[str, list[str]]]:
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
    """A Markdown table comparing the runs in ``report_dirs`` side by side, on the prompts they share."""
    from . import EvalError

    reports, _ = _common(report_dirs)
    labels = labels_for(report_dirs)
    lines = ["| | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    try:
        rows = _table_rows(reports)
    except KeyError as exc:
        raise EvalError(f"a report.json lacks the field {exc}: was it written by another reasoning-kit version? "
                        "run eval again for that run") from None
    lines += [f"| {name} | " + " | ".join(vals) + " |" for name, vals in rows]
    return "\n".join(lines) + "\n"


def check_chart_path(report_dirs: list[str | Path], path: str | Path) -> None:
    """EvalError unless ``path`` may take the chart: not a link, not an input, not inside a compared run, and
    either new or an earlier PNG (a chart); checked before anything is printed or written."""
    from harness.outputs import OutputError, refuse_same_file, refuse_symlink

    from . import EvalError

    target = Path(path)
    reports = [Path(d) / "report.json" if Path(d).is_dir() else Path(d) for d in report_dirs]
    try:
        refuse_same_file(reports, target, "--chart")
        refuse_symlink(target, "--chart")
    except OutputError as exc:
        raise EvalError(str(exc)) from None
    where = target.resolve().parent
    for run in (Path(d) if Path(d).is_dir() else Path(d).parent for d in report_dirs):
        if where == run.resolve() or run.resolve() in where.parents:
            raise EvalError(f"--chart {target} is inside the compared run {run}: write it outside the runs")
    if target.exists():
        with target.open("rb") as fh:
            is_png = fh.read(8) == b"\x89PNG\r\n\x1a\n"
        if not is_png:
            raise EvalError(f"--chart {target} exists and is not a PNG chart: not replacing it; choose another path")


def compare_chart(report_dirs: list[str | Path], path: str | Path) -> Path:
    """One chart with every run of ``report_dirs`` side by side, on the prompts they share."""
    from .chart import chart

    check_chart_path(report_dirs, path)
    return chart(_common(report_dirs)[0], labels_for(report_dirs), path)
