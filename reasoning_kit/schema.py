"""Typed TOML tables: build frozen dataclasses from parsed TOML, collecting every problem.

Each section of a spec is a frozen dataclass whose fields carry a ``help`` text in their
metadata. :func:`build` checks one TOML table against such a class: unknown keys, wrong
types and bad choices are all recorded (with the dotted key and, where the source text
allows, its line) instead of stopping at the first one, so a spec with three mistakes
reports three problems at once.

Each key is declared once, as a dataclass field made by :func:`option`: its type (the
annotation), its default, its help text and its allowed range (``ge``/``gt``/``le``/``lt``,
``also`` for special values outside the range, e.g. ``-1``). Floats must be finite (also in a
config made in code: :func:`type_problems`, which the run lifecycle applies). A class
may add cross-key rules in a ``problems(self)`` method returning ``(key, message)`` pairs;
they run when the class is built, so a spec, ``--set`` overrides and a preset are all checked
by the same code, before anything runs.

A :class:`Preset` field (``[train.offline]``) holds values of the enclosing table's own keys
that a command-line switch puts over the table; its keys are checked against the enclosing
class and the table with the preset applied is checked too.

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``tuple[str, ...]``,
``tuple[Literal[...], ...]``, ``Literal[...]`` choices, ``X | None`` of those, nested section
dataclasses and presets. It does not handle arbitrary unions or mappings of free-form keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, get_args, get_origin

MISSING = dataclasses.MISSING


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: the dotted key it concerns, what is wrong, and the line."""

    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.key} (line {self.line})" if self.line else self.key
        return f"{where}: {self.message}"


class SpecError(ValueError):
    """Raised once with every problem found in a spec."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = list(problems)
        super().__init__(self.one_line())

    def one_line(self) -> str:
        n = len(self.problems)
        if n == 1 and self.problems[0].key == "<file>":
            return f"cannot load spec {self.source}: {self.problems[0].message}"
        head = f"invalid spec {self.source}: " + ("1 problem: " if n == 1 else f"{n} problems: ")
        return head + "; ".join(str(p) for p in self.problems)


_RANGE = ("ge", "gt", "le", "lt", "also", "nonempty")


def option(default: Any = MISSING, help: str = "", **kw: Any) -> Any:
    """A dataclass field: default, help text (shown in docs) and range (``ge``, ``gt``, ``le``, ``lt``, ``also``;
    ``nonempty=True`` for a string that must not be empty or blank)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults")
    unknown = set(kw) - set(_RANGE)
    if unknown:
        raise TypeError(f"unknown option metadata {sorted(unknown)}")
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class Preset:
    """Values of the enclosing table's keys that a switch (``--offline``) puts over the table.

    ``values`` and ``notes`` (why a value differs) are tuples of pairs so the preset stays hashable.
    """

    values: tuple[tuple[str, Any], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def keys(self) -> list[str]:
        return [k for k, _ in self.values]

    def note(self, key: str) -> str:
        return dict(self.notes).get(key, "")

    def merged(self, table: dict[str, Any]) -> "Preset":
        values = self.as_dict() | table
        return Preset(tuple(values.items()), self.notes)


def range_problem(meta: Any, value: Any) -> str | None:
    """What is wrong with ``value`` under a field's range metadata, or None."""
    if meta.get("nonempty") and isinstance(value, str) and not value.strip():
        return "must not be empty"
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value in meta.get("also", ()):
        return None
    bounds = [("ge", lambda b: value >= b, "at least"), ("gt", lambda b: value > b, "above"),
              ("le", lambda b: value <= b, "at most"), ("lt", lambda b: value < b, "below")]
    for name, ok, words in bounds:
        if name in meta and not ok(meta[name]):
            also = "".join(f" or {a}" for a in meta.get("also", ()))
            return f"must be {words} {meta[name]}{also}, got {value}"
    return None


def range_text(meta: Any) -> str:
    """The range of a field in words for docs ('' when unbounded)."""
    parts = [f"{sym} {meta[k]}" for k, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")) if k in meta]
    parts += [f"or {a}" for a in meta.get("also", ())]
    parts += ["not empty"] if meta.get("nonempty") else []
    return " ".join(parts)


def help_of(cls: type, name: str) -> str:
    return next(f.metadata.get("help", "") for f in dataclasses.fields(cls) if f.name == name)


class LineFinder:
    """Best-effort line numbers for ``table.key`` in TOML source (tomllib keeps none)."""

    _header = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\s\"]+?)\s*\]\s*(?:#.*)?$")
    _key = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")

    def __init__(self, text: str | None):
        self._lines: dict[str, int] = {}
        if not text:
            return
        table = ""
        for number, line in enumerate(text.splitlines(), start=1):
            if m := self._header.match(line):
                table = m.group(1).replace(" ", "").replace('"', "")
                self._lines.setdefault(table, number)
            elif m := self._key.match(line):
                key = f"{table}.{m.group(1)}" if table else m.group(1)
                self._lines.setdefault(key, number)

    def line(self, key: str) -> int | None:
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key.rpartition(".")[0]
        return None


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is tuple:
        item = get_args(tp)[0]
        if get_origin(item) is Literal:
            return "a list of " + ", ".join(repr(a) for a in get_args(item))
        return "a list of strings"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    return {str: "a string", int: "an integer", float: "a finite number", bool: "true or false"}.get(tp, str(tp))


def _explain(tp: Any, value: Any) -> str:
    """Why ``value`` does not fit ``tp`` (names the bad item of a list of choices)."""
    if get_origin(tp) is tuple and isinstance(value, list) and get_origin(get_args(tp)[0]) is Literal:
        choices = get_args(get_args(tp)[0])
        bad = [v for v in value if v not in choices]
        if bad:
            return f"unknown name {bad[0]!r} (known: {', '.join(choices)})"
    return f"must be {_type_name(tp)}, got {value!r}"


def _convert(tp: Any, value: Any) -> tuple[bool, Any]:
    """Return (ok, converted) for one scalar/list value against an annotation."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(tp):
            if arg is type(None):
                continue
            ok, out = _convert(arg, value)
            if ok:
                return True, out
        return False, None
    if origin is Literal:
        return (value in get_args(tp) and not isinstance(value, bool)), value
    if origin is tuple:
        item = get_args(tp)[0]
        if isinstance(value, list) and all(isinstance(v, str) and (item is str or _convert(item, v)[0]) for v in value):
            return True, tuple(value)
        return False, None
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return True, float(value)
        return False, None
    if tp is str:
        return isinstance(value, str), value
    raise TypeError(f"unsupported field type {tp!r}")


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    # Evaluating string annotations is slow; section classes never change.
    return typing.get_type_hints(cls)


def build(cls: type, table: Any, prefix: str, problems: list[Problem], lines: LineFinder) -> Any:
    """Build ``cls`` from a TOML table, appending problems; returns None if any field failed."""
    if not isinstance(table, dict):
        problems.append(Problem(prefix, "must be a table", lines.line(prefix)))
        return None
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    ok = True
    for key in table:
        if key not in fields:
            known = ", ".join(sorted(fields))
            dotted = f"{prefix}.{key}" if prefix else key
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(Problem(dotted, f"unknown key ({hint}known keys: {known})", lines.line(dotted)))
            ok = False
    values: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp) and not isinstance(f.default, Preset):
            sub = build(tp, table.get(name, {}), dotted, problems, lines)
            ok = ok and sub is not None
            values[name] = sub
            continue
        if name not in table:
            if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                problems.append(Problem(dotted, "missing required key", lines.line(prefix)))
                ok = False
            continue
        if isinstance(f.default, Preset):
            preset = _build_preset(cls, f.default, table[name], dotted, problems, lines)
            ok = ok and preset is not None
            values[name] = preset
            continue
        good, converted = _convert(tp, table[name])
        if not good:
            problems.append(Problem(dotted, _explain(tp, table[name]), lines.line(dotted)))
            ok = False
            continue
        if wrong := range_problem(f.metadata, converted):
            problems.append(Problem(dotted, wrong, lines.line(dotted)))
            ok = False
            continue
        values[name] = converted
    if not ok:
        # Cross-key rules still run, over the defaults of the keys that failed, so every problem shows at once.
        failed = {p.key for p in problems}
        try:
            partial = cls(**{k: v for k, v in values.items() if v is not None})
        except TypeError:  # a required key is missing
            return None
        problems += [Problem(_dot(prefix, key), msg, lines.line(_dot(prefix, key)))
                     for key, msg in cross_problems(partial) if _dot(prefix, key) not in failed]
        return None
    built = cls(**values)
    before = len(problems)
    own = cross_problems(built)
    problems += [Problem(_dot(prefix, key), msg, lines.line(_dot(prefix, key))) for key, msg in own]
    for name, f in fields.items():
        if isinstance(f.default, Preset):  # the table as the preset makes it must hold too
            preset_prefix = _dot(prefix, name)
            applied = dataclasses.replace(built, **getattr(built, name).as_dict())
            problems += [Problem(_dot(preset_prefix, key), msg, lines.line(_dot(preset_prefix, key)))
                         for key, msg in cross_problems(applied) if (key, msg) not in own]
    return built if len(problems) == before else None


def _dot(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def cross_problems(obj: Any) -> list[tuple[str, str]]:
    """The ``(key, message)`` pairs of ``obj.problems()`` (cross-key rules), [] when it has none."""
    check = getattr(obj, "problems", None)
    return list(check()) if callable(check) else []


def _build_preset(cls: type, default: Preset, table: Any, prefix: str, problems: list[Problem], lines: LineFinder):
    """A preset table: each key must be a plain key of ``cls``, typed and in range as there."""
    if not isinstance(table, dict):
        problems.append(Problem(prefix, "must be a table", lines.line(prefix)))
        return None
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not isinstance(f.default, Preset)}
    out: dict[str, Any] = {}
    ok = True
    for key, value in table.items():
        dotted = f"{prefix}.{key}"
        if key not in fields or dataclasses.is_dataclass(hints[key]):
            problems.append(Problem(dotted, f"unknown key (a preset holds keys of its table: {', '.join(sorted(fields))})",
                                    lines.line(dotted)))
            ok = False
            continue
        good, converted = _convert(hints[key], value)
        wrong = _explain(hints[key], value) if not good else range_problem(fields[key].metadata, converted)
        if wrong:
            problems.append(Problem(dotted, wrong, lines.line(dotted)))
            ok = False
            continue
        out[key] = converted
    return default.merged(out) if ok else None


def type_problems(obj: Any, prefix: str = "") -> list[Problem]:
    """Values of a section object made in code (a constructor call, ``dataclasses.replace``) that do not have
    their declared type, judged and worded exactly as :func:`build` judges a table: a nan or an infinite float
    is not "a finite number", a string is not an integer, a name outside a ``Literal`` is not a choice.

    Ranges and cross-key rules are not applied here: code may leave a range on purpose (a learning rate of 0 for
    a control run), while a value of the wrong type never means anything. Presets are left out (already applied
    or unused).
    """
    problems: list[Problem] = []
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        if not f.init or isinstance(f.default, Preset):
            continue
        tp, value, dotted = hints[f.name], getattr(obj, f.name), _dot(prefix, f.name)
        if dataclasses.is_dataclass(tp):
            problems += type_problems(value, dotted) if dataclasses.is_dataclass(value) else [Problem(dotted, "must be a table")]
            continue
        plain = list(value) if isinstance(value, tuple) else value  # a table holds lists; the dataclass, tuples
        if not _convert(tp, plain)[0]:
            problems.append(Problem(dotted, _explain(tp, plain)))
    return problems


def walk_keys(cls: type, prefix: str = "") -> list[tuple[str, Any, str]]:
    """Every key of a section class, as (dotted key, default or MISSING, help), depth first.

    The help text ends with the key's range (``[≥ 1]``); a preset's keys are listed under it
    with the preset's value and the reason it differs.
    """
    out: list[tuple[str, Any, str]] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        dotted = f"{prefix}.{f.name}" if prefix else f.name
        if isinstance(f.default, Preset):
            for key, value in f.default.values:
                note = f.default.note(key)
                out.append((f"{dotted}.{key}", value, (note + " " if note else "") + f"(preset value of `{key}`)"))
        elif dataclasses.is_dataclass(hints[f.name]):
            out.extend(walk_keys(hints[f.name], dotted))
        else:
            text = f.metadata.get("help", "")
            bounds = range_text(f.metadata)
            out.append((dotted, f.default, f"{text} [{bounds}]" if bounds else text))
    return out
