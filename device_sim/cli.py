"""`bidao sim`: press keys on a simulated box, send meter readings, run a fleet."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from device_sim import phones_view as view
from device_sim.cli_aliyun import add_aliyun
from device_sim.device import DeviceKind, SimulatedDevice, box_says, fleet_identity
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork
from device_sim.resend import RealClock
from firmware_protocol import KEY_LEN, Key, ProtocolError, parse_device_id
from firmware_protocol.broker_auth import broker_password

KEYS = {
    "green": Key.GREEN_CALL,
    "red": Key.RED_HANGUP,
    "up": Key.THUMBS_UP,
    "down": Key.THUMBS_DOWN,
}
DEFAULT_PORT = 18830
DEFAULT_STATE_DIR = Path("bidao-data/sim")
EXIT_OK = 0
EXIT_NOT_ACKED = 1
EXIT_NO_BROKER = 2
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _int_in(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be within {low}..{high}")
        return value

    parse.__name__ = "integer"
    return parse


def _device_id(text: str) -> str:
    try:
        return parse_device_id(text)
    except ProtocolError:
        raise argparse.ArgumentTypeError("must be 16 hex digits") from None


def _key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_LEN:
        raise argparse.ArgumentTypeError(f"must be {2 * KEY_LEN} hex digits")
    return key


def _connection(parser: argparse.ArgumentParser, timeout: float) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="broker address (loopback)")
    parser.add_argument("--port", type=_int_in(1, 65535), default=DEFAULT_PORT)
    parser.add_argument(
        "--timeout", type=float, default=timeout, help="seconds to wait for the acks"
    )


def _identity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device-id", type=_device_id, required=True, help="16 hex digits")
    parser.add_argument("--key", type=_key, required=True, help="the device key, 32 hex digits")
    parser.add_argument(
        "--session", type=_int_in(0, 0xFFFFFFFE), help="boot session to use (default: the next)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where each simulated device keeps its boot session counter, as firmware does",
    )
    parser.add_argument(
        "--broker-login",
        action="store_true",
        help="log in to the broker as the device: user = its id, password from its key"
        " (a broker with per-device accounts, compose.yaml)",
    )


def _device(args: argparse.Namespace, kind: DeviceKind) -> SimulatedDevice:
    """Each run is one boot: the session after the stored one, seqs from 1."""
    state = args.state_dir / f"{args.device_id}.session"
    session = args.session
    if session is None:
        session = int(state.read_text()) + 1 if state.exists() else 1
    return SimulatedDevice(args.device_id, kind, args.key, session=session)


def _save_seq(args: argparse.Namespace, device: SimulatedDevice) -> None:
    args.state_dir.mkdir(parents=True, exist_ok=True)
    (args.state_dir / f"{device.device_id}.session").write_text(str(device.session))


def _broker_login(
    args: argparse.Namespace, device: SimulatedDevice
) -> tuple[str | None, str | None]:
    """User (also the client id) and password of a box that logs in as itself, else none."""
    if not getattr(args, "broker_login", False):
        return None, None
    return device.device_id, broker_password(args.key)


async def _send_one(args: argparse.Namespace, device: SimulatedDevice, frame: bytes) -> int:
    # Like firmware: the session number is stored before the session's first frame leaves.
    _save_seq(args, device)
    try:
        # The box resends on its backoff until the ACK comes, as firmware does.
        user, password = _broker_login(args, device)
        async with MqttFleet(
            args.host,
            args.port,
            [device],
            user,
            clock=RealClock(),
            username=user,
            password=password,
        ) as fleet:
            await fleet.send(device.device_id, frame)
            try:
                await fleet.wait_all_acked(args.timeout)
            except TimeoutError:
                print(f"no ack within {args.timeout:g} s (is the device registered?)")
                return EXIT_NOT_ACKED
    except (OSError, TimeoutError) as exc:
        print(f"cannot reach the broker at {args.host}:{args.port}: {exc}")
        return EXIT_NO_BROKER
    _save_seq(args, device)  # a resynchronisation may have moved the session on
    if device.resyncs:
        print(f"resynchronised: session {device.session}")
    if device.nacked and not device.acked:
        print(f"refused: {', '.join(code.name for code in device.nacked.values())}")
        return EXIT_NOT_ACKED
    duplicate = " (duplicate)" if device.duplicate_acks else ""
    session, seq = divmod(min(device.acked_positions), 1 << 32)
    print(f"acked: {device.device_id} session {session} seq {seq}{duplicate}")
    for indication in device.indications:
        print(f"indication for ticket {indication.ticket_ref}: {box_says(indication)}")
    return EXIT_OK


def _cmd_box(args: argparse.Namespace) -> int:
    device = _device(args, "call_box")
    frame = device.press(KEYS[args.key_name], args.count, args.long)
    return asyncio.run(_send_one(args, device, frame))


def _cmd_meter(args: argparse.Namespace) -> int:
    device = _device(args, "water_meter")
    frame = device.water_reading(args.litres, args.flow, 0)
    return asyncio.run(_send_one(args, device, frame))


async def _fleet(args: argparse.Namespace) -> int:
    # Fleet devices take the clock as their session, so that later runs start a newer one.
    session = args.session if args.session is not None else int(time.time())
    devices = []
    for i in range(args.devices):
        device_id, key = fleet_identity(i)
        devices.append(SimulatedDevice(device_id, "water_meter", key, session=session))
    try:
        async with MqttFleet(args.host, args.port, devices) as fleet:
            started = time.perf_counter()
            for n in range(args.frames):
                device = devices[n % len(devices)]
                litres = n // len(devices)
                await fleet.send(device.device_id, device.water_reading(litres, 0, 0))
            sent_s = time.perf_counter() - started
            try:
                await fleet.wait_all_acked(args.timeout)
            except TimeoutError as exc:
                print(f"incomplete: {exc}")
            elapsed = time.perf_counter() - started
    except (OSError, TimeoutError) as exc:
        print(f"cannot reach the broker at {args.host}:{args.port}: {exc}")
        return EXIT_NO_BROKER
    acked = sum(len(d.acked) for d in devices)
    duplicates = sum(d.duplicate_acks for d in devices)
    nacked = sum(len(d.nacked) for d in devices)
    pending = sum(d.pending_count for d in devices)
    if pending == 0 and nacked == 0:
        print(
            f"{args.frames} frames from {args.devices} devices acked in {elapsed:.2f} s "
            f"({args.frames / elapsed:.0f} frames/s)"
        )
    print(
        f"acked {acked} ({duplicates} duplicate), refused {nacked}, unanswered {pending}; "
        f"published in {sent_s:.2f} s"
    )
    return EXIT_OK if pending == 0 and nacked == 0 else EXIT_NOT_ACKED


def _cmd_fleet(args: argparse.Namespace) -> int:
    return asyncio.run(_fleet(args))


DEFAULT_PHONES_PORT = 18840
DEFAULT_ACCOUNT = "AC" + "b1da" * 8
DEFAULT_TOKEN = "bidao-fake-phone-network"  # noqa: S105 - the fake network's own, loopback only


def _phones_url(args: argparse.Namespace) -> str:
    return str(args.url).rstrip("/")


def _cmd_phones_serve(args: argparse.Namespace) -> int:
    network = FakePhoneNetwork(args.account, args.token, port=args.port)
    try:
        network.start()
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc}")
        return EXIT_NO_BROKER
    print(f"fake phone network on {network.url} (account {args.account})", flush=True)
    print("point Bidao at it: notify.provider = twilio, notify.twilio_api_base_url =", network.url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        network.stop()
    return EXIT_OK


class RefusedError(Exception):
    """The fake network refused a request; the message is its own."""


def _request(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = str(json.loads(exc.read()).get("message", exc.reason))
        except (ValueError, AttributeError):
            message = str(exc.reason)
        raise RefusedError(message) from None


def _cmd_phones_received(args: argparse.Namespace) -> int:
    try:
        zone = view.zone_named(args.tz or os.environ.get(view.ZONE_VARIABLE) or view.DEFAULT_ZONE)
        since = view.parse_since(args.since, zone, time.time()) if args.since else 0.0
        people: dict[str, view.Person] = {}
        for path in args.names or []:
            people.update(view.load_names(path))
    except view.ViewError as exc:
        print(f"bidao sim phones received: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        records = _request("GET", f"{_phones_url(args)}/phones")
    except OSError as exc:
        print(f"cannot reach the fake phone network at {args.url}: {exc}")
        return EXIT_NO_BROKER
    to = args.to or args.number or ""
    shown = view.select(view.entries(records, people, zone), to=to, ticket=args.ticket, since=since)
    if args.json:
        print(json.dumps(shown, ensure_ascii=False, indent=2))
        return EXIT_OK
    for line in view.render(shown, anything=bool(records)):
        print(line)
    return EXIT_OK


def _cmd_phones_set(args: argparse.Namespace) -> int:
    changes = {
        key: value
        for key, value in (
            ("behaviour", args.behaviour),
            ("digits", args.digits),
            ("sms_fails", args.sms_fails),
            ("talk_s", args.talk),
            ("callback_delay_s", args.callback_delay),
            ("duplicate_callbacks", args.duplicate),
            ("reverse_callbacks", args.reverse),
        )
        if value is not None
    }
    try:
        script = _request("PUT", f"{_phones_url(args)}/phones/{args.number}", changes)
    except RefusedError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"cannot reach the fake phone network at {args.url}: {exc}")
        return EXIT_NO_BROKER
    print(f"{args.number}: " + ", ".join(f"{k}={v}" for k, v in sorted(script.items())))
    return EXIT_OK


def _cmd_phones_outage(args: argparse.Namespace) -> int:
    changes = {"failures_left": args.failures, "stall_creates": args.stall, "stall_s": args.stall_s}
    try:
        state = _request("PUT", f"{_phones_url(args)}/network", changes)
    except RefusedError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"cannot reach the fake phone network at {args.url}: {exc}")
        return EXIT_NO_BROKER
    print("network: " + ", ".join(f"{k}={v}" for k, v in sorted(state.items())))
    return EXIT_OK


def _add_phones(sub: Any) -> None:
    phones = sub.add_parser("phones", help="the fake phone network (Twilio's REST API subset)")
    actions = phones.add_subparsers(dest="action", required=True, metavar="ACTION")
    url = f"http://127.0.0.1:{DEFAULT_PHONES_PORT}"

    serve = actions.add_parser("serve", help="run the fake phone network until Ctrl-C")
    serve.add_argument("--port", type=_int_in(0, 65535), default=DEFAULT_PHONES_PORT)
    serve.add_argument("--account", default=DEFAULT_ACCOUNT, help="the Twilio account SID")
    serve.add_argument(
        "--token", default=DEFAULT_TOKEN, help="the auth token callbacks are signed with"
    )
    serve.set_defaults(func=_cmd_phones_serve)

    received = actions.add_parser(
        "received",
        help="every SMS and call: when, to whom, what was read or heard, which key, how it ended",
        description="Every SMS and call the fake network took, oldest first, in local time: "
        "the recipient (with name and role from --names), the channel, the delivery state, "
        "the text or what the phone heard on the call and the keys it pressed.",
    )
    received.add_argument("number", nargs="?", help="only this phone (the same as --to)")
    received.add_argument("--to", help="only this phone")
    received.add_argument(
        "--ticket",
        type=_int_in(1, 2**63 - 1),
        help="only what names ticket N (工单N / Ticket N in the text or the call), and the "
        "calls put through from those calls",
    )
    received.add_argument(
        "--since", help="only from then on: 30m, 2h or 1d ago, 08:30 today, 2025-05-01 08:30"
    )
    received.add_argument(
        "--names",
        type=Path,
        action="append",
        metavar="FILE",
        help="CSV with phone and name columns (and role): the gateway's contacts or "
        "households import file works as it is; may be given more than once",
    )
    received.add_argument(
        "--tz",
        help=f"time zone of the times shown (default: ${view.ZONE_VARIABLE}, else "
        f"{view.DEFAULT_ZONE})",
    )
    received.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    received.add_argument("--url", default=url)
    received.set_defaults(func=_cmd_phones_received)

    script = actions.add_parser("set", help="how a phone behaves")
    script.add_argument("number")
    script.add_argument("--url", default=url)
    script.add_argument(
        "--behaviour", choices=["answer", "no_answer", "voicemail", "busy", "fail", "invalid"]
    )
    script.add_argument(
        "--digits",
        help="the keys pressed at successive menus, comma-separated: 1; 9,1 (hear it again, "
        "then 1); empty: none",
    )
    script.add_argument("--sms-fails", action=argparse.BooleanOptionalAction, default=None)
    script.add_argument("--talk", type=float, help="seconds it talks when put through")
    script.add_argument("--callback-delay", type=float, help="seconds before status callbacks")
    script.add_argument("--duplicate", action=argparse.BooleanOptionalAction, default=None)
    script.add_argument("--reverse", action=argparse.BooleanOptionalAction, default=None)
    script.set_defaults(func=_cmd_phones_set)

    outage = actions.add_parser("outage", help="make the provider fail or stall for a while")
    outage.add_argument("--url", default=url)
    outage.add_argument("--failures", type=_int_in(0, 1_000_000), default=0, help="503 answers")
    outage.add_argument("--stall", type=_int_in(0, 1_000_000), default=0, help="slow answers")
    outage.add_argument("--stall-s", type=float, default=0.0, help="how slow")
    outage.set_defaults(func=_cmd_phones_outage)


def _cmd_scenario(args: argparse.Namespace) -> int:
    from device_sim import scenario as play

    speed = args.speed if args.speed is not None else play.DEFAULT_SPEED[args.name]
    options = play.StageOptions(
        transport=args.transport,
        speed=speed,
        step_timeout_s=args.step_timeout,
        data_dir=args.data_dir,
        without_contacts=args.without_contacts,
        against=args.against,
        quiet=args.json,
        storm_boxes=args.devices - args.devices // 4 if args.name == "storm" else 0,
        storm_meters=args.devices // 4 if args.name == "storm" else 0,
        storm_rate=args.rate,
        storm_duration_s=args.duration,
    )
    try:
        report = asyncio.run(play.play(args.name, options))
    except play.StageError as exc:
        print(f"bidao sim scenario: {exc}", file=sys.stderr)
        return EXIT_NO_BROKER
    except KeyboardInterrupt:  # everything the stage started is stopped on the way out
        return EXIT_INTERRUPTED
    if args.json:
        print(play.report_json(report))
    else:
        print()
        for line in report.lines():
            print(line)
    return EXIT_OK if report.passed else EXIT_NOT_ACKED


def _cmd_load(args: argparse.Namespace) -> int:
    from device_sim.load import load_identities, print_progress, run_load

    if args.list_devices:
        print("device_id,kind,key")
        for device_id, kind, key in load_identities(args.devices, args.kind, args.first):
            print(f"{device_id},{kind},{key.hex()}")
        return EXIT_OK

    def sending() -> None:
        if args.json:
            print(json.dumps({"event": "sending", "at": time.time()}), flush=True)

    try:
        summary = asyncio.run(
            run_load(
                args.host,
                args.port,
                devices=args.devices,
                rate=args.rate,
                duration_s=args.duration,
                drain_s=args.timeout,
                resend_after_s=args.resend_after,
                session=args.session,
                kind=args.kind,
                first=args.first,
                progress=None if args.quiet else print_progress,
                sending=sending,
            )
        )
    except (OSError, TimeoutError) as exc:
        print(f"cannot reach the broker at {args.host}:{args.port}: {exc}")
        return EXIT_NO_BROKER
    if args.json:
        print(json.dumps({"event": "summary", **summary.as_json()}), flush=True)
    else:
        for line in summary.lines():
            print(line)
    return EXIT_OK if summary.unacked == 0 else EXIT_NOT_ACKED


def _positive(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError("must be a number above 0")
    return value


def _add_load(sub: Any) -> None:
    load = sub.add_parser(
        "load",
        help="N generated devices at a target frames/s for a duration, with a latency summary",
        description="Generated devices (the fleet ids, `bidao sim fleet`; --list-devices "
        "prints them to register) send readings or heartbeats at --rate frames/s for "
        "--duration seconds; frames unacknowledged after --resend-after seconds are sent "
        "again. Prints progress, then sent, acked, retransmitted, ack latency p50/p99/max "
        "and whether the target rate was reached. Exit status 0 when every frame was acked.",
    )
    _connection(load, timeout=10.0)
    load.add_argument("--devices", type=_int_in(1, 1_000_000), default=100)
    load.add_argument(
        "--first", type=_int_in(0, 1_000_000_000), default=0, help="fleet index of the first"
    )
    load.add_argument("--rate", type=_positive, default=100.0, help="frames per second")
    load.add_argument("--duration", type=_positive, default=10.0, help="seconds of sending")
    load.add_argument(
        "--resend-after",
        type=_positive,
        default=2.0,
        help="seconds without an ack before a frame is sent again",
    )
    load.add_argument(
        "--session", type=_int_in(0, 0xFFFFFFFE), help="boot session to use (default: unix time)"
    )
    load.add_argument(
        "--kind",
        choices=["water_meter", "call_box", "mixed"],
        default="water_meter",
        help="what the fleet ids are registered as: meters send readings, boxes heartbeats; "
        "mixed: the first half boxes, the rest meters",
    )
    load.add_argument(
        "--list-devices",
        action="store_true",
        help="print device_id,kind,key (CSV) of each device the run would use, and exit",
    )
    load.add_argument(
        "--json",
        action="store_true",
        help='JSON lines on stdout: {"event": "sending"} when the first frame goes, then '
        '{"event": "summary", ...}; the progress stays on stderr',
    )
    load.add_argument("--quiet", action="store_true", help="no progress line")
    load.set_defaults(func=_cmd_load)


def _add_scenario(sub: Any) -> None:
    from device_sim.scenario import SCENARIOS

    scenario = sub.add_parser(
        "scenario",
        help="play a named story against a gateway it starts, with a pass/fail report",
        description="Starts a gateway of its own (bidao run, accelerated clock), the fake "
        "phone network and a seeded village, plays the story and prints each step: expected, "
        "seen, pass or fail. Exit status 0 when every step passed, 1 otherwise.",
    )
    scenario.add_argument(
        "name", choices=sorted(SCENARIOS), metavar="NAME", help=", ".join(sorted(SCENARIOS))
    )
    scenario.add_argument(
        "--gateway-started-by-scenario",
        action="store_true",
        help="start a gateway of its own (the default and, for now, the only way)",
    )
    scenario.add_argument(
        "--against",
        type=Path,
        metavar="SETTINGS",
        help="play against a gateway already running with this settings file (imports the "
        "scenario's village into it; spoof-and-replay, box-reboot and key-rotation only)",
    )
    scenario.add_argument("--transport", choices=["mqtt", "serial"], default="mqtt")
    scenario.add_argument(
        "--speed",
        type=float,
        help="the gateway's and devices' clock runs this many times faster (default: the "
        "scenario's own)",
    )
    scenario.add_argument(
        "--step-timeout", type=float, default=30.0, help="real seconds to wait for each step"
    )
    scenario.add_argument("--data-dir", type=Path, help="keep the gateway's files here")
    scenario.add_argument(
        "--without-contacts",
        action="store_true",
        help="start the gateway with no responders imported (to see a report fail)",
    )
    scenario.add_argument(
        "--devices",
        type=_int_in(1, 100_000),
        default=40,
        help="storm: how many devices (three in four boxes, the rest meters)",
    )
    scenario.add_argument("--rate", type=float, default=200.0, help="storm: frames per second")
    scenario.add_argument("--duration", type=float, default=5.0, help="storm: seconds")
    scenario.add_argument("--json", action="store_true", help="the report as one JSON object")
    scenario.set_defaults(func=_cmd_scenario)


def add_subcommands(sub: Any) -> None:
    """Add `box`, `meter`, `fleet` and `phones` to the `bidao sim` sub-parser action."""
    box = sub.add_parser("box", help="press a key on a simulated call box")
    _connection(box, timeout=10.0)
    _identity(box)
    box_actions = box.add_subparsers(dest="action", required=True, metavar="ACTION")
    press = box_actions.add_parser("press", help="press a key")
    press.add_argument(
        "key_name", choices=sorted(KEYS), metavar="KEY", help="green | red | up | down"
    )
    press.add_argument("--count", type=_int_in(1, 255), default=1, help="presses in one frame")
    press.add_argument("--long", action="store_true", help="a long press")
    press.set_defaults(func=_cmd_box)

    meter = sub.add_parser("meter", help="send a reading from a simulated water meter")
    _connection(meter, timeout=10.0)
    _identity(meter)
    meter_actions = meter.add_subparsers(dest="action", required=True, metavar="ACTION")
    reading = meter_actions.add_parser("reading", help="send one reading")
    reading.add_argument(
        "--litres", type=_int_in(0, 0xFFFFFFFF), required=True, help="cumulative litres"
    )
    reading.add_argument(
        "--flow", type=_int_in(0, 0xFFFF), default=0, help="current flow, litres per hour"
    )
    reading.set_defaults(func=_cmd_meter)

    fleet = sub.add_parser("fleet", help="publish many frames from generated devices")
    _connection(fleet, timeout=120.0)
    fleet.add_argument("--devices", type=_int_in(1, 1_000_000), default=100)
    fleet.add_argument("--frames", type=_int_in(1, 100_000_000), default=10_000)
    fleet.add_argument(
        "--session", type=_int_in(0, 0xFFFFFFFE), help="boot session to use (default: unix time)"
    )
    fleet.set_defaults(func=_cmd_fleet)

    _add_phones(sub)
    add_aliyun(sub)
    _add_scenario(sub)
    _add_load(sub)


def build_parser() -> argparse.ArgumentParser:
    """The parser of `bidao sim` and its actions."""
    parser = argparse.ArgumentParser(
        prog="bidao sim", description="Simulated call boxes, water meters and phones."
    )
    add_subcommands(parser.add_subparsers(dest="sim_command", required=True, metavar="ACTION"))
    return parser


def main(argv: Sequence[str]) -> int:
    """Run one `bidao sim` command; its exit status (argparse exits 2 on bad arguments)."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))
