"""benchmarks/gpu_train_throughput.py: each row runs the settings its name claims (config only, no model).

The recipe names are read by people comparing figures ("seed as written", "packing batch 8"),
so a default that changes under a row (as packing did under the old ``seed`` row) must fail here.
"""

from __future__ import annotations

import pytest

from benchmarks.gpu_train_throughput import ALL_ROWS, BACKENDS, RECIPES
from harness.train.config import config_dict, resolve_config
from reasoning_kit.spec import load_spec

SPEC = load_spec("working_out")
# What each recipe name says, written out by hand: the keys its row must run with.
CLAIMS = {
    "seed-as-written": {"packing": False, "per_device_train_batch_size": 1, "gradient_checkpointing": "unsloth"},
    "default-packing-b1": {"packing": True, "per_device_train_batch_size": 1},
    "packing-b8": {"packing": True, "per_device_train_batch_size": 8},
    "packing-b16": {"packing": True, "per_device_train_batch_size": 16},
    "packing-b8-gc-true": {"packing": True, "per_device_train_batch_size": 8, "gradient_checkpointing": True},
    "packing-b10-gc-true": {"packing": True, "per_device_train_batch_size": 10, "gradient_checkpointing": True},
    "packing-b12-gc-true": {"packing": True, "per_device_train_batch_size": 12, "gradient_checkpointing": True},
    "packing-b16-gc-true": {"packing": True, "per_device_train_batch_size": 16, "gradient_checkpointing": True},
    "packing-b32": {"packing": True, "per_device_train_batch_size": 32},
}


def test_every_recipe_has_a_claim():
    assert set(RECIPES) == set(CLAIMS)


@pytest.mark.parametrize("recipe", sorted(CLAIMS))
def test_recipe_runs_what_its_name_says(recipe):
    cfg = resolve_config(SPEC.train, RECIPES[recipe])
    assert {k: getattr(cfg, k) for k in CLAIMS[recipe]} == CLAIMS[recipe]


@pytest.mark.parametrize("recipe", sorted(CLAIMS))
def test_recipe_changes_nothing_its_name_does_not_say(recipe):
    ran, defaults = config_dict(resolve_config(SPEC.train, RECIPES[recipe])), config_dict(SPEC.train)
    assert {k for k in ran if ran[k] != defaults[k]} <= set(CLAIMS[recipe])


def test_default_rows_are_known_recipes_on_both_backends():
    split = [row.rsplit("-", 1) for row in ALL_ROWS]
    assert all(recipe in RECIPES and backend in BACKENDS for recipe, backend in split)
    assert {recipe for recipe, _ in split} >= {"seed-as-written", "default-packing-b1"}
    assert {backend for _, backend in split} == set(BACKENDS)
