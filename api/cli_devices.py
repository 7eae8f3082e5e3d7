"""`bidao device ...` and `bidao alarms`: boxes attached, moved, replaced, removed; alarms.

Every change goes through the facade (gateway/application.py), is checked against the grid
and written with its history row in one transaction; nothing is written when it is refused
(exit status 2, the reason in Chinese, then English, on stderr). A gateway running on the
same data folder sees a change within `supervision.changes_poll_s` (it polls the history).
Words are kept in api/cli_devices_zh.py and api/cli_devices_en.py.
"""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich import box
from rich.table import Table

from api import cli
from api.cli_devices_en import TEXT as EN
from api.cli_devices_zh import TEXT as ZH
from gateway.application import Application, DeviceAdminError, DeviceRecord
from gateway.errors import RegistryError

T = TypeVar("T")

alarms_app = typer.Typer(
    help="Operator alarms: calls that reached nobody, boxes set up wrongly (运维告警).",
    invoke_without_command=True,
)


def _both(text: str, **params: str) -> str:
    """The Chinese line, then the English one."""
    return f"{ZH[text].format(**params)}\n{EN[text].format(**params)}"


def _label(key: str) -> str:
    """A short label, Chinese first."""
    return f"{ZH[key]} {EN[key]}"


def _header(key: str) -> str:
    """A column header: Chinese over English."""
    return f"{ZH[key]}\n{EN[key]}"


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


ByOption = Annotated[
    str | None, typer.Option("--by", help="who makes the change (default: the login name)")
]
DeviceArg = Annotated[str, typer.Argument(help="device id, 16 hex digits", parser=cli._device_id)]


def _run(config: cli.ConfigOption, work: Callable[[Application], Awaitable[T]]) -> T:
    """Run against the store; a refused change is said in both languages, exit status 2."""
    try:
        return cli._with_store(config, work)
    except DeviceAdminError as exc:
        key = f"err_{exc.code}"
        if key in ZH:
            cli._complain("错误：" + ZH[key].format(**exc.params))
            cli._complain("error: " + EN[key].format(**exc.params))
        else:
            cli._complain(f"error: {exc}")
        raise typer.Exit(cli.EXIT_USAGE) from None


async def _was(application: Application, device_id: str) -> str:
    """The household the device's newest change took it from ("" if none)."""
    entries = await application.device_history(device_id)
    return (entries[-1].from_household or "") if entries else ""


def _running_note(config: cli.ConfigOption) -> None:
    seconds = f"{cli._settings(config).supervision.changes_poll_s:g}"
    cli._say(_both("running_note", seconds=seconds))


def device_add(
    device_id: DeviceArg,
    kind: Annotated[cli.DeviceKindChoice, typer.Option(help="what the device is")],
    key: Annotated[
        bytes | None,
        typer.Option(
            help="32 hex digits (16 bytes); a random key is generated and shown if absent",
            parser=cli._key,
        ),
    ] = None,
    household: Annotated[
        str | None, typer.Option(help="household code (must exist: bidao import households)")
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(help="grid unit the box is installed in, when it has no household yet"),
    ] = None,
    label: Annotated[str | None, typer.Option(help="free text for installers")] = None,
    by: ByOption = None,
    config: cli.ConfigOption = None,
) -> None:
    """Register a device; refused if the household or unit does not exist (登记设备)."""
    added = _run(
        config,
        lambda a: a.add_device(
            device_id,
            cli._DEVICE_KINDS[kind],
            key,
            household,
            label,
            unit,
            by or _actor(),
        ),
    )
    record = added.record
    params = {
        "device": record.device_id,
        "household": household or "",
        "unit": unit or "",
    }
    zh, en = ZH[f"kind_{record.kind}"], record.kind
    which = "added_household" if household else ("added_unit" if unit else "added")
    cli._say(ZH[which].format(kind=zh, **params))
    cli._say(EN[which].format(kind=en, **params))
    if added.key_generated:
        # Shown once, for the installer to load into the device.
        cli._say(_both("key_shown", key=record.key.hex()))
    if household is None and record.kind == "call_box":
        cli._complain(_both("no_household_warning", device=record.device_id))


def device_attach(
    device_id: DeviceArg,
    household: Annotated[str, typer.Argument(help="household code")],
    by: ByOption = None,
    config: cli.ConfigOption = None,
) -> None:
    """Attach a box that has no household to one (绑定住户)."""
    record = _run(config, lambda a: a.attach_device(device_id, household, by or _actor()))
    cli._say(_both("attached", device=record.device_id, household=household))
    _running_note(config)


def device_move(
    device_id: DeviceArg,
    household: Annotated[str, typer.Argument(help="the new household's code")],
    by: ByOption = None,
    config: cli.ConfigOption = None,
) -> None:
    """Move a box from its household to another (更换住户)."""

    async def work(a: Application) -> tuple[str, DeviceRecord]:
        record = await a.move_device(device_id, household, by or _actor())
        return await _was(a, record.device_id), record

    before, record = _run(config, work)
    cli._say(_both("moved", device=record.device_id, before=before, after=household))
    _running_note(config)


def device_replace(
    old: Annotated[str, typer.Argument(help="the box taken away", parser=cli._device_id)],
    new: Annotated[str, typer.Argument(help="the box that takes its place", parser=cli._device_id)],
    key: Annotated[
        bytes | None,
        typer.Option(
            help="the new box's key if it is not registered yet (else one is generated)",
            parser=cli._key,
        ),
    ] = None,
    by: ByOption = None,
    config: cli.ConfigOption = None,
) -> None:
    """The new box takes over the old one's household; the old one is retired (更换呼叫盒)."""

    async def work(a: Application) -> tuple[str, str, str, str | None]:
        retired, added = await a.replace_device(old, new, key, by or _actor())
        shown = added.record.key.hex() if added.key_generated else None
        household = await _was(a, retired.device_id)
        return retired.device_id, added.record.device_id, household, shown

    old_id, new_id, household, shown = _run(config, work)
    none = {"zh": ZH["none"], "en": EN["none"]}
    cli._say(ZH["replaced"].format(old=old_id, new=new_id, household=household or none["zh"]))
    cli._say(EN["replaced"].format(old=old_id, new=new_id, household=household or none["en"]))
    if shown is not None:
        cli._say(_both("key_shown", key=shown))
    _running_note(config)


def device_remove(
    device_id: DeviceArg,
    by: ByOption = None,
    config: cli.ConfigOption = None,
) -> None:
    """Retire a box: its history stays, its frames are refused (停用设备)."""

    async def work(a: Application) -> tuple[str, str]:
        removed = await a.remove_device(device_id, by or _actor())
        return removed.device_id, await _was(a, removed.device_id)

    removed, household = _run(config, work)
    cli._say(ZH["removed"].format(device=removed, household=household or ZH["none"]))
    cli._say(EN["removed"].format(device=removed, household=household or EN["none"]))
    _running_note(config)


def _state(d: DeviceRecord) -> str:
    if not d.enabled:
        return _label("state_retired")
    return f"{_label('state_in_use')}, {_label(f'status_{d.status}')}"


def device_list(config: cli.ConfigOption = None) -> None:
    """List devices: household, state and health (设备列表)."""
    devices = _run(config, lambda a: a.list_devices())
    table = Table(
        *(
            _header(h)
            for h in (
                "h_device",
                "h_kind",
                "h_household",
                "h_state",
                "h_battery",
                "h_rssi",
                "h_last_seen",
            )
        ),
        box=box.SIMPLE,
        show_edge=False,
    )
    for d in devices:
        table.add_row(
            d.device_id,
            _label(f"kind_{d.kind}"),
            d.household_code or "-",
            _state(d),
            "-" if d.battery_pct is None else f"{d.battery_pct}%",
            "-" if d.rssi_dbm is None else str(d.rssi_dbm),
            "-" if d.last_seen is None else cli._local_time(d.last_seen),
        )
    cli._console().print(table)
    cli._say(_both("devices_count", count=str(len(devices))))


def device_history(device_id: DeviceArg, config: cli.ConfigOption = None) -> None:
    """Who attached, moved, replaced or removed the box, and when (变更记录)."""
    entries = _run(config, lambda a: a.device_history(device_id))
    if not entries:
        cli._say(_both("no_history", device=device_id.lower()))
        return
    table = Table(
        *(
            _header(h)
            for h in ("h_at", "h_action", "h_from", "h_to", "h_other", "h_by", "h_detail")
        ),
        box=box.SIMPLE,
        show_edge=False,
    )
    for e in entries:
        table.add_row(
            cli._local_time(e.at),
            _label(f"action_{e.action}"),
            e.from_household or "-",
            e.to_household or (e.unit_code and f"({e.unit_code})") or "-",
            e.other_device or "-",
            e.actor,
            e.note or "-",
        )
    cli._console().print(table)


@alarms_app.callback()
def alarms(
    ctx: typer.Context,
    show_all: Annotated[
        bool, typer.Option("--all", help="cleared alarms too (含已清除的告警)")
    ] = False,
    config: cli.ConfigOption = None,
) -> None:
    """List open operator alarms (未清除的运维告警); `bidao alarms clear ID` clears one."""
    if ctx.invoked_subcommand is not None:
        return
    found = _run(config, lambda a: a.alarms(cleared=show_all))
    if not found:
        cli._say(_both("alarms_none"))
        return
    table = Table(
        *(
            _header(h)
            for h in (
                "h_id",
                "h_alarm",
                "h_device",
                "h_detail",
                "h_first",
                "h_last",
                "h_count",
                "h_notified",
                "h_cleared",
            )
        ),
        box=box.SIMPLE,
        show_edge=False,
    )
    for alarm in found:
        table.add_row(
            str(alarm.id),
            _label(f"alarm_{alarm.kind}"),
            alarm.device_id or "-",
            alarm.detail,
            cli._local_time(alarm.at),
            cli._local_time(alarm.last_at),
            str(alarm.count),
            "-" if alarm.notified_at is None else cli._local_time(alarm.notified_at),
            "-" if alarm.cleared_at is None else cli._local_time(alarm.cleared_at),
        )
    cli._console().print(table)
    cli._say(_both("alarms_count", count=str(len(found))))


@alarms_app.command("clear")
def alarms_clear(
    alarm_id: Annotated[int, typer.Argument(help="the alarm's id (bidao alarms)")],
    by: ByOption = None,
    config: cli.ConfigOption = None,
) -> None:
    """Clear an alarm once its cause is put right (清除告警)."""
    alarm = _run(config, lambda a: a.clear_alarm(alarm_id, by or _actor()))
    kinds = (ZH[f"alarm_{alarm.kind}"], EN[f"alarm_{alarm.kind}"])
    device = alarm.device_id or "-"
    cli._say(ZH["alarm_cleared"].format(alarm=str(alarm.id), kind=kinds[0], device=device))
    cli._say(EN["alarm_cleared"].format(alarm=str(alarm.id), kind=kinds[1], device=device))


# -- protocol administration: key rotation, configuration, counters (docs/protocol.md) ----


def _registry_error(config: cli.ConfigOption, work: Callable[[Application], Awaitable[T]]) -> T:
    """Like `_run`; a refusal from the registry (unknown device, bad value) also exits 2."""
    try:
        return _run(config, work)
    except RegistryError as exc:
        cli._complain(f"错误：{exc}")
        cli._complain(f"error: {exc}")
        raise typer.Exit(cli.EXIT_USAGE) from None


def device_rotate_key(
    device_id: DeviceArg,
    by: ByOption = None,
    config: cli.ConfigOption = None,
) -> None:
    """Give a box a new key, safely: it keeps working throughout (更换设备密钥)."""
    record = _registry_error(config, lambda a: a.rotate_device_key(device_id, by or _actor()))
    key_id = str(record.next_key_id)
    cli._say(ZH["key_rotation"].format(device=record.device_id, key_id=key_id))
    cli._say(EN["key_rotation"].format(device=record.device_id, key_id=key_id))
    _running_note(config)


def device_configure(
    device_id: DeviceArg,
    heartbeat_s: Annotated[
        int | None,
        typer.Option("--heartbeat-s", min=1, max=0xFFFF, help="heartbeat interval (心跳间隔，秒)"),
    ] = None,
    clock: Annotated[bool, typer.Option("--clock", help="set the box's clock (校准时钟)")] = False,
    by: ByOption = None,
    config: cli.ConfigOption = None,
) -> None:
    """Send a box a new heartbeat interval and/or the time (下发设备配置)."""
    record = _registry_error(
        config, lambda a: a.configure_device(device_id, heartbeat_s, clock, by or _actor())
    )
    for words in (ZH, EN):
        parts = []
        if heartbeat_s is not None:
            parts.append(words["configured_heartbeat"].format(seconds=str(heartbeat_s)))
        if clock:
            parts.append(words["configured_clock"])
        what = words["configured_and"].join(parts)
        cli._say(words["configured"].format(device=record.device_id, what=what))
    _running_note(config)


def device_reset_counters(
    device_id: DeviceArg,
    by: ByOption = None,
    config: cli.ConfigOption = None,
) -> None:
    """Forget a box's frame counters; its next frame sets them again (重置设备帧计数)."""
    record = _registry_error(config, lambda a: a.reset_device_counters(device_id, by or _actor()))
    cli._say(ZH["counters_reset"].format(device=record.device_id))
    cli._say(EN["counters_reset"].format(device=record.device_id))
    _running_note(config)


def register(device_app: typer.Typer, app: typer.Typer) -> None:
    """Add the device commands to `bidao device` and `bidao alarms` to `bidao`."""
    device_app.command("add")(device_add)
    device_app.command("attach")(device_attach)
    device_app.command("move")(device_move)
    device_app.command("replace")(device_replace)
    device_app.command("remove")(device_remove)
    device_app.command("list")(device_list)
    device_app.command("history")(device_history)
    device_app.command("rotate-key")(device_rotate_key)
    device_app.command("configure")(device_configure)
    device_app.command("reset-counters")(device_reset_counters)
    app.add_typer(alarms_app, name="alarms")
