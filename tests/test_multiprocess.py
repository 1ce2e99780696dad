"""`train` and `grpo` under a launcher: 2 CPU processes (gloo) through `accelerate launch` and `torchrun`.

Each run is the real command line (``python -m harness.cli ...``) started by the real launcher
as a subprocess, on a tiny Llama built here (tests/tiny.py). What is checked: both ranks step
(each rank's own step count, gathered into ``metrics.json``), only rank 0 writes and prints
(the output and its parent hold exactly the run's files; the summary lines appear once), the
global batch is twice the per-device batch, the loss of a memorisable dataset falls far, and
the saved adapter loads with PEFT. The launcher's own start-up (two processes importing torch)
is most of the time: about 25 s per launch on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ranks
from reasoning_kit.spec import load_spec
from tests.tiny import corpus, make_model, make_tokenizer

SPEC = load_spec("working_out")
REPO = Path(__file__).resolve().parent.parent
PAIRS = [(2, 1), (3, 4), (5, 7), (6, 2), (8, 9), (4, 4), (7, 1), (9, 3)]
ROWS = [{"question": f"What is {a} + {b}?", "reasoning": f"We add {a} and {b} to get {a + b}.", "answer": str(a + b)}
        for a, b in PAIRS]
TRAIN_FILES = {"adapter", "data_summary.json", "metrics.json", "reasoning-kit-run.json", "spec.toml", "train_config.json"}
GRPO_FILES = {"adapter", "curves.png", "data_summary.json", "grpo_config.json", "metrics.json", "reasoning-kit-run.json",
              "samples.jsonl", "spec.toml"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# the repository first, then whatever the caller had (the GPU machine keeps its wheels in a PYTHONPATH folder)
PYTHONPATH = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)


def launch(launcher: list[str], args: list[str]) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": PYTHONPATH, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                        "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "ACCELERATE_USE_CPU", "ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"):
        env.pop(name, None)
    cmd = [sys.executable, *launcher, "-m", "harness.cli", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("multi")
    tok = make_tokenizer(SPEC, corpus(SPEC, 40))
    model = make_model(tok)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)  # confident logits through frozen embeddings (test_train_run)
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (root / "runs").mkdir()
    return root


@pytest.fixture(scope="module")
def trained(workdir):
    """SFT under ``accelerate launch`` with the shipped DDP config, 2 processes, per-device batch 4."""
    out = workdir / "runs" / "sft"
    proc = launch(
        ["-m", "accelerate.commands.launch", "--config_file", str(REPO / "configs/accelerate/ddp.yaml"),
         "--num_processes", "2", "--main_process_port", str(free_port())],
        ["train", "--model", str(workdir / "model"), "--dataset", str(workdir / "data.jsonl"), "--backend", "hf",
         "--output", str(out), "--max-steps", "30", "--batch-size", "4", "--lr", "1e-2", "--no-progress",
         "--set", "warmup_steps=0", "--set", "lora_r=16", "--set", "lora_alpha=32", "--set", "logging_steps=5",
         "--set", "gradient_checkpointing=false", "--set", "completion_only_loss=true", "--set", "packing=false"],
    )
    return proc, out, json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def grpoed(trained, workdir):
    """GRPO under ``torchrun``, 2 processes, 1 prompt x 2 generations per device, a new LoRA, merged generation."""
    out = workdir / "runs" / "grpo"
    proc = launch(
        ["-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port())],
        ["grpo", "--model", str(workdir / "model"), "--dataset", str(workdir / "data.jsonl"), "--backend", "hf",
         "--output", str(out), "--max-steps", "2", "--num-generations", "2", "--no-progress",
         "--set", "per_device_train_batch_size=1", "--set", "max_completion_length=12", "--set", 'optim="adamw_torch"',
         "--set", "gradient_checkpointing=false", "--set", "sample_every=1", "--set", "save_steps=0",
         "--set", "merged_generation=true", "--set", "steps_per_generation=0"],  # a round (and a sync) per step
    )
    return proc, out, json.loads((out / "metrics.json").read_text())


def loads_adapter(model_dir: Path, adapter: Path) -> list:
    """The adapter loads onto the base model with PEFT, every saved tensor in place; returns the lora_B weights."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), adapter)
    saved = load_file(adapter / "adapter_model.safetensors")
    params = dict(model.named_parameters())
    assert saved and len([n for n in params if "lora_" in n]) == len(saved)
    for key, tensor in saved.items():
        loaded = params[key.replace(".weight", ".default.weight")]
        assert loaded.equal(tensor), key
    return [p for n, p in params.items() if "lora_B" in n]


class TestTrainUnderAccelerate:
    def test_both_ranks_step(self, trained):
        _, _, m = trained
        assert m["status"] == "completed" and m["world_size"] == 2 and m["launch"] == "ddp"
        assert m["distributed_type"] == "MULTI_CPU"  # gloo
        assert [(r["rank"], r["steps_this_session"]) for r in m["ranks"]] == [(0, 30), (1, 30)]

    def test_global_batch_is_twice_the_per_device_batch(self, trained):
        _, _, m = trained
        assert m["per_device_train_batch_size"] == 4 and m["gradient_accumulation_steps"] == 1
        assert m["global_batch_size"] == 8

    def test_loss_falls_on_memorisable_data(self, trained):
        _, _, m = trained
        losses = [e["loss"] for e in m["loss_curve"]]
        assert losses[0] > 4 * losses[-1], losses

    def test_only_rank_0_writes_and_prints(self, trained, workdir):
        proc, out, _ = trained
        assert {p.name for p in out.iterdir()} == TRAIN_FILES
        assert {p.name for p in out.parent.iterdir()} <= {"sft", "grpo"}  # no temporary or per-rank directory
        assert proc.stdout.count("trained 30 steps") == 1
        assert proc.stderr.count("backend: hf") == 1 and proc.stderr.count("data: 8 of 8 rows") == 1

    def test_adapter_loads(self, trained, workdir):
        lora_b = loads_adapter(workdir / "model", trained[1] / "adapter")
        assert any(p.abs().sum() > 0 for p in lora_b)  # trained: LoRA's B starts at zero


class TestGRPOUnderTorchrun:
    def test_both_ranks_step(self, grpoed):
        _, _, m = grpoed
        assert m["status"] == "completed" and m["world_size"] == 2
        assert [(r["rank"], r["steps_this_session"]) for r in m["ranks"]] == [(0, 2), (1, 2)]
        assert m["merged_generation_syncs"] == 2  # rank 0 sampled from its merged copy once per step under DDP

    def test_global_batch_holds_both_ranks_prompt_groups(self, grpoed):
        _, out, m = grpoed
        # TRL counts completions: 1 prompt x 2 generations per device, 2 devices.
        assert (m["per_device_train_batch_size"], m["global_batch_size"]) == (2, 4)
        rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        for step in (1, 2):
            prompts = [r["prompt"] for r in rows if r["step"] == step]
            # TRL gathers every rank's completions: two prompt groups (one per rank) of two completions.
            assert len(prompts) == 4 and len(set(prompts)) == 2

    def test_only_rank_0_writes_and_prints(self, grpoed):
        proc, out, _ = grpoed
        assert {p.name for p in out.iterdir()} == GRPO_FILES
        assert {p.name for p in out.parent.iterdir()} == {"sft", "grpo"}
        assert proc.stdout.count("GRPO: 2 steps") == 1 and proc.stderr.count("backend: hf") == 1

    def test_adapter_loads(self, grpoed, workdir):
        # A random tiny model's rewards are all equal, so GRPO's advantages (and the update) are zero: loading is the check.
        assert loads_adapter(workdir / "model", grpoed[1] / "adapter")


class TestRanks:
    @pytest.mark.parametrize("env, expected", [
        ({}, ranks.Ranks(0, 0, 1)),
        ({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}, ranks.Ranks(3, 1, 4)),
        ({"RANK": "x", "WORLD_SIZE": "0"}, ranks.Ranks(0, 0, 1)),
    ])
    def test_current(self, env, expected):
        assert ranks.current(env) == expected

    @pytest.mark.parametrize("env, expected", [
        ({}, "single"),
        ({"WORLD_SIZE": "2"}, "ddp"),
        ({"WORLD_SIZE": "2", "ACCELERATE_USE_FSDP": "true"}, "fsdp"),
        ({"WORLD_SIZE": "2", "ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_USE_FSDP": "false"}, "deepspeed"),
    ])
    def test_engine(self, env, expected):
        assert ranks.engine(env) == expected

    TORCHRUN_ONE = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": "29500", "GROUP_RANK": "0", "ACCELERATE_MIXED_PRECISION": "no"}

    @pytest.mark.parametrize("extra, cleared", [
        ({}, True),  # one process from a launcher: a plain process (no process group, no DDP wrapper)
        ({"ACCELERATE_USE_FSDP": "true"}, False),  # FSDP keeps its engine on one process
        ({"ACCELERATE_USE_DEEPSPEED": "true"}, False),
    ])
    def test_prepare_one_launched_process(self, extra, cleared):
        env = self.TORCHRUN_ONE | extra
        ranks.prepare(environ=env)
        launcher = {k for k in self.TORCHRUN_ONE if k in ranks.LAUNCHER_VARIABLES}
        assert (not launcher & set(env)) if cleared else launcher <= set(env)
        assert env["ACCELERATE_MIXED_PRECISION"] == "no"  # the launcher's settings stay

    def test_prepare_leaves_several_processes_alone(self):
        env = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "ACCELERATE_USE_CPU": "1"}
        ranks.prepare(environ=env)
        assert {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR"} <= set(env)

    @pytest.mark.parametrize("engine, backend, installed, cuda, expected", [
        ("ddp", "unsloth", False, True, None),
        ("ddp", "hf", False, False, None),
        ("single", "hf", False, False, None),
        ("deepspeed", "hf", True, True, None),
        ("fsdp", "hf", False, True, None),
        ("deepspeed", "hf", False, True, "deepspeed package is not installed"),
        ("fsdp", "unsloth", True, True, "backend 'unsloth' runs only under DDP"),
        ("deepspeed", "unsloth", True, True, "backend 'unsloth' runs only under DDP"),
        ("fsdp", "hf", True, False, "FSDP config on a machine without CUDA"),
        ("deepspeed", "hf", True, False, "DeepSpeed config on a machine without CUDA"),
    ])
    def test_launch_problem(self, engine, backend, installed, cuda, expected):
        problem = ranks.launch_problem(engine, backend, deepspeed_installed=installed, cuda=cuda)
        assert (problem is None) if expected is None else (expected in problem and "\n" not in problem)

    @pytest.mark.parametrize("engine, cuda, refused", [("single", False, False), ("ddp", True, False), ("ddp", False, True)])
    def test_resume_under_several_cpu_processes_is_refused(self, engine, cuda, refused):
        problem = ranks.launch_problem(engine, "hf", resume=True, cuda=cuda)
        expected = "--resume under several processes on CPU is not supported" if refused else None
        assert (problem is None) if expected is None else (expected in problem and "\n" not in problem)


@pytest.mark.parametrize("variable, engine", [("ACCELERATE_USE_DEEPSPEED", "deepspeed"), ("ACCELERATE_USE_FSDP", "fsdp")])
def test_a_launch_that_cannot_run_here_is_one_line_before_anything_is_written(tmp_path, monkeypatch, variable, engine):
    """A process started by a DeepSpeed or FSDP config where it cannot run stops at the checks, before loading."""
    from harness.train import TrainError
    from harness.train.config import resolve_config
    from harness.train.run import train

    expected = ranks.launch_problem(engine, "hf")
    if expected is None:
        pytest.skip(f"{engine} can run here")
    monkeypatch.setenv(variable, "true")
    cfg = resolve_config(SPEC.train, {"model": str(tmp_path / "no-model"), "dataset": "gsm8k", "backend": "hf",
                                      "output_dir": str(tmp_path / "out")})
    with pytest.raises(TrainError) as caught:
        train(SPEC, cfg, progress=False, log=lambda m: None)
    assert str(caught.value) == expected
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
def test_one_process_under_torchrun_trains_as_a_plain_process(workdir):
    """torchrun with one process on CUDA: no DDP wrapper (accelerate makes a lone launched process MULTI_GPU, a
    process group of one; on CPU it is plain anyway, so this needs a GPU to tell the two apart)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA: on CPU accelerate runs one launched process without DDP whatever ranks.prepare does")
    out = workdir / "runs" / "one"
    launch(["-m", "torch.distributed.run", "--nproc-per-node", "1", "--master-port", str(free_port())],
           ["train", "--model", str(workdir / "model"), "--dataset", str(workdir / "data.jsonl"), "--backend", "hf",
            "--output", str(out), "--max-steps", "2", "--batch-size", "4", "--no-progress", "--set", "packing=false",
            "--set", "gradient_checkpointing=false", "--eval-limit", "0"])
    m = json.loads((out / "metrics.json").read_text())
    assert (m["world_size"], m["launch"], m["distributed_type"], m["global_step"]) == (1, "single", "NO", 2)


@pytest.mark.slow
def test_ctrl_c_under_torchrun_saves_one_checkpoint_and_resume_finishes(workdir):
    """SIGINT to torchrun (as Ctrl-C in a terminal): it passes it to both ranks, which stop at the same step; rank 0
    saves the checkpoint (each rank its RNG state). On CPU, --resume under torchrun is refused in one line (see
    ranks.launch_problem) and changes nothing; one process resumes the run to its end."""
    import signal

    out = workdir / "runs" / "ctrl-c"
    args = ["train", "--model", str(workdir / "model"), "--dataset", str(workdir / "data.jsonl"), "--backend", "hf",
            "--output", str(out), "--max-steps", "200", "--batch-size", "4", "--no-progress", "--set", "logging_steps=1",
            "--set", "gradient_checkpointing=false", "--set", "packing=false"]
    env = os.environ | {"PYTHONPATH": PYTHONPATH, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port())]
    proc = subprocess.Popen([*torchrun, "-m", "harness.cli", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # the console's step lines go to stderr
        seen.append(line)
        if re.search(r"step \d+/200", line):  # training has started: a step was logged
            proc.send_signal(signal.SIGINT)
            break
    stdout, stderr = proc.communicate(timeout=120)
    stderr = "".join(seen) + stderr
    ckpts = sorted(p.name for p in out.glob("checkpoint-*"))
    assert len(ckpts) == 1, (ckpts, stderr[-2000:])
    step = int(ckpts[0].split("-")[1])
    assert 1 <= step < 200
    assert (out / ckpts[0] / "rng_state_0.pth").is_file() and (out / ckpts[0] / "rng_state_1.pth").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and [r["steps_this_session"] for r in metrics["ranks"]] == [step, step]
    assert stderr.count("interrupted at step") == 1
    before = sorted(str(p) for p in out.rglob("*"))
    proc = subprocess.run([*torchrun[:-1], str(free_port()), "-m", "harness.cli", *args, "--resume"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.stderr.count("Error: --resume under several processes on CPU is not supported") == 1, proc.stderr[-3000:]
    assert sorted(str(p) for p in out.rglob("*")) == before
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args, "--resume"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["global_step"] == 200 and metrics["world_size"] == 1
    assert metrics["resumed_from"].endswith(ckpts[0])


def test_unsloth_loads_each_rank_onto_its_own_gpu(monkeypatch):
    """Under DDP each process puts its Unsloth model on its LOCAL_RANK GPU; one process keeps Unsloth's default."""
    from harness.train.backends.unsloth import from_pretrained_kwargs
    from reasoning_kit.train_config import TrainConfig

    cfg = TrainConfig()
    assert "device_map" not in from_pretrained_kwargs(cfg, "m", vllm=False)
    for name, value in {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}.items():
        monkeypatch.setenv(name, value)
    assert from_pretrained_kwargs(cfg, "m", vllm=False)["device_map"] == {"": 1}


@pytest.mark.parametrize("rank, teardown", [("1", False), ("0", True)])
def test_a_launched_rank_other_than_0_leaves_without_teardown(tmp_path, rank, teardown):
    """After its command, rank 1 of 2 exits 0 straight away (harness.cli._leave): no atexit handler, no C++ thread
    destructors to abort it; rank 0 exits normally."""
    script = tmp_path / "run.py"
    script.write_text("import atexit, sys\natexit.register(lambda: print('TEARDOWN', file=sys.stderr))\n"
                      "sys.argv = ['reasoning-kit', 'regex']\nfrom harness.cli import main\nmain()\n")
    env = os.environ | {"PYTHONPATH": PYTHONPATH, "RANK": rank, "WORLD_SIZE": "2"}
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "<SOLUTION>" in proc.stdout, proc.stderr[-2000:]
    assert ("TEARDOWN" in proc.stderr) is teardown
