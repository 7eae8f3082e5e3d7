"""The `bidao` command: run the gateway, provision devices, read figures, drive the simulator."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from alerts.providers.base import Provider
from alerts.providers.console import ConsoleProvider
from api.runner import run_gateway
from gateway.config import Settings, load_settings
from gateway.errors import GatewayError
from gateway.grid_import import ImportRejectedError
from gateway.reports import Reports, by_level
from gateway.service import GatewayService
from gateway.sqlite_store import SqliteStore


def _settings(args: argparse.Namespace) -> Settings:
    config: Path | None = args.config
    return load_settings(config)


def build_provider(settings: Settings) -> Provider:
    """The notification provider the settings name."""
    notify = settings.notify
    if notify.provider == "twilio":
        from alerts.providers.twilio_provider import TwilioProvider

        return TwilioProvider(
            notify.twilio_account_sid,
            notify.twilio_auth_token.get_secret_value(),
            notify.twilio_from,
            notify.public_url,
            notify.twilio_api_base_url,
        )
    return ConsoleProvider()


def _cmd_run(args: argparse.Namespace) -> int:
    return run_gateway(args.config)


def _cmd_device_add(args: argparse.Namespace) -> int:
    settings = _settings(args)
    key = bytes.fromhex(args.key) if args.key else None

    async def main() -> None:
        service = GatewayService(settings)
        await service.store.open()
        try:
            record = await service.registry.register(
                args.device_id, args.kind, key, args.household, args.label
            )
        finally:
            await service.store.close()
        print(f"registered {record.device_id} ({record.kind})")
        if key is None:
            # Shown once, for the installer to load into the device.
            print(f"key: {record.key.hex()}")

    asyncio.run(main())
    return 0


def _cmd_device_list(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def main() -> None:
        store = SqliteStore(settings.database_path)
        await store.open()
        try:
            devices = await store.load_devices()
        finally:
            await store.close()
        print(f"{'device_id':16}  {'kind':11}  {'status':7}  {'battery':7}  {'rssi':5}  last_seen")
        for d in sorted(devices, key=lambda d: d.device_id):
            battery = "-" if d.battery_pct is None else f"{d.battery_pct}%"
            rssi = "-" if d.rssi_dbm is None else str(d.rssi_dbm)
            seen = "-" if d.last_seen is None else _local_time(d.last_seen)
            print(f"{d.device_id:16}  {d.kind:11}  {d.status:7}  {battery:7}  {rssi:5}  {seen}")

    asyncio.run(main())
    return 0


def _local_time(unix: float) -> str:
    return datetime.fromtimestamp(unix).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _cmd_metrics(args: argparse.Namespace) -> int:
    path = _settings(args).metrics_path
    try:
        sys.stdout.write(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"no metrics yet at {path}: is the gateway running?", file=sys.stderr)
        return 1
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"bidao: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        # The store alone, as `device add` does: no broker and no running gateway needed.
        service = GatewayService(settings)
        await service.store.open()
        try:
            result = await service.importer.import_csv(args.kind, data, check=args.check)
        except ImportRejectedError as exc:
            print(f"{args.file}: file rejected, nothing imported", file=sys.stderr)
            for error in exc.errors:
                print(f"  {error}", file=sys.stderr)
            return 1
        finally:
            await service.store.close()
        print(f"{args.file}: {result.summary()}")
        if result.rejected:
            print(f"{args.file}: {result.rejected} rows rejected:", file=sys.stderr)
            for error in result.errors:
                print(f"  {error}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(main())


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value / 60:.1f}"


def _cmd_report(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def main() -> None:
        store = SqliteStore(settings.database_path)
        await store.open()
        try:
            reports = Reports(store, settings.tickets, settings.warnings, settings.cards)
            now = time.time()
            start = now - args.days * 86400
            colours = await reports.warning_colours(now)
            stats = await reports.statistics(start, now)
            cards = await reports.chief_cards(start, now)
            unused = await reports.unused_boxes(now)
        finally:
            await store.close()
        print(f"warning colours ({len(colours)} units):")
        for level in ("township", "village", "area", "group", "neighbourhood"):
            for w in by_level(colours.values(), level):
                print(
                    f"  {w.level:13} {w.code:24} {w.name:8} {w.colour:6} "
                    f"live {w.live} overdue {w.overdue}"
                )
        print(f"last {args.days:g} days:")
        for key, s in sorted(stats.items()):
            accept_p50, accept_p90 = s.accept_percentiles()
            print(
                f"  {key:24} requests {s.requests} closed {_rate(s.closure_rate)} "
                f"accept on time {_rate(s.accept_on_time_rate)} "
                f"(p50 {_minutes(accept_p50)} min, p90 {_minutes(accept_p90)} min) "
                f"arrive on time {_rate(s.arrive_on_time_rate)} "
                f"satisfied {_rate(s.satisfaction)} unrated {_rate(s.unrated_share)} "
                f"cancelled {s.cancelled} escalated {s.escalated}"
            )
        for card in cards:
            print(f"  card {card.name}: {card.colour} (on time {_rate(card.on_time)})")
        print(f"boxes never pressed in 90 days: {len(unused)}")

    asyncio.run(main())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="bidao",
        description="Bidao (必到): gateway for one-button elder care call boxes and water meters.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML settings file (BIDAO_* env overrides)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the gateway until SIGTERM/SIGINT")
    run.set_defaults(func=_cmd_run)

    device = sub.add_parser("device", help="provision and list devices")
    device_sub = device.add_subparsers(dest="device_command", required=True, metavar="ACTION")
    add = device_sub.add_parser("add", parents=[common], help="register a device")
    add.add_argument("device_id", help="16 hex digits")
    add.add_argument("--kind", choices=["call_box", "water_meter"], required=True)
    add.add_argument("--key", help="32 hex digits; a random key is generated and shown if absent")
    add.add_argument("--household", help="household code")
    add.add_argument("--label", help="free text for installers")
    add.set_defaults(func=_cmd_device_add)
    lst = device_sub.add_parser("list", parents=[common], help="list devices and their health")
    lst.set_defaults(func=_cmd_device_list)

    imp = sub.add_parser("import", parents=[common], help="import the grid from a CSV file")
    imp.add_argument("kind", choices=["units", "households", "contacts"])
    imp.add_argument("file", help="UTF-8 CSV with a header row (see gateway/grid_import.py)")
    imp.add_argument(
        "--check", action="store_true", help="check every row and report, but write nothing"
    )
    imp.set_defaults(func=_cmd_import)

    report = sub.add_parser("report", parents=[common], help="colours, statistics, cards")
    report.add_argument("--days", type=float, default=30.0, help="period for the statistics")
    report.set_defaults(func=_cmd_report)

    metrics = sub.add_parser("metrics", parents=[common], help="print the Prometheus metrics")
    metrics.set_defaults(func=_cmd_metrics)

    from device_sim.cli import add_subcommands

    sim = sub.add_parser("sim", help="simulated call boxes and water meters")
    add_subcommands(sim.add_subparsers(dest="sim_command", required=True, metavar="ACTION"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bidao` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (GatewayError, ValueError) as exc:
        print(f"bidao: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
