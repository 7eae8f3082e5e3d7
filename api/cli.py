"""The `bidao` command: run the gateway, provision devices, import the grid, read figures.

Each command is a thin call into the application facade (gateway/application.py); the
store-only commands open the SQLite store and nothing else. `bidao sim ...` hands its
arguments to the simulator's own parser (device_sim/cli.py).

Exit status: 0 done; 1 the work failed (a rejected file or row, a store that cannot be
used); 2 bad input (arguments, settings, a device that cannot be registered); 130 Ctrl-C;
141 stdout closed by its reader (`bidao device list | head -1`), quietly.
"""

from __future__ import annotations

import asyncio
import enum
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar, cast

import typer
from rich.console import Console

from api.cli_tickets import register as register_ticket_commands
from api.entry import EXIT_INTERRUPTED, EXIT_PIPE_CLOSED, quiet_stdout
from api.report_view import ReportInputError, ReportView, parse_days
from firmware_protocol import KEY_LEN, ProtocolError, parse_device_id
from gateway.application import (
    Application,
    ImportKind,
    ImportRejectedError,
    offline,
)
from gateway.config import DeviceKind, Settings, load_settings
from gateway.errors import ConfigError, GatewayError, RegistryError

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_USAGE = 2
_PIPE_WIDTH = 200  # columns for tables when stdout is a pipe or a file, not a terminal


class PipeClosedError(Exception):
    """The reader of stdout went away; the command stops quietly."""


class _GuardedStream:
    """A text stream whose writes turn a closed pipe into PipeClosedError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write, or raise PipeClosedError if the reader has gone."""
        try:
            return self._stream.write(text)
        except BrokenPipeError as exc:
            raise PipeClosedError from exc

    def flush(self) -> None:
        """Flush, or raise PipeClosedError if the reader has gone."""
        try:
            self._stream.flush()
        except BrokenPipeError as exc:
            raise PipeClosedError from exc

    def __getattr__(self, name: str) -> Any:
        """Everything else (isatty, fileno, encoding) from the wrapped stream."""
        return getattr(self._stream, name)


def _console() -> Console:
    stream = sys.stdout
    width = None if stream.isatty() else _PIPE_WIDTH
    return Console(
        file=cast("TextIO", _GuardedStream(stream)), width=width, highlight=False, emoji=False
    )


def _say(text: str, end: str = "\n") -> None:
    _console().print(text, markup=False, highlight=False, soft_wrap=True, end=end)


def _complain(text: str) -> None:
    print(text, file=sys.stderr)


class DeviceKindChoice(enum.StrEnum):
    """The kinds of device a person can register."""

    call_box = "call_box"
    water_meter = "water_meter"


class ImportKindChoice(enum.StrEnum):
    """The grid files a person can import."""

    units = "units"
    households = "households"
    contacts = "contacts"


_DEVICE_KINDS: dict[DeviceKindChoice, DeviceKind] = {
    DeviceKindChoice.call_box: "call_box",
    DeviceKindChoice.water_meter: "water_meter",
}
_IMPORT_KINDS: dict[ImportKindChoice, ImportKind] = {
    ImportKindChoice.units: "units",
    ImportKindChoice.households: "households",
    ImportKindChoice.contacts: "contacts",
}


def _device_id(text: str) -> str:
    try:
        return parse_device_id(text)
    except ProtocolError:
        raise typer.BadParameter(f"{text!r} is not 16 hex digits") from None


def _key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_LEN:
        raise typer.BadParameter(f"must be {2 * KEY_LEN} hex digits ({KEY_LEN} bytes)")
    return key


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (BIDAO_* environment variables win)"),
]

app = typer.Typer(
    name="bidao",
    help="Bidao (必到): gateway for one-button elder care call boxes and water meters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
device_app = typer.Typer(
    help="Register, attach, move, replace, remove and list devices (设备).", no_args_is_help=True
)
app.add_typer(device_app, name="device")


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


def _with_store(config: Path | None, work: Callable[[Application], Awaitable[T]]) -> T:
    """Run one piece of work against the facade over the store alone."""
    settings = _settings(config)

    async def main() -> T:
        async with offline(settings) as application:
            return await work(application)

    return asyncio.run(main())


@app.command()
def run(
    config: ConfigOption = None,
    speed: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="run the gateway's clock this many times faster than real time (simulator "
            "scenarios: an 8-hour story in seconds); never in service",
        ),
    ] = 1.0,
    speed_from: Annotated[
        float | None,
        typer.Option(help="unix time the accelerated clock starts from (default: now)"),
    ] = None,
) -> None:
    """Run the gateway until SIGTERM or SIGINT."""
    # The HTTP stack and the service load only here: store-only commands start faster.
    from api.runner import run_gateway

    raise typer.Exit(run_gateway(config, speed=speed, speed_from=speed_from))


def _local_time(unix: float) -> str:
    return datetime.fromtimestamp(unix).astimezone().strftime("%Y-%m-%d %H:%M:%S")


@app.command("import")
def import_grid(
    kind: Annotated[ImportKindChoice, typer.Argument(help="which grid file this is")],
    file: Annotated[
        Path,
        typer.Argument(help="UTF-8 CSV with a header row (columns: README.md, examples/)"),
    ],
    check: Annotated[
        bool, typer.Option("--check", help="check every row and report, but write nothing")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Import the grid from a CSV file: units, households (with their boxes) or contacts."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        _complain(f"bidao: cannot read {file}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_USAGE) from None
    try:
        result = _with_store(
            config, lambda a: a.import_grid(_IMPORT_KINDS[kind], data, check=check)
        )
    except ImportRejectedError as exc:
        for line in exc.lines(str(file)):
            _complain(line)
        raise typer.Exit(EXIT_FAILED) from None
    for line in result.summary_lines(str(file)):
        _say(line)
    if result.rejected:
        for line in result.error_lines(str(file)):
            _complain(line)
        raise typer.Exit(EXIT_FAILED)


class ReportLanguage(enum.StrEnum):
    """The languages `bidao report` is written in."""

    zh = "zh"
    en = "en"


@app.command()
def report(
    days: Annotated[
        str, typer.Option(help="period for the statistics, in days (统计天数)", metavar="DAYS")
    ] = "30",
    lang: Annotated[
        ReportLanguage, typer.Option("--lang", help="zh (中文, default) or en")
    ] = ReportLanguage.zh,
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", help="write the figures to this CSV file for Excel (导出CSV)"),
    ] = None,
    xlsx_file: Annotated[
        Path | None,
        typer.Option("--xlsx", help="write the figures to this Excel workbook (导出Excel)"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """预警颜色、办结率和满意率、邻长考核牌 / warning colours, figures and chiefs' cards."""
    try:
        period = parse_days(days)
    except ReportInputError as exc:
        for line in str(exc).splitlines():
            _complain(f"bidao: {line}")
        raise typer.Exit(EXIT_USAGE) from None
    view = ReportView(_with_store(config, lambda a: a.report(period)), lang.value)
    exports = [(csv_file, view.write_csv), (xlsx_file, view.write_xlsx)]
    if csv_file is None and xlsx_file is None:
        view.render(_console())
        return
    for path, write in exports:
        if path is None:
            continue
        try:
            rows = write(path)
        except OSError as exc:
            _complain(f"bidao: {view.t('error.write', path=path, reason=exc.strerror or exc)}")
            raise typer.Exit(EXIT_USAGE) from None
        _say(view.t("export.done", path=path, rows=rows))


# `bidao tickets` and `bidao ticket N [arrive|resolve|classify|note|reassign]`.
register_ticket_commands(app, _with_store, _console)


@app.command()
def metrics(config: ConfigOption = None) -> None:
    """Print the Prometheus metrics of the gateway that uses this data folder."""

    async def text(application: Application) -> bytes:
        return application.metrics_text()

    _say(_with_store(config, text).decode("utf-8", "replace"), end="")


@app.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
def sim(ctx: typer.Context) -> None:
    """Simulated call boxes, water meters and phones (`bidao sim --help`)."""
    from device_sim.cli import main as sim_main

    raise typer.Exit(sim_main(ctx.args))


@app.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
def demo(ctx: typer.Context) -> None:
    """Everything on this computer with a short story, until Ctrl-C (`bidao demo --help`)."""
    from device_sim.demo import main as demo_main

    raise typer.Exit(demo_main(ctx.args))


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    _complain(str(code))
    return EXIT_FAILED


def _invoke(args: list[str]) -> int:
    command = typer.main.get_command(app)
    try:
        # Standalone: Typer prints usage errors (exit 2) and help itself and exits.
        command.main(args=args, prog_name="bidao", standalone_mode=True)
    except SystemExit as exc:
        return _exit_code(exc.code)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (GatewayError, ValueError) as exc:
        _complain(f"bidao: {exc}")
        bad_input = isinstance(exc, ConfigError | RegistryError | ValueError)
        return EXIT_USAGE if bad_input else EXIT_FAILED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bidao` console script; returns the exit status."""
    try:
        code = _invoke(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
    except (PipeClosedError, BrokenPipeError):
        quiet_stdout()
        return EXIT_PIPE_CLOSED
    return code


# `bidao device ...` and `bidao alarms` live in api/cli_devices.py; they use the helpers above.
from api import cli_devices  # noqa: E402

cli_devices.register(device_app, app)

# `bidao device check` (the install check) lives in api/cli_install.py.
from api import cli_install  # noqa: E402

cli_install.register(device_app)

# `bidao household away|show` lives in api/cli_households.py.
from api import cli_households  # noqa: E402

cli_households.register(app)

# `bidao user add|passwd|token|list|disable` lives in api/cli_users.py.
from api import cli_users  # noqa: E402

cli_users.register(app)

# `bidao broker-credentials` lives in api/cli_broker.py.
from api import cli_broker  # noqa: E402

cli_broker.register(app)

# `bidao templates export` lives in api/cli_templates.py.
from api import cli_templates  # noqa: E402

cli_templates.register(app)
