"""The resumable ``outputs.jsonl`` of an evaluation run, and its ``run.json`` settings.

Rows are appended one JSON line at a time and flushed, so an interrupted run keeps every
finished row; a torn last line (the process died mid-write) is cut off on the next start.
``run.json`` records the settings that decide what a row means (model and adapter by their
files, spec, dataset, prompt style, decoding); resuming into a directory made with other
settings is an error instead of a silently mixed report. Not handled: concurrent writers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from reasoning_kit import jsonl

from . import EvalError

OUTPUTS = "outputs.jsonl"
RUN = "run.json"


def read_outputs(out_dir: Path) -> dict[str, dict]:
    """Rows already written, by id (a torn final line is removed from the file)."""
    path = Path(out_dir) / OUTPUTS
    if not path.exists():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(path, "r+b") as fh:
            fh.truncate(keep)
        data = data[:keep]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EvalError(f"{path} is not UTF-8 text (invalid byte at offset {exc.start}); use another --out") from None
    parsed, bad = jsonl.parse(text)
    rows: dict[str, dict] = {}
    for number, row in parsed:
        if not isinstance(row, dict) or "id" not in row:
            bad.append((number, "a row without an 'id'"))
            continue
        rows[str(row["id"])] = row
    if bad:
        raise EvalError(f"{jsonl.summarise(str(path), sorted(bad))}; fix or delete those lines, then run again")
    return rows


class OutputsWriter:
    """Append rows to outputs.jsonl, one flushed line each."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / OUTPUTS
        self.fh = open(self.path, "a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self.fh.write(jsonl.dumps(row))
        self.fh.flush()

    def sync(self) -> None:
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> "OutputsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_run(out_dir: Path) -> dict:
    path = Path(out_dir) / RUN
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalError(f"cannot read {path}: {exc}; delete it to start over") from None


def write_run(out_dir: Path, run: dict) -> None:
    path = Path(out_dir) / RUN
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def check_settings(out_dir: Path, settings: dict, has_rows: bool) -> dict:
    """The stored run record; EvalError if finished rows were made with other settings."""
    run = read_run(out_dir)
    old = run.get("settings")
    if has_rows and old is not None:
        for key, value in settings.items():
            if old.get(key) != value:
                raise EvalError(
                    f"{Path(out_dir) / OUTPUTS} holds outputs made with other settings "
                    f"({key}: {old.get(key)!r}, now {value!r}); use another --out or delete that file"
                )
    return run
