"""`bidao sim aliyun`: the fake Alibaba Cloud endpoint run and driven from the command line.

    bidao sim aliyun serve --templates templates.json [--port N] [--sms-report-url URL]
                           [--voice-report-url URL] [--key-id ID] [--secret S]
    bidao sim aliyun set NUMBER [--behaviour B] [--digits K] [--sms-fails] [--duplicate]
    bidao sim aliyun received [NUMBER]

The templates file is what `bidao templates export --json` prints: each template approved
under its code (the export uses the template's name as a demo code).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, get_args

from device_sim.aliyun import ApprovedTemplate, Behaviour, FakeAliyun

DEFAULT_PORT = 18850
DEFAULT_KEY_ID = "LTAI5tBidaoFakeKey"
DEFAULT_SECRET = "bidao-fake-aliyun-secret"  # noqa: S105 - the fake endpoint's own, loopback only
EXIT_OK, EXIT_USAGE, EXIT_UNREACHABLE = 0, 2, 3


def load_templates(path: Path) -> list[ApprovedTemplate]:
    """The approved templates in a `bidao templates export --json` file; ValueError if bad."""
    items = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of templates")  # noqa: TRY004 - a file's content
    try:
        return [
            ApprovedTemplate(str(i["code"]), i["kind"], str(i["text"]), dict(i["rule"]))
            for i in items
        ]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"a template lacks {exc}") from None


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        templates = load_templates(Path(args.templates))
    except (OSError, ValueError) as exc:
        print(f"bidao sim aliyun serve: cannot read {args.templates}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    fake = FakeAliyun(
        args.key_id,
        args.secret,
        templates,
        sign_name=args.sign_name,
        sms_report_url=args.sms_report_url,
        voice_report_url=args.voice_report_url,
        port=args.port,
    )
    try:
        fake.start()
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(f"fake Alibaba Cloud on {fake.url} ({len(templates)} templates)", flush=True)
    print(
        "point Bidao at it: notify.provider = aliyun, notify.aliyun_protocol = http, "
        f"notify.aliyun_sms_endpoint = notify.aliyun_voice_endpoint = {fake.endpoint}",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return EXIT_OK


def _request(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def _cmd_set(args: argparse.Namespace) -> int:
    changes = {
        key: value
        for key, value in (
            ("behaviour", args.behaviour),
            ("digits", args.digits),
            ("sms_fails", args.sms_fails),
            ("duplicate_receipts", args.duplicate),
        )
        if value is not None
    }
    try:
        phone = _request("PUT", f"{args.url.rstrip('/')}/phones/{args.number}", changes)
    except urllib.error.HTTPError as exc:
        exc.close()
        print(f"refused: {exc.reason}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"cannot reach the fake endpoint at {args.url}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(f"{args.number}: " + ", ".join(f"{k}={v}" for k, v in sorted(phone.items())))
    return EXIT_OK


def _cmd_received(args: argparse.Namespace) -> int:
    try:
        records = _request("GET", f"{args.url.rstrip('/')}/phones")
    except OSError as exc:
        print(f"cannot reach the fake endpoint at {args.url}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    shown = [r for r in records if not args.number or r["to"] == args.number]
    if not shown:
        print("nothing received yet")
    for r in shown:
        key = f" key {r['pressed']}" if r["pressed"] else ""
        print(f"{r['to']}  {r['kind']:<4} {r['template_code']:<12} {r['status']}{key}  {r['text']}")
    return EXIT_OK


def add_aliyun(sub: Any) -> None:
    """Add `aliyun` to the `bidao sim` sub-parser action."""
    aliyun = sub.add_parser("aliyun", help="the fake Alibaba Cloud SMS and voice endpoint")
    actions = aliyun.add_subparsers(dest="action", required=True, metavar="ACTION")
    url = f"http://127.0.0.1:{DEFAULT_PORT}"

    serve = actions.add_parser("serve", help="run the fake endpoint until Ctrl-C")
    serve.add_argument("--templates", required=True, help="`bidao templates export --json` file")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--key-id", default=DEFAULT_KEY_ID)
    serve.add_argument("--secret", default=DEFAULT_SECRET)
    serve.add_argument("--sign-name", default="必到")
    serve.add_argument("--sms-report-url", default="", help="where SMS receipts are pushed")
    serve.add_argument("--voice-report-url", default="", help="where call receipts are pushed")
    serve.set_defaults(func=_cmd_serve)

    phone = actions.add_parser("set", help="how a phone behaves")
    phone.add_argument("number")
    phone.add_argument("--url", default=url)
    phone.add_argument("--behaviour", choices=get_args(Behaviour))
    phone.add_argument("--digits", help="the key pressed at a call's menu (empty: none)")
    phone.add_argument("--sms-fails", action=argparse.BooleanOptionalAction, default=None)
    phone.add_argument("--duplicate", action=argparse.BooleanOptionalAction, default=None)
    phone.set_defaults(func=_cmd_set)

    received = actions.add_parser("received", help="what the phones received")
    received.add_argument("number", nargs="?", default="")
    received.add_argument("--url", default=url)
    received.set_defaults(func=_cmd_received)
