"""``reasoning-kit export``: print artefacts derived from the spec for other tools.

``export response-template`` prints the transformers ``response_template`` (JSON) that
``tokenizer.parse_response``, TRL and vLLM's ``--reasoning-parser response_template`` read from
``tokenizer_config.json``. Thin: the library builds it (reasoning_kit.response_template).
"""

from __future__ import annotations

import json

import click

from .cliutil import spec_option


@click.group("export", context_settings={"help_option_names": ["-h", "--help"]})
def export_group() -> None:
    """Print artefacts derived from the spec for serving and decoding tools."""


@export_group.command("response-template")
@spec_option()
def response_template_cmd(spec) -> None:
    """Print the transformers response_template (JSON; fields 'thinking' and 'content')."""
    from reasoning_kit.response_template import response_template

    click.echo(json.dumps(response_template(spec), indent=2, ensure_ascii=False))
