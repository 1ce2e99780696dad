"""Is the Hugging Face hub reachable? A two-second answer before a hub id is loaded.

transformers and datasets retry an unreachable hub for 30-50 s before they give up, and
their last error does not say what to do instead. :func:`unreachable` opens one TCP
connection to the hub endpoint (``$HF_ENDPOINT``, default ``https://huggingface.co``, or the
``https_proxy`` when one is set) with a short timeout, and says why it failed, in words;
:func:`in_cache` says whether a repository is in the Hugging Face cache, so the error can
point to ``HF_HUB_OFFLINE=1``.

With ``HF_HUB_OFFLINE`` set nothing is probed: the libraries then read only their cache and
fail at once on a miss. Not handled: whether the repository exists or needs a token (the
libraries report that), DNS that hangs longer than the timeout (the probe gives up after it).
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "https://huggingface.co"
TIMEOUT_S = 2.0
_TRUE = {"1", "on", "yes", "true"}


def offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE`` / ``HF_DATASETS_OFFLINE``) is set to a true value."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


def probe_address() -> tuple[str, int]:
    """(host, port) a hub request connects to first: the https proxy if set, else ``$HF_ENDPOINT``."""
    url = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or os.environ.get("ALL_PROXY")
    if proxy:
        url = proxy if "://" in proxy else f"http://{proxy}"
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "huggingface.co", port


def unreachable(timeout: float = TIMEOUT_S) -> str | None:
    """Why the hub cannot be reached (``'huggingface.co:443: connection refused'``), or None if it can.

    None in offline mode too: the libraries then answer from their cache without retrying.
    """
    if offline_mode():
        return None
    host, port = probe_address()
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except socket.gaierror:
            outcome.append("cannot resolve the host name")
        except TimeoutError:
            outcome.append(f"no answer within {timeout:g} s")
        except OSError as exc:
            outcome.append((exc.strerror or type(exc).__name__).lower())

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)  # also bounds a slow DNS lookup
    why = outcome[0] if outcome else f"no answer within {timeout:g} s"
    return None if why is None else f"{host}:{port}: {why}"


def in_cache(repo_id: str, repo_type: str = "model") -> bool:
    """A snapshot of ``repo_id`` is in the Hugging Face hub cache (``$HF_HUB_CACHE``)."""
    root = os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"
    folder = Path(root).expanduser() / f"{repo_type}s--{repo_id.replace('/', '--')}" / "snapshots"
    return folder.is_dir() and any(folder.iterdir())


def unreachable_message(repo_id: str, repo_type: str, instead: str, timeout: float = TIMEOUT_S) -> str | None:
    """One line for a hub id that cannot be loaded now (with what to use ``instead``), or None if it can."""
    why = unreachable(timeout)
    if why is None:
        return None
    cached = "; it is in the Hugging Face cache: set HF_HUB_OFFLINE=1 to use that copy" if in_cache(repo_id, repo_type) else ""
    return f"cannot load {repo_id!r}: the Hugging Face hub is unreachable ({why}); {instead}{cached}"
