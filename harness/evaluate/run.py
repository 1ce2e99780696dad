"""``evaluate()``: generate for every question, validate, score, and write the report.

Flow: check arguments and paths (before anything slow), load the questions, resume from
``outputs.jsonl`` (ids already there are skipped; finished rows must come from the same
settings), load the model only if some prompt is pending, generate in batches (longest
prompts first, so a batch holds prompts of similar length), write each row as soon as its
batch is done, then compute the report over the requested questions and write
report.json, report.md and chart.png. A run whose outputs are complete only rebuilds the
report. Not handled: several models per call (run it twice and use ``compare``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from importlib import metadata
from pathlib import Path

from reasoning_kit.spec import FormatSpec, load_spec

from . import EvalError
from .generate import Sampling
from .outputs import OutputsWriter, check_settings, read_outputs, write_run
from .prompts import STYLES, encode_prompts, render_prompt
from .questions import load_questions
from .report import summarize, write_report
from .scoring import score

BACKENDS = ("hf", "vllm")
CHART = "chart.png"


def versions() -> dict[str, str | None]:
    out = {}
    for name in ("reasoning-kit", "torch", "transformers", "peft", "vllm"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def fingerprint(path: str | None, *, content: bool) -> str | None:
    """A short hash of a local model/adapter directory (None for hub ids).

    ``content``: hash every file's bytes (adapters: small); else config files' bytes and the
    weight files' sizes (models: large), so a copy elsewhere has the same fingerprint.
    """
    if path is None or not Path(path).is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(Path(path).iterdir()):
        if not f.is_file():
            continue
        h.update(f.name.encode())
        if content or f.suffix in (".json", ".txt", ".model", ".jinja"):
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        else:
            h.update(str(f.stat().st_size).encode())
    return h.hexdigest()[:16]


def _check_args(batch_size: int, max_new_tokens: int, backend: str, prompt_style: str, sampling: Sampling) -> None:
    if batch_size < 1:
        raise EvalError(f"--batch-size must be at least 1, got {batch_size}")
    if max_new_tokens < 1:
        raise EvalError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    if backend not in BACKENDS:
        raise EvalError(f"unknown backend {backend!r} (choose from: {', '.join(BACKENDS)})")
    if prompt_style not in STYLES:
        raise EvalError(f"unknown prompt style {prompt_style!r} (choose from: {', '.join(STYLES)})")
    if sampling.temperature < 0:
        raise EvalError(f"--temperature must be >= 0, got {sampling.temperature}")
    if not 0 < sampling.top_p <= 1:
        raise EvalError(f"--top-p must be in (0, 1], got {sampling.top_p}")


def _make_backend(backend: str, model: str, adapter, tok, hf_model, *, max_new_tokens, sampling, stop, constrained=None):
    if backend == "hf":
        from .generate import HFBackend

        return HFBackend(hf_model, tok, max_new_tokens=max_new_tokens, sampling=sampling, stop=stop, constrained=constrained)
    from .loading import generation_eos_ids
    from .vllm_backend import VLLMBackend

    return VLLMBackend(model, tok, adapter=adapter, max_new_tokens=max_new_tokens, sampling=sampling, stop=stop,
                       eos_ids=generation_eos_ids(model, tok))


def _check_constrained(spec: FormatSpec, backend: str) -> None:
    """EvalError unless --constrained can run: the hf backend, llguidance, a portable spec."""
    from harness.constrained import ConstrainedError, grammar, require_engine

    if backend != "hf":
        raise EvalError("--constrained needs --backend hf (it decodes through a transformers logits processor)")
    try:
        require_engine()
        grammar(spec)
    except ConstrainedError as exc:
        raise EvalError(str(exc)) from None


def evaluate(
    spec,
    model: str,
    *,
    adapter: str | None = None,
    dataset: str = "gsm8k-test",
    limit: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 512,
    backend: str = "hf",
    out_dir,
    prompt_style: str = "spec",
    sampling=None,
    progress: bool = True,
    stop_at_solution_end: bool = True,
    device: str | None = None,
    constrained: bool = False,
) -> dict:
    """Evaluate ``model`` (+ ``adapter``) under ``spec``; write outputs and report to ``out_dir``.

    Returns the report dict (``report["metrics"]``: see ``harness.evaluate.report``).
    Raises EvalError (one line) for bad paths, options or a mismatched resume.
    """
    from .loading import resolve_sources

    spec = spec if isinstance(spec, FormatSpec) else load_spec(spec)
    sampling = Sampling.from_any(sampling)
    _check_args(batch_size, max_new_tokens, backend, prompt_style, sampling)
    where, adapter_dir = resolve_sources(model, adapter)
    if constrained:
        _check_constrained(spec, backend)
    if backend == "vllm":
        from .vllm_backend import require_vllm

        require_vllm()
    questions = load_questions(spec, dataset, limit)
    if not questions:
        raise EvalError(f"dataset {dataset} holds no questions")
    ids = [q["id"] for q in questions]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise EvalError(f"dataset {dataset} has duplicate question ids (e.g. {dup!r}): ids must be unique to resume")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvalError(f"cannot create output directory {out}: {exc.strerror}") from None
    settings = {
        # local dirs by content (a retrained adapter in the same place is another model), hub ids by name
        "model": fingerprint(where, content=False) or model,
        "adapter": fingerprint(adapter_dir, content=True) if adapter_dir else None,
        "spec_sha256": hashlib.sha256(spec.text.encode()).hexdigest(),
        "dataset": dataset,
        "prompt_style": prompt_style,
        "max_new_tokens": max_new_tokens,
        "sampling": sampling.to_dict(),
        "stop_at_solution_end": stop_at_solution_end,
    } | ({"constrained": True} if constrained else {})
    done = read_outputs(out)
    run = check_settings(out, settings, bool(done))
    pending = [q for q in questions if q["id"] not in done]
    if pending or "model_info" not in run:
        run = {"settings": settings} | _generate(
            spec, where, adapter_dir, pending, done, out, settings, {q["id"] for q in questions},
            batch_size=batch_size, max_new_tokens=max_new_tokens, backend=backend, prompt_style=prompt_style,
            sampling=sampling, progress=progress, stop_at_solution_end=stop_at_solution_end, device=device,
            constrained=constrained,
        )
        write_run(out, run)
    rows = [done[q["id"]] for q in questions]
    info = run["model_info"]
    report = {
        "metrics": summarize(rows),
        "run": {
            "model": model,
            "adapter": adapter,
            "spec": {"name": spec.name, "source": spec.source, "sha256": settings["spec_sha256"]},
            "dataset": dataset,
            "limit": limit,
            "prompt_style": prompt_style,
            "backend": backend,
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
            "sampling": sampling.to_dict(),
            "stop_at_solution_end": stop_at_solution_end,
            "constrained": constrained,
            "device": info["device"],
            "model_info": info,
            "prompt_example": run.get("prompt_example"),
            "versions": versions(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
        "files": {"outputs": "outputs.jsonl", "report_md": "report.md", "chart": CHART},
    }
    try:
        from .chart import chart

        chart([report], [out.name], out / CHART)
    except ImportError:
        report["files"]["chart"] = None
    write_report(out, report)
    return report


def _generate(spec, model, adapter, pending, done, out, settings, question_ids, *, batch_size, max_new_tokens, backend,
              prompt_style, sampling, progress, stop_at_solution_end, device, constrained=False) -> dict:
    """Generate for ``pending`` questions, appending rows to outputs.jsonl and to ``done``."""
    from tqdm.auto import tqdm

    from .loading import load_for_eval, load_tokenizer_only

    if backend == "hf":
        hf_model, tok, info = load_for_eval(model, adapter, device=device)
    else:
        hf_model, (tok, info) = None, load_tokenizer_only(model, adapter)
    example = render_prompt(spec, tok, "{question}", prompt_style)
    record = {"model_info": info, "prompt_example": example}
    write_run(out, {"settings": settings} | record)
    if not pending:
        return record
    prompts = [render_prompt(spec, tok, q["question"], prompt_style) for q in pending]
    ids = encode_prompts(tok, prompts, prompt_style)
    order = sorted(range(len(pending)), key=lambda i: -len(ids[i]))
    gen = _make_backend(backend, model, adapter, tok, hf_model, max_new_tokens=max_new_tokens, sampling=sampling,
                        stop=spec.tags.solution_end if stop_at_solution_end else None,
                        constrained=spec if constrained else None)
    prior = [done[i] for i in done if i in question_ids]
    valid, seen = sum(r["valid"] for r in prior), len(prior)
    total = len(question_ids)
    with OutputsWriter(out) as writer, tqdm(total=total, initial=total - len(pending), disable=not progress,
                                            desc=f"eval {out.name}", unit="prompt") as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            gens, seconds = gen.generate([ids[i] for i in batch])
            for i, g in zip(batch, gens):
                q = pending[i]
                row = {"id": q["id"], "question": q["question"], "completion": g.text, "n_tokens": g.n_tokens,
                       "prompt_tokens": g.prompt_tokens, "finish_reason": g.finish_reason,
                       "seconds": seconds / len(batch)} | score(spec, g.text, q["answer"])
                writer.write(row)
                done[q["id"]] = row
                valid += row["valid"]
                seen += 1
            writer.sync()
            bar.update(len(batch))
            bar.set_postfix(compliance=f"{valid / seen:.1%}")
    return record
