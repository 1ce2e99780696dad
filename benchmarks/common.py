"""Shared by every benchmark script: machine/version facts and saving results as JSON.

Each benchmark prints its figures and calls :func:`save` so the raw numbers land in
``benchmarks/results/<name>.json`` together with the machine and package versions.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("reasoning-kit", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth", "math-verify")


class Budget:
    """``--budget-s``: skip a run that would end after ``seconds`` (0: no limit), judged by the longest run so far;
    the first run always goes."""

    def __init__(self, seconds: float):
        self.seconds, self.started, self.longest, self.timed = seconds, time.perf_counter(), 0.0, 0

    def over(self) -> str | None:
        """Why the next run is skipped, or None."""
        elapsed = time.perf_counter() - self.started
        if self.seconds and self.timed and elapsed + self.longest > self.seconds:
            return f"over --budget-s {self.seconds:g} ({elapsed:.0f} s used)"
        return None

    def ran(self, seconds: float) -> None:
        self.longest, self.timed = max(self.longest, seconds), self.timed + 1


def versions(extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES + extra:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        # stable across processes (hash() of a str is salted per process); files written before used hash()
        "hostname_hash": int(hashlib.sha256(platform.node().encode()).hexdigest()[:4], 16),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        info["cpu_model"] = names[0] if names else None
    except OSError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
            info["cuda"] = torch.version.cuda
    except ImportError:
        pass
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        )
        if smi.returncode == 0 and smi.stdout.strip():
            info["nvidia_smi"] = smi.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def save(name: str, results: dict, *, out_dir: Path | None = None, extra_versions: tuple[str, ...] = ()) -> Path:
    """Write ``results`` with machine/version facts to ``<out_dir or RESULTS>/<name>.json``."""
    out_dir = Path(out_dir) if out_dir else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(extra_versions),
        "results": results,
    }
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"saved {path}")
    return path
