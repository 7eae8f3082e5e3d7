"""`bidao sim`: press keys on a simulated box, send meter readings, run a fleet."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from device_sim.device import DeviceKind, SimulatedDevice, fleet_identity
from device_sim.mqtt import BurstError, MqttFleet, publish_burst
from firmware_protocol import KEY_LEN, Key, ProtocolError, parse_device_id

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
    parser.add_argument("--seq", type=_int_in(0, 0xFFFFFFFF), help="sequence number to use")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where each simulated device keeps its next sequence number, as firmware does",
    )


def _device(args: argparse.Namespace, kind: DeviceKind) -> SimulatedDevice:
    state = args.state_dir / f"{args.device_id}.seq"
    seq = args.seq
    if seq is None:
        seq = int(state.read_text()) if state.exists() else 1
    return SimulatedDevice(args.device_id, kind, args.key, first_seq=seq)


def _save_seq(args: argparse.Namespace, device: SimulatedDevice) -> None:
    args.state_dir.mkdir(parents=True, exist_ok=True)
    (args.state_dir / f"{device.device_id}.seq").write_text(str(device.next_seq))


async def _send_one(args: argparse.Namespace, device: SimulatedDevice, frame: bytes) -> int:
    # Like firmware: the sequence number is stored before the frame leaves.
    _save_seq(args, device)
    try:
        async with MqttFleet(args.host, args.port, [device]) as fleet:
            await fleet.send(device.device_id, frame)
            try:
                await fleet.wait_all_acked(args.timeout)
            except TimeoutError:
                print(f"no ack within {args.timeout:g} s (is the device registered?)")
                return EXIT_NOT_ACKED
    except (OSError, TimeoutError) as exc:
        print(f"cannot reach the broker at {args.host}:{args.port}: {exc}")
        return EXIT_NO_BROKER
    if device.nacked:
        print(f"refused: {', '.join(code.name for code in device.nacked.values())}")
        return EXIT_NOT_ACKED
    duplicate = " (duplicate)" if device.duplicate_acks else ""
    print(f"acked: {device.device_id} seq {min(device.acked)}{duplicate}")
    for indication in device.indications:
        print(f"indication: {indication.kind.name} ticket {indication.ticket_ref}")
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
    # Fleet devices start where the clock is, so that later runs do not reuse a seq.
    first_seq = args.seq if args.seq is not None else int(time.time())
    devices = []
    for i in range(args.devices):
        device_id, key = fleet_identity(i)
        devices.append(SimulatedDevice(device_id, "water_meter", key, first_seq=first_seq))
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
        # bench/ingest.py parses this line.
        print(
            f"{args.frames} frames from {args.devices} devices acked in {elapsed:.2f} s "
            f"({args.frames / elapsed:.0f} frames/s)"
        )
    print(
        f"acked {acked} ({duplicates} duplicate), refused {nacked}, unanswered {pending}; "
        f"published in {sent_s:.2f} s"
    )
    return EXIT_OK if pending == 0 and nacked == 0 else EXIT_NOT_ACKED


def _lean_fleet(args: argparse.Namespace) -> int:
    first_seq = args.seq if args.seq is not None else int(time.time())
    devices = []
    for i in range(args.devices):
        device_id, key = fleet_identity(i)
        devices.append(SimulatedDevice(device_id, "water_meter", key, first_seq=first_seq))
    # Every frame is built (and MACed) before the first is sent, so only sending is timed.
    frames = [
        (devices[n % len(devices)].device_id, devices[n % len(devices)].water_reading(n, 0, 0))
        for n in range(args.frames)
    ]
    try:
        elapsed = publish_burst(args.host, args.port, frames, timeout_s=args.timeout)
    except (OSError, BurstError) as exc:
        print(f"cannot publish to the broker at {args.host}:{args.port}: {exc}")
        return EXIT_NO_BROKER
    # bench/ingest.py parses this line.
    print(
        f"{args.frames} frames from {args.devices} devices published in {elapsed:.3f} s "
        f"({args.frames / elapsed:.0f} frames/s, QoS 1, protocol acks not awaited)"
    )
    return EXIT_OK


def _cmd_fleet(args: argparse.Namespace) -> int:
    if args.lean:
        return _lean_fleet(args)
    return asyncio.run(_fleet(args))


def add_subcommands(sub: Any) -> None:
    """Add `box`, `meter` and `fleet` to the `bidao sim` sub-parser action."""
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
        "--seq", type=_int_in(0, 0xFFFFFFFF), help="first sequence number (default: unix time)"
    )
    fleet.add_argument(
        "--lean",
        action="store_true",
        help="load generator: build every frame first, publish as fast as the broker takes"
        " them (QoS 1), do not listen for protocol acks",
    )
    fleet.set_defaults(func=_cmd_fleet)
