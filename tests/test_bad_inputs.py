"""Bad inputs to every command, driven by one table (issue 10, section 7).

Each :class:`Row` is a command line (run through click's CliRunner on ``harness.cli:main``, or
in a subprocess when a signal matters), a setup that writes files into the test's
``tmp_path`` (broken specs, malformed outputs, links, existing runs holding a user's file ...),
the exit status, a fragment of the message and, for a failing command, nothing else: every
file that existed before (in ``tmp_path`` and in the module's shared model/run directory) is
byte for byte the same afterwards, and no file appears anywhere in ``tmp_path`` except under
the row's ``creates`` directory. Exit status 2 always ends with one line ``Error: ...`` and
never shows a traceback.

The commands run in ``tmp_path/home/user/cwd`` with ``REASONING_KIT_CACHE`` in ``tmp_path``,
so a default output directory (``outputs/{name}``), a path escaping it (a spec named
``../../../x``) and the model cache all land where the snapshot sees them.

Rows fail before any training where the command allows it; the shared runs are trained once
per module (3 steps on a tiny model built with ``tests.tiny.save_tiny``). The two Ctrl-C rows run
in a subprocess and are marked slow (``pytest -m slow tests/test_bad_inputs.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from harness import outputs
from harness.cli import COMMANDS, main
from reasoning_kit.spec import load_spec
from tests.tiny import corpus, save_tiny

ROOT = Path(__file__).resolve().parents[1]
SPEC = load_spec("working_out")
SPEC_TEXT = (ROOT / "reasoning_kit" / "specs" / "working_out.toml").read_text(encoding="utf-8")
ROWS = [{"question": f"What is {a} + {b}?", "reasoning": f"We add {a} and {b} to get {a + b}.", "answer": str(a + b)}
        for a, b in [(2, 1), (3, 4), (5, 7), (6, 2)]]
R0, R1, S0, S1 = SPEC.tag_list
VALID = f"We add.{R1}{S0}4{S1}"
USER_FILE = "my-notes.txt"


# --- the shared model and runs (built once per module) ------------------------------------------


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    """``model/`` (tiny Llama), ``data.jsonl`` and runs: ``interrupted`` (Ctrl-C: checkpoint-2 of 3), ``finished``
    (that run resumed to its end, plus a user's file) and ``eval`` (2 prompts)."""
    import torch

    from harness.train.config import resolve_config
    from harness.train.run import train
    from tests.test_train_run import SigintAt

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("shared")
    save_tiny(root / "model", SPEC, corpus(SPEC, 40))
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))

    def cfg(out, **kw):
        base = {"model": str(root / "model"), "dataset": str(root / "data.jsonl"), "output_dir": str(out),
                "backend": "hf", "max_steps": 3, "per_device_train_batch_size": 4, "warmup_steps": 0, "lora_r": 4,
                "lora_alpha": 8, "gradient_checkpointing": False, "logging_steps": 1, "max_seq_length": 256,
                "packing": False}
        return resolve_config(SPEC.train, base | kw)

    quiet = lambda msg: None  # noqa: E731
    first = train(SPEC, cfg(root / "runs" / "interrupted"), progress=False, callbacks=(SigintAt({1}),), log=quiet)
    assert first.status == "interrupted" and first.checkpoint is not None
    shutil.copytree(root / "runs" / "interrupted", root / "runs" / "finished")
    done = train(SPEC, cfg(root / "runs" / "finished"), resume=True, progress=False, log=quiet)
    assert done.status == "completed"
    (root / "runs" / "finished" / USER_FILE).write_text("the user's own file\n")
    result = CliRunner().invoke(main, ["eval", "--model", str(root / "model"), "--dataset", "gsm8k-test", "--limit", "2",
                                       "--max-new-tokens", "4", "--quiet", "--out", str(root / "runs" / "eval")])
    assert result.exit_code == 0, result.output
    return root


# --- setups: each writes into ctx.t (the test's tmp_path) ---------------------------------------


@dataclass
class Ctx:
    t: Path  # tmp_path
    s: Path  # the shared directory

    def fmt(self, arg: str) -> str:
        return arg.format(t=self.t, m=self.s / "model", d=self.s / "data.jsonl",
                          a=self.s / "runs" / "finished" / "adapter", spec=self.t / "spec.toml")


def nothing(ctx: Ctx) -> None:
    pass


def files(**named: str | bytes) -> Callable[[Ctx], None]:
    """Write each ``name=content`` (``__`` in a name is a ``/``; ``_dot_`` a ``.``)."""

    def setup(ctx: Ctx) -> None:
        for key, content in named.items():
            path = ctx.t / key.replace("__", "/").replace("_dot_", ".")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))

    return setup


def spec(text: str | bytes) -> Callable[[Ctx], None]:
    """A spec file at ``{spec}`` (``tmp_path/spec.toml``)."""
    return files(spec_dot_toml=text)


def spec_with(append: str = "", **replace: str) -> Callable[[Ctx], None]:
    """The shipped working_out spec with ``old=new`` replacements (keys: name, ...) and a tail appended."""
    text = SPEC_TEXT
    for key, value in replace.items():
        old = f'{key} = "working_out"' if key == "name" else key
        assert old in text, old
        text = text.replace(old, value if key != "name" else f"name = {value}")
    return spec(text + append)


def jsonl_text(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)


def copy_run(which: str, to: str = "run") -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        shutil.copytree(ctx.s / "runs" / which, ctx.t / to, symlinks=True)

    return setup


def link(name: str, target: str) -> Callable[[Ctx], None]:
    """``tmp_path/name`` -> ``target`` (formatted with the placeholders)."""

    def setup(ctx: Ctx) -> None:
        (ctx.t / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx.t / name).symlink_to(ctx.fmt(target))

    return setup


def mark(dirname: str, command: str) -> Callable[[Ctx], None]:
    return files(**{f"{dirname}__{outputs.RUN_MARK.replace('.', '_dot_')}": json.dumps({"command": command})})


def corrupt_adapter(ctx: Ctx) -> None:
    shutil.copytree(ctx.s / "runs" / "finished" / "adapter", ctx.t / "adapter")
    (ctx.t / "adapter" / "adapter_model.safetensors").write_bytes(b"this is not a safetensors file")


def other_model(ctx: Ctx) -> None:
    """A tiny model of another width: resuming the shared run's checkpoint with it is a size mismatch."""
    save_tiny(ctx.t / "other", SPEC, corpus(SPEC, 40), hidden=32, heads=2)


def all_of(*setups: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        for s in setups:
            s(ctx)

    return setup


# --- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    argv: str  # shlex-split, then each word formatted: {t} tmp_path, {m} model, {d} data, {a} adapter, {spec}
    setup: Callable[[Ctx], None] = nothing
    code: int = 2
    says: str = ""  # a fragment of the last line (exit 2) or of the output
    creates: str | None = None  # the only place (relative to tmp_path) where new files may appear
    stdin: str | None = None
    sigint_after: str | None = None  # run in a subprocess; send SIGINT once stderr shows this text
    marks: tuple = ()


TRAIN = "train --model {m} --dataset {d} --backend hf --no-progress --max-steps 2 --set max_seq_length=256"
GRPO = "grpo --model {m} --adapter {a} --dataset {d} --backend hf --no-progress --max-steps 1"
EVAL = "eval --model {m} --dataset gsm8k-test --limit 2 --max-new-tokens 4 --quiet"
DATA = jsonl_text({"question": "What is 2 + 2?", "answer": "Add. #### 4"}, {"question": "1 + 1?", "answer": "#### 1e5"})
root_reads_all = pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes regardless of permissions")
# A fresh interpreter importing torch takes 10-20 s on a busy 2-core machine: the Ctrl-C rows run with -m slow
# (the default suite covers Ctrl-C in tests/test_output_policy.py and tests/test_train_run.py).
subprocess_row = pytest.mark.slow
no_cuda = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CUDA is available here")

TABLE = [
    # -- validate ----------------------------------------------------------------------------------
    Row("validate-missing-file", "validate {t}/nope.txt", says="nope.txt"),
    Row("validate-directory", "validate {t}/d", files(d__x="y"), says="d"),
    Row("validate-jsonl-bad-lines", "validate {t}/o.jsonl", files(o_dot_jsonl=jsonl_text({"completion": VALID}, "{oops", [1])),
        says="o.jsonl:2: not valid JSON"),
    Row("validate-jsonl-line-separators", "validate {t}/o.jsonl",
        files(o_dot_jsonl=jsonl_text({"completion": "a\u2028b\x85" + VALID})), code=0, says="o.jsonl:1: valid (answer: 4)"),
    Row("validate-JSONL-uppercase-crlf", "validate {t}/o.JSONL",
        files(o_dot_JSONL=jsonl_text({"completion": VALID}, {"text": VALID}).replace("\n", "\r\n")), code=0,
        says="2/2 valid"),
    Row("validate-not-utf8", "validate {t}/o.txt", files(o_dot_txt=b"\xff\xfe\x00junk"), says="o.txt"),
    Row("validate-invalid-output", "validate {t}/o.txt", files(o_dot_txt="no tags at all"), code=1,
        says="o.txt: invalid"),
    Row("validate-stdin-binary", "validate -", stdin="\x00\x01 junk", says="<stdin> looks binary"),
    Row("validate-stdin-text", "validate -", stdin=R1 + R1 + S0, code=1, says="<stdin>: invalid"),
    Row("validate-spec-missing", "validate --spec {t}/nope.toml {t}/o.txt", files(o_dot_txt=VALID), says="nope.toml"),
    Row("validate-spec-unknown-shipped-name", "validate --spec notaspec {t}/o.txt", files(o_dot_txt=VALID),
        says="notaspec"),
    Row("validate-spec-toml-syntax", "validate --spec {spec} -", spec_with(**{"[tags]": "[tags"}), stdin=VALID,
        says="spec.toml"),
    Row("validate-spec-unknown-key", "validate --spec {spec} -", spec_with("\n[train]\nlearning_rat = 1e-4\n"),
        stdin=VALID, says="learning_rat"),
    Row("validate-spec-bom", "validate --spec {spec} -", spec(b"\xef\xbb\xbf" + SPEC_TEXT.encode()), stdin=VALID,
        code=0, says="<stdin>: valid (answer: 4)"),
    Row("validate-spec-not-utf8", "validate --spec {spec} -", spec(SPEC_TEXT.encode() + b"\n# \xff\n"), stdin=VALID,
        says="spec.toml"),
    Row("validate-spec-name-traversal", "validate --spec {spec} -", spec_with(name='"../../../x"'), stdin=VALID,
        says="is not a safe name"),
    Row("validate-spec-name-empty", "validate --spec {spec} -", spec_with(name='""'), stdin=VALID, says="is not a safe name"),
    Row("validate-spec-name-dotdot", "validate --spec {spec} -", spec_with(name='".."'), stdin=VALID,
        says="is not a safe name"),
    Row("validate-spec-name-nul", "validate --spec {spec} -", spec_with(name='"a\\u0000b"'), stdin=VALID,
        says="is not a safe name"),
    Row("validate-spec-lora_r-negative", "validate --spec {spec} -", spec_with("\n[train]\nlora_r = -1\n"), stdin=VALID,
        says="train.lora_r"),
    Row("validate-spec-num_generations-1", "validate --spec {spec} -", spec_with("\n[grpo]\nnum_generations = 1\n"),
        stdin=VALID, says="grpo.num_generations"),
    Row("validate-spec-rewards-typo", "validate --spec {spec} -", spec_with('\n[rewards]\nenabled = ["format_exactt"]\n'),
        stdin=VALID, says="format_exactt"),
    Row("validate-spec-reward-nan", "validate --spec {spec} -", spec_with("\n[rewards]\nformat_exact = nan\n"),
        stdin=VALID, says="rewards.format_exact"),
    Row("validate-spec-math_verify_timeout-negative", "validate --spec {spec} -",
        spec_with(**{'column = "answer"': 'column = "answer"\nmath_verify_timeout = -1'}), stdin=VALID,
        says="answer.math_verify_timeout"),
    Row("validate-spec-every-problem-at-once", "validate --spec {spec} -",
        spec_with("\n[train]\nlora_r = -1\nlearning_rat = 1\n[grpo]\nnum_generations = 1\n"), stdin=VALID,
        says="num_generations"),
    Row("validate-spec-same-tag-twice", "validate --spec {spec} -",
        spec_with(**{'solution_end = "</SOLUTION>"': 'solution_end = "<SOLUTION>"'}), stdin=VALID, says="solution"),
    # -- template, regex, render, export ----------------------------------------------------------
    Row("template-spec-missing", "template --spec {t}/nope.toml", says="nope.toml"),
    Row("template-spec-is-a-directory", "template --spec {t}/d.toml", files(d_dot_toml__x="y"), says="d.toml"),
    Row("template-spec-bom", "template --spec {spec}", spec(b"\xef\xbb\xbf" + SPEC_TEXT.encode()), code=0,
        says=R0),
    Row("regex-dialect-bogus", "regex --dialect bogus", says="'bogus' is not one of"),
    Row("regex-spec-bad-type", "regex --spec {spec}", spec_with('\n[train]\nlearning_rate = "fast"\n'),
        says="train.learning_rate"),
    Row("render-missing-file", "render {t}/nope.json", says="nope.json"),
    Row("render-not-json", "render {t}/m.json", files(m_dot_json="[{oops"), says="m.json"),
    Row("render-wrong-shape", "render {t}/m.json", files(m_dot_json='{"a": 1}'), says="m.json"),
    Row("render-message-without-role", "render {t}/m.json", files(m_dot_json='[{"content": "hi"}]'), says="role"),
    Row("render-unknown-role", "render {t}/m.json", files(m_dot_json='[{"role": "wizard", "content": "hi"}]'),
        says="wizard"),
    Row("render-system-not-first", "render {t}/m.json",
        files(m_dot_json='[{"role": "user", "content": "hi"}, {"role": "system", "content": "be brief"}]'),
        says="message 1 has role 'system'"),
    Row("render-content-not-text", "render {t}/m.json", files(m_dot_json='[{"role": "user", "content": 5}]'),
        says="content"),
    Row("export-spec-broken", "export response-template --spec {spec}", spec("name = "), says="spec.toml"),
    Row("export-unknown-subcommand", "export vllm-grammar", says="No such command 'vllm-grammar'"),
    # -- reward ------------------------------------------------------------------------------------
    Row("reward-missing-file", "reward {t}/nope.jsonl", says="nope.jsonl"),
    Row("reward-unknown-reward", "reward {t}/c.jsonl --rewards format_exactt",
        files(c_dot_jsonl=jsonl_text({"completion": VALID, "answer": "4"})), says="format_exactt"),
    Row("reward-bad-lines", "reward {t}/c.jsonl",
        files(c_dot_jsonl=jsonl_text({"completion": VALID, "answer": "4"}, "{bad", '"str"')), says="c.jsonl:2:"),
    Row("reward-missing-column", "reward {t}/c.jsonl --column gold",
        files(c_dot_jsonl=jsonl_text({"completion": VALID, "answer": "4"})), says="gold"),
    Row("reward-stdin-not-json", "reward -", stdin="not json\n", says="not valid JSON"),
    Row("reward-spec-weight-nan", "reward --spec {spec} {t}/c.jsonl",
        all_of(spec_with("\n[rewards.weights]\nanswer = nan\n"), files(c_dot_jsonl=jsonl_text({"completion": VALID, "answer": "4"}))),
        says="rewards.weights.answer"),
    Row("reward-transcript-hole-scores-strictly", "reward {t}/c.jsonl --json",
        files(c_dot_jsonl=jsonl_text({"completion": SPEC.system_prompt + "<|endoftext|>blah " + S0 + "999" + S1 + " junk "
                                      + R1 + "<|endoftext|>" + R0 + "I add." + R1 + S0 + "4" + S1, "answer": "4"})),
        code=0, says='"format_exact": 0.0'),
    # -- data prepare / data show -----------------------------------------------------------------
    Row("data-prepare-out-is-the-dataset", "data prepare --dataset {t}/x.jsonl --out {t}/x.jsonl --overwrite",
        files(x_dot_jsonl=DATA), says="is an input file"),
    Row("data-prepare-out-links-to-the-dataset", "data prepare --dataset {t}/x.jsonl --out {t}/l.jsonl --overwrite",
        all_of(files(x_dot_jsonl=DATA), link("l.jsonl", "{t}/x.jsonl")), says="is an input file"),
    Row("data-prepare-out-links-outside", "data prepare --dataset {t}/x.jsonl --out {t}/o/p.jsonl --overwrite",
        all_of(files(x_dot_jsonl=DATA, elsewhere_dot_jsonl="keep\n"), link("o/p.jsonl", "{t}/elsewhere.jsonl")),
        says="is a symbolic link"),
    Row("data-prepare-out-under-a-linked-dir", "data prepare --dataset {t}/x.jsonl --out {t}/ln/p.jsonl",
        all_of(files(x_dot_jsonl=DATA, real__keep="k"), link("ln", "{t}/real")), says="goes through the symbolic link"),
    Row("data-prepare-out-in-a-links-target", "data prepare --dataset {t}/x.jsonl --out {t}/real/p.jsonl",
        all_of(files(x_dot_jsonl=DATA, real__keep="k"), link("ln", "{t}/real")), code=0, says="wrote 1 examples",
        creates="real/p.jsonl"),
    Row("data-prepare-out-exists", "data prepare --dataset {t}/x.jsonl --out {t}/p.jsonl",
        files(x_dot_jsonl=DATA, p_dot_jsonl="keep\n"), says="pass --overwrite"),
    Row("data-prepare-out-is-a-directory", "data prepare --dataset {t}/x.jsonl --out {t}/p",
        files(x_dot_jsonl=DATA, p__keep="k"), says="p"),
    Row("data-prepare-missing-column", "data prepare --dataset {t}/x.jsonl --out {t}/p.jsonl",
        files(x_dot_jsonl=jsonl_text({"prompt": "2 + 2?", "answer": "#### 4"})), says="question"),
    Row("data-prepare-missing-dataset", "data prepare --dataset {t}/nope.jsonl --out {t}/p.jsonl", says="nope.jsonl"),
    Row("data-prepare-empty-dataset", "data prepare --dataset {t}/x.jsonl --out {t}/p.jsonl", files(x_dot_jsonl=""),
        says="x.jsonl"),
    Row("data-prepare-bad-lines", "data prepare --dataset {t}/x.jsonl --out {t}/p.jsonl",
        files(x_dot_jsonl=DATA + "{oops\n"), says="x.jsonl: line 3 is not valid JSON"),
    Row("data-prepare-loading-script", "data prepare --dataset {t}/ds --out {t}/p.jsonl",
        files(ds__ds_dot_py="import datasets\n"), says="script"),
    Row("train-output-under-a-linked-dir", TRAIN + " --output {t}/ln/run",
        all_of(copy_run("finished", "real/run"), link("ln", "{t}/real")), says="goes through the symbolic link"),
    Row("train-output-deep-under-a-linked-dir", TRAIN + " --output {t}/runs/ln/a/b",
        all_of(files(real__keep="k"), link("runs/ln", "{t}/real")), says="goes through the symbolic link"),
    Row("train-output-relative-through-a-link", TRAIN + " --output ln/run --overwrite",
        all_of(copy_run("finished", "real/run"), link("home/user/cwd/ln", "{t}/real")),
        says="goes through the symbolic link"),
    Row("grpo-out-under-a-linked-dir", GRPO + " --out {t}/ln/g", all_of(files(real__keep="k"), link("ln", "{t}/real")),
        says="goes through the symbolic link"),
    Row("train-output-empty", TRAIN + " --output ''", says="train.output_dir: must not be empty"),
    Row("train-output-placeholder-typo", TRAIN + " --output '{t}/outs/{{nmae}}'", says="unknown placeholder {nmae}"),
    Row("grpo-adapter-placeholder-typo", "grpo --adapter 'x/{{nam}}/adapter' --out {t}/g", says="unknown placeholder {nam}"),
    Row("data-prepare-an-already-prepared-file", "data prepare --dataset {t}/p.jsonl --out {t}/q.jsonl",
        files(p_dot_jsonl=jsonl_text({"text": "t", "messages": [], "answer": "4", "question": "2 + 2?", "source_row": 0})),
        says="looks like the output of `reasoning-kit data prepare`"),
    Row("data-prepare-out-under-a-file", "data prepare --dataset {t}/x.jsonl --out {t}/f/p.jsonl",
        files(x_dot_jsonl=DATA, f="a file"), says="is a file, not a directory"),
    Row("data-prepare-eval-split", "data prepare --dataset gsm8k-test --out {t}/p.jsonl", says="reserved for evaluation"),
    Row("data-prepare-split-of-a-file", "data prepare --dataset {t}/x.jsonl --split validation --out {t}/p.jsonl",
        files(x_dot_jsonl=DATA), says="split 'validation' given for"),
    Row("data-prepare-split-of-gsm8k", "data prepare --dataset gsm8k --split test --out {t}/p.jsonl",
        says="splits apply to hub datasets"),
    Row("data-prepare-limit-0", "data prepare --dataset {t}/x.jsonl --out {t}/p.jsonl --limit 0", files(x_dot_jsonl=DATA),
        says="--limit"),
    Row("data-prepare-spec-name-traversal", "data prepare --spec {spec} --dataset {t}/x.jsonl --out {t}/p.jsonl",
        all_of(spec_with(name='"../../../x"'), files(x_dot_jsonl=DATA)), says="is not a safe name"),
    Row("data-prepare-writes-only-its-out", "data prepare --dataset {t}/x.jsonl --out {t}/out/p.jsonl",
        files(x_dot_jsonl=DATA), code=0, creates="out"),
    Row("data-show-missing-file", "data show {t}/nope.jsonl", says="nope.jsonl"),
    Row("data-show-bad-lines", "data show {t}/p.jsonl", files(p_dot_jsonl="{oops\n"), says="p.jsonl line 1 is not valid JSON"),
    Row("data-show-not-prepared", "data show {t}/p.jsonl", files(p_dot_jsonl=DATA), says="has no 'text' field"),
    Row("data-show-n-0", "data show {t}/p.jsonl -n 0", files(p_dot_jsonl=DATA), says="-n"),
    # -- train -------------------------------------------------------------------------------------
    Row("train-overwrite-bogus-optim", f"{TRAIN} --output {{t}}/run --overwrite --set optim=bogus_optim",
        copy_run("finished"), says="train.optim"),
    Row("train-overwrite-bogus-scheduler", f"{TRAIN} --output {{t}}/run --overwrite --set lr_scheduler_type=bogus",
        copy_run("finished"), says="train.lr_scheduler_type"),
    Row("train-overwrite-lr-nan", f"{TRAIN} --output {{t}}/run --overwrite --set learning_rate=nan",
        copy_run("finished"), says="train.learning_rate"),
    Row("train-overwrite-lr-option-inf", f"{TRAIN} --output {{t}}/run --overwrite --lr inf", copy_run("finished"),
        says="learning_rate"),
    Row("train-lora_r-negative", f"{TRAIN} --output {{t}}/run --set lora_r=-1", says="train.lora_r"),
    Row("train-unknown-set-key", f"{TRAIN} --output {{t}}/run --set lora_rank=8", says="lora_rank"),
    Row("train-set-without-value", f"{TRAIN} --output {{t}}/run --set lora_r", says="lora_r"),
    Row("train-set-not-toml", f"{TRAIN} --output {{t}}/run --set learning_rate=1e-", says="learning_rate"),
    Row("train-resume-finished", f"{TRAIN} --output {{t}}/run --resume", copy_run("finished"), says="already finished"),
    Row("train-resume-nothing", f"{TRAIN} --output {{t}}/run --resume", says="does not exist"),
    Row("train-resume-user-directory", f"{TRAIN} --output {{t}}/run --resume", files(run__report_dot_md="# mine\n"),
        says="is not a reasoning-kit training directory"),
    Row("train-resume-different-model", f"{TRAIN} --output {{t}}/run --resume --model {{t}}/other",
        all_of(copy_run("interrupted"), other_model), says="size mismatch"),
    Row("train-output-is-a-file", f"{TRAIN} --output {{t}}/run", files(run="a file"), says="is not a directory"),
    Row("train-output-is-a-link", f"{TRAIN} --output {{t}}/link --overwrite", all_of(copy_run("finished"), link("link", "{t}/run")),
        says="is a symbolic link"),
    Row("train-user-directory", f"{TRAIN} --output {{t}}/run", files(run__report_dot_md="# mine\n"), says="--overwrite"),
    Row("train-overwrite-user-directory", f"{TRAIN} --output {{t}}/run --overwrite", files(run__report_dot_md="# mine\n"),
        says="not deleting it"),
    Row("train-overwrite-grpo-run", f"{TRAIN} --output {{t}}/run --overwrite", all_of(mark("run", "grpo"), files(run__x="x")),
        says="holds a reasoning-kit grpo run"),
    Row("train-overwrite-and-resume", f"{TRAIN} --output {{t}}/run --overwrite --resume", copy_run("finished"),
        says="contradict"),
    Row("train-spec-name-traversal", "train --spec {spec} --model {m} --dataset {d} --backend hf",
        spec_with(name='"../../../x"'), says="is not a safe name"),
    Row("train-model-missing", f"{TRAIN} --output {{t}}/run --model {{t}}/nope", says="nope"),
    Row("train-dataset-missing-column", f"{TRAIN} --output {{t}}/run --dataset {{t}}/x.jsonl",
        files(x_dot_jsonl=jsonl_text({"prompt": "2 + 2?", "answer": "4"})), says="x.jsonl"),
    Row("train-lora_r-overflows", f"{TRAIN} --output {{t}}/run --set lora_r=99999999999999999999", says="train.lora_r"),
    Row("train-model-empty", f"{TRAIN} --output {{t}}/run --model ''", files(m_dot_gguf=b"GGUF junk"),
        says="the model is empty"),
    Row("train-model-junk-gguf", f"{TRAIN} --output {{t}}/run --model {{t}}/m.gguf", files(m_dot_gguf=b"GGUFjunkjunk"),
        says="cannot load GGUF file"),
    Row("train-dataset-is-a-model-directory", f"{TRAIN} --output {{t}}/run --dataset {{m}}", says="as a dataset"),
    Row("train-ctrl-c", f"{TRAIN.replace('--no-progress', '').replace('--max-steps 2', '--max-steps 100000')} "
        "--output {t}/run", code=130, sigint_after="/100000", says="run the same command with --resume", creates="run",
        marks=(subprocess_row,)),
    Row("train-offline-and-model-typo", f"{TRAIN} --output {{t}}/run --backend gpu", says="'gpu' is not one of"),
    Row("train-read-only-output", f"{TRAIN} --output {{t}}/ro/run --resume", copy_run("interrupted", "ro/run"),
        says="permission denied", marks=(root_reads_all,)),
    # -- grpo --------------------------------------------------------------------------------------
    Row("grpo-num_generations-1", f"{GRPO} --out {{t}}/g --num-generations 1", says="grpo.num_generations"),
    Row("grpo-set-beta-nan", f"{GRPO} --out {{t}}/g --set beta=nan", says="grpo.beta"),
    Row("grpo-overwrite-bogus-optim", f"{GRPO} --out {{t}}/g --overwrite --set optim=bogus_optim",
        all_of(mark("g", "grpo"), files(g__metrics_dot_json="{}", g__my_dot_txt="mine")), says="grpo.optim"),
    Row("grpo-corrupt-adapter", "grpo --adapter {t}/adapter --dataset {d} --backend hf --no-progress --max-steps 1 "
        "--out {t}/g --set optim='adamw_torch'", corrupt_adapter, says="cannot load adapter"),
    Row("grpo-adapter-missing", f"{GRPO} --out {{t}}/g --adapter {{t}}/nope", says="nope"),
    Row("grpo-overwrite-train-run", f"{GRPO} --out {{t}}/run --overwrite", copy_run("finished"),
        says="holds a reasoning-kit train run"),
    Row("grpo-resume-train-run", f"{GRPO} --out {{t}}/run --resume", copy_run("finished"), says="not a reasoning-kit GRPO"),
    Row("grpo-output-is-a-link", f"{GRPO} --out {{t}}/link", link("link", "{t}"), says="is a symbolic link"),
    Row("grpo-model-junk-gguf", f"{GRPO} --out {{t}}/g --model {{t}}/m.gguf", files(m_dot_gguf=b"GGUFjunkjunk"),
        says="cannot load GGUF file"),
    Row("grpo-rewards-typo", f"{GRPO} --out {{t}}/g --spec {{spec}}", spec_with('\n[rewards]\nenabled = ["format_exactt"]\n'),
        says="format_exactt"),
    # -- fetch-model -------------------------------------------------------------------------------
    Row("fetch-model-notamodel", "fetch-model notamodel", says="not a model alias or a .gguf file: notamodel"),
    Row("fetch-model-missing-gguf", "fetch-model {t}/nope.gguf", says="no such file: "),
    Row("fetch-model-junk-gguf", "fetch-model {t}/m.gguf", files(m_dot_gguf=b"not a gguf file"), says="m.gguf"),
    # -- eval --------------------------------------------------------------------------------------
    Row("eval-outputs-not-an-eval-run", f"{EVAL} --out {{t}}/mine",
        files(mine__outputs_dot_jsonl='{"id": 1, "note": "mine"}\n{"id": 2, "torn": tr', mine__report_dot_md="# mine\n"),
        says="is not a reasoning-kit eval directory"),
    Row("eval-outputs-link-outside", f"{EVAL} --out {{t}}/run",
        all_of(mark("run", "eval"), files(elsewhere_dot_jsonl='{"id": "a"}\n{"id": "torn'),
               link("run/outputs.jsonl", "{t}/elsewhere.jsonl")), says="is a symbolic link"),
    Row("eval-outputs-bad-line", f"{EVAL} --out {{t}}/run",
        all_of(mark("run", "eval"), files(run__outputs_dot_jsonl='{"id": "1"}\n{oops\n{"id": "3"}\n')),
        says="outputs.jsonl:2:"),
    Row("eval-train-run", f"{EVAL} --out {{t}}/run", copy_run("finished"),
        says="holds a reasoning-kit train run"),
    Row("eval-out-is-a-file", f"{EVAL} --out {{t}}/o", files(o="a file"), says="o"),
    Row("eval-out-is-a-link", f"{EVAL} --out {{t}}/l", all_of(files(real__x="x"), link("l", "{t}/real")),
        says="symbolic link"),
    Row("eval-out-under-a-linked-dir", f"{EVAL} --out {{t}}/ln/e", all_of(copy_run("eval", "real/e"), link("ln", "{t}/real")),
        says="goes through the symbolic link"),
    Row("eval-model-missing", f"{EVAL} --out {{t}}/o --model {{t}}/nope", says="nope"),
    Row("eval-corrupt-adapter", f"{EVAL} --out {{t}}/o --adapter {{t}}/adapter", corrupt_adapter,
        says="cannot load adapter"),
    Row("eval-adapter-is-not-an-adapter", f"{EVAL} --out {{t}}/o --adapter {{t}}/notes", files(notes__a_dot_txt="x"),
        says="notes"),
    Row("eval-model-junk-gguf", f"{EVAL} --out {{t}}/o --model {{t}}/m.gguf", files(m_dot_gguf=b"GGUFjunkjunk"),
        says="cannot load GGUF file"),
    Row("eval-dataset-missing", f"{EVAL} --out {{t}}/o --dataset {{t}}/nope.jsonl", says="nope.jsonl"),
    Row("eval-dataset-missing-column", f"{EVAL} --out {{t}}/o --dataset {{t}}/q.jsonl",
        files(q_dot_jsonl=jsonl_text({"prompt": "2 + 2?", "gold": "4"})), says="q.jsonl"),
    Row("eval-device-cuda-on-cpu", f"{EVAL} --out {{t}}/o --device cuda", says="--device cuda", marks=(no_cuda,)),
    Row("eval-device-bogus", f"{EVAL} --out {{t}}/o --device quantum", says="--device 'quantum' is not a torch device"),
    Row("eval-unreadable-weights", f"{EVAL} --out {{t}}/o --model {{t}}/model",
        lambda ctx: (shutil.copytree(ctx.s / "model", ctx.t / "model"), (ctx.t / "model" / "model.safetensors").chmod(0)),
        says="permission denied", marks=(root_reads_all,)),
    Row("eval-other-settings", f"{EVAL} --out {{t}}/e --max-new-tokens 5", copy_run("eval", "e"),
        says="holds outputs made with other settings"),
    Row("eval-writes-only-its-out", f"{EVAL} --out {{t}}/o", code=0, says="2 prompts", creates="o"),
    Row("eval-ctrl-c", f"{EVAL.replace('--quiet', '')} --out {{t}}/o --limit 400 --max-new-tokens 64", code=130,
        sigint_after="prompt", says="aborted (Ctrl-C): finished rows are kept in", creates="o", marks=(subprocess_row,)),
    # -- eval compare ------------------------------------------------------------------------------
    Row("eval-compare-missing", "eval compare {t}/nope {t}/nope2", says="nope"),
    Row("eval-compare-no-report", "eval compare {t}/a", files(a__x="x"), says="report.json"),
    Row("eval-compare-corrupt-report", "eval compare {t}/a", files(a__report_dot_json="{not json"), says="report.json"),
    Row("eval-compare-report-wrong-shape", "eval compare {t}/a", files(a__report_dot_json="[1, 2]"), says="report.json"),
    Row("eval-compare-report-missing-fields", "eval compare {t}/a",
        files(a__report_dot_json='{"metrics": {}, "run": {}}'), says="lacks the field"),
    Row("eval-compare-chart-is-the-report", "eval compare {t}/e --chart {t}/e/report.json", copy_run("eval", "e"),
        says="is an input file"),
    Row("eval-compare-chart-is-a-link", "eval compare {t}/e --chart {t}/c.png",
        all_of(copy_run("eval", "e"), files(keep_dot_png="keep"), link("c.png", "{t}/keep.png")),
        says="is a symbolic link"),
    Row("eval-compare-chart-under-a-linked-dir", "eval compare {t}/e --chart {t}/ln/c.png",
        all_of(copy_run("eval", "e"), files(real__keep="k"), link("ln", "{t}/real")), says="goes through the symbolic link"),
    Row("eval-compare-chart-inside-a-run", "eval compare {t}/e --chart {t}/e/outputs.jsonl", copy_run("eval", "e"),
        says="is inside the compared run"),
    Row("eval-compare-chart-is-a-users-file", "eval compare {t}/e --chart {t}/notes.txt",
        all_of(copy_run("eval", "e"), files(notes_dot_txt="precious")), says="exists and is not a PNG chart"),
    Row("eval-compare-writes-only-its-chart", "eval compare {t}/e {t}/e --chart {t}/out/c.png", copy_run("eval", "e"),
        code=0, says="format compliance", creates="out"),
    # -- audit, reward-audit -----------------------------------------------------------------------
    Row("audit-model-missing", "audit --model {t}/nope --tokenizer-only", says="nope"),
    Row("audit-model-is-a-file", "audit --model {t}/m.txt --tokenizer-only", files(m_dot_txt="x"), says="m.txt"),
    Row("audit-spec-broken", "audit --spec {spec} --model {m}", spec("[tags\n"), says="spec.toml"),
    Row("audit-tiny-model-reads-only", "audit --model {m}", code=0, says="no findings"),
    Row("reward-audit-no-module", "reward-audit --reward no_such_module_xyz:f", says="no_such_module_xyz"),
    Row("reward-audit-no-colon", "reward-audit --reward os.path", says="module:function"),
    Row("reward-audit-not-callable", "reward-audit --reward os:sep", says="os:sep"),
    Row("reward-audit-function-missing", "reward-audit --reward os:no_such_function", says="no_such_function"),
    Row("reward-audit-form-bogus", "reward-audit --form bogus", says="'bogus' is not one of"),
    Row("reward-audit-spec-rewards-typo", "reward-audit --spec {spec}", spec_with('\n[rewards]\nenabled = ["answerr"]\n'),
        says="answerr"),
]


# --- running a row --------------------------------------------------------------------------------


def snapshot(*roots: Path) -> dict[str, str]:
    """Every path under ``roots`` -> sha256 of a file's bytes, ``-> target`` of a link, or ``dir``."""
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_symlink():
                out[str(p)] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[str(p)] = "dir"
            elif p.is_file():
                try:
                    out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
                except PermissionError:
                    out[str(p)] = f"unreadable {p.stat().st_mtime_ns}"
    return out


def run_subprocess(argv: list[str], cwd: Path, env: dict, sigint_after: str) -> tuple[int, str]:
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd, env=env, start_new_session=True)
    seen = ""
    while sigint_after not in seen:
        ch = proc.stderr.read(1)
        if not ch:
            break
        seen += ch
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout + seen + stderr


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id, marks=r.marks) for r in TABLE])
def test_bad_input(row: Row, shared: Path, tmp_path: Path, monkeypatch):
    ctx = Ctx(tmp_path, shared)
    cwd = tmp_path / "home" / "user" / "cwd"
    cwd.mkdir(parents=True)
    row.setup(ctx)
    before = snapshot(tmp_path, shared)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("REASONING_KIT_CACHE", str(tmp_path / "cache"))
    argv = [ctx.fmt(word) for word in shlex.split(row.argv)]
    try:
        if row.sigint_after:
            env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
            code, output = run_subprocess(argv, cwd, env, row.sigint_after)
        else:
            result = CliRunner().invoke(main, argv, input=row.stdin)
            code, output = result.exit_code, result.output
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}\n{output}") \
                    from result.exception
    finally:
        for p in tmp_path.rglob("*"):  # a row may leave a file it made unreadable
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o600)
    after = snapshot(tmp_path, shared)

    assert "Traceback" not in output, output
    if row.code is not None:
        assert code == row.code, output
    lines = output.strip().splitlines()
    if row.code == 2:
        assert lines and lines[-1].startswith("Error: "), output
        assert row.says in lines[-1], output
    else:
        assert row.says in output, output
    changed = sorted(p for p in before if after.get(p) != before[p])
    assert not changed, f"changed or removed: {changed}"
    allowed = str(tmp_path / row.creates) if row.creates else None
    created = sorted(p for p in after if p not in before
                     and not (allowed and (p == allowed or p.startswith(allowed + os.sep))))
    assert not created, f"created outside {row.creates}: {created}"


def test_the_table_covers_every_command():
    firsts = {shlex.split(r.argv)[0] for r in TABLE}
    assert firsts == set(COMMANDS)
    for sub in ("data prepare", "data show", "eval compare", "export response-template"):
        assert any(r.argv.startswith(sub) for r in TABLE), sub
    assert len(TABLE) >= 60 and len({r.id for r in TABLE}) == len(TABLE)


# --- the dataset is checked before the model loads ------------------------------------------------

NO_MODEL = "no-such-model"  # a --model path that does not exist: loading it would be the next error
BUILTIN_SPLIT = ("split {split!r} given for {dataset!r}, a built-in split: splits apply to hub datasets and dataset "
                 "directories (name the split in the dataset instead: --dataset {instead})")
FILE_SPLIT = ("split {split!r} given for {dataset!r}, one file, which holds one split: splits apply to hub datasets "
              "and dataset directories (drop --split)")
EVAL_ONLY = "{what}, reserved for evaluation: never train on it (use {use!r}, the train split)"


class TestDatasetIsCheckedBeforeTheModel:
    """``train`` and ``grpo`` refuse a bad dataset or split in their pre-load checks (``harness.lifecycle`` step 1).

    The --model does not exist, so had the model been loaded first its error would be the one reported; the
    last test shows it is, once the dataset is good. Nothing is written: no output directory, no cache.
    """

    CASES = [
        pytest.param("gsm8k", "test", BUILTIN_SPLIT.format(split="test", dataset="gsm8k", instead="gsm8k-test"),
                     id="split-of-gsm8k"),
        pytest.param("arithmetic:2", "test",
                     BUILTIN_SPLIT.format(split="test", dataset="arithmetic:2", instead="arithmetic-test:2"),
                     id="split-of-arithmetic"),
        pytest.param("{t}/x.jsonl", "validation", FILE_SPLIT.format(split="validation", dataset="{t}/x.jsonl"),
                     id="split-of-a-file"),
        pytest.param("{t}/x.jsonl", "test", FILE_SPLIT.format(split="test", dataset="{t}/x.jsonl"),
                     id="test-split-of-a-file"),
        pytest.param("gsm8k-test", "", EVAL_ONLY.format(what="'gsm8k-test' is the GSM8K test split", use="gsm8k"),
                     id="gsm8k-test"),
        pytest.param("arithmetic-test:3", "",
                     EVAL_ONLY.format(what="'arithmetic-test:3' is the arithmetic test split", use="arithmetic"),
                     id="arithmetic-test"),
        pytest.param("openai/gsm8k", "test",
                     EVAL_ONLY.format(what="split 'test' of 'openai/gsm8k' is a test split", use="gsm8k"),
                     id="test-split-of-a-hub-id"),  # refused without network: the check reads no rows
        pytest.param("{t}/copy.jsonl", "",
                     EVAL_ONLY.format(what="{t}/copy.jsonl is a copy of the GSM8K test split", use="gsm8k"),
                     id="copy-of-gsm8k-test"),
    ]
    COMMANDS = {
        "train": "train --model {t}/%s --dataset {dataset} --backend hf --no-progress --output {t}/out" % NO_MODEL,
        "grpo": "grpo --model {t}/%s --adapter '' --dataset {dataset} --backend hf --no-progress "
                "--out {t}/out" % NO_MODEL,
    }

    @staticmethod
    def invoke(tmp_path: Path, monkeypatch, argv: str) -> tuple[int, str, dict]:
        from harness.data.sources import BUILTIN

        (tmp_path / "x.jsonl").write_text(jsonl_text(*ROWS))
        shutil.copy(BUILTIN["gsm8k-test"], tmp_path / "copy.jsonl")
        (tmp_path / "cwd").mkdir()
        monkeypatch.chdir(tmp_path / "cwd")
        monkeypatch.setenv("REASONING_KIT_CACHE", str(tmp_path / "cache"))
        before = snapshot(tmp_path)
        code, last = ended(CliRunner().invoke(main, shlex.split(argv)))
        return code, last, {p: h for p, h in snapshot(tmp_path).items() if before.get(p) != h}

    @pytest.mark.parametrize("command", sorted(COMMANDS))
    @pytest.mark.parametrize("dataset, split, message", CASES)
    def test_refused_in_one_line_before_loading_and_writing(self, tmp_path, monkeypatch, command, dataset, split,
                                                            message):
        argv = self.COMMANDS[command].format(t=tmp_path, dataset=dataset.format(t=tmp_path))
        argv += f" --set dataset_split={split}" if split else ""
        code, last, written = self.invoke(tmp_path, monkeypatch, argv)
        assert (code, last) == (2, "Error: " + message.format(t=tmp_path))
        assert not written and not (tmp_path / "out").exists()

    @pytest.mark.parametrize("command", sorted(COMMANDS))
    def test_with_a_good_dataset_the_missing_model_is_the_error(self, tmp_path, monkeypatch, command):
        """The control: the same command line, its dataset fine, fails on the model it cannot load."""
        argv = self.COMMANDS[command].format(t=tmp_path, dataset=tmp_path / "x.jsonl")
        code, last, _ = self.invoke(tmp_path, monkeypatch, argv)
        assert code == 2 and NO_MODEL in last and "split" not in last, last
        assert not (tmp_path / "out").exists()


EVAL_DATASET = ("invalid {table} option: {command}.eval_dataset: {why}; the evaluation after the run needs it "
                "(eval_limit = 0 skips the evaluation)")


class TestEvalDatasetIsCheckedBeforeTheModel:
    """The dataset of the before/after evaluation (``eval_dataset``) is read in the same pre-load checks when the
    evaluation will run (``eval_limit`` > 0), not after training has written its adapter.

    As in :class:`TestDatasetIsCheckedBeforeTheModel`, the --model does not exist: an error about the evaluation's
    dataset shows the check ran before the model loads, and nothing is written. With ``eval_limit`` 0 (no
    evaluation) or a good ``eval_dataset``, the missing model is the error.
    """

    CASES = [
        pytest.param("{t}/nope.jsonl", "cannot read {t}/nope.jsonl: no such file", id="missing-file"),
        pytest.param("{t}/q.jsonl", "{t}/q.jsonl: missing column answer for the GSM8K format (needs question, answer); "
                     "present columns: question", id="missing-column"),
        pytest.param("{t}/nogold.jsonl", "{t}/nogold.jsonl: no rows with a question and a gold answer", id="no-gold"),
        pytest.param("arithmetic-test:9", "'arithmetic-test:9': unknown arithmetic difficulty '9' (levels 1, 2, 3, "
                     "e.g. arithmetic-test:1)", id="arithmetic-level"),
    ]

    @staticmethod
    def argv(tmp_path: Path, command: str, eval_dataset: str, eval_limit: int) -> str:
        (tmp_path / "q.jsonl").write_text(jsonl_text({"question": "What is 2 + 2?"}))
        (tmp_path / "nogold.jsonl").write_text(jsonl_text({"question": "What is 2 + 2?", "answer": "four"}))
        base = TestDatasetIsCheckedBeforeTheModel.COMMANDS[command].format(t=tmp_path, dataset=tmp_path / "x.jsonl")
        return base + f" --eval-limit {eval_limit} --set 'eval_dataset=\"{eval_dataset.format(t=tmp_path)}\"'"

    @pytest.mark.parametrize("command", sorted(TestDatasetIsCheckedBeforeTheModel.COMMANDS))
    @pytest.mark.parametrize("eval_dataset, why", CASES)
    def test_refused_in_one_line_before_loading_and_writing(self, tmp_path, monkeypatch, command, eval_dataset, why):
        argv = self.argv(tmp_path, command, eval_dataset, eval_limit=2)
        code, last, written = TestDatasetIsCheckedBeforeTheModel.invoke(tmp_path, monkeypatch, argv)
        table = "training" if command == "train" else command
        assert (code, last) == (2, "Error: " + EVAL_DATASET.format(table=table, command=command,
                                                                    why=why.format(t=tmp_path)))
        assert not written and not (tmp_path / "out").exists()

    @pytest.mark.parametrize("command", sorted(TestDatasetIsCheckedBeforeTheModel.COMMANDS))
    @pytest.mark.parametrize("eval_dataset", ["{t}/x.jsonl", "../x.jsonl"], ids=["same-path", "relative-path"])
    def test_the_training_dataset_is_refused(self, tmp_path, monkeypatch, command, eval_dataset):
        """Scoring the model on its own training data would make the before/after table meaningless."""
        argv = self.argv(tmp_path, command, eval_dataset, eval_limit=2)  # x.jsonl: the --dataset; the cwd is {t}/cwd
        code, last, written = TestDatasetIsCheckedBeforeTheModel.invoke(tmp_path, monkeypatch, argv)
        table = "training" if command == "train" else command
        shown = eval_dataset.format(t=tmp_path)
        assert (code, last) == (2, f"Error: invalid {table} option: {command}.eval_dataset: '{shown}' is the "
                                   "training dataset, so the evaluation after the run would score the model on what it "
                                   "was trained on; use a held-out set (gsm8k-test, arithmetic-test or a file)")
        assert not written and not (tmp_path / "out").exists()

    @pytest.mark.parametrize("command", sorted(TestDatasetIsCheckedBeforeTheModel.COMMANDS))
    @pytest.mark.parametrize("eval_dataset, eval_limit", [("{t}/nope.jsonl", 0), ("{t}/copy.jsonl", 2)],
                             ids=["no-evaluation", "good-eval-dataset"])
    def test_otherwise_the_missing_model_is_the_error(self, tmp_path, monkeypatch, command, eval_dataset, eval_limit):
        """The controls: no evaluation (its dataset is not read), or one whose dataset is fine."""
        argv = self.argv(tmp_path, command, eval_dataset, eval_limit)
        code, last, _ = TestDatasetIsCheckedBeforeTheModel.invoke(tmp_path, monkeypatch, argv)
        assert code == 2 and NO_MODEL in last and "eval_dataset" not in last, last
        assert not (tmp_path / "out").exists()


# --- random input (extends tests/test_jsonl.py, which feeds the JSONL reader, validate, reward and the reward set) ---

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.test_jsonl import files as jsonl_files  # noqa: E402
from tests.test_jsonl import json_values  # noqa: E402

# Values that are wrong somewhere: out of range, wrong type, non-finite, huge, unsafe as a name or a path.
ODD_VALUES = ['-1', '0', '1', 'nan', 'inf', '-inf', '1e999', '99999999999999999999', '""', '" "', '"../../x"', '"a\\u0000b"',
              '"{unknown}"', '"{reasoning_start}"', '[]', '[""]', '["format_exactt"]', '{}', 'true', '"x"', '0.5']
TABLE_KEYS = [(table, f.name) for table in ("train", "grpo", "rewards", "answer")
              for f in __import__("dataclasses").fields(getattr(SPEC, table))]
SPEC_LINES = SPEC_TEXT.splitlines()
VALUE_LINES = [i for i, line in enumerate(SPEC_LINES) if " = " in line and not line.startswith("#")]


@st.composite
def broken_specs(draw) -> bytes:
    """The shipped spec with a value replaced, a [table] key added, or random bytes."""
    kind = draw(st.sampled_from(["replace", "add", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    lines = list(SPEC_LINES)
    if kind == "replace":
        i = draw(st.sampled_from(VALUE_LINES))
        lines[i] = lines[i].split(" = ", 1)[0] + " = " + draw(st.sampled_from(ODD_VALUES))
        text = "\n".join(lines) + "\n"
    else:
        table, key = draw(st.sampled_from(TABLE_KEYS))
        if table == "answer":  # [answer] is already in the file
            text = "\n".join(lines) + f"\n{key} = {draw(st.sampled_from(ODD_VALUES))}\n"
        else:
            text = "\n".join(lines) + f"\n[{table}]\n{key} = {draw(st.sampled_from(ODD_VALUES))}\n"
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8")


def ended(result) -> tuple[int, str]:
    """(exit code, last line) after checking the command ended on purpose, with one line for exit 2."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1] if result.output.strip() else ""
    if result.exit_code == 2:
        assert last.startswith("Error: "), result.output
    return result.exit_code, last


class TestRandomSpecsAndFiles:
    @settings(max_examples=30)
    @given(broken_specs())
    @example(SPEC_TEXT.replace('name = "working_out"', 'name = "../../../x"').encode())
    @example(b"\xef\xbb\xbf" + SPEC_TEXT.encode())
    def test_every_spec_command_gives_the_same_verdict(self, tmp_path_factory, data):
        """One check at load: validate, template, regex, export and data show accept or reject a spec alike."""
        path = tmp_path_factory.mktemp("spec") / "s.toml"
        path.write_bytes(data)
        (path.parent / "p.jsonl").write_text(jsonl_text({"text": VALID}))
        verdicts = set()
        for argv in (["validate", "--spec", str(path), "-"], ["template", "--spec", str(path)],
                     ["regex", "--spec", str(path)], ["export", "response-template", "--spec", str(path)],
                     ["data", "show", "--spec", str(path), str(path.parent / "p.jsonl")]):
            code, last = ended(CliRunner().invoke(main, argv, input=VALID))
            verdicts.add(last if code == 2 else "accepted")
        assert len(verdicts) == 1, verdicts

    @settings(max_examples=30)
    @given(st.one_of(json_values, st.lists(st.dictionaries(st.sampled_from(["role", "content", "x"]),
                                                           st.one_of(json_values, st.sampled_from(["user", "system", "assistant"])),
                                                           max_size=3), max_size=3)),
           st.booleans())
    @example([{"role": "user", "content": "hi"}], False)
    def test_render(self, tmp_path_factory, messages, wrap):
        path = tmp_path_factory.mktemp("render") / "m.json"
        path.write_text(json.dumps({"messages": messages} if wrap else messages))
        code, _ = ended(CliRunner().invoke(main, ["render", str(path)]))
        assert code in (0, 2)

    @settings(max_examples=30)
    @given(jsonl_files)
    def test_data_show(self, tmp_path_factory, data):
        path = tmp_path_factory.mktemp("show") / "p.jsonl"
        path.write_bytes(data)
        code, _ = ended(CliRunner().invoke(main, ["data", "show", str(path)]))
        assert code in (0, 2)
