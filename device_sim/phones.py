"""A fake phone network speaking the subset of Twilio's REST API that Bidao uses.

It records every SMS and call, plays the phone's part (answers and presses a digit, rings
out, hits voicemail, is busy, fails, has an invalid number) and sends status callbacks
signed like Twilio's (X-Twilio-Signature: base64 HMAC-SHA1 of the URL and the sorted
parameters, keyed with the auth token), which can be delayed, duplicated or reordered.

    POST /2010-04-01/Accounts/{sid}/Messages.json   To, From, Body, StatusCallback
    POST /2010-04-01/Accounts/{sid}/Calls.json      To, From, Url, StatusCallback
    GET  /phones                                    what every phone received (JSON)
    PUT  /phones/{number}                           how that phone behaves (JSON body)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Behaviour = Literal["answer", "no_answer", "voicemail", "busy", "fail", "invalid"]
_API = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/(?P<kind>Messages|Calls)\.json$")
_GATHER = re.compile(r"<Gather[^>]*\saction=\"(?P<action>[^\"]+)\"")


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass
class PhoneScript:
    """How one phone behaves."""

    behaviour: Behaviour = "answer"
    digits: str = "1"
    """Pressed when the call asks for a digit (empty: say nothing)."""
    sms_fails: bool = False
    callback_delay_s: float = 0.0
    duplicate_callbacks: bool = False
    reverse_callbacks: bool = False


@dataclass
class Record:
    """One SMS or call as the network saw it."""

    sid: str
    kind: Literal["sms", "call"]
    to: str
    sender: str
    body: str = ""
    url: str = ""
    statuses: list[str] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)
    pressed: str = ""


class FakePhoneNetwork:
    """An HTTP server on 127.0.0.1 in a thread; start() and stop(), or a context manager."""

    def __init__(self, account_sid: str, auth_token: str, port: int = 0) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.records: list[Record] = []
        self.scripts: dict[str, PhoneScript] = {}
        self.failures_left = 0
        """The next N API requests get a 503, as during a provider outage."""
        self.callback_errors = 0
        self._workers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """Base URL of the fake API."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakePhoneNetwork:
        """Start serving."""
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop serving."""
        self.stop()

    def start(self) -> None:
        """Serve in a background thread."""
        network = self

        class Handler(_Handler):
            pass

        Handler.network = network
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-phone-network", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and wait for pending callbacks; safe to call twice."""
        for worker in list(self._workers):
            worker.join(10)
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def script(self, number: str) -> PhoneScript:
        """The script of a phone (created with the defaults on first use)."""
        with self._lock:
            return self.scripts.setdefault(number, PhoneScript())

    def received(self, number: str) -> list[Record]:
        """What one phone got, oldest first."""
        with self._lock:
            return [r for r in self.records if r.to == number]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every scheduled callback has been sent."""
        deadline = time.monotonic() + timeout
        for worker in list(self._workers):
            worker.join(max(0.0, deadline - time.monotonic()))

    # -- the phone's part ---------------------------------------------------------------

    def _create(self, kind: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                return 503, {"code": 20500, "message": "Service Unavailable", "status": 503}
        to = form.get("To", "")
        script = self.script(to)
        if script.behaviour == "invalid":
            return 400, {
                "code": 21211,
                "message": f"The 'To' number {to} is not a valid phone number.",
                "status": 400,
            }
        prefix = "SM" if kind == "Messages" else "CA"
        sid = f"{prefix}{next(self._ids):032x}"
        record = Record(
            sid,
            "sms" if kind == "Messages" else "call",
            to,
            form.get("From", ""),
            body=form.get("Body", ""),
            url=form.get("Url", ""),
        )
        with self._lock:
            self.records.append(record)
        worker = threading.Thread(
            target=self._play,
            args=(record, script, form.get("StatusCallback", "")),
            name=f"phone-{sid}",
            daemon=True,
        )
        self._workers.append(worker)
        worker.start()
        body = {
            "sid": sid,
            "status": "queued",
            "to": to,
            "from": record.sender,
            "account_sid": self.account_sid,
        }
        return 201, body

    def _play(self, record: Record, script: PhoneScript, callback: str) -> None:
        if record.kind == "sms":
            final = "undelivered" if script.sms_fails else "delivered"
            events = [{"MessageStatus": s} for s in ("sent", final)]
            if script.sms_fails:
                events[-1]["ErrorCode"] = "30003"
        else:
            events = self._call(record, script)
        for event in events:
            record.statuses.append(event.get("MessageStatus") or event.get("CallStatus", ""))
        if script.reverse_callbacks:
            events.reverse()
        if script.duplicate_callbacks:
            events = [e for event in events for e in (event, event)]
        time.sleep(script.callback_delay_s)
        sid_key = "MessageSid" if record.kind == "sms" else "CallSid"
        for event in events:
            if callback:
                self._post(
                    callback,
                    {sid_key: record.sid, "AccountSid": self.account_sid, "To": record.to, **event},
                )

    def _call(self, record: Record, script: PhoneScript) -> list[dict[str, str]]:
        events = [{"CallStatus": "initiated"}, {"CallStatus": "ringing"}]
        if script.behaviour in ("no_answer", "busy", "fail"):
            final = {"no_answer": "no-answer", "busy": "busy", "fail": "failed"}[script.behaviour]
            return [*events, {"CallStatus": final}]
        answered_by = "machine_start" if script.behaviour == "voicemail" else "human"
        events.append({"CallStatus": "in-progress", "AnsweredBy": answered_by})
        params = {
            "CallSid": record.sid,
            "AccountSid": self.account_sid,
            "To": record.to,
            "CallStatus": "in-progress",
            "AnsweredBy": answered_by,
        }
        twiml = self._post(record.url, params) if record.url else ""
        record.spoken.append(twiml)
        gather = _GATHER.search(twiml)
        if gather and script.behaviour == "answer" and script.digits:
            record.pressed = script.digits
            action = urllib.parse.urljoin(record.url, gather.group("action").replace("&amp;", "&"))
            record.spoken.append(self._post(action, {**params, "Digits": script.digits}))
        return [*events, {"CallStatus": "completed", "CallDuration": "20"}]

    def _post(self, url: str, params: dict[str, str]) -> str:
        data = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 - loopback
        request.add_header("X-Twilio-Signature", twilio_signature(self.auth_token, url, params))
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return str(response.read().decode())
        except OSError:
            with self._lock:
                self.callback_errors += 1
            return ""


class _Handler(BaseHTTPRequestHandler):
    network: FakePhoneNetwork

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the records are the log."""

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        expected = base64.b64encode(
            f"{self.network.account_sid}:{self.network.auth_token}".encode()
        ).decode()
        return hmac.compare_digest(self.headers.get("Authorization", ""), f"Basic {expected}")

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_POST(self) -> None:
        """Create a message or a call."""
        match = _API.match(urllib.parse.urlsplit(self.path).path)
        if match is None:
            self._reply(HTTPStatus.NOT_FOUND, {"code": 20404, "message": "Not Found"})
            return
        if not self._authorised() or match.group("account") != self.network.account_sid:
            self._reply(HTTPStatus.UNAUTHORIZED, {"code": 20003, "message": "Authenticate"})
            return
        form = dict(urllib.parse.parse_qsl(self._body().decode()))
        status, body = self.network._create(match.group("kind"), form)
        self._reply(status, body)

    def do_GET(self) -> None:
        """What each phone received."""
        if self.path.rstrip("/") != "/phones":
            self._reply(HTTPStatus.NOT_FOUND, {"message": "Not Found"})
            return
        with self.network._lock:
            records = [asdict(r) for r in self.network.records]
        self._reply(HTTPStatus.OK, records)

    def do_PUT(self) -> None:
        """Set how a phone behaves."""
        number = urllib.parse.unquote(self.path.removeprefix("/phones/"))
        try:
            changes = json.loads(self._body() or b"{}")
        except ValueError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"message": str(exc)})
            return
        script = self.network.script(number)
        unknown = [key for key in changes if not hasattr(script, key)]
        if unknown or not isinstance(changes, dict):
            self._reply(HTTPStatus.BAD_REQUEST, {"message": f"unknown settings {unknown}"})
            return
        for key, value in changes.items():
            setattr(script, key, value)
        self._reply(HTTPStatus.OK, asdict(script))
