"""Experiment trackers (``report_to`` in [train] and [grpo]): is the chosen one installed?

transformers fails deep inside the trainer, after the output directory is written, when the
package of a tracker is missing; :func:`problem` says so in one line before anything loads.
The choices themselves are declared once, in ``reasoning_kit.run_config.TRACKERS``.
Not handled: logging in to wandb or mlflow servers (their own environment variables do that).
"""

from __future__ import annotations

import importlib.util

from reasoning_kit.run_config import TRACKERS

# tracker -> (packages any of which transformers can log through, what to install)
PACKAGES = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "wandb": (("wandb",), "wandb"),
    "trackio": (("trackio",), "trackio"),
    "mlflow": (("mlflow",), "mlflow"),
}
assert set(PACKAGES) | {"none"} == set(TRACKERS)


def problem(table: str, report_to: str) -> str | None:
    """One line when ``report_to``'s package is not installed, else None."""
    if report_to == "none":
        return None
    modules, install = PACKAGES[report_to]
    if any(importlib.util.find_spec(m) is not None for m in modules):
        return None
    return f"{table}.report_to = {report_to!r} needs the {install} package: pip install {install} (or set report_to=\"none\")"
