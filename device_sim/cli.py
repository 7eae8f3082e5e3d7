"""`bidao sim`: press keys on a simulated box, send meter readings, run a fleet."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from device_sim.device import DeviceKind, SimulatedDevice
from device_sim.mqtt import MqttFleet, fleet_identity
from firmware_protocol import Key, parse_device_id

KEYS = {
    "green": Key.GREEN_CALL,
    "red": Key.RED_HANGUP,
    "up": Key.THUMBS_UP,
    "down": Key.THUMBS_DOWN,
}


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="broker address (loopback)")
    parser.add_argument("--port", type=int, default=18830, help="broker port")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for acks")


def _identity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device-id", required=True, help="16 hex digits")
    parser.add_argument("--key", required=True, help="the device key, 32 hex digits")
    parser.add_argument("--seq", type=int, default=None, help="sequence number to use")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path("bidao-data/sim"),
        help="where each simulated device keeps its next sequence number, as firmware does",
    )


def _device(args: argparse.Namespace, kind: DeviceKind) -> SimulatedDevice:
    device_id = parse_device_id(args.device_id)
    state = args.state_dir / f"{device_id}.seq"
    seq = args.seq
    if seq is None:
        seq = int(state.read_text()) if state.exists() else 1
    return SimulatedDevice(device_id, kind, bytes.fromhex(args.key), first_seq=seq)


def _save_seq(args: argparse.Namespace, device: SimulatedDevice) -> None:
    args.state_dir.mkdir(parents=True, exist_ok=True)
    (args.state_dir / f"{device.device_id}.seq").write_text(str(device.next_seq))


async def _send_one(args: argparse.Namespace, device: SimulatedDevice, frame: bytes) -> int:
    _save_seq(args, device)
    async with MqttFleet(args.host, args.port, [device]) as fleet:
        await fleet.send(device.device_id, frame)
        try:
            await fleet.wait_all_acked(args.timeout)
        except TimeoutError:
            print(f"no ack within {args.timeout:.0f} s (is the device registered?)")
            return 1
    if device.nacked:
        print(f"refused: {', '.join(code.name for code in device.nacked.values())}")
        return 1
    print(f"acked: {device.device_id} seq {min(device.acked)}")
    for indication in device.indications:
        print(f"indication: {indication.kind.name} ticket {indication.ticket_ref}")
    return 0


def _cmd_box(args: argparse.Namespace) -> int:
    device = _device(args, "call_box")
    frame = device.press(KEYS[args.key_name], args.count, args.long)
    return asyncio.run(_send_one(args, device, frame))


def _cmd_meter(args: argparse.Namespace) -> int:
    device = _device(args, "water_meter")
    frame = device.water_reading(args.litres, args.flow, 0)
    return asyncio.run(_send_one(args, device, frame))


async def _fleet(args: argparse.Namespace) -> int:
    # Fleet devices start where the clock is, so that repeated runs never reuse a seq.
    first_seq = int(time.time())
    devices = []
    for i in range(args.devices):
        device_id, key = fleet_identity(i)
        devices.append(SimulatedDevice(device_id, "water_meter", key, first_seq=first_seq))
    async with MqttFleet(args.host, args.port, devices) as fleet:
        started = time.perf_counter()
        for r in range(args.frames // args.devices):
            for device in devices:
                await fleet.send(device.device_id, device.water_reading(r, 0, 0))
        try:
            await fleet.wait_all_acked(args.timeout)
        except TimeoutError as exc:
            print(f"incomplete: {exc}")
            return 1
        elapsed = time.perf_counter() - started
    sent = (args.frames // args.devices) * args.devices
    print(
        f"{sent} frames from {args.devices} devices acked in {elapsed:.2f} s "
        f"({sent / elapsed:.0f} frames/s)"
    )
    return 0


def _cmd_fleet(args: argparse.Namespace) -> int:
    return asyncio.run(_fleet(args))


def add_subcommands(sub: Any) -> None:
    """Add `box`, `meter` and `fleet` to the `bidao sim` sub-parser action."""
    box = sub.add_parser("box", help="press a key on a simulated call box")
    _connection(box)
    _identity(box)
    box_actions = box.add_subparsers(dest="action", required=True, metavar="ACTION")
    press = box_actions.add_parser("press", help="press a key")
    press.add_argument(
        "key_name", choices=sorted(KEYS), metavar="KEY", help="green | red | up | down"
    )
    press.add_argument("--count", type=int, default=1)
    press.add_argument("--long", action="store_true", help="a long press")
    press.set_defaults(func=_cmd_box)

    meter = sub.add_parser("meter", help="send a reading from a simulated water meter")
    _connection(meter)
    _identity(meter)
    meter_actions = meter.add_subparsers(dest="action", required=True, metavar="ACTION")
    reading = meter_actions.add_parser("reading", help="send one reading")
    reading.add_argument("--litres", type=int, required=True, help="cumulative litres")
    reading.add_argument("--flow", type=int, default=0, help="current flow, litres per hour")
    reading.set_defaults(func=_cmd_meter)

    fleet = sub.add_parser("fleet", help="publish many frames from generated devices")
    _connection(fleet)
    fleet.add_argument("--devices", type=int, default=100)
    fleet.add_argument("--frames", type=int, default=10_000)
    fleet.set_defaults(func=_cmd_fleet, timeout=120.0)
