"""Train, GRPO and eval reports name a spec the same way (issue 16, item 12).

A shipped spec is recorded by its name however ``--spec`` gave it (the name, the repository's
``spec/<name>.toml`` or the packaged copy); any other spec file by the path given.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from reasoning_kit.spec import SPEC_DIR, load_spec, shipped_specs
from tests.test_train_run import make_workdir

REPO_SPECS = Path(__file__).resolve().parent.parent / "spec"


class TestSpecSource:
    @pytest.mark.parametrize("name", shipped_specs())
    def test_a_shipped_spec_is_named_however_it_is_given(self, name):
        given = [name, str(REPO_SPECS / f"{name}.toml"), str(SPEC_DIR / f"{name}.toml")]
        assert [load_spec(g).source for g in given] == [name] * 3

    def test_a_copy_elsewhere_is_its_path(self, tmp_path):
        copy = tmp_path / "working_out.toml"
        shutil.copyfile(REPO_SPECS / "working_out.toml", copy)
        assert load_spec(copy).source == str(copy)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_metrics_and_eval_report_name_the_spec_alike(tmp_path):
    """The README's way: train with ``--spec spec/working_out.toml``, eval with ``--spec working_out``."""
    work = make_workdir(tmp_path, seed=0)
    out = tmp_path / "sft"
    trained = CliRunner().invoke(main, [
        "train", "--spec", str(REPO_SPECS / "working_out.toml"), "--model", str(work / "model"), "--dataset",
        str(work / "data.jsonl"), "--backend", "hf", "--output", str(out), "--max-steps", "1", "--no-progress",
        "--set", "gradient_checkpointing=false", "--set", "max_seq_length=512", "--set", "packing=false",
    ])
    assert trained.exit_code == 0, trained.output
    evaluated = CliRunner().invoke(main, [
        "eval", "--spec", "working_out", "--model", str(work / "model"), "--adapter", str(out / "adapter"),
        "--limit", "1", "--max-new-tokens", "2", "--out", str(tmp_path / "eval"), "--quiet",
    ])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((out / "metrics.json").read_text())["spec"]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())["run"]["spec"]
    assert (metrics["name"], metrics["source"]) == (report["name"], report["source"]) == ("working_out", "working_out")
    assert "(--spec working_out, sha256 " in (tmp_path / "eval" / "report.md").read_text()
