"""Docs that cannot go stale: generated spec reference, every key explained, every CLI option documented."""

from __future__ import annotations

import importlib
from pathlib import Path

import click
import pytest

from harness.cli import COMMANDS
from reasoning_kit.spec import spec_keys
from reasoning_kit.spec_docs import splice

ROOT = Path(__file__).resolve().parent.parent
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def commands():
    """(full name, click command) for every leaf command of the CLI."""
    out = []
    for name, (target, _) in sorted(COMMANDS.items()):
        module, _, attr = target.partition(":")
        cmd = getattr(importlib.import_module(module), attr)
        out.append((name, cmd))
        if isinstance(cmd, click.Group):
            out += [(f"{name} {sub}", c) for sub, c in sorted(cmd.commands.items())]
    return out


class TestSpecReference:
    def test_generated_sections_are_current(self):
        doc = (ROOT / "docs" / "spec.md").read_text()
        assert doc == splice(doc), "run: python -m reasoning_kit.spec_docs --write docs/spec.md"

    @pytest.mark.parametrize("key, default, help_text", spec_keys(), ids=[k for k, _, _ in spec_keys()])
    def test_every_key_has_help(self, key, default, help_text):
        assert len(help_text) > 10


class TestCliDocumented:
    @pytest.mark.parametrize("name", sorted(COMMANDS))
    def test_command_in_readme(self, name):
        assert f"reasoning-kit {name}" in (ROOT / "README.md").read_text()

    @pytest.mark.parametrize("name, option", [
        (name, opt) for name, cmd in commands() for p in cmd.params if isinstance(p, click.Option)
        for opt in p.opts if opt.startswith("--")
    ])
    def test_every_option_documented(self, name, option):
        assert option in DOCS, f"`reasoning-kit {name}` option {option} is not documented in README.md or docs/"
