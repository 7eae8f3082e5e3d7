"""`bidao templates export`: the carrier templates an administrator submits for approval.

Mainland carriers deliver only approved templates; this prints every one Bidao sends (its
name, product, fixed text and each variable with the property to declare), then the
settings block to fill in with the codes the provider gives back. The gateway refuses to
start with the domestic provider while any code is missing.
"""

from __future__ import annotations

import typer

from alerts.carrier_templates import carrier_templates, export_text


def settings_block() -> str:
    """The TOML block for the codes, one line per template, to fill in."""
    lines = ["[notify.aliyun_templates]"]
    lines.extend(f'"{t.name}" = ""' for t in carrier_templates())
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add `bidao templates export` to the command line."""
    templates_app = typer.Typer(
        help="Carrier templates (短信/语音模板) for the domestic provider.", no_args_is_help=True
    )

    @templates_app.command("export")
    def export() -> None:
        """Print every template to submit for approval, then the settings to fill in."""
        typer.echo(export_text())
        typer.echo(settings_block())

    app.add_typer(templates_app, name="templates")
