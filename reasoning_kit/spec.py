"""The format spec: one TOML file that declares a reasoning output format.

:func:`load_spec` reads a spec (a path, or the name of a spec shipped in ``spec/``) into a
frozen :class:`FormatSpec`. Everything else in reasoning-kit (chat template, validator,
reward regex, rewards, data formatting, training defaults) is derived from that object;
no tag string is written anywhere else.

Checks done here: unknown keys, types, the spec version, and tag sanity (empty tags,
duplicate tags, whitespace at a tag's edges, a tag or end-of-sequence string that contains
or overlaps another, unknown ``{placeholders}`` in prompts). All problems are collected
and raised together as one :class:`~reasoning_kit.schema.SpecError`.

Not handled here: how the format is rendered or checked (see ``template``, ``validator``
and ``regex``) and tokenizer-specific checks (see ``harness.audit``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from .reward_config import RewardConfig
from .schema import LineFinder, Problem, SpecError, build, option
from .grpo_config import GRPOTrainConfig
from .train_config import TrainConfig

SPEC_VERSION = 1
SPEC_DIR = Path(__file__).resolve().parent / "specs"
TAG_NAMES = ("reasoning_start", "reasoning_end", "solution_start", "solution_end")
_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")  # {name}, not {{name}}
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")  # a spec name becomes a path part: no /, no leading .


@dataclass(frozen=True, kw_only=True)
class Tags:
    """The four tags of the format, written exactly as the model must produce them."""

    reasoning_start: str = option(help="Opens the reasoning block (the generation prompt usually ends with it).")
    reasoning_end: str = option(help="Closes the reasoning block.")
    solution_start: str = option(help="Opens the solution block.")
    solution_end: str = option(help="Closes the solution block.")


@dataclass(frozen=True, kw_only=True)
class Prompt:
    """Prompt text. ``{reasoning_start}``-style placeholders are filled from [tags]."""

    system: str = option(help="Default system prompt, used when a conversation has no system message.")
    generation: str = option(
        "{reasoning_start}", help="Text the chat template appends for add_generation_prompt (prefills the reasoning start)."
    )


@dataclass(frozen=True, kw_only=True)
class Output:
    """How a completion may end."""

    eos: tuple[str, ...] = option(
        (), help="End-of-sequence strings that may close an output (at most one, after the solution block)."
    )


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What goes inside the solution block, and where the gold answer lives in datasets."""

    kind: Literal["number", "text"] = option("number", help="'number': one number (17, -3, 2.5, 1,000); 'text': any non-empty text.")
    column: str = option("answer", help="Dataset column holding the gold answer (passed to reward functions).",
                         nonempty=True)
    allow_percent: bool = option(False, help="number kind: accept a trailing '%' in answers when comparing (50% == 50).")
    case_sensitive: bool = option(False, help="text kind: compare answers case-sensitively.")
    collapse_whitespace: bool = option(True, help="text kind: treat runs of whitespace as one space when comparing.")
    math_verify: bool = option(False, help="Also compare symbolically with the math-verify package (extra 'math').")
    math_verify_timeout: float = option(
        2.0, help="Seconds allowed per math-verify comparison; a timeout scores as wrong.", gt=0.0
    )


@dataclass(frozen=True, kw_only=True)
class SpecFile:
    """Top-level keys of a spec file."""

    spec_version: int = option(help=f"Spec format version; this reasoning-kit reads version {SPEC_VERSION}.")
    name: str = option(help="Short name of the format (used in output paths and reports).")
    description: str = option("", help="One-line description.")
    tags: Tags = option(help="[tags] table.")
    prompt: Prompt = option(help="[prompt] table.")
    output: Output = option(help="[output] table.")
    answer: Answer = option(help="[answer] table.")
    rewards: RewardConfig = option(help="[rewards] table.")
    train: TrainConfig = option(help="[train] table.")
    grpo: GRPOTrainConfig = option(help="[grpo] table.")


@dataclass(frozen=True)
class FormatSpec:
    """A loaded, checked spec. Derived artefacts are computed from it by pure functions."""

    name: str
    description: str
    tags: Tags
    system_prompt: str
    generation_prompt: str
    eos: tuple[str, ...]
    answer: Answer
    rewards: RewardConfig
    train: TrainConfig
    grpo: GRPOTrainConfig = GRPOTrainConfig()
    source: str = "<string>"  # a shipped spec's name, else the path given (``spec_source``)
    text: str = ""

    @cached_property
    def tag_list(self) -> tuple[str, str, str, str]:
        """(reasoning_start, reasoning_end, solution_start, solution_end)."""
        return tuple(getattr(self.tags, n) for n in TAG_NAMES)  # type: ignore[return-value]

    @cached_property
    def markers(self) -> tuple[str, ...]:
        """Every string that may not appear inside reasoning or answer: the tags, then EOS strings."""
        return self.tag_list + self.eos

    def completion(self, reasoning: str, answer: str, *, with_start: bool = True, eos: str = "") -> str:
        """The assistant text for given fields: [R0] reasoning R1 S0 answer S1 [eos]."""
        t = self.tags
        start = t.reasoning_start if with_start else ""
        return f"{start}{reasoning}{t.reasoning_end}{t.solution_start}{answer}{t.solution_end}{eos}"


def fill_placeholders(text: str, tags: Tags) -> str:
    """Replace ``{reasoning_start}`` etc. with the tags; other braces stay as written."""
    return _PLACEHOLDER.sub(lambda m: getattr(tags, m.group(1)) if m.group(1) in TAG_NAMES else m.group(0), text)


def _tag_problems(tags: Tags, eos: tuple[str, ...], lines: LineFinder) -> list[Problem]:
    problems: list[Problem] = []
    named = [(f"tags.{n}", getattr(tags, n)) for n in TAG_NAMES] + [(f"output.eos[{i}]", s) for i, s in enumerate(eos)]

    def line(key: str) -> int | None:
        return lines.line(key.split("[")[0])

    for key, s in named:
        if s == "":
            problems.append(Problem(key, "must not be empty", line(key)))
        elif s != s.strip():
            problems.append(Problem(key, f"{s!r} has whitespace at its edges", line(key)))
    live = [(k, s) for k, s in named if s and s == s.strip()]
    for i, (ka, a) in enumerate(live):
        for kb, b in live[i + 1 :]:
            if a == b:
                problems.append(Problem(kb, f"{b!r} duplicates {ka}", line(kb)))
            elif a in b or b in a:
                inner, outer = (ka, kb) if a in b else (kb, ka)
                problems.append(Problem(outer, f"contains {inner} ({(a if a in b else b)!r})", line(outer)))
            elif _overlap(a, b) or _overlap(b, a):
                problems.append(Problem(kb, f"{b!r} overlaps {ka} ({a!r}): the end of one is the start of the other", line(kb)))
    return problems


def _overlap(a: str, b: str) -> bool:
    """True if a non-empty proper suffix of ``a`` is a prefix of ``b``."""
    return any(b.startswith(a[i:]) for i in range(1, len(a)))


def _placeholder_problems(key: str, text: str, lines: LineFinder) -> list[Problem]:
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(TAG_NAMES))
    if not unknown:
        return []
    names = ", ".join("{" + u + "}" for u in unknown)
    known = ", ".join("{" + t + "}" for t in TAG_NAMES)
    return [Problem(key, f"unknown placeholder {names} (known: {known})", lines.line(key))]


def parse_spec(text: str, source: str = "<string>") -> FormatSpec:
    """Parse and check spec TOML text; raise SpecError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise SpecError(source, [Problem("<toml>", str(exc), int(where.group(1)) if where else None)]) from None
    lines = LineFinder(text)
    problems: list[Problem] = []
    version = data.get("spec_version")
    if "spec_version" in data and version != SPEC_VERSION:
        problems.append(Problem("spec_version", f"this reasoning-kit reads version {SPEC_VERSION}, got {version!r}", lines.line("spec_version")))
        data = {**data, "spec_version": SPEC_VERSION}
    top = build(SpecFile, data, "", problems, lines)
    # Cross-field checks run even when another section failed, so every problem shows at once.
    scratch: list[Problem] = []
    tags = build(Tags, data.get("tags", {}), "tags", scratch, lines)
    output = build(Output, data.get("output", {}), "output", scratch, lines)
    prompt = build(Prompt, data.get("prompt", {}), "prompt", scratch, lines)
    if tags is not None and output is not None:
        problems += _tag_problems(tags, output.eos, lines)
    if prompt is not None:
        problems += _placeholder_problems("prompt.system", prompt.system, lines)
        problems += _placeholder_problems("prompt.generation", prompt.generation, lines)
    if output is not None and not output.eos:
        problems.append(Problem("output.eos", "list at least one end-of-sequence string", lines.line("output.eos")))
    name = data.get("name")
    if isinstance(name, str) and not SAFE_NAME.fullmatch(name):
        problems.append(Problem("name", f"{name!r} is not a safe name: use letters, digits, '-', '_' and '.', "
                                "not starting with '.' (it becomes part of output paths)", lines.line("name")))
    if problems or top is None:
        raise SpecError(source, problems)
    return FormatSpec(
        name=top.name,
        description=top.description,
        tags=top.tags,
        system_prompt=fill_placeholders(top.prompt.system, top.tags),
        generation_prompt=fill_placeholders(top.prompt.generation, top.tags),
        eos=top.output.eos,
        answer=top.answer,
        rewards=top.rewards,
        train=top.train,
        grpo=top.grpo,
        source=source,
        text=text,
    )


def shipped_specs() -> list[str]:
    """Names of the specs that ship with reasoning-kit."""
    return sorted(p.stem for p in SPEC_DIR.glob("*.toml"))


def resolve_spec_path(spec: str | Path) -> Path:
    """A spec argument is a path to a .toml file or the name of a shipped spec."""
    path = Path(spec)
    if path.suffix == ".toml" or path.exists() or "/" in str(spec):
        return path
    return SPEC_DIR / f"{spec}.toml"


def load_spec(spec: str | Path = "working_out") -> FormatSpec:
    """Load a spec from a path or shipped name; raise SpecError (or FileNotFoundError)."""
    path = resolve_spec_path(spec)
    if not path.is_file():
        names = ", ".join(shipped_specs())
        what = "is a directory, not a spec file" if path.is_dir() else "no such spec file"
        raise SpecError(str(spec), [Problem("<file>", f"{what} (shipped specs: {names})")])
    try:
        text = path.read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark is not part of the TOML
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(path), [Problem("<file>", f"cannot read: {exc}")]) from None
    return parse_spec(text, source=spec_source(path))


def spec_source(path: Path) -> str:
    """How reports name where a spec came from: what ``--spec`` takes to load it again.

    A shipped spec is its name (``working_out``) however it was given (the name, the repository's
    ``spec/working_out.toml``, or the packaged copy's path), so train, grpo and eval reports agree;
    any other file is the path as given.
    """
    shipped = SPEC_DIR / f"{path.stem}.toml"
    if shipped.is_file() and path.resolve() == shipped.resolve():
        return path.stem
    return str(path)


def spec_keys() -> list[tuple[str, object, str]]:
    """Every key a spec file may hold: (dotted key, default, help) for docs and the docs test."""
    from .schema import walk_keys

    return walk_keys(SpecFile)


__all__ = [
    "Answer",
    "FormatSpec",
    "Output",
    "Prompt",
    "SpecError",
    "Tags",
    "load_spec",
    "parse_spec",
    "shipped_specs",
    "spec_keys",
]
