"""``reasoning-kit eval`` on a tiny real model trained in the test (CPU, seconds).

The tiny Llama (tests/tiny.py) is trained to continue each of 12 "What is a + b?" prompts with
a known completion (``train_to_outputs``: until every completion token wins by a wide logit
margin), so its greedy outputs are a known mix on any CPU: valid and invalid formats, right
and wrong answers, stops at the solution end tag, at EOS and at the length limit. Every figure
is checked against an independent recomputation from outputs.jsonl with the validator and
``reasoning_kit.answers``. The vLLM backend cannot run here (no vLLM, no GPU): only its
install error and its argument mapping are tested.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.evaluate import EvalError
from harness.evaluate.compare import compare_table
from harness.evaluate.generate import HFBackend, Sampling, finish, left_pad
from harness.evaluate.prompts import encode_prompts, render_prompt
from harness.evaluate.report import summarize
from harness.evaluate.run import evaluate
from harness.evaluate.scoring import last_number, score
from reasoning_kit.answers import is_correct
from reasoning_kit.spec import load_spec
from reasoning_kit.template import prompt_messages, render
from reasoning_kit.validator import validate
from tests.tiny import EOS, corpus, make_model, make_tokenizer, train_to_outputs

SPEC = load_spec("working_out")
RETRAINED = f"The sum is 3.{EOS}"  # what the 'trained' adapter makes of question 0 (base: KINDS[0])
PNG = b"\x89PNG\r\n\x1a\n"
N_QUESTIONS = 12
MAX_NEW = 40


pytestmark = pytest.mark.usefixtures("one_thread")


def questions(n: int = N_QUESTIONS) -> list[tuple[str, str]]:
    # (i + 2) + (3i + 1), with GSM8K-style gold answers; the suffix gives prompts of different lengths.
    return [(f"What is {i + 2} + {3 * i + 1}?" + " Show your work." * (i % 3), str(4 * i + 3)) for i in range(n)]


KINDS = ("valid", "valid_wrong", "no_reasoning_end", "no_solution", "too_long", "empty_reasoning")


def target(i: int) -> str:
    """The completion the tiny model is trained to give question i (one of KINDS, in turn)."""
    a, b, s = i + 2, 3 * i + 1, 4 * i + 3
    t = SPEC.tags
    return {
        "valid": f"We add {a} and {b} to get {s}.{t.reasoning_end}{t.solution_start}{s}{t.solution_end}{EOS}",
        "valid_wrong": f"We add {a} and {b} to get {s + 1}.{t.reasoning_end}{t.solution_start}{s + 1}{t.solution_end}{EOS}",
        "no_reasoning_end": f"We add {a} and {b}.{t.solution_start}{s}{t.solution_end}{EOS}",
        "no_solution": f"The sum is {s}.{EOS}",
        "too_long": "We add" + f" {a} and {b}" * 20,  # longer than MAX_NEW tokens
        "empty_reasoning": f"{t.reasoning_end}{t.solution_start}{s}{t.solution_end}{EOS}",
    }[KINDS[i % len(KINDS)]]


def expected(tok, i: int, *, stop: bool = True) -> str:
    """What greedy generation must give for question i: the target cut at MAX_NEW tokens (and after the stop tag)."""
    text = tok.decode(tok(target(i), add_special_tokens=False).input_ids[:MAX_NEW])
    end = SPEC.tags.solution_end
    return text[: text.index(end) + len(end)] if stop and end in text else text


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, one_thread):
    """(model, tokenizer, saved dir) of a tiny Llama trained to answer question i with ``target(i)``."""
    tok = make_tokenizer(SPEC, corpus(SPEC, 20))
    model = make_model(tok)
    prompts = [render_prompt(SPEC, tok, q) for q, _ in questions()]
    train_to_outputs(model, tok, prompts, [target(i) for i in range(N_QUESTIONS)], max_new_tokens=MAX_NEW)
    path = tmp_path_factory.mktemp("tiny") / "model"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model, tok, path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sums.jsonl"
    rows = [{"question": q, "answer": f"Add them. #### {a}"} for q, a in questions()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_eval(tiny, dataset, out: Path, *extra: str):
    result = CliRunner().invoke(
        main,
        ["eval", "--spec", "working_out", "--model", str(tiny[2]), "--dataset", str(dataset), "--batch-size", "5",
         "--max-new-tokens", str(MAX_NEW), "--out", str(out), "--quiet", *extra],
    )
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def evaluated(tiny, dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tuned"
    run_eval(tiny, dataset, out)
    return out


def read_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "outputs.jsonl").read_text().splitlines()]


class TestEvaluate:
    def test_outputs_are_in_dataset_order(self, tiny, evaluated):
        lengths = [len(render_prompt(SPEC, tiny[1], q)) for q, _ in questions()]
        assert lengths != sorted(lengths, reverse=True)  # batches (longest prompt first) run in another order
        assert [r["id"] for r in read_rows(evaluated)] == [str(i) for i in range(N_QUESTIONS)]

    def test_writes_every_file(self, evaluated):
        for name in ("outputs.jsonl", "report.json", "report.md", "run.json"):
            assert (evaluated / name).stat().st_size > 0, name
        assert (evaluated / "chart.png").read_bytes()[:8] == PNG

    def test_report_fields(self, evaluated):
        report = json.loads((evaluated / "report.json").read_text())
        run = report["run"]
        assert run["spec"]["name"] == "working_out"
        assert run["adapter"] is None and run["backend"] == "hf" and run["prompt_style"] == "spec"
        assert run["device"].startswith("cpu")
        assert run["fast_decoding"] == {"used": True, "calls": 3, "bucketed_steps": 0, "graphed_steps": 0,
                                        "not_graphed": ["the model is not on a GPU"]}  # the default; 3 batches
        assert run["versions"]["torch"] and run["versions"]["transformers"]
        assert run["sampling"]["greedy"] is True
        assert set(report["metrics"]) >= {
            "format_compliance", "accuracy", "accuracy_compliant", "extractable_rate", "lenient_accuracy",
            "error_codes", "finish_reasons", "length", "generation",
        }
        assert report["metrics"]["generation"]["tokens_per_s"] > 0

    def test_outputs_are_the_trained_completions(self, tiny, evaluated):
        rows = {int(r["id"]): r for r in read_rows(evaluated)}
        assert sorted(rows) == list(range(N_QUESTIONS))
        assert [rows[i]["completion"] for i in range(N_QUESTIONS)] == [expected(tiny[1], i) for i in range(N_QUESTIONS)]
        assert [rows[i]["finish_reason"] for i in range(N_QUESTIONS)] == [
            {"no_solution": "eos", "too_long": "length"}.get(KINDS[i % len(KINDS)], "stop") for i in range(N_QUESTIONS)
        ]

    def test_outputs_rows_are_scored_by_the_validator(self, evaluated):
        rows = read_rows(evaluated)
        for r in rows:
            v = validate(SPEC, r["completion"], transcript=False)
            assert (r["valid"], r["answer"]) == (v.valid, v.answer)
            assert [e["code"] for e in r["errors"]] == list(v.codes)
            assert r["correct"] == is_correct(SPEC, v.answer, r["gold"])

    def test_metrics_match_a_recount(self, evaluated):
        rows = read_rows(evaluated)
        m = json.loads((evaluated / "report.json").read_text())["metrics"]
        valid = [r for r in rows if r["valid"]]
        assert len(valid) == 4 and len(rows) == N_QUESTIONS  # the two valid KINDS, twice each
        assert 0 < sum(r["correct"] for r in valid) < len(valid) and m["error_codes"]
        assert m["format_compliance"] == pytest.approx(len(valid) / len(rows))
        assert m["accuracy"] == pytest.approx(sum(r["correct"] for r in rows) / len(rows))
        assert m["accuracy_compliant"] == pytest.approx(sum(r["correct"] for r in valid) / len(valid))
        assert m["extractable_rate"] == pytest.approx(sum(r["answer"] is not None for r in rows) / len(rows))
        assert m["error_codes"] == dict(Counter(c for r in rows for c in {e["code"] for e in r["errors"]}))
        assert m["generation"]["tokens"] == sum(r["n_tokens"] for r in rows)

    def test_report_md_quotes_the_figures(self, evaluated):
        m = json.loads((evaluated / "report.json").read_text())["metrics"]
        md = (evaluated / "report.md").read_text()
        assert f"| format compliance (strict) | {100 * m['format_compliance']:.1f}% ({m['valid']}/{m['n']}) |" in md
        for code, count in m["error_codes"].items():
            assert f"| {code} | {count} |" in md


@pytest.fixture(scope="module")
def adapters(tiny, tmp_path_factory) -> dict[str, Path]:
    """LoRA adapters saved with their tokenizer: 'zero' (B = 0, a no-op) and 'trained' (question 0 -> RETRAINED)."""
    from peft import LoraConfig, get_peft_model

    out = {}
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    for name in ("zero", "trained"):
        base = make_model(tiny[1])
        base.load_state_dict(tiny[0].state_dict())
        peft_model = get_peft_model(base, LoraConfig(r=8, target_modules=modules))
        if name == "trained":
            prompt = render_prompt(SPEC, tiny[1], questions(1)[0][0])
            train_to_outputs(peft_model, tiny[1], [prompt], [RETRAINED])
        path = tmp_path_factory.mktemp("adapters") / name
        peft_model.save_pretrained(path)
        tiny[1].save_pretrained(path)
        out[name] = path
    return out


class TestAdapter:
    @pytest.mark.parametrize("name", ["zero", "trained"])
    def test_adapter_is_applied(self, tiny, dataset, evaluated, adapters, tmp_path, name):
        run_eval(tiny, dataset, tmp_path, "--adapter", str(adapters[name]))
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["run"]["adapter"] == str(adapters[name])
        base = {r["id"]: r["completion"] for r in read_rows(evaluated)}
        tuned = {r["id"]: r["completion"] for r in read_rows(tmp_path)}
        assert tuned["0"] == (base["0"] if name == "zero" else RETRAINED)
        if name == "zero":
            assert tuned == base


class TestResume:
    def test_skips_ids_already_written_and_cuts_a_torn_line(self, tiny, dataset, evaluated, tmp_path):
        full = read_rows(evaluated)
        out = tmp_path / "resumed"
        out.mkdir()
        (out / "reasoning-kit-run.json").write_text('{"command": "eval"}')  # an eval run (others are refused)
        kept = [dict(full[0], completion="kept as written"), full[1], full[2]]
        torn = json.dumps(full[3])[:25]
        (out / "outputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept) + torn)
        run_eval(tiny, dataset, out)
        rows = read_rows(out)
        assert [r["id"] for r in rows[:3]] == [r["id"] for r in kept]
        assert rows[0]["completion"] == "kept as written"
        assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in full)
        by_id = {r["id"]: r["completion"] for r in full}
        assert all(r["completion"] == by_id[r["id"]] for r in rows[3:])  # greedy: same as the first run

    def test_rows_end_in_dataset_order(self, tiny, dataset, evaluated, tmp_path):
        """Rows kept out of order (as batches write them: longest prompt first) are put in dataset order."""
        full = {r["id"]: r for r in read_rows(evaluated)}
        out = tmp_path / "resumed"
        out.mkdir()
        (out / "reasoning-kit-run.json").write_text('{"command": "eval"}')
        kept = [dict(full["7"], completion="kept as written"), full["0"], full["3"]]
        (out / "outputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
        run_eval(tiny, dataset, out)
        rows = read_rows(out)
        assert [r["id"] for r in rows] == [str(i) for i in range(N_QUESTIONS)]
        assert [r["completion"] for r in rows] == [
            "kept as written" if i == "7" else full[i]["completion"] for i in map(str, range(N_QUESTIONS))
        ]

    def test_complete_run_only_rebuilds_the_report(self, tiny, dataset, evaluated):
        before = (evaluated / "outputs.jsonl").read_bytes()
        run_eval(tiny, dataset, evaluated)
        assert (evaluated / "outputs.jsonl").read_bytes() == before

    def test_other_settings_are_refused(self, tiny, dataset, evaluated):
        with pytest.raises(EvalError) as exc:
            evaluate(SPEC, str(tiny[2]), dataset=str(dataset), max_new_tokens=7, out_dir=evaluated, progress=False)
        assert str(exc.value) == (
            f"{evaluated / 'outputs.jsonl'} holds outputs made with other settings "
            f"(max_new_tokens: {MAX_NEW}, now 7); use another --out or delete that file"
        )


    def test_a_retrained_adapter_in_the_same_place_is_refused(self, tiny, dataset, adapters, tmp_path):
        import shutil

        adapter, out = tmp_path / "adapter", tmp_path / "run"
        shutil.copytree(adapters["zero"], adapter)
        run_eval(tiny, dataset, out, "--adapter", str(adapter), "--limit", "2")
        shutil.copy(adapters["trained"] / "adapter_model.safetensors", adapter / "adapter_model.safetensors")
        with pytest.raises(EvalError, match=r"holds outputs made with other settings \(adapter: '[0-9a-f]{16}', now '[0-9a-f]{16}'\)"):
            evaluate(SPEC, str(tiny[2]), adapter=str(adapter), dataset=str(dataset), limit=2, batch_size=5,
                     max_new_tokens=MAX_NEW, out_dir=out, progress=False)


class TestLoadErrors:
    @pytest.mark.parametrize(
        "kind, expected",
        [
            ("missing", "model not found: {p} (no such file or directory)"),
            ("empty_dir", "not a model directory: {p} (no config.json and not exactly one .gguf file)"),
        ],
    )
    def test_bad_model_path(self, tmp_path, dataset, kind, expected):
        p = tmp_path / "nope"
        if kind == "empty_dir":
            p.mkdir()
        result = CliRunner().invoke(main, ["eval", "--model", str(p), "--dataset", str(dataset), "--out", str(tmp_path / "o")])
        assert result.exit_code == 2
        assert result.output == "Error: " + expected.format(p=p) + "\n"
        assert not (tmp_path / "o").exists()

    @pytest.mark.parametrize(
        "kind, expected",
        [
            ("missing", "adapter not found: {p} (no such directory)"),
            ("empty_dir", "not a LoRA adapter directory: {p} (no adapter_config.json)"),
        ],
    )
    def test_bad_adapter_path(self, tiny, tmp_path, dataset, kind, expected):
        p = tmp_path / "adapter"
        if kind == "empty_dir":
            p.mkdir()
        result = CliRunner().invoke(
            main, ["eval", "--model", str(tiny[2]), "--adapter", str(p), "--dataset", str(dataset), "--out", str(tmp_path / "o")]
        )
        assert result.exit_code == 2
        assert result.output == "Error: " + expected.format(p=p) + "\n"

    def test_missing_model_option(self):
        result = CliRunner().invoke(main, ["eval", "--out", "x"])
        assert result.exit_code == 2
        assert "Missing option '--model'." in result.output


class TestHFBackend:
    def test_batched_equals_one_at_a_time(self, tiny):
        model, tok, _ = tiny
        tok.padding_side = "left"
        ids = encode_prompts(tok, [render_prompt(SPEC, tok, q) for q, _ in questions()])
        assert len({len(x) for x in ids}) > 1, "prompts of different lengths, so batches are padded"
        backend = HFBackend(model, tok, max_new_tokens=MAX_NEW, stop=SPEC.tags.solution_end)
        batched = [g.text for k in range(0, len(ids), 6) for g in backend.generate(ids[k : k + 6])[0]]
        single = [backend.generate([x])[0][0].text for x in ids]
        assert batched == single == [expected(tok, i) for i in range(N_QUESTIONS)]

    def test_stops_right_after_the_solution_end_tag(self, tiny):
        model, tok, _ = tiny
        ids = encode_prompts(tok, [render_prompt(SPEC, tok, q) for q, _ in questions()])
        stopped, _ = HFBackend(model, tok, max_new_tokens=MAX_NEW, stop=SPEC.tags.solution_end).generate(ids)
        free, _ = HFBackend(model, tok, max_new_tokens=MAX_NEW, stop=None).generate(ids)
        assert [f.text for f in free] == [expected(tok, i, stop=False) for i in range(N_QUESTIONS)]
        hits = [(s, f) for s, f in zip(stopped, free) if s.finish_reason == "stop"]
        assert len(hits) == 8  # the KINDS with a solution block, twice each
        for s, f in hits:
            assert s.text.endswith(SPEC.tags.solution_end) and s.text.count(SPEC.tags.solution_end) == 1
            assert f.text.startswith(s.text) and len(f.text) > len(s.text)

    def test_eos_is_kept_and_padding_is_not(self, tiny):
        model, tok, _ = tiny
        ids = encode_prompts(tok, [render_prompt(SPEC, tok, q) for q, _ in questions()])
        gens, _ = HFBackend(model, tok, max_new_tokens=MAX_NEW, stop=None).generate(ids)
        ended = [g for g in gens if g.finish_reason == "eos"]
        assert len(ended) == 10  # all but the too_long KIND, which stops at the length limit
        for g in ended:
            assert g.text.endswith(EOS) and g.text.count(EOS) == 1 and "<|pad|>" not in g.text

    def test_sampling_is_reproducible_with_a_seed(self, tiny):
        model, tok, _ = tiny
        ids = encode_prompts(tok, [render_prompt(SPEC, tok, q) for q, _ in questions(4)])
        runs = [
            [g.text for g in HFBackend(model, tok, max_new_tokens=12, sampling=Sampling(1.0, 0.95, 7)).generate(ids)[0]]
            for _ in range(2)
        ]
        assert runs[0] == runs[1]


FAST_LIMIT = 6  # batches of 5 and 1; one row runs to the length limit


@pytest.fixture(scope="module")
def decoded(tiny, dataset, tmp_path_factory) -> dict:
    """Eval runs of the first FAST_LIMIT questions with fast decoding (graphs="eager") and without."""
    from harness import fastdecode

    installed, install = [], fastdecode.install

    def eager(model, **kw):
        installed.append(install(model, graphs="eager"))
        return installed[-1]

    root = tmp_path_factory.mktemp("fastdecode")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastdecode, "install", eager)
        run_eval(tiny, dataset, root / "fast", "--limit", str(FAST_LIMIT))
        run_eval(tiny, dataset, root / "plain", "--limit", str(FAST_LIMIT), "--no-fast-decoding")
    return {"installed": installed, "fast": root / "fast", "plain": root / "plain"}


class TestFastDecoding:
    """``--fast-decoding`` (the default) changes how the hf backend decodes, not what it decodes.

    The tiny model's greedy outputs are the trained completions by a logit margin of at least 2 at every token
    (``train_to_outputs``), far beyond what kernel rounding moves, so both paths must give them, on any CPU. On a CPU
    ``graphs="auto"`` decodes without the bucketed steps (they exist for CUDA graphs); the test installs with
    ``graphs="eager"`` so every decoding step also goes through harness.decodegraph's bucketed step, as a GPU's
    graph replays do.
    """

    def test_installed_once_and_undone(self, decoded):
        [installed] = decoded["installed"]  # the fast run only
        assert installed.calls == 2 and installed.model is None  # one call per batch; undo() ran

    def test_every_decoding_step_went_through_the_fast_path(self, decoded):
        rows = sorted(read_rows(decoded["fast"]), key=lambda r: -r["prompt_tokens"])  # the batches, as eval forms them
        steps = sum(max(r["n_tokens"] for r in rows[k : k + 5]) - 1 for k in range(0, len(rows), 5))
        record = json.loads((decoded["fast"] / "report.json").read_text())["run"]["fast_decoding"]
        assert record == {"used": True, "calls": 2, "bucketed_steps": steps, "graphed_steps": 0, "not_graphed": []}
        assert steps >= MAX_NEW - 1  # the too_long row's batch alone
        assert "- fast decoding: on (2 generate calls, 0 decoding steps replayed as CUDA graphs)" in (
            decoded["fast"] / "report.md").read_text()

    def test_off_is_recorded(self, decoded):
        record = json.loads((decoded["plain"] / "report.json").read_text())["run"]["fast_decoding"]
        assert record == {"used": False, "why_not": "turned off (--no-fast-decoding, fast_decoding=False)"}

    def test_same_generations(self, tiny, decoded):
        fast, plain = (read_rows(decoded[name]) for name in ("fast", "plain"))
        keys = ("id", "completion", "n_tokens", "prompt_tokens", "finish_reason")
        assert [{k: r[k] for k in keys} for r in fast] == [{k: r[k] for k in keys} for r in plain]
        assert [r["completion"] for r in fast] == [expected(tiny[1], i) for i in range(FAST_LIMIT)]


@pytest.mark.gpu
def test_cuda_graph_steps_give_the_same_generations(tiny, dataset, tmp_path):
    """On a GPU the default replays every decoding step as a CUDA graph; the generations are transformers' own."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    run_eval(tiny, dataset, tmp_path / "fast", "--device", "cuda")
    run_eval(tiny, dataset, tmp_path / "plain", "--device", "cuda", "--no-fast-decoding")
    record = json.loads((tmp_path / "fast" / "report.json").read_text())["run"]["fast_decoding"]
    assert record["used"] and record["graphed_steps"] == record["bucketed_steps"] > 0 and not record["not_graphed"]
    fast, plain = read_rows(tmp_path / "fast"), read_rows(tmp_path / "plain")
    assert [r["completion"] for r in fast] == [r["completion"] for r in plain]  # bf16 on CUDA: the same weights


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer(SPEC, corpus(SPEC, 20))


class TestFinish:
    @pytest.mark.parametrize(
        "pieces, stop, kept, reason",
        [
            (["We add.", "<end_working_out>", "<SOLUTION>", "3", "</SOLUTION>", EOS, "<|pad|>"], None, 6, "eos"),
            (["We add.", "<end_working_out>", "<SOLUTION>", "3", "</SOLUTION>", "more", EOS], "</SOLUTION>", 5, "stop"),
            # pad == EOS: the padding after a stopped row must not read as an EOS the model wrote
            (["We add.", "<SOLUTION>", "3", "</SOLUTION>", EOS, EOS], "</SOLUTION>", 4, "stop"),
            (["We add 3", " and 4"], "</SOLUTION>", 2, "length"),
        ],
    )
    def test_cut(self, tok, pieces, stop, kept, reason):
        encoded = [tok.encode(p, add_special_tokens=False) for p in pieces]
        g = finish(tok, [i for ids in encoded for i in ids], [tok.eos_token_id], stop)
        assert (g.text, g.finish_reason) == ("".join(pieces[:kept]), reason)
        assert g.n_tokens == sum(map(len, encoded[:kept]))


class TestStopAfterString:
    def test_flags_rows_whose_generated_text_holds_the_tag(self, tok):
        import torch

        from harness.evaluate.generate import _stopping_criteria_class

        enc = lambda t: tok.encode(t, add_special_tokens=False)  # noqa: E731
        prompt = enc("Put it in <SOLUTION></SOLUTION>. What is 1 + 2?")  # the tag in the prompt must not count
        done = enc("We add.<end_working_out><SOLUTION>3</SOLUTION>")
        open_ = done[:-1] + enc("3")
        rows = torch.tensor([prompt + done, prompt + open_])
        criterion = _stopping_criteria_class()(tok, SPEC.tags.solution_end, len(prompt))
        assert criterion(rows, None).tolist() == [True, False]


class TestLeftPad:
    def test_pads_on_the_left_with_a_mask(self):
        ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
        assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
        assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


class TestPrompts:
    def test_spec_style_is_the_spec_template_with_generation_prompt(self, tiny):
        tok = tiny[1]
        text = render_prompt(SPEC, tok, "What is 2 + 2?", "spec")
        assert text == render(SPEC, prompt_messages(SPEC, "What is 2 + 2?"), add_generation_prompt=True, eos_token=EOS)
        assert text.endswith(SPEC.generation_prompt)

    def test_native_style_uses_the_tokenizer_template(self):
        tok = make_tokenizer(SPEC, corpus(SPEC, 5))
        tok.chat_template = (
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        )
        text = render_prompt(SPEC, tok, "What is 2 + 2?", "native")
        assert text == f"<|im_start|>system\n{SPEC.system_prompt}<|im_end|>\n<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n"

    def test_native_style_needs_a_chat_template(self):
        tok = make_tokenizer(SPEC, corpus(SPEC, 5))
        tok.chat_template = None
        with pytest.raises(EvalError, match=r"^the tokenizer has no chat template of its own; use --prompt-style spec$"):
            render_prompt(SPEC, tok, "q", "native")


class TestScore:
    @pytest.mark.parametrize(
        "text, expected",
        [("so 3 + 4 = 7.", "7"), ("total 1,250 dollars", "1,250"), ("-3 then 2.5", "2.5"), ("no digits", None)],
    )
    def test_last_number(self, text, expected):
        assert last_number(text) == expected

    def test_lenient_answer_when_the_format_is_missing(self):
        row = score(SPEC, "Adding them gives 1,234 apples.<|im_end|>", "1234")
        assert (row["valid"], row["answer"], row["correct"]) == (False, None, False)
        assert (row["lenient_answer"], row["lenient_correct"]) == ("1,234", True)

    def test_strict_answer_wins_over_later_numbers(self):
        row = score(SPEC, "I add.<end_working_out><SOLUTION>5</SOLUTION> or 6", "5")
        assert (row["answer"], row["lenient_answer"], row["correct"]) == ("5", "5", True)


class TestSummarize:
    def test_counts_each_code_once_per_output(self):
        text = "a<SOLUTION>b<SOLUTION>c<end_working_out>"
        rows = [dict(score(SPEC, text, "1"), completion=text, n_tokens=3, finish_reason="length", seconds=1.0)]
        codes = [e["code"] for e in rows[0]["errors"]]
        m = summarize(rows)
        assert m["error_codes"] == {c: 1 for c in codes}
        assert m["accuracy_compliant"] is None and m["format_compliance"] == 0.0

    def test_unparsable_gold_is_left_out_of_accuracy(self):
        good = "x<end_working_out><SOLUTION>4</SOLUTION>"
        rows = [
            dict(score(SPEC, good, gold), completion=good, n_tokens=5, finish_reason="stop", seconds=0.5)
            for gold in ("4", "four")
        ]
        m = summarize(rows)
        assert (m["accuracy"], m["graded"], m["gold_unparsable"], m["format_compliance"]) == (1.0, 1, 1, 1.0)
        assert m["generation"]["tokens_per_s"] == pytest.approx(10.0)


@pytest.fixture(scope="module")
def native(tiny, dataset, tmp_path_factory) -> Path:
    """A second run with other settings (no stop at the solution end, 6 prompts)."""
    out = tmp_path_factory.mktemp("runs") / "base"
    run_eval(tiny, dataset, out, "--no-stop-at-solution-end", "--limit", "6")
    return out


class TestCompare:
    def test_table_has_one_column_per_run_on_the_common_prompts(self, evaluated, native):
        table = compare_table([native, evaluated])
        lines = table.splitlines()
        assert lines[0] == "| | base | tuned |"
        common = {r["id"] for r in read_rows(native)} & {r["id"] for r in read_rows(evaluated)}
        assert len(common) == 6 < len(read_rows(evaluated))
        reports = [summarize([r for r in read_rows(d) if r["id"] in common]) for d in (native, evaluated)]
        assert next(line for line in lines if line.startswith("| prompts |")) == "| prompts | 6 | 6 |"
        row = next(line for line in lines if line.startswith("| **format compliance** |"))
        for m in reports:
            assert f"{100 * m['format_compliance']:.1f}% ({m['valid']}/{m['n']})" in row
        codes = set(reports[0]["error_codes"]) | set(reports[1]["error_codes"])
        assert {line.split("|")[1].strip()[len("error: "):] for line in lines if line.startswith("| error: ")} == codes

    def test_cli_prints_the_table_and_writes_a_chart(self, evaluated, native, tmp_path):
        chart = tmp_path / "cmp.png"
        result = CliRunner().invoke(main, ["eval", "compare", str(native), str(evaluated), "--chart", str(chart)])
        assert result.exit_code == 0, result.output
        assert result.stdout == compare_table([native, evaluated]) + f"chart: {chart}\n"
        assert chart.read_bytes()[:8] == PNG and chart.stat().st_size > 5000

    def test_one_warning_line_per_difference(self, evaluated, native):
        result = CliRunner().invoke(main, ["eval", "compare", str(native), str(evaluated)])
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines() == [
            f"warning: the runs evaluated different prompts (base 6, tuned {N_QUESTIONS}); the table compares the 6 they "
            "share (by id)",
            "warning: stop at solution end differs: base False, tuned True",
        ]

    def test_prompt_style_and_size_of_a_native_baseline(self, evaluated, tmp_path):
        import shutil

        other = tmp_path / "native"
        shutil.copytree(evaluated, other)
        report = json.loads((other / "report.json").read_text())
        report["run"]["prompt_style"] = "native"  # as `eval --prompt-style native` records it
        (other / "report.json").write_text(json.dumps(report))
        rows = read_rows(other)[:3]
        (other / "outputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        result = CliRunner().invoke(main, ["eval", "compare", str(evaluated), str(other)])
        assert result.stderr.splitlines() == [
            f"warning: the runs evaluated different prompts (tuned {N_QUESTIONS}, native 3); the table compares the 3 "
            "they share (by id)",
            "warning: prompt style differs: tuned spec, native native",
        ]

    def test_like_runs_give_no_warning(self, evaluated):
        result = CliRunner().invoke(main, ["eval", "compare", str(evaluated), str(evaluated)])
        assert result.exit_code == 0 and result.stderr == ""

    def test_missing_report(self, tmp_path):
        result = CliRunner().invoke(main, ["eval", "compare", str(tmp_path)])
        assert result.exit_code == 2
        assert result.output == f"Error: no report.json in {tmp_path} (run reasoning-kit eval --out {tmp_path} first)\n"


class TestVLLM:
    """vLLM is not installed here: only its error and the argument mapping can run."""

    @pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
    def test_missing_vllm_is_one_line(self, tiny, dataset, tmp_path):
        result = CliRunner().invoke(
            main, ["eval", "--model", str(tiny[2]), "--backend", "vllm", "--dataset", str(dataset), "--out", str(tmp_path / "o")]
        )
        assert result.exit_code == 2
        assert result.output == (
            "Error: the vllm backend needs vLLM, which is not installed: pip install 'reasoning-kit[vllm]' (CUDA only)\n"
        )

    def test_no_fast_decoding(self):
        """harness.fastdecode wraps a transformers model's generate: vLLM decodes on its own, and it says so."""
        from harness.evaluate.run import EvalSettings, _install_fast_decoding

        assert _install_fast_decoding(EvalSettings(backend="vllm"), None) == (
            None, "the vllm backend decodes with its own engine")

    @pytest.mark.parametrize(
        "sampling, stop, expected",
        [
            (Sampling(), "</SOLUTION>", {"temperature": 0.0, "top_p": 1.0, "stop": ["</SOLUTION>"]}),
            (Sampling(0.7, 0.9, 3), None, {"temperature": 0.7, "top_p": 0.9, "seed": 3}),
        ],
    )
    def test_sampling_kwargs(self, sampling, stop, expected):
        from harness.evaluate.vllm_backend import sampling_kwargs

        kw = sampling_kwargs(sampling, max_new_tokens=64, stop=stop, eos_ids=[2, 0])
        assert {k: kw[k] for k in expected} == expected
        assert ("seed" in kw) == (not sampling.greedy) and ("stop" in kw) == (stop is not None)
        assert (kw["max_tokens"], kw["stop_token_ids"], kw["include_stop_str_in_output"], kw["skip_special_tokens"]) == (
            64, [2, 0], True, False)
