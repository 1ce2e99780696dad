"""Metrics over scored output rows, and the report files (report.json, report.md).

Definitions (n = rows evaluated; rows whose gold answer cannot be parsed are left out of
every accuracy denominator and counted in ``gold_unparsable``):

- ``format_compliance``: valid outputs / n (strict: the validator accepts the output).
- ``accuracy``: correct strict answers / n (an output without an extractable answer is wrong).
- ``accuracy_compliant``: correct answers among valid outputs (None when none is valid).
- ``extractable_rate``: outputs with a well-formed single solution block / n.
- ``lenient_accuracy``: as ``accuracy`` with the lenient answer (strict answer, else the last
  number in the output): the fair figure for a model that never learned the format.
- ``error_codes``: how many outputs carry each validator error code (an output may carry
  several); ``finish_reasons``: eos / stop (solution end tag) / length (max_new_tokens).

Not handled here: generation (``generate``) and plotting (``chart``).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

from harness.stats import quantile


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def summarize(rows: list[dict]) -> dict:
    """The metrics of a run from its output rows."""
    n = len(rows)
    graded = [r for r in rows if r.get("correct") is not None]
    lenient_graded = [r for r in rows if r.get("lenient_correct") is not None]
    valid = [r for r in rows if r["valid"]]
    valid_graded = [r for r in valid if r.get("correct") is not None]
    codes = Counter(code for r in rows for code in dict.fromkeys(e["code"] for e in r["errors"]))
    tokens = [r["n_tokens"] for r in rows]
    seconds = sum(r.get("seconds", 0.0) for r in rows)
    return {
        "n": n,
        "valid": len(valid),
        "format_compliance": _rate(len(valid), n),
        "accuracy": _rate(sum(r["correct"] for r in graded), len(graded)),
        "correct": sum(bool(r.get("correct")) for r in rows),
        "graded": len(graded),
        "accuracy_compliant": _rate(sum(r["correct"] for r in valid_graded), len(valid_graded)),
        "extractable_rate": _rate(sum(r["answer"] is not None for r in rows), n),
        "lenient_accuracy": _rate(sum(r["lenient_correct"] for r in lenient_graded), len(lenient_graded)),
        "lenient_correct": sum(bool(r.get("lenient_correct")) for r in rows),
        "gold_unparsable": n - len(graded),
        "error_codes": dict(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))),
        "finish_reasons": dict(sorted(Counter(r["finish_reason"] for r in rows).items())),
        "length": {
            "tokens_mean": statistics.fmean(tokens) if tokens else None,
            "tokens_p50": quantile(tokens, 0.5),
            "tokens_p90": quantile(tokens, 0.9),
            "tokens_max": max(tokens) if tokens else None,
            "chars_mean": statistics.fmean(len(r["completion"]) for r in rows) if rows else None,
        },
        "generation": {
            "tokens": sum(tokens),
            "seconds": seconds,
            "tokens_per_s": sum(tokens) / seconds if seconds > 0 else None,
        },
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x, fmt: str = "{:.1f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def _fast_decoding(record: dict | None) -> str:
    """One line from the run's ``fast_decoding`` record (None: a run.json written before it was recorded)."""
    if record is None:
        return "not recorded"
    if not record["used"]:
        return f"off ({record['why_not']})"
    why = "; not graphed: " + ", ".join(record["not_graphed"]) if record["not_graphed"] else ""
    return f"on ({record['calls']} generate calls, {record['graphed_steps']} decoding steps replayed as CUDA graphs{why})"


def markdown(report: dict) -> str:
    """report.md: the headline figures, the error histogram and the run facts."""
    m, run = report["metrics"], report["run"]
    n = m["n"]
    lines = [
        f"# Evaluation: {run['spec']['name']} on {run['dataset']} ({n} prompts)",
        "",
        f"Model `{run['model']}`" + (f" + adapter `{run['adapter']}`" if run["adapter"] else "")
        + f", prompt style `{run['prompt_style']}`, backend `{run['backend']}`, device {run['device']}.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| format compliance (strict) | {_pct(m['format_compliance'])} ({m['valid']}/{n}) |",
        f"| answer accuracy | {_pct(m['accuracy'])} ({m['correct']}/{m['graded']}) |",
        f"| accuracy among compliant outputs | {_pct(m['accuracy_compliant'])} |",
        f"| extractable answer | {_pct(m['extractable_rate'])} |",
        f"| lenient accuracy (last number if no answer block) | {_pct(m['lenient_accuracy'])} ({m['lenient_correct']}/{m['graded']}) |",
        f"| output tokens mean / p50 / p90 / max | {_num(m['length']['tokens_mean'])} / {_num(m['length']['tokens_p50'])}"
        f" / {_num(m['length']['tokens_p90'])} / {_num(m['length']['tokens_max'], '{}')} |",
        f"| stopped by | " + ", ".join(f"{k} {v}" for k, v in m["finish_reasons"].items()) + " |",
        f"| generation | {m['generation']['tokens']} tokens in {m['generation']['seconds']:.1f} s"
        f" = {_num(m['generation']['tokens_per_s'])} tokens/s |",
    ]
    if m["gold_unparsable"]:
        lines.append(f"| gold answers not parsable (left out of accuracy) | {m['gold_unparsable']} |")
    lines += ["", "## Error codes (outputs carrying each)", ""]
    if m["error_codes"]:
        lines += ["| code | outputs | share |", "|---|---|---|"]
        lines += [f"| {c} | {k} | {_pct(k / n)} |" for c, k in m["error_codes"].items()]
    else:
        lines.append("None: every output is valid.")
    lines += [
        "",
        "## Run",
        "",
        f"- spec: `{run['spec']['name']}` (--spec {run['spec']['source']}, sha256 {run['spec']['sha256'][:12]})",
        f"- decoding: {json.dumps(run['sampling'])}, max_new_tokens {run['max_new_tokens']}, "
        f"stop after solution end: {run['stop_at_solution_end']}, batch size {run['batch_size']}",
        f"- fast decoding: {_fast_decoding(run.get('fast_decoding'))}",
        f"- versions: " + ", ".join(f"{k} {v}" for k, v in run["versions"].items() if v),
        f"- date: {run['date']}",
    ]
    if run.get("prompt_example"):
        fence = "~~~~"
        lines += ["", "Prompt as rendered (`{question}` stands for each question):", "", fence + "text",
                  run["prompt_example"], fence]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, report: dict) -> None:
    from harness.outputs import atomic_write

    out_dir = Path(out_dir)
    atomic_write(out_dir / "report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    atomic_write(out_dir / "report.md", markdown(report))


def load_report(path: str | Path) -> dict:
    """report.json of a run directory (or the file itself)."""
    from . import EvalError

    p = Path(path)
    f = p / "report.json" if p.is_dir() else p
    if not f.is_file():
        raise EvalError(f"no report.json in {path} (run reasoning-kit eval --out {path} first)")
    try:
        report = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalError(f"cannot read {f}: {exc}") from None
    if not (isinstance(report, dict) and isinstance(report.get("metrics"), dict) and isinstance(report.get("run"), dict)):
        raise EvalError(f"{f} is not a reasoning-kit eval report (no 'metrics' and 'run' objects)")
    return report
