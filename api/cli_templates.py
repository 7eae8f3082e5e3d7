"""`bidao templates export`: the carrier templates an administrator submits for approval.

Mainland carriers deliver only approved templates; this prints every one Bidao sends (its
name, product, fixed text and each variable with the property to declare), then the
settings block to fill in with the codes the provider gives back. The gateway refuses to
start with the domestic provider while any code is missing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from alerts.carrier_templates import carrier_templates, export_text


def settings_block() -> str:
    """The TOML block for the codes, one line per template, to fill in."""
    lines = ["[notify.aliyun_templates]"]
    lines.extend(f'"{t.name}" = ""' for t in carrier_templates())
    return "\n".join(lines)


def demo_templates() -> list[dict[str, Any]]:
    """Every template as the fake endpoint loads it, approved under its name as the code."""
    return [
        {"code": t.name, "name": t.name, "kind": t.kind, "text": t.text, "rule": t.rule()}
        for t in carrier_templates()
    ]


def register(app: typer.Typer) -> None:
    """Add `bidao templates export` to the command line."""
    templates_app = typer.Typer(
        help="Carrier templates (短信/语音模板) for the domestic provider.", no_args_is_help=True
    )

    @templates_app.command("export")
    def export(
        as_json: Annotated[
            bool,
            typer.Option(
                "--json",
                help="as JSON, each under its name as a demo code (`bidao sim aliyun serve`)",
            ),
        ] = False,
    ) -> None:
        """Print every template to submit for approval, then the settings to fill in."""
        if as_json:
            typer.echo(json.dumps(demo_templates(), ensure_ascii=False, indent=1))
            return
        typer.echo(export_text())
        typer.echo(settings_block())

    app.add_typer(templates_app, name="templates")
