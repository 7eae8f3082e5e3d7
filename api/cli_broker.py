"""`bidao broker-credentials`: mosquitto's password and ACL files from the device registry.

Every enabled device becomes a broker user whose password its key gives (docs/protocol.md
section 7.1); the gateway's users take BIDAO_MQTT__USERNAME and BIDAO_MQTT__PASSWORD. Both
files are replaced atomically, then the broker is told to re-read them (SIGHUP to the pid in
`--reload-pid-file`; in compose the broker's own watcher sends it when the files change).
With `--watch SECONDS` the command stays and rewrites the files whenever a device is added,
removed or re-keyed. Words: api/cli_broker_zh.py and api/cli_broker_en.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from api import cli
from api.cli_broker_en import TEXT as EN
from api.cli_broker_zh import TEXT as ZH
from gateway.application import Application, BrokerCredentialWriter, BrokerSync


def _both(key: str, **params: object) -> str:
    return f"{ZH[key].format(**params)}\n{EN[key].format(**params)}"


def broker_credentials(
    password_file: Annotated[
        Path, typer.Option("--password-file", help="mosquitto's password_file to (re)write")
    ],
    acl_file: Annotated[Path, typer.Option("--acl-file", help="mosquitto's acl_file to (re)write")],
    reload_pid_file: Annotated[
        Path | None,
        typer.Option("--reload-pid-file", help="send SIGHUP to the mosquitto whose pid is here"),
    ] = None,
    watch: Annotated[
        float | None,
        typer.Option(
            "--watch",
            min=1.0,
            metavar="SECONDS",
            help="keep running: look for device changes this often and rewrite on a change",
        ),
    ] = None,
    config: cli.ConfigOption = None,
) -> None:
    """Write the broker's password and ACL files from the devices' keys (消息服务器账号)."""
    settings = cli._settings(config)
    user = settings.mqtt.username
    password = settings.mqtt.password.get_secret_value()
    if not user or not password:
        cli._complain(_both("err_no_gateway_user"))
        raise typer.Exit(cli.EXIT_USAGE)
    writer = BrokerCredentialWriter(password_file, acl_file, user, password, reload_pid_file)

    async def sync(application: Application) -> BrokerSync:
        return await application.sync_broker_credentials(writer)

    while True:
        try:
            done = cli._with_store(config, sync)
        except OSError as exc:
            path = exc.filename or password_file
            cli._complain(_both("err_write", path=path, reason=exc.strerror or exc))
            raise typer.Exit(cli.EXIT_FAILED) from None
        if done.written:
            cli._say(
                _both(
                    "written",
                    devices=done.devices,
                    password_file=password_file,
                    acl_file=acl_file,
                    seconds=done.seconds,
                )
            )
            if done.reloaded_pid is not None:
                cli._say(_both("reloaded", pid=done.reloaded_pid))
            elif watch is None:
                cli._say(_both("no_reload"))
        if watch is None:
            return
        time.sleep(watch)


def register(app: typer.Typer) -> None:
    """Add `bidao broker-credentials` to `bidao`."""
    app.command("broker-credentials")(broker_credentials)
