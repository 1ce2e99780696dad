"""Typed TOML tables: build frozen dataclasses from parsed TOML, collecting every problem.

Each section of a spec is a frozen dataclass whose fields carry a ``help`` text in their
metadata. :func:`build` checks one TOML table against such a class: unknown keys, wrong
types and bad choices are all recorded (with the dotted key and, where the source text
allows, its line) instead of stopping at the first one, so a spec with three mistakes
reports three problems at once.

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``tuple[str, ...]``,
``Literal[...]`` choices, ``X | None`` of those, and nested section dataclasses. It does
not handle arbitrary unions or mappings of free-form keys.
"""

from __future__ import annotations

import dataclasses
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


def option(default: Any = MISSING, help: str = "", **kw: Any) -> Any:
    """A dataclass field with a help text (shown in docs and checked by tests)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults")
    return field(default=default, metadata={"help": help, **kw})


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
        return "a list of strings"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


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
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return True, tuple(value)
        return False, None
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
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
            problems.append(Problem(dotted, f"unknown key (known keys: {known})", lines.line(dotted)))
            ok = False
    values: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            sub = build(tp, table.get(name, {}), dotted, problems, lines)
            ok = ok and sub is not None
            values[name] = sub
            continue
        if name not in table:
            if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                problems.append(Problem(dotted, "missing required key", lines.line(prefix)))
                ok = False
            continue
        good, converted = _convert(tp, table[name])
        if not good:
            problems.append(Problem(dotted, f"must be {_type_name(tp)}, got {table[name]!r}", lines.line(dotted)))
            ok = False
            continue
        values[name] = converted
    if not ok:
        return None
    return cls(**values)


def walk_keys(cls: type, prefix: str = "") -> list[tuple[str, Any, str]]:
    """Every key of a section class, as (dotted key, default or MISSING, help), depth first."""
    out: list[tuple[str, Any, str]] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        dotted = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            out.extend(walk_keys(hints[f.name], dotted))
        else:
            out.append((dotted, f.default, f.metadata.get("help", "")))
    return out
