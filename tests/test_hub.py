"""An unreachable hub fails within seconds with one line and a hint (harness.hub), for models and datasets.

The hub endpoint is a closed port on this machine (``HF_ENDPOINT=http://127.0.0.1:9``, the
discard port), so the connection is refused for real; offline mode is switched off for these
tests only (conftest sets it for the rest of the suite).
"""

from __future__ import annotations

import time

import datasets  # noqa: F401  (imported here, in offline mode: the libraries read it once, at import)
import pytest
import transformers  # noqa: F401
from click.testing import CliRunner

from harness import hub, models
from harness.data import sources
from harness.data.sources import DataError
from harness.models import ModelLoadError

CLOSED = "http://127.0.0.1:9"
MODEL_HINT = "use a local model directory, a .gguf file or the alias smollm2-135m-instruct (what train --offline uses)"
DATA_HINT = "use a local .parquet/.jsonl/.csv file, 'gsm8k' or 'arithmetic' as the dataset"


@pytest.fixture
def closed_hub(monkeypatch, tmp_path):
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", CLOSED)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def timed(fn, *args):
    start = time.monotonic()
    with pytest.raises((ModelLoadError, DataError)) as err:
        fn(*args)
    return str(err.value), time.monotonic() - start


class TestProbe:
    def test_closed_port_is_unreachable_at_once(self, closed_hub):
        start = time.monotonic()
        why = hub.unreachable()
        assert why is not None and why.startswith("127.0.0.1:9: ")
        assert time.monotonic() - start < 5

    def test_offline_mode_probes_nothing(self, closed_hub, monkeypatch):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert hub.unreachable() is None

    @pytest.mark.parametrize("env, address", [
        ({}, ("huggingface.co", 443)),
        ({"HF_ENDPOINT": "http://mirror.local:8080"}, ("mirror.local", 8080)),
        ({"HTTPS_PROXY": "proxy.corp:3128"}, ("proxy.corp", 3128)),
    ])
    def test_probe_address(self, monkeypatch, env, address):
        for key in ("HF_ENDPOINT", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert hub.probe_address() == address


class TestModels:
    def test_hub_model_fails_fast_with_a_hint(self, closed_hub):
        message, seconds = timed(models.resolve, "no-such-org/no-such-model")
        assert seconds < 5
        assert message.startswith("cannot load 'no-such-org/no-such-model': the Hugging Face hub is unreachable (127.0.0.1:9: ")
        assert message.endswith(f"); {MODEL_HINT}")

    def test_cached_model_points_to_offline_mode(self, closed_hub):
        (closed_hub / "models--org--cached" / "snapshots" / "abc").mkdir(parents=True)
        message, _ = timed(models.load_tokenizer, "org/cached")
        assert message.endswith(f"{MODEL_HINT}; it is in the Hugging Face cache: set HF_HUB_OFFLINE=1 to use that copy")

    def test_local_sources_never_probe(self, closed_hub, tmp_path):
        with pytest.raises(ModelLoadError, match="^model not found: "):
            models.resolve(str(tmp_path / "missing.gguf"))


class TestDatasets:
    def test_hub_dataset_fails_fast_with_a_hint(self, closed_hub):
        message, seconds = timed(sources.load_source, "open-r1/DAPO-Math-17k-Processed")
        assert seconds < 5
        assert message.startswith("cannot load 'open-r1/DAPO-Math-17k-Processed': the Hugging Face hub is unreachable (")
        assert message.endswith(f"); {DATA_HINT}")

    def test_builtin_sets_need_no_hub(self, closed_hub):
        assert sources.load_source("arithmetic").kind == "generated"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from reasoning_kit.spec import load_spec
    from tests.tiny import corpus, save_tiny

    spec = load_spec("working_out")
    return save_tiny(tmp_path_factory.mktemp("hub") / "model", spec, corpus(spec, 10))


class TestCommands:
    """The commands a newcomer runs after the README's main job: one line, exit 2, in seconds."""

    @pytest.mark.parametrize("command, hint", [
        (["train", "--model", "no-such-org/no-such-model", "--dataset", "gsm8k"], MODEL_HINT),
        (["grpo", "--model", "{tiny}"], DATA_HINT),  # no --dataset: the [grpo] default is a hub id
    ])
    def test_error_within_seconds(self, closed_hub, tiny, tmp_path, command, hint):
        import trl  # noqa: F401  (imports are not what is timed)

        from harness.cli import main

        args = [a.format(tiny=tiny) for a in command] + ["--backend", "hf", "--no-progress"]
        start = time.monotonic()
        result = CliRunner().invoke(main, [*args, "--output" if command[0] == "train" else "--out", str(tmp_path / "o")])
        seconds = time.monotonic() - start
        last = result.output.strip().splitlines()[-1]
        assert result.exit_code == 2, result.output
        assert last.startswith("Error: cannot load ") and "the Hugging Face hub is unreachable" in last and last.endswith(hint)
        assert seconds < 5
        assert not (tmp_path / "o").exists()
