"""Test settings: offline hub, a derandomized Hypothesis profile for CI, small thread counts."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# datasets' own cache (builder locks of local dataset directories) goes to a folder of this run, not ~/.cache
if "HF_DATASETS_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="rk-tests-hf-datasets-")
    atexit.register(shutil.rmtree, os.environ["HF_DATASETS_CACHE"], ignore_errors=True)

from hypothesis import HealthCheck, settings  # noqa: E402

# "ci" (the default): derandomized, so a CI run is repeatable; "dev": random, more examples.
settings.register_profile(
    "ci", derandomize=True, max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for the cores).

    Modules that train or generate use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def dataset_checks(monkeypatch) -> list[str]:
    """``"check_split"`` / ``"eval_only_reason"`` appended at each call of that ``harness.data.sources`` function."""
    from harness.data import sources

    calls: list[str] = []
    for name in ("check_split", "eval_only_reason"):
        real = getattr(sources, name)
        monkeypatch.setattr(sources, name, lambda *args, _real=real, _name=name: calls.append(_name) or _real(*args))
    return calls
