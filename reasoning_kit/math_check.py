"""Symbolic answer comparison with ``math-verify``, in a worker process with a hard timeout.

math-verify (and the sympy simplification under it) can hang on some inputs, and its own
timeout uses ``signal.alarm``, which only works in the main thread and cannot interrupt C
code. So each comparison runs in a separate Python process (this file run as a script,
started with ``subprocess``: no fork of a process holding CUDA or threads, and no re-import
of the user's ``__main__`` as multiprocessing's spawn would do). When a comparison takes
longer than the timeout, the worker is killed and the comparison counts as wrong; the next
call starts a fresh worker (its start-up is not charged to the timeout).

:func:`verify` is safe to call from reward functions under TRL: nothing unpicklable is
stored on the reward objects, each process (and each forked child) gets its own worker,
and calls are serialised with a lock. Results are cached per (gold, answer) pair.

Not handled: batching several comparisons into one message (one round trip each, about
0.1 ms plus math-verify's own time) and Windows (``select`` on pipes is POSIX only).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
import warnings

STARTUP_TIMEOUT = 120.0  # seconds allowed to import math-verify in a fresh worker
_CACHE_SIZE = 4096


class _Worker:
    """One worker process speaking JSON lines over its stdin/stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", os.path.abspath(__file__), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self.pid = os.getpid()  # the process that owns this worker
        self.buffer = b""
        self.ready = False  # set once the worker has imported math-verify

    def wait_ready(self) -> None:
        """Wait for the worker's start-up (not charged to any comparison's timeout)."""
        if self.ready:
            return
        hello = self._read(STARTUP_TIMEOUT)
        if hello is None or not hello.get("ready"):
            self.close()
            reason = (hello or {}).get("error", "the worker did not start")
            raise RuntimeError(f"math-verify is unavailable ({reason}); install the extra: pip install 'reasoning-kit[math]'")
        self.ready = True

    def _read(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # the worker died
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError:
            return None
        return reply if isinstance(reply, dict) else None

    def ask(self, gold: str, answer: str, timeout: float) -> dict | None:
        """The worker's reply, or None on timeout / death (then the worker is gone)."""
        try:
            self.proc.stdin.write(json.dumps({"gold": gold, "answer": answer}).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            return None
        reply = self._read(timeout)
        if reply is None:
            self.close()
        return reply

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


_lock = threading.Lock()
_worker: _Worker | None = None
_cache: dict[tuple[str, str, float], bool | None] = {}
_warned = False
stats = {"calls": 0, "timeouts": 0, "starts": 0}


def _get_worker() -> _Worker | None:
    global _worker, _warned
    if _worker is not None and (_worker.pid != os.getpid() or not _worker.alive()):
        if _worker.pid == os.getpid():
            _worker.close()
        _worker = None  # a forked child never touches its parent's worker
    try:
        if _worker is None:
            _worker = _Worker()
            stats["starts"] += 1
        _worker.wait_ready()
    except (OSError, RuntimeError) as exc:
        _worker = None
        if not _warned:
            warnings.warn(f"math-verify comparison skipped: {exc}", RuntimeWarning, stacklevel=3)
            _warned = True
        return None
    return _worker


def _replace_worker() -> None:
    """After a timeout: start the next worker now, so its import overlaps other work."""
    global _worker
    try:
        _worker = _Worker()
        stats["starts"] += 1
    except OSError:
        _worker = None


def verify(gold: str, answer: str, *, timeout: float = 2.0) -> bool | None:
    """math-verify's verdict on ``answer`` against ``gold``, within ``timeout`` seconds.

    Returns True/False, False on timeout or error, and None when math-verify cannot parse
    the gold answer (or is not installed).
    """
    key = (gold, answer, timeout)
    with _lock:
        if key in _cache:
            return _cache[key]
        worker = _get_worker()
        if worker is None:
            return None
        stats["calls"] += 1
        reply = worker.ask(gold, answer, timeout)
        if reply is None:
            stats["timeouts"] += 1
            _replace_worker()
            result: bool | None = False
        elif not reply.get("gold_ok", True):
            result = None
        else:
            result = bool(reply.get("equal"))
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = result
        return result


def shutdown() -> None:
    """Stop this process's worker (also done at exit)."""
    global _worker
    with _lock:
        if _worker is not None and _worker.pid == os.getpid():
            _worker.close()
        _worker = None


atexit.register(shutdown)


def _parse(parse, text: str):
    found = parse(text, parsing_timeout=None)
    return found or parse(f"${text}$", parsing_timeout=None)


def _serve() -> None:  # pragma: no cover - runs in the worker process
    # Replies go to a private copy of stdout; anything the libraries print goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        from math_verify import parse, verify as mv_verify
    except ImportError as exc:
        print(json.dumps({"ready": False, "error": f"cannot import math_verify: {exc}"}), file=out, flush=True)
        return
    print(json.dumps({"ready": True}), file=out, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        reply: dict
        try:
            gold = _parse(parse, request["gold"])
            if not gold:
                reply = {"gold_ok": False}
            else:
                answer = _parse(parse, request["answer"])
                reply = {"gold_ok": True, "equal": bool(answer) and bool(mv_verify(gold, answer, timeout_seconds=None))}
        # math-verify and sympy raise many unrelated types on odd input; any of them means "not equal".
        except Exception as exc:  # noqa: BLE001
            reply = {"gold_ok": True, "equal": False, "error": type(exc).__name__}
        print(json.dumps(reply), file=out, flush=True)


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    _serve()
