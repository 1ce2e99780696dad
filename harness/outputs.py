"""One output policy for every command that writes a run: train, grpo, eval and data prepare.

What it guarantees:

- a run directory is marked by ``reasoning-kit-run.json``, which names the command that wrote
  it (``train``, ``grpo``, ``eval``); a non-empty directory that is not a run of the same
  command is refused with one line, and nothing in it is touched;
- :func:`plan_run` checks the directory and writes nothing; :func:`open_run` builds a new or
  ``--overwrite`` run in a sibling temporary directory (same parent, so a rename moves it) and
  :meth:`RunDir.commit` moves it into place only once it has a result: the previous run stays
  whole until then, and a failure removes only the temporary directory;
- on commit, only entries the project wrote (listed in the old mark, or with a name a run
  writes) are replaced; a file the user put in the directory stays;
- ``--resume`` works in place and refuses a finished run (``metrics.json`` status
  ``completed``), changing nothing, unless it continues past the run's final checkpoint;
- files are written atomically (a temporary file in the same directory, then ``os.replace``),
  never through a symlink (``O_NOFOLLOW``), with the user's umask (also the files a library
  wrote 0600, such as ``adapter_model.safetensors``: :func:`follow_umask`);
- an output path with a symbolic link in it, as its last component or any directory above
  (the top-level one such as ``/tmp`` excepted), is refused before anything is written
  (:func:`refuse_symlink`, which every command's output check calls); :func:`inside` keeps a
  derived path in its directory and :func:`refuse_same_file` keeps an input from being an output.

Not handled: concurrent runs writing the same directory, network file systems without
atomic rename, multi-process I/O (the caller decides which process writes: ``is_main_process``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

RUN_MARK = "reasoning-kit-run.json"
COMMANDS = ("train", "grpo", "eval")
LABELS = {"train": "training", "grpo": "GRPO", "eval": "eval"}
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Top-level names a run of each command writes (older marks do not list their entries).
RUN_ENTRIES = {
    "train": ("adapter", "merged", "eval", "spec.toml", "train_config.json", "data_summary.json", "metrics.json"),
    "grpo": ("adapter", "eval", "spec.toml", "grpo_config.json", "data_summary.json", "metrics.json", "curves.png",
             "samples.jsonl"),
    "eval": ("outputs.jsonl", "run.json", "report.json", "report.md", "chart.png"),
}


class OutputError(ValueError):
    """An output path or directory that cannot be used, in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --- files -----------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mode() -> int:
    """Mode of a new file under the user's umask (mkstemp alone would give 0600)."""
    return 0o666 & ~_umask()


def follow_umask(root: Path, names=None) -> None:
    """Give files other libraries wrote as 0600 under ``root`` (or its entries ``names``) the umask's mode.

    safetensors (and ``tempfile``) create files 0600 whatever the umask; a saved adapter or model
    should be as readable as any other file the user writes. Only 0600 files change; links are
    never followed or changed.
    """
    root = Path(root)
    mode = _mode()
    if mode == 0o600:
        return
    tops = [root / n for n in names] if names is not None else [root]
    for top in tops:
        if top.is_symlink() or not top.exists():
            continue
        walk = [(str(top.parent), [], [top.name])] if top.is_file() else os.walk(top)  # os.walk never follows links
        for folder, _, files in walk:
            for name in files:
                path = os.path.join(folder, name)
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600:
                    os.chmod(path, mode)


def inside(root: Path, path: Path) -> Path:
    """``path`` if it resolves inside ``root``; OutputError otherwise."""
    if not Path(path).resolve().is_relative_to(Path(root).resolve()):
        raise OutputError(f"{path} is outside the output directory {root}")
    return Path(path)


def symlink_on_path(path: Path) -> Path | None:
    """The first symbolic link among ``path`` and the directories above it, or None.

    ``path`` is made absolute against the working directory (which the system reports without
    links) but neither resolved nor normalised: ``..`` is walked as the system walks it, so
    ``link/../run`` counts as going through ``link``. The top-level directory under ``/`` is not
    looked at: it is the system's layout, not a choice of the user's (``/tmp`` and ``/var`` are
    links on macOS, ``/home`` on some Linux systems, ``/bin`` wherever ``/usr`` is merged).
    Every directory below it counts, so ``runs`` linked to a bigger disk is refused in
    ``runs/exp1`` as in ``/home/me/runs/exp1``; the message gives the real path to use instead.
    """
    absolute = Path(path).absolute()
    walked = Path(absolute.anchor)
    for i, part in enumerate(absolute.parts[1:]):
        walked = walked / part
        try:
            mode = os.lstat(walked).st_mode
        except OSError:  # missing (so is everything below) or not searchable: the write itself will say so
            return None
        if i > 0 and stat.S_ISLNK(mode):
            return walked
    return None


def refuse_symlink(path: Path, what: str = "output") -> None:
    """OutputError when ``path``, or a directory above it, is a symbolic link (:func:`symlink_on_path`).

    A write through a link lands somewhere the user did not name: a run renamed into place,
    the trash of an ``--overwrite`` and a stale-run sweep would all act in the link's target.
    Checked before anything is written; the message names the link and the real path to give.
    """
    link = symlink_on_path(path)
    if link is None:
        return
    if link == Path(path).absolute():
        raise OutputError(f"{what} {path} is a symbolic link: reasoning-kit does not write through links; give the real path")
    raise OutputError(f"{what} {path} goes through the symbolic link {link}: reasoning-kit does not write through links; "
                      f"give the real path ({Path(path).resolve()})")


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in its directory and ``os.replace`` (umask applies)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # replaces a link itself, never its target
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def open_append(path: Path):
    """``path`` opened for appending text, refusing a symbolic link (O_NOFOLLOW)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        if Path(path).is_symlink():
            refuse_symlink(path)
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    return os.fdopen(fd, "a", encoding="utf-8")


def refuse_same_file(inputs, output: Path, flag: str = "--out") -> None:
    """OutputError when ``output`` is (resolves to) one of the ``inputs`` files."""
    out = Path(output).expanduser().resolve()
    for item in inputs:
        path = Path(str(item)).expanduser() if item is not None else None
        if path is not None and path.exists() and path.resolve() == out:
            raise OutputError(f"{flag} {output} is an input file: writing it would destroy the input; choose another {flag}")


def check_output_file(path: Path, *, overwrite: bool, inputs=(), flag: str = "--out") -> None:
    """A file a command is about to write: not an input, not a link, not replaced without ``overwrite``."""
    refuse_same_file(inputs, path, flag)
    refuse_symlink(path)
    if path.exists() and not path.is_file():
        raise OutputError(f"{flag} {path} exists and is not a file")
    if path.exists() and not overwrite:
        raise OutputError(f"{flag} {path} exists: pass --overwrite to replace it")
    blocker = next((p for p in Path(path).parents if p.exists()), None)  # the nearest existing ancestor
    if blocker is not None and not blocker.is_dir():
        raise OutputError(f"{flag} {path}: {blocker} is a file, not a directory")


# --- run directories -------------------------------------------------------------------------


def read_mark(out: Path) -> dict | None:
    """The run mark of ``out`` (``{}`` for an unreadable one), or None when there is none."""
    path = Path(out) / RUN_MARK
    if path.is_symlink() or not path.is_file():
        return None
    try:
        mark = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return mark if isinstance(mark, dict) else {}


def run_command(out: Path) -> str | None:
    """The command that wrote run directory ``out`` (marks older than this policy: train or grpo)."""
    mark = read_mark(out)
    if mark is None:
        return None
    return mark.get("command") or "train|grpo"


def _same_command(found: str | None, command: str) -> bool:
    return found is not None and (found == command or (found == "train|grpo" and command in ("train", "grpo")))


def last_checkpoint(out: Path) -> Path | None:
    """The ``checkpoint-N`` directory with the largest N in ``out``, or None."""
    if not Path(out).is_dir():
        return None
    found = [(int(m.group(1)), p) for p in Path(out).iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return max(found)[1] if found else None


def finished(out: Path) -> dict | None:
    """``metrics.json`` of ``out`` when it says the run completed, else None."""
    try:
        metrics = json.loads((Path(out) / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and metrics.get("status") == "completed" else None


def checkpoint_problem(ckpt: Path) -> str | None:
    """What makes ``ckpt`` unreadable for a resume (its trainer state and its safetensors), or None.

    Checked: the trainer state parses, every safetensors file is whole, some optimizer state is there
    (``optimizer.pt``; FSDP ``optimizer_*``; DeepSpeed ``global_step*/``). Not checked: tensor values.
    """
    state = Path(ckpt) / "trainer_state.json"
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "it has no trainer_state.json"
    except (OSError, ValueError) as exc:
        return f"trainer_state.json is not readable JSON ({type(exc).__name__})"
    if not isinstance(data, dict) or not isinstance(data.get("global_step"), int):
        return "trainer_state.json has no global_step"
    for f in sorted(Path(ckpt).glob("*.safetensors")):
        if problem := _safetensors_problem(f):
            return f"{f.name} is damaged ({problem})"
    # transformers would go on silently with a fresh optimizer (FSDP: optimizer_*; DeepSpeed: global_step*/)
    if not any(Path(ckpt).glob("optimizer*")) and not any(Path(ckpt).glob("global_step*")):
        return "it has no optimizer state (optimizer.pt): resuming would restart the optimizer"
    return None


def _safetensors_problem(path: Path) -> str | None:
    """A safetensors file's header parses and its data is all there (the format: u64 header size, JSON, bytes)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            size = int.from_bytes(raw, "little") if len(raw) == 8 else -1
            if size < 2 or size > 100_000_000:
                return "no header"
            header = json.loads(fh.read(size))
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
        if path.stat().st_size < 8 + size + max(ends, default=0):
            return "truncated"
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return type(exc).__name__
    return None


@dataclass(frozen=True)
class RunPlan:
    """What :func:`open_run` will do: ``mode`` is new, overwrite or resume."""

    out: Path
    command: str
    mode: str
    checkpoint: Path | None = None


def _writable(path: Path) -> None:
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write in {path}: permission denied")


def plan_run(out: Path, command: str, *, overwrite: bool = False, resume: bool = False,
             need_checkpoint: bool = True, max_steps: int | None = None) -> RunPlan:
    """Check ``out`` for a run of ``command``; write nothing. OutputError (one line) when it cannot be used.

    ``--resume`` of a finished run is refused unless its last checkpoint is its final step and
    ``max_steps`` goes beyond it (training further, never backwards).
    """
    out = Path(out)
    if overwrite and resume:
        raise OutputError("--overwrite and --resume contradict each other: choose one")
    refuse_symlink(out, "output directory")
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} exists and is not a directory")
    found = run_command(out) if out.is_dir() else None
    if resume:
        if not out.is_dir():
            raise OutputError(f"--resume: output directory {out} does not exist, so there is nothing to resume")
        if any(out.iterdir()) and not _same_command(found, command):
            raise OutputError(f"--resume: {out} is not a reasoning-kit {LABELS[command]} directory (no {RUN_MARK} from {command})")
        ckpt = last_checkpoint(out)
        done = finished(out)
        if done is not None:
            step = done.get("global_step")
            at = int(_CHECKPOINT.match(ckpt.name).group(1)) if ckpt else None
            if not (isinstance(step, int) and at == step and max_steps is not None and max_steps > step):
                raise OutputError(
                    f"--resume: the run in {out} already finished (step {step}/{done.get('max_steps')}"
                    + (f"; its last checkpoint is step {at}" if at is not None and at != step else "")
                    + "); nothing changed (use --overwrite to run it again, or --output DIR; to train further, resume with "
                    "a larger max_steps from a run that saved a checkpoint at its last step)"
                )
        if ckpt is None and need_checkpoint:
            raise OutputError(
                f"--resume: no checkpoint-N directory in {out} (one is saved on Ctrl-C, or every train.save_steps steps)"
            )
        if ckpt is not None and (problem := checkpoint_problem(ckpt)):
            raise OutputError(f"--resume: cannot resume from {ckpt}: {problem} (delete that checkpoint to resume from an "
                              "earlier one, or --overwrite)")
        _writable(out)
        return RunPlan(out, command, "resume", ckpt)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputError(
                f"output directory {out} is not empty: pass --overwrite to replace it, --resume to continue it, or --output DIR"
            )
        if found is None:
            raise OutputError(f"--overwrite: {out} is not a reasoning-kit {LABELS[command]} directory (no {RUN_MARK}), not deleting it")
        if not _same_command(found, command):
            raise OutputError(f"--overwrite: {out} holds a reasoning-kit {found} run, not a {command} run; not deleting it")
        _writable(out)
        return RunPlan(out, command, "overwrite")
    parent = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    _writable(parent if parent != out else out)
    return RunPlan(out, command, "new")


@dataclass
class RunDir:
    """An opened run: write into ``path``; :meth:`commit` makes it the run at ``plan.out``."""

    plan: RunPlan
    path: Path
    committed: bool = False
    entries: list[str] = field(default_factory=list)

    def commit(self) -> Path:
        """Move the new run into place (replacing only the project's old entries); returns ``plan.out``."""
        out = self.plan.out
        if self.committed:
            return out
        self.committed = True
        if self.path == out:
            ours = set(RUN_ENTRIES.get(self.plan.command, ())) | {p.name for p in out.iterdir() if _CHECKPOINT.match(p.name)}
            follow_umask(out, sorted(ours))
            _mark(out, self.plan.command, extra=sorted(p.name for p in out.iterdir()))
            return out
        follow_umask(self.path)
        new = sorted(p.name for p in self.path.iterdir())
        _mark(self.path, self.plan.command, extra=new)
        if not out.exists() or (out.is_dir() and not any(out.iterdir())):
            if out.exists():
                out.rmdir()
            os.replace(self.path, out)
            return out
        old = read_mark(out) or {}
        ours = set(old.get("entries") or ()) | set(RUN_ENTRIES.get(self.plan.command, ())) | {RUN_MARK}
        ours |= {p.name for p in out.iterdir() if _CHECKPOINT.match(p.name)}
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        for p in list(out.iterdir()):
            if p.name in ours or p.name in new:
                os.replace(p, trash / p.name)
        for name in new:
            os.replace(self.path / name, out / name)
        self.path.rmdir()
        shutil.rmtree(trash, ignore_errors=True)
        return out

    def abandon(self) -> None:
        """Remove what this run wrote when it never committed (the temporary directory only)."""
        if not self.committed and self.path != self.plan.out:
            shutil.rmtree(self.path, ignore_errors=True)


def _mark(path: Path, command: str, extra: list[str]) -> None:
    mark = read_mark(path) or {}
    entries = sorted(set(mark.get("entries") or ()) | set(extra) | {RUN_MARK})
    write_json(path / RUN_MARK, {"command": command, "started": mark.get("started") or now(), "entries": entries})


def remove_stale_runs(out: Path) -> list[Path]:
    """Remove ``.NAME.new-PID-*`` run directories beside ``out`` whose process is gone.

    They are left by a run killed by SIGKILL (train and grpo remove their own on SIGTERM).

    Only directories holding this project's run mark are removed; returns them.
    """
    removed = []
    for path in out.parent.glob(f".{out.name}.new-*-*"):
        pid = path.name[len(f".{out.name}.new-"):].split("-", 1)[0]
        if not pid.isdigit() or path.is_symlink() or not (path / RUN_MARK).is_file() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_run(plan: RunPlan) -> RunDir:
    """Create the directory the run writes into: ``plan.out`` for resume, else a sibling temporary one."""
    out = plan.out
    try:
        if plan.mode == "resume":
            return RunDir(plan, out)
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_runs(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-{os.getpid()}-", dir=out.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
    except OSError as exc:
        raise OutputError(f"cannot create the output directory {out}: {exc.strerror}") from None
    _mark(tmp, plan.command, extra=[])
    return RunDir(plan, tmp)
