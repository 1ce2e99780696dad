"""``evaluate()``: generate for every question, validate, score, and write the report.

Flow: check arguments (:class:`EvalSettings`, the device) and the output directory (an earlier
eval run or a new one, ``outputs.check_out_dir``) before anything slow, load the questions, resume from
``outputs.jsonl`` (ids already there are skipped; finished rows must come from the same
settings), load the model only if some prompt is pending, generate in batches (longest
prompts first, so a batch holds prompts of similar length; the hf backend through
``harness.fastdecode`` unless ``fast_decoding`` is off, removed when generation ends), write each row as soon
as its batch is done, put outputs.jsonl in dataset order, then compute the report over the requested
questions and write report.json, report.md and chart.png. A run whose outputs are complete (and
in order) only rebuilds the report. Not handled: several models per call (run it twice and use ``compare``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from reasoning_kit.spec import FormatSpec, load_spec

from . import EvalError
from .generate import Sampling
from .outputs import (OutputsWriter, check_out_dir, check_settings, mark_eval_dir, read_outputs, write_in_order,
                      write_run)
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


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate: everything but the spec, the model and the output directory."""

    dataset: str = "gsm8k-test"
    limit: int | None = None
    batch_size: int = 8
    max_new_tokens: int = 512
    backend: str = "hf"
    prompt_style: str = "spec"
    sampling: Sampling = field(default_factory=Sampling)
    progress: bool = True
    stop_at_solution_end: bool = True
    device: str | None = None
    constrained: bool = False  # decode through the spec's grammar (hf backend, llguidance)
    fast_decoding: bool = True  # hf backend: harness.fastdecode (exact; CUDA-graph steps on a GPU)

    @classmethod
    def of(cls, **options) -> "EvalSettings":
        """Settings from keyword options (``sampling`` may be a dict); unknown names are a TypeError."""
        options["sampling"] = Sampling.from_any(options.get("sampling"))
        return cls(**options)


def _check_args(s: EvalSettings) -> None:
    if s.batch_size < 1:
        raise EvalError(f"--batch-size must be at least 1, got {s.batch_size}")
    if s.max_new_tokens < 1:
        raise EvalError(f"--max-new-tokens must be at least 1, got {s.max_new_tokens}")
    if s.backend not in BACKENDS:
        raise EvalError(f"unknown backend {s.backend!r} (choose from: {', '.join(BACKENDS)})")
    if s.prompt_style not in STYLES:
        raise EvalError(f"unknown prompt style {s.prompt_style!r} (choose from: {', '.join(STYLES)})")
    if not s.sampling.temperature >= 0 or not math.isfinite(s.sampling.temperature):
        raise EvalError(f"--temperature must be a finite number >= 0, got {s.sampling.temperature}")
    if not 0 < s.sampling.top_p <= 1:
        raise EvalError(f"--top-p must be in (0, 1], got {s.sampling.top_p}")
    if s.device is not None and s.backend == "hf":
        check_device(s.device)


def check_device(device: str) -> None:
    """EvalError for a --device string torch does not parse, or a CUDA device this torch cannot use."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise EvalError(f"--device {device!r} is not a torch device ({str(exc).splitlines()[0]}); use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise EvalError(f"--device {device}: {why}; use --device cpu (or leave --device out)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise EvalError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")


def _make_backend(backend: str, model: str, adapter, tok, hf_model, *, max_new_tokens, sampling, stop, constrained=None):
    if backend == "hf":
        from harness.constrained import ConstrainedError

        from .generate import HFBackend

        try:
            return HFBackend(hf_model, tok, max_new_tokens=max_new_tokens, sampling=sampling, stop=stop,
                             constrained=constrained)
        except ConstrainedError as exc:
            raise EvalError(str(exc)) from None
    from .loading import generation_eos_ids
    from .vllm_backend import VLLMBackend

    return VLLMBackend(model, tok, adapter=adapter, max_new_tokens=max_new_tokens, sampling=sampling, stop=stop,
                       eos_ids=generation_eos_ids(model, tok))


def _install_fast_decoding(s: EvalSettings, hf_model):
    """(``harness.fastdecode.Installed`` or None, why not): the fast decoding path on the hf backend's model."""
    if not s.fast_decoding:
        return None, "turned off (--no-fast-decoding, fast_decoding=False)"
    if s.backend != "hf":
        return None, f"the {s.backend} backend decodes with its own engine"
    from harness import fastdecode

    return fastdecode.install(hf_model), None


def _fast_decoding_record(installed, why_not: str | None) -> dict:
    """What fast decoding did, for run.json and report.json."""
    if installed is None:
        return {"used": False, "why_not": why_not}
    return {"used": True, "calls": installed.calls, "bucketed_steps": installed.bucketed_steps,
            "graphed_steps": installed.graphed_steps, "not_graphed": sorted(installed.graph_skips)}


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


def evaluate(spec, model: str, *, adapter: str | None = None, out_dir, settings: EvalSettings | None = None,
             **options) -> dict:
    """Evaluate ``model`` (+ ``adapter``) under ``spec``; write outputs and report to ``out_dir``.

    ``settings`` (or the same names as keyword ``options``) say how; see :class:`EvalSettings`.
    Returns the report dict (``report["metrics"]``: see ``harness.evaluate.report``).
    Raises EvalError (one line) for bad paths, options or a mismatched resume.
    """
    from .loading import resolve_sources

    s = settings if settings is not None else EvalSettings.of(**options)
    spec = spec if isinstance(spec, FormatSpec) else load_spec(spec)
    _check_args(s)
    out = Path(out_dir)
    check_out_dir(out)
    where, adapter_dir = resolve_sources(model, adapter)
    if s.constrained:
        _check_constrained(spec, s.backend)
    if s.backend == "vllm":
        from .vllm_backend import require_vllm

        require_vllm()
    questions = load_questions(spec, s.dataset, s.limit)
    if not questions:
        raise EvalError(f"dataset {s.dataset} holds no questions")
    ids = [q["id"] for q in questions]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise EvalError(f"dataset {s.dataset} has duplicate question ids (e.g. {dup!r}): ids must be unique to resume")
    settings_record = {
        # local dirs by content (a retrained adapter in the same place is another model), hub ids by name
        "model": fingerprint(where, content=False) or model,
        "adapter": fingerprint(adapter_dir, content=True) if adapter_dir else None,
        "spec_sha256": hashlib.sha256(spec.text.encode()).hexdigest(),
        "dataset": s.dataset,
        "prompt_style": s.prompt_style,
        "max_new_tokens": s.max_new_tokens,
        "sampling": s.sampling.to_dict(),
        "stop_at_solution_end": s.stop_at_solution_end,
    } | ({"constrained": True} if s.constrained else {})
    done = read_outputs(out)
    run = check_settings(out, settings_record, bool(done))
    pending = [q for q in questions if q["id"] not in done]
    if pending or "model_info" not in run:
        job = _Job(spec, where, adapter_dir, out, settings_record, s)
        run = {"settings": settings_record} | _generate(job, pending, done, {q["id"] for q in questions})
        write_run(out, run)
    else:
        _open_out(out)
    write_in_order(out, done, ids)
    rows = [done[q["id"]] for q in questions]
    info = run["model_info"]
    report = {
        "metrics": summarize(rows),
        "run": {
            "model": model,
            "adapter": adapter,
            "spec": {"name": spec.name, "source": spec.source, "sha256": settings_record["spec_sha256"]},
            "dataset": s.dataset,
            "limit": s.limit,
            "prompt_style": s.prompt_style,
            "backend": s.backend,
            "batch_size": s.batch_size,
            "max_new_tokens": s.max_new_tokens,
            "sampling": s.sampling.to_dict(),
            "stop_at_solution_end": s.stop_at_solution_end,
            "constrained": s.constrained,
            "fast_decoding": run.get("fast_decoding"),  # what the last call that generated did (None: older run.json)
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


def _open_out(out: Path) -> None:
    """Create ``out`` (parents too) and mark it as an eval run."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        mark_eval_dir(out)
    except OSError as exc:
        raise EvalError(f"cannot create output directory {out}: {exc.strerror}") from None


@dataclass(frozen=True)
class _Job:
    """What generation needs besides the questions: sources, output directory, settings."""

    spec: FormatSpec
    model: str  # hub id or resolved local directory
    adapter: str | None
    out: Path
    record: dict  # the settings stored in run.json
    settings: EvalSettings


def _generate(job: _Job, pending, done, question_ids) -> dict:
    """Generate for ``pending`` questions, appending rows to outputs.jsonl and to ``done``."""
    from tqdm.auto import tqdm

    from .loading import load_for_eval, load_tokenizer_only

    s, spec, out = job.settings, job.spec, job.out
    if s.backend == "hf":
        hf_model, tok, info = load_for_eval(job.model, job.adapter, device=s.device)
    else:
        hf_model, (tok, info) = None, load_tokenizer_only(job.model, job.adapter)
    _open_out(out)  # only now: a model or adapter that fails to load leaves no directory behind
    example = render_prompt(spec, tok, "{question}", s.prompt_style)
    record = {"model_info": info, "prompt_example": example}
    write_run(out, {"settings": job.record} | record)
    if not pending:
        return record
    prompts = [render_prompt(spec, tok, q["question"], s.prompt_style) for q in pending]
    ids = encode_prompts(tok, prompts, s.prompt_style)
    order = sorted(range(len(pending)), key=lambda i: -len(ids[i]))
    gen = _make_backend(s.backend, job.model, job.adapter, tok, hf_model, max_new_tokens=s.max_new_tokens,
                        sampling=s.sampling, stop=spec.tags.solution_end if s.stop_at_solution_end else None,
                        constrained=spec if s.constrained else None)
    prior = [done[i] for i in done if i in question_ids]
    valid, seen = sum(r["valid"] for r in prior), len(prior)
    total = len(question_ids)
    fast, why_not = _install_fast_decoding(s, hf_model)
    try:
        with OutputsWriter(out) as writer, tqdm(total=total, initial=total - len(pending), disable=not s.progress,
                                                desc=f"eval {out.name}", unit="prompt") as bar:
            for start in range(0, len(order), s.batch_size):
                batch = order[start : start + s.batch_size]
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
    finally:
        if fast is not None:
            fast.undo()
    return record | {"fast_decoding": _fast_decoding_record(fast, why_not)}
