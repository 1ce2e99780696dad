"""The output policy (``harness.outputs``) through the real commands, on a tiny model built here.

Each test is a reproduction from issue 10 (sections 2 and 6): the command must end with one
line (exit 2, or 130 for Ctrl-C) and leave every file that was there byte for byte as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import outputs
from harness.cli import main
from harness.train.run import train
from reasoning_kit.schema import SpecError
from reasoning_kit.spec import load_spec, parse_spec
from tests.test_train_run import SPEC, SigintAt, tiny_config, workdir  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")
from tests.tiny import corpus, make_model, make_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def quiet(msg):
    pass


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (links as their target text) -> its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = b"-> " + os.readlink(p).encode()
        elif p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: "), result.output
    return lines[-1]


def train_args(workdir, out, *extra):
    return ["train", "--model", workdir / "model", "--dataset", workdir / "data.jsonl", "--backend", "hf", "--output", out,
            "--batch-size", "8", "--no-progress", "--set", "gradient_checkpointing=false", "--set", "max_seq_length=512",
            "--set", "warmup_steps=0", *extra]


@pytest.fixture(scope="module")
def runs(workdir, tmp_path_factory):
    """An interrupted run (Ctrl-C at step 2: checkpoint-2) and a finished one (that run resumed to step 4)."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    cfg = tiny_config(workdir, root / "interrupted", max_steps=4, logging_steps=1)
    first = train(SPEC, cfg, progress=False, callbacks=(SigintAt({1}),), log=quiet)
    assert (first.status, first.global_step) == ("interrupted", 2)
    shutil.copytree(root / "interrupted", root / "finished")
    done = train(SPEC, tiny_config(workdir, root / "finished", max_steps=4, logging_steps=1), resume=True,
                 progress=False, log=quiet)
    assert done.status == "completed"
    (root / "finished" / "my-notes.txt").write_text("the user's own file")
    return root


@pytest.fixture
def finished(runs, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(runs / "finished", out)
    return out


class TestOverwrite:
    @pytest.mark.parametrize("setting, key", [
        ("optim=bogus_optim", "train.optim"),
        ("lr_scheduler_type=bogus", "train.lr_scheduler_type"),
        ("learning_rate=nan", "train.learning_rate"),
    ])
    def test_a_bad_setting_leaves_the_old_run_whole(self, workdir, finished, setting, key):
        before = snapshot(finished.parent)
        line = one_line_error(cli(*train_args(workdir, finished, "--max-steps", "2", "--overwrite", "--set", setting)))
        assert key in line
        assert snapshot(finished.parent) == before

    def test_replaces_the_project_files_and_keeps_the_users(self, workdir, finished):
        result = cli(*train_args(workdir, finished, "--max-steps", "2", "--overwrite"))
        assert result.exit_code == 0, result.output
        assert (finished / "my-notes.txt").read_text() == "the user's own file"
        assert not (finished / "checkpoint-2").exists()  # the old run's checkpoint went with it
        metrics = json.loads((finished / "metrics.json").read_text())
        assert (metrics["status"], metrics["global_step"], metrics["resumed_from"]) == ("completed", 2, None)
        assert json.loads((finished / outputs.RUN_MARK).read_text())["command"] == "train"
        assert sorted(p.name for p in finished.parent.iterdir()) == ["run"]  # no temporary directory left

    def test_output_that_is_a_link_is_refused(self, workdir, finished, tmp_path):
        link = tmp_path / "link"
        link.symlink_to(finished)
        before = snapshot(finished)
        line = one_line_error(cli(*train_args(workdir, link, "--max-steps", "2", "--overwrite")))
        assert line == f"Error: output directory {link} is a symbolic link: reasoning-kit does not write through links; give the real path"
        assert snapshot(finished) == before

    def test_a_grpo_run_is_not_replaced_by_train(self, workdir, tmp_path):
        out = tmp_path / "g"
        out.mkdir()
        (out / outputs.RUN_MARK).write_text(json.dumps({"command": "grpo"}))
        line = one_line_error(cli(*train_args(workdir, out, "--max-steps", "2", "--overwrite")))
        assert line == f"Error: --overwrite: {out} holds a reasoning-kit grpo run, not a train run; not deleting it"


class TestResume:
    def test_a_finished_run_is_left_alone(self, workdir, finished):
        before = snapshot(finished)
        line = one_line_error(cli(*train_args(workdir, finished, "--max-steps", "4", "--resume")))
        assert "already finished (step 4/4; its last checkpoint is step 2); nothing changed" in line
        assert snapshot(finished) == before

    def test_a_different_model_shows_the_size_mismatch(self, workdir, runs, tmp_path):
        other = tmp_path / "other-model"
        tok = make_tokenizer(SPEC, corpus(SPEC, 40))
        make_model(tok, hidden=32, heads=2).save_pretrained(other)
        tok.save_pretrained(other)
        out = tmp_path / "run"
        shutil.copytree(runs / "interrupted", out)
        before = snapshot(out)
        args = train_args(workdir, out, "--max-steps", "4", "--resume")
        args[2] = other
        line = one_line_error(cli(*args))
        assert line.startswith(f"Error: cannot resume from {out / 'checkpoint-2'}: ")
        assert "size mismatch for" in line
        assert snapshot(out) == before

    @pytest.mark.parametrize("damage, says", [
        (lambda c: (c / "trainer_state.json").write_text("{broken"), "trainer_state.json is not readable JSON"),
        (lambda c: (c / "trainer_state.json").unlink(), "it has no trainer_state.json"),
        (lambda c: (c / "adapter_model.safetensors").write_bytes((c / "adapter_model.safetensors").read_bytes()[:-100]),
         "adapter_model.safetensors is damaged (truncated)"),
        (lambda c: (c / "optimizer.pt").unlink(), "it has no optimizer state (optimizer.pt)"),
    ], ids=["state-not-json", "state-missing", "adapter-truncated", "optimizer-missing"])
    def test_a_damaged_checkpoint_is_one_line_before_loading(self, workdir, runs, tmp_path, damage, says):
        out = tmp_path / "run"
        shutil.copytree(runs / "interrupted", out)
        damage(out / "checkpoint-2")
        before = snapshot(out)
        line = one_line_error(cli(*train_args(workdir, out, "--max-steps", "4", "--resume")))
        assert line.startswith(f"Error: --resume: cannot resume from {out / 'checkpoint-2'}: {says}")
        assert snapshot(out) == before

    @pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
    def test_a_read_only_directory_is_refused_before_loading(self, workdir, runs, tmp_path):
        out = tmp_path / "run"
        shutil.copytree(runs / "interrupted", out)
        out.chmod(0o555)
        try:
            line = one_line_error(cli(*train_args(workdir, out, "--max-steps", "4", "--resume")))
        finally:
            out.chmod(0o755)
        assert line == f"Error: cannot write in {out}: permission denied"


class TestDataPrepare:
    @pytest.fixture
    def mydata(self, tmp_path):
        path = tmp_path / "mydata.jsonl"
        rows = [{"question": "What is 2 + 2?", "answer": "Add. #### 4"}, {"question": "1 + 1?", "answer": "#### 1e5"}]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    def test_the_source_is_never_the_output(self, mydata):
        before = mydata.read_bytes()
        line = one_line_error(cli("data", "prepare", "--dataset", mydata, "--out", mydata, "--overwrite"))
        assert line == f"Error: --out {mydata} is an input file: writing it would destroy the input; choose another --out"
        assert mydata.read_bytes() == before

    def test_a_link_to_the_source_is_the_source(self, mydata, tmp_path):
        link = tmp_path / "link.jsonl"
        link.symlink_to(mydata)
        before = mydata.read_bytes()
        one_line_error(cli("data", "prepare", "--dataset", mydata, "--out", link, "--overwrite"))
        assert mydata.read_bytes() == before and link.is_symlink()

    def test_an_existing_output_needs_overwrite(self, mydata, tmp_path):
        out = tmp_path / "out.jsonl"
        out.write_text("keep\n")
        line = one_line_error(cli("data", "prepare", "--dataset", mydata, "--out", out))
        assert line == f"Error: --out {out} exists: pass --overwrite to replace it"
        assert out.read_text() == "keep\n"
        result = cli("data", "prepare", "--dataset", mydata, "--out", out, "--overwrite")
        assert result.exit_code == 0, result.output
        assert [json.loads(r)["answer"] for r in out.read_text().splitlines()] == ["4"]


class TestEvalDirectory:
    def eval_args(self, workdir, out, *extra):
        return ["eval", "--model", workdir / "model", "--dataset", "gsm8k-test", "--limit", "2", "--max-new-tokens", "4",
                "--out", out, "--quiet", *extra]

    def test_a_directory_that_is_not_an_eval_run_is_refused(self, workdir, tmp_path):
        out = tmp_path / "mine"
        out.mkdir()
        (out / "outputs.jsonl").write_text('{"id": 1, "note": "my own file"}\n{"id": 2, "no newline": true}')
        (out / "report.md").write_text("# my report\n")
        before = snapshot(out)
        line = one_line_error(cli(*self.eval_args(workdir, out)))
        assert line == (f"Error: --out {out} is not empty and is not a reasoning-kit eval directory "
                        f"(no {outputs.RUN_MARK} from eval): choose another --out")
        assert snapshot(out) == before

    def test_a_linked_outputs_file_is_not_followed(self, workdir, tmp_path):
        outside = tmp_path / "elsewhere.jsonl"
        outside.write_text('{"id": "a"}\n{"id": "torn')
        out = tmp_path / "run"
        out.mkdir()
        (out / outputs.RUN_MARK).write_text(json.dumps({"command": "eval"}))
        (out / "outputs.jsonl").symlink_to(outside)
        before = outside.read_bytes()
        line = one_line_error(cli(*self.eval_args(workdir, out)))
        assert line == f"Error: {out / 'outputs.jsonl'} is a symbolic link: reasoning-kit does not read or write through links"
        assert outside.read_bytes() == before

    def test_an_eval_run_is_marked_and_resumes(self, workdir, tmp_path):
        out = tmp_path / "run"
        first = cli(*self.eval_args(workdir, out))
        assert first.exit_code == 0, first.output
        assert json.loads((out / outputs.RUN_MARK).read_text())["command"] == "eval"
        rows = (out / "outputs.jsonl").read_bytes()
        again = cli(*self.eval_args(workdir, out))
        assert again.exit_code == 0, again.output
        assert (out / "outputs.jsonl").read_bytes() == rows

    @pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CUDA is available here")
    def test_cuda_device_without_cuda(self, workdir, tmp_path):
        line = one_line_error(cli(*self.eval_args(workdir, tmp_path / "o", "--device", "cuda")))
        assert line.startswith("Error: --device cuda: ") and line.endswith("use --device cpu (or leave --device out)")
        assert not (tmp_path / "o").exists()

    def test_a_corrupt_adapter_is_one_line(self, workdir, runs, tmp_path):
        adapter = tmp_path / "adapter"
        shutil.copytree(runs / "finished" / "adapter", adapter)
        (adapter / "adapter_model.safetensors").write_bytes(b"this is not a safetensors file")
        line = one_line_error(cli(*self.eval_args(workdir, tmp_path / "o", "--adapter", adapter)))
        assert line.startswith(f"Error: cannot load adapter {adapter}: ")

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
    def test_an_unreadable_weights_file_is_named(self, workdir, tmp_path):
        model = tmp_path / "model"
        shutil.copytree(workdir / "model", model)
        weights = model / "model.safetensors"
        weights.chmod(0)
        args = self.eval_args(workdir, tmp_path / "o")
        args[2] = model
        assert one_line_error(cli(*args)) == f"Error: cannot read {weights}: permission denied"

    def test_ctrl_c_exits_130_with_a_hint(self, workdir, tmp_path):
        out = tmp_path / "o"
        cmd = [sys.executable, "-m", "harness.cli", *[str(a) for a in self.eval_args(workdir, out)]]
        cmd[cmd.index("--limit") + 1] = "400"
        cmd[cmd.index("--max-new-tokens") + 1] = "64"
        cmd.remove("--quiet")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                env=dict(os.environ, OMP_NUM_THREADS="1"), start_new_session=True)
        buf = ""
        while "prompt" not in buf:  # the progress bar appears once generation starts
            ch = proc.stderr.read(1)
            assert ch, buf
            buf += ch
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 130, stderr[-2000:]
        assert stderr.strip().splitlines()[-1] == (
            f"aborted (Ctrl-C): finished rows are kept in {out}/outputs.jsonl; run the same command again to continue"
        )


class TestGrpoAdapter:
    def test_a_corrupt_adapter_is_one_line(self, workdir, runs, tmp_path):
        adapter = tmp_path / "adapter"
        shutil.copytree(runs / "finished" / "adapter", adapter)
        (adapter / "adapter_model.safetensors").write_bytes(b"this is not a safetensors file")
        result = cli("grpo", "--adapter", adapter, "--dataset", workdir / "data.jsonl", "--backend", "hf",
                     "--max-steps", "1", "--out", tmp_path / "g", "--no-progress", "--set", "optim='adamw_torch'")
        line = one_line_error(result)
        assert line.startswith(f"Error: cannot load adapter {adapter}: ")
        assert not (tmp_path / "g").exists()


class TestSpecName:
    @pytest.mark.parametrize("name", ["../../../x", "", "..", ".hidden", "a/b", "a\\u0000b"])
    def test_unsafe_names_are_refused_when_the_spec_loads(self, name, tmp_path):
        text = (ROOT / "reasoning_kit" / "specs" / "working_out.toml").read_text()
        spec = tmp_path / "bad.toml"
        spec.write_text(text.replace('name = "working_out"', f'name = "{name}"'))
        with pytest.raises(SpecError, match="is not a safe name"):
            load_spec(spec)
        line = one_line_error(cli("train", "--spec", spec, "--output", tmp_path / "runs" / "{name}"))
        assert "name (line" in line and "is not a safe name" in line
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]

    def test_a_byte_order_mark_is_not_part_of_the_spec(self, tmp_path):
        text = (ROOT / "reasoning_kit" / "specs" / "working_out.toml").read_text()
        (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert load_spec(tmp_path / "bom.toml") == parse_spec(text, source=str(tmp_path / "bom.toml"))


class TestFiles:
    def test_atomic_write_uses_the_umask_and_replaces_a_link_not_its_target(self, tmp_path):
        target = tmp_path / "target.txt"
        target.write_text("keep")
        (tmp_path / "out.json").symlink_to(target)
        old = os.umask(0o027)
        try:
            outputs.write_json(tmp_path / "out.json", {"a": 1})
        finally:
            os.umask(old)
        assert target.read_text() == "keep" and not (tmp_path / "out.json").is_symlink()
        assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o640

    def test_append_refuses_a_link(self, tmp_path):
        (tmp_path / "t").write_text("x")
        (tmp_path / "l").symlink_to(tmp_path / "t")
        with pytest.raises(outputs.OutputError, match="is a symbolic link"):
            outputs.open_append(tmp_path / "l")

    @pytest.mark.parametrize("given, link", [
        ("ln", "ln"), ("ln/run", "ln"), ("ln/a/b", "ln"), ("real/ln2/run", "real/ln2"), ("ln/../x", "ln"),
        ("real/run", None), ("real/missing/a/b", None), ("real", None),
    ])
    def test_the_first_link_on_an_output_path(self, tmp_path, monkeypatch, given, link):
        (tmp_path / "real").mkdir()
        (tmp_path / "ln").symlink_to(tmp_path / "real")
        (tmp_path / "real" / "ln2").symlink_to(tmp_path / "elsewhere")  # dangling: still a link
        assert outputs.symlink_on_path(tmp_path / given) == (tmp_path / link if link else None)
        monkeypatch.chdir(tmp_path)  # a relative path is walked from the working directory
        assert outputs.symlink_on_path(Path(given)) == (tmp_path / link if link else None)

    def test_a_link_above_the_output_is_named_with_the_real_path(self, tmp_path):
        (tmp_path / "real").mkdir()
        (tmp_path / "ln").symlink_to(tmp_path / "real")
        out = tmp_path / "ln" / "run"
        with pytest.raises(outputs.OutputError) as err:
            outputs.plan_run(out, "train")
        assert str(err.value) == (f"output directory {out} goes through the symbolic link {tmp_path / 'ln'}: reasoning-kit "
                                  f"does not write through links; give the real path ({tmp_path / 'real' / 'run'})")
        assert outputs.plan_run(tmp_path / "real" / "run", "train").mode == "new"

    @pytest.mark.skipif(not Path("/bin").is_symlink(), reason="/bin is not a link here (no merged /usr)")
    def test_the_top_level_directory_is_the_systems(self):
        """/tmp and /var are links on macOS, /bin where /usr is merged: a path through them is not refused."""
        assert outputs.symlink_on_path(Path("/bin/reasoning-kit-output")) is None

    def test_inside(self, tmp_path):
        assert outputs.inside(tmp_path, tmp_path / "a" / "b") == tmp_path / "a" / "b"
        with pytest.raises(outputs.OutputError, match="outside the output directory"):
            outputs.inside(tmp_path, tmp_path / ".." / "x")


def test_fetch_model_refuses_what_is_not_a_model():
    line = one_line_error(cli("fetch-model", "notamodel"))
    assert line.startswith("Error: not a model alias or a .gguf file: notamodel")


class TestFileModes:
    """Every file a run writes follows the user's umask, also those safetensors creates 0600 (#16 item 7)."""

    @pytest.fixture
    def umask_027(self):
        before = os.umask(0o027)
        yield
        os.umask(before)

    @staticmethod
    def modes(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): oct(p.stat().st_mode & 0o777) for p in root.rglob("*") if p.is_file()}

    def test_train_run_files(self, workdir, tmp_path, umask_027):
        out = tmp_path / "run"
        result = train(SPEC, tiny_config(workdir, out, max_steps=1, save_steps=1), progress=False, log=quiet)
        assert result.status == "completed"
        found = self.modes(out)
        assert "adapter/adapter_model.safetensors" in found and "checkpoint-1/adapter_model.safetensors" in found
        assert {name: mode for name, mode in found.items() if mode != "0o640"} == {}

    def test_data_prepare_output(self, tmp_path, umask_027):
        out = tmp_path / "data" / "prepared.jsonl"
        result = cli("data", "prepare", "--dataset", "arithmetic", "--limit", "3", "--out", out)
        assert result.exit_code == 0, result.output
        assert oct(out.stat().st_mode & 0o777) == "0o640"


class TestStaleRunDirectories:
    def test_a_killed_runs_temporary_directory_is_removed_by_the_next_run(self, tmp_path):
        out = tmp_path / "run"
        dead = tmp_path / ".run.new-999999999-abc"  # no such process
        dead.mkdir()
        (dead / outputs.RUN_MARK).write_text("{}")
        alive = tmp_path / f".run.new-{os.getpid()}-abc"  # this process: still running
        alive.mkdir()
        (alive / outputs.RUN_MARK).write_text("{}")
        foreign = tmp_path / ".run.new-999999999-xyz"  # not ours: no run mark
        foreign.mkdir()
        assert outputs.remove_stale_runs(out) == [dead]
        assert not dead.exists() and alive.is_dir() and foreign.is_dir()


class TestTerminated:
    def test_sigterm_removes_the_staged_run_and_leaves_the_old_one_whole(self, workdir, finished):
        """A real SIGTERM to this process mid-training: SystemExit(143), the previous run untouched, nothing staged left."""
        from transformers import TrainerCallback

        class SigtermAt(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                if state.global_step == 1:
                    signal.raise_signal(signal.SIGTERM)

        def unhandled(signum, frame):  # stands in for the default action (which would end pytest itself)
            raise RuntimeError("SIGTERM reached the handler outside the run")

        before = snapshot(finished.parent)
        previous = signal.signal(signal.SIGTERM, unhandled)
        try:
            with pytest.raises(SystemExit) as exc:
                train(SPEC, tiny_config(workdir, finished, max_steps=4), overwrite=True, progress=False,
                      callbacks=(SigtermAt(),), log=quiet)
            assert signal.getsignal(signal.SIGTERM) is unhandled  # the run's handler is put back
        finally:
            signal.signal(signal.SIGTERM, previous)
        assert exc.value.code == 143
        assert snapshot(finished.parent) == before  # no .run.new-* left, the old run and the user's file as they were
