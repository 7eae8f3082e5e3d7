"""`bidao device check ID`: the install check from the command line, each key as it arrives.

For installers without a browser. The check is written to the store; a gateway running on
the same data folder treats the box's presses as the installer's from the next press on (no
ticket, no call) and ends the check when its time runs out. Exit status 0 when it passed,
1 when it failed (with the keys that never arrived), 2 when it could not start.
Words are kept in api/v1/provision_words_zh.py and api/v1/provision_words_en.py.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from api import cli
from api.cli_devices import ByOption, DeviceArg, _actor, _run
from api.v1 import provision_words_en as en
from api.v1 import provision_words_zh as zh
from api.v1.provisioning import check_message
from gateway.application import Application, InstallCheck

POLL_S = 0.5
"""How often the command looks at the check in the store."""


def _line(text: str) -> None:
    cli._say(text)
    sys.stdout.flush()  # a person (or a pipe) sees each key the moment it arrives


def _missing(check: InstallCheck) -> tuple[str, str]:
    return (
        zh.SEPARATOR.join(zh.KEYS[k] for k in check.keys_missing),
        en.SEPARATOR.join(en.KEYS[k] for k in check.keys_missing),
    )


async def _follow(application: Application, device_id: str, actor: str, grace_s: float) -> bool:
    """Start the check and print each step until it ends; whether it passed."""
    check = await application.start_install_check(device_id, actor)
    which = "started" if check.kind == "call_box" else "started_meter"
    params = {
        "check": str(check.id),
        "device": check.device_id,
        "minutes": f"{(check.ends_at - check.started_at) / 60:g}",
    }
    _line(zh.CLI[which].format(**params))
    _line(en.CLI[which].format(**params))
    shown = 0
    while True:
        check = await application.install_check(check.id)
        for step in check.steps[shown:]:
            if step.what == "reading":
                litres = str(step.litres)
                _line(
                    f"{zh.CLI['reading'].format(litres=litres)} / "
                    f"{en.CLI['reading'].format(litres=litres)}"
                )
            else:
                _line(
                    f"{zh.CLI['received'].format(key=zh.KEYS[step.what])} / "
                    f"{en.CLI['received'].format(key=en.KEYS[step.what])}"
                )
        shown = len(check.steps)
        if check.state != "running":
            _line(check_message(check))
            return check.state == "passed"
        if application.now() > check.ends_at + grace_s:
            missing_zh, missing_en = _missing(check)
            _line(zh.CLI["no_gateway"].format(missing=missing_zh))
            _line(en.CLI["no_gateway"].format(missing=missing_en))
            return False
        await asyncio.sleep(POLL_S)


def device_check(
    device_id: DeviceArg,
    by: ByOption = None,
    config: cli.ConfigOption = None,
    grace: Annotated[
        float | None,
        typer.Option(help="seconds past the check's time to wait for the gateway to end it"),
    ] = None,
) -> None:
    """Run the install check: press the four keys (or run water); each is shown (安装检测)."""
    settings = cli._settings(config)
    grace_s = grace if grace is not None else 2 * settings.runtime.deadline_poll_s
    passed = _run(config, lambda a: _follow(a, device_id, by or _actor(), grace_s))
    if not passed:
        raise typer.Exit(cli.EXIT_FAILED)


def register(device_app: typer.Typer) -> None:
    """Add `bidao device check`."""
    device_app.command("check")(device_check)
