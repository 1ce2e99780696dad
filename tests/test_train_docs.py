"""docs/train.md documents every [train] key and every `reasoning-kit train` option."""

from __future__ import annotations

import dataclasses

import pytest

from harness.train.cli import train_cmd
from harness.train.docs import DOC, render_doc
from reasoning_kit.train_config import OFFLINE, TrainConfig

TEXT = DOC.read_text()


class TestTrainDocs:
    def test_key_tables_are_up_to_date(self):
        assert render_doc(TEXT) == TEXT, "run: python -m harness.train.docs --write"

    @pytest.mark.parametrize("key", [f.name for f in dataclasses.fields(TrainConfig) if f.name != "offline"])
    def test_train_key_documented(self, key):
        assert f"| `{key}` |" in TEXT

    @pytest.mark.parametrize("key", OFFLINE.keys())
    def test_offline_key_documented(self, key):
        section = TEXT.split("### `[train.offline]`", 1)[1]
        assert f"| `{key}` |" in section

    @pytest.mark.parametrize("option", [o for p in train_cmd.params for o in p.opts if o.startswith("--")])
    def test_cli_option_documented(self, option):
        assert f"`{option}" in TEXT
