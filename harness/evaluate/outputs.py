"""The resumable ``outputs.jsonl`` of an evaluation run, and its ``run.json`` settings.

Rows are appended one JSON line at a time and flushed, so an interrupted run keeps every
finished row; a torn last line (the process died mid-write) is cut off on the next start. A
finished run leaves the rows in dataset order (:func:`write_in_order`).
``run.json`` records the settings that decide what a row means (model and adapter by their
files, spec, dataset, prompt style, decoding); resuming into a directory made with other
settings is an error instead of a silently mixed report. :func:`check_out_dir` applies the
project's output policy (``harness.outputs``): ``--out`` must be new, empty, or an earlier
eval run (marked ``reasoning-kit-run.json`` with command ``eval``, or an older ``run.json``);
no file in it is read or written through a symbolic link. Not handled: concurrent writers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness import outputs as policy
from reasoning_kit import jsonl

from . import EvalError

OUTPUTS = "outputs.jsonl"
RUN = "run.json"


def check_out_dir(out_dir: Path) -> str:
    """'new' or 'resume' for ``--out``; EvalError (one line) for a directory that is not an eval run."""
    out = Path(out_dir)
    try:
        policy.refuse_symlink(out, "--out")
    except policy.OutputError as exc:
        raise EvalError(str(exc)) from None
    if out.exists() and not out.is_dir():
        raise EvalError(f"--out {out} exists and is not a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return "new"
    found = policy.run_command(out)
    if found == "eval" or (found is None and "settings" in read_run(out)):
        for name in (OUTPUTS, RUN):
            if (out / name).is_symlink():
                raise EvalError(f"{out / name} is a symbolic link: reasoning-kit does not read or write through links")
        return "resume"
    what = f"holds a reasoning-kit {found.replace('|', ' or ')} run" if found else "is not a reasoning-kit eval directory"
    raise EvalError(f"--out {out} is not empty and {what} (no {policy.RUN_MARK} from eval): choose another --out")


def mark_eval_dir(out_dir: Path) -> None:
    """Write the eval run mark into ``out_dir`` unless it is there."""
    if policy.run_command(out_dir) != "eval":
        policy.write_json(Path(out_dir) / policy.RUN_MARK, {"command": "eval", "started": policy.now(),
                                                             "entries": sorted(policy.RUN_ENTRIES["eval"])})


def read_outputs(out_dir: Path) -> dict[str, dict]:
    """Rows already written, by id (a torn final line is removed from the file)."""
    path = Path(out_dir) / OUTPUTS
    if path.is_symlink():
        raise EvalError(f"{path} is a symbolic link: reasoning-kit does not read or write through links")
    if not path.exists():
        return {}
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1 if data and not data.endswith(b"\n") else len(data)  # a torn last line is cut...
    try:
        text = data[:keep].decode("utf-8")
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
    if keep < len(data):  # ...only once everything before it is known good: an error above changes nothing
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            os.ftruncate(fd, keep)
        finally:
            os.close(fd)
    return rows


class OutputsWriter:
    """Append rows to outputs.jsonl, one flushed line each."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / OUTPUTS
        try:
            self.fh = policy.open_append(self.path)
        except policy.OutputError as exc:
            raise EvalError(str(exc)) from None

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


def write_in_order(out_dir: Path, done: dict[str, dict], ids: list[str]) -> None:
    """Rewrite outputs.jsonl with ``done``'s rows in the order of ``ids`` (the dataset's), atomically.

    Rows are appended in batch order while a run goes (longest prompts first); once it is done
    the file is put in dataset order, other rows (ids beyond this run's ``--limit``) after them
    as they were. Nothing is written when the file is already in that order; a crash mid-rewrite
    leaves the old file whole (``harness.outputs.atomic_write``).
    """
    wanted = [i for i in ids if i in done]
    order = wanted + [i for i in done if i not in set(wanted)]
    if order == list(done):
        return
    path = Path(out_dir) / OUTPUTS
    policy.refuse_symlink(path)
    policy.atomic_write(path, "".join(jsonl.dumps(done[i]) for i in order))


def read_run(out_dir: Path) -> dict:
    path = Path(out_dir) / RUN
    if path.is_symlink() or not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalError(f"cannot read {path}: {exc}; delete it to start over") from None


def write_run(out_dir: Path, run: dict) -> None:
    policy.atomic_write(Path(out_dir) / RUN, json.dumps(run, indent=2, ensure_ascii=False) + "\n")


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
