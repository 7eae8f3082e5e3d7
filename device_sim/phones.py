"""A fake phone network speaking the subset of Twilio's REST API that Bidao uses.

It records every SMS and call, plays the phone's part (answers and presses a digit, rings
out, hits voicemail, is busy, fails, has an invalid number) and sends status callbacks
signed like Twilio's (X-Twilio-Signature: base64 HMAC-SHA1 of the URL and the sorted
parameters, keyed with the auth token), which can be delayed, duplicated or reordered.

    POST /2010-04-01/Accounts/{sid}/Messages.json        To, From, Body, StatusCallback
    POST /2010-04-01/Accounts/{sid}/Calls.json           To, From, Url, StatusCallback
    GET  /2010-04-01/Accounts/{sid}/Messages.json?To=    what was sent to a number, newest first
    GET  /2010-04-01/Accounts/{sid}/Calls.json?To=       the same for calls
    POST /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json Status=completed hangs up a call
    GET  /phones                                         what every phone received (JSON)
    PUT  /phones/{number}                                how that phone (and the API about it)
                                                         behaves (JSON body)
    PUT  /network                                        outages: failures_left, stall_*

A call's TwiML is fetched from its Url and followed: <Say> is recorded, <Gather> is
answered with the phone's digits, <Dial><Number> rings the number and connects the two
until the callee's talk time is over or the call is hung up through the API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, get_args

Behaviour = Literal["answer", "no_answer", "voicemail", "busy", "fail", "invalid"]
ApiReply = Literal["json", "html", "truncated", "empty"]
"""How the REST API answers requests about a number: as Twilio does, or broken with 200 OK
(an HTML page from a proxy or captive portal, JSON cut short, an empty body)."""
ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Service notice</title></head>"
    "<body><h1>We'll be right back</h1></body></html>"
)
_API = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/(?P<kind>Messages|Calls)"
    r"(?:/(?P<sid>CA\w+))?\.json$"
)


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
    sms_error_code: str = "30003"
    """Twilio's error code when an SMS fails (30003 unreachable; 30005 unknown number)."""
    callback_delay_s: float = 0.0
    duplicate_callbacks: bool = False
    reverse_callbacks: bool = False
    talk_s: float = 0.0
    """When this phone is dialled into a call (<Dial>), how long it talks before hanging up."""
    api_reply: ApiReply = "json"
    """How the REST API answers a creation or listing for this number; broken ones take nothing."""


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
    created_at: float = field(default_factory=time.time)
    connected_to: str = ""
    """For a call: the number it was put through to (<Dial>); for that leg: the caller."""
    ended_by: str = ""
    """How a call ended early or a connected call ended: "hangup" (through the API) or
    "callee" (talk over)."""
    parent_sid: str = ""
    """For the dialled side of a connected call (placed by <Dial>): the call it belongs to."""

    def resource(self, account_sid: str) -> dict[str, Any]:
        """The record as Twilio's REST API shows a message or call."""
        body: dict[str, Any] = {
            "sid": self.sid,
            "account_sid": account_sid,
            "to": self.to,
            "from": self.sender,
            "status": self.statuses[-1] if self.statuses else "queued",
            "date_created": format_datetime(datetime.fromtimestamp(self.created_at, UTC)),
        }
        if self.kind == "sms":
            body["body"] = self.body
        else:
            body["parent_call_sid"] = self.parent_sid or None
        return body


class FakePhoneNetwork:
    """An HTTP server on 127.0.0.1 in a thread; start() and stop(), or a context manager."""

    def __init__(self, account_sid: str, auth_token: str, port: int = 0) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.records: list[Record] = []
        self.scripts: dict[str, PhoneScript] = {}
        self.failures_left = 0
        """The next N API requests get a 503, as during a provider outage."""
        self.stall_creates = 0
        """The next N creations are taken, but answered only after `stall_s` (a timeout)."""
        self.stall_s = 0.0
        self.before_reply: Callable[[Record], None] | None = None
        """Called once a message or call is taken, before the API answers (crash tests)."""
        self.callback_errors = 0
        self.broken_replies = 0
        """Requests answered 200 OK with a broken body (see PhoneScript.api_reply)."""
        self._workers: list[threading.Thread] = []
        self._live: dict[str, threading.Event] = {}
        self._stopping = threading.Event()
        """Set by `stop`: a stalled answer is given at once, so no request thread outlives us."""

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
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-phone-network", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and wait for pending callbacks; safe to call twice."""
        self._stopping.set()
        for worker in self._started_workers():
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

    def hang_up(self, sid: str) -> bool:
        """End a call in progress, put through to another phone or not; False if none is."""
        with self._lock:
            ended = self._live.get(sid)
        if ended is None:
            return False
        ended.set()
        return True

    def listing(self, kind: str, to: str) -> list[dict[str, Any]]:
        """Messages or calls to `to` (all if empty), newest first, as the REST API lists them."""
        wanted = "sms" if kind == "Messages" else "call"
        with self._lock:
            records = [r for r in self.records if r.kind == wanted and (not to or r.to == to)]
        return [r.resource(self.account_sid) for r in reversed(records)]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every scheduled callback has been sent."""
        deadline = time.monotonic() + timeout
        for worker in self._started_workers():
            worker.join(max(0.0, deadline - time.monotonic()))

    def _started_workers(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._workers)

    def wait_answered(self, timeout: float = 10.0) -> None:
        """Wait until every request made to the network so far has been handled.

        Connections are taken in the order they were made: once one made now is answered,
        every earlier one has been taken, and is counted until it has been handled.
        """
        server = self._server
        assert server is not None
        with urllib.request.urlopen(f"{self.url}/phones", timeout=timeout):  # noqa: S310
            pass
        with server.idle:
            server.idle.wait_for(lambda: server.handling == 0, timeout)

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
            stall = self.stall_s if self.stall_creates > 0 else 0.0
            self.stall_creates = max(0, self.stall_creates - 1)
        worker = threading.Thread(
            target=self._play,
            args=(record, script, form.get("StatusCallback", "")),
            name=f"phone-{sid}",
            daemon=True,
        )
        with self._lock:  # listed once started: a thread cannot be joined before
            worker.start()
            self._workers.append(worker)
        if self.before_reply is not None:
            self.before_reply(record)
        self._stopping.wait(stall)
        # As Twilio does: the answer to a creation says "queued", whatever happened since.
        return 201, {**record.resource(self.account_sid), "status": "queued"}

    def _play(self, record: Record, script: PhoneScript, callback: str) -> None:
        if record.kind == "sms":
            final = "undelivered" if script.sms_fails else "delivered"
            events = [{"MessageStatus": s} for s in ("sent", final)]
            if script.sms_fails:
                events[-1]["ErrorCode"] = script.sms_error_code
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
        url = record.url
        pressed = script.digits if script.behaviour == "answer" else ""
        # As Twilio does: a call in progress hung up through the API ends wherever it is,
        # before it was put through to another phone as well as after.
        ended = threading.Event()
        with self._lock:
            self._live[record.sid] = ended
        try:
            while url and not ended.is_set():
                twiml = self._post(url, params)
                record.spoken.append(twiml)
                url = self._follow(record, url, twiml, params, pressed)
                pressed = ""  # one key per call: a menu heard again is not answered again
        finally:
            with self._lock:
                self._live.pop(record.sid, None)
        if ended.is_set() and not record.ended_by:
            record.ended_by = "hangup"
        return [*events, {"CallStatus": "completed", "CallDuration": "20"}]

    def _follow(
        self, record: Record, url: str, twiml: str, params: dict[str, str], digits: str
    ) -> str:
        """Act out one TwiML document; the next URL to fetch, or "" when the call is over."""
        try:
            root = ET.fromstring(twiml)  # noqa: S314 - TwiML from Bidao on loopback
        except ET.ParseError:
            return ""
        for verb in root:
            if verb.tag == "Gather" and digits:
                record.pressed = digits
                action = urllib.parse.urljoin(url, verb.get("action", url))
                params["Digits"] = digits
                return action
            if verb.tag == "Dial":
                self._connect(record, url, verb, params)
                return ""
            if verb.tag == "Redirect" and verb.text:
                return urllib.parse.urljoin(url, verb.text.strip())
            if verb.tag == "Hangup":
                return ""
        return ""

    def _connect(self, record: Record, url: str, dial: ET.Element, params: dict[str, str]) -> None:
        """Ring the dialled number and keep both on the line until one side ends it."""
        number = next((n.text.strip() for n in dial.iter("Number") if n.text), "")
        with self._lock:
            ended = self._live.get(record.sid)
        if not number or ended is None or ended.is_set():
            return
        leg = Record(f"CA{next(self._ids):032x}", "call", number, record.to, parent_sid=record.sid)
        leg.connected_to, record.connected_to = record.to, number
        leg.statuses.extend(["ringing", "in-progress"])
        with self._lock:
            self.records.append(leg)
        hung_up = ended.wait(self.script(number).talk_s)
        record.ended_by = leg.ended_by = "hangup" if hung_up else "callee"
        leg.statuses.append("completed")
        action = dial.get("action")
        if action and not hung_up:
            # Twilio asks the Dial's action what next once the callee hangs up; a call ended
            # through the API is simply over.
            done = {**params, "DialCallStatus": "completed", "DialCallSid": leg.sid}
            self._post(urllib.parse.urljoin(url, action), done)

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


class _Server(ThreadingHTTPServer):
    """The network's HTTP server; it counts the connections it has taken and not yet handled."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.handling = 0
        self.idle = threading.Condition()

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Count the connection, then handle it in a thread of its own."""
        with self.idle:
            self.handling += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._handled()
            raise

    def process_request_thread(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Handle one connection; it is no longer counted once done with, answered or not."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._handled()

    def _handled(self) -> None:
        with self.idle:
            self.handling -= 1
            self.idle.notify_all()


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

    def _broken_reply(self, number: str) -> bool:
        """Answer 200 OK with a broken body if `number`'s script says so; True if it did."""
        mode = self.network.script(number).api_reply
        if mode == "json":
            return False
        body, kind = {
            "html": (ERROR_PAGE, "text/html; charset=utf-8"),
            "truncated": ('{"sid": "SM', "application/json"),
            "empty": ("", "application/json"),
        }[mode]
        data = body.encode()
        with self.network._lock:
            self.network.broken_replies += 1
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return True

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _api(self) -> re.Match[str] | None:
        """The matched REST path if the request is authorised; otherwise replies and None."""
        match = _API.match(urllib.parse.urlsplit(self.path).path)
        if match is None:
            self._reply(HTTPStatus.NOT_FOUND, {"code": 20404, "message": "Not Found"})
            return None
        if not self._authorised() or match.group("account") != self.network.account_sid:
            self._reply(HTTPStatus.UNAUTHORIZED, {"code": 20003, "message": "Authenticate"})
            return None
        return match

    def do_POST(self) -> None:
        """Create a message or a call, or hang a call up."""
        match = self._api()
        if match is None:
            return
        form = dict(urllib.parse.parse_qsl(self._body().decode()))
        sid = match.group("sid")
        if sid is None:
            if self._broken_reply(form.get("To", "")):
                return
            status, body = self.network._create(match.group("kind"), form)
            self._reply(status, body)
            return
        record = next((r for r in self.network.records if r.sid == sid), None)
        if record is None or match.group("kind") != "Calls":
            self._reply(HTTPStatus.NOT_FOUND, {"code": 20404, "message": "Not Found"})
            return
        if form.get("Status") == "completed":
            self.network.hang_up(sid)
        self._reply(HTTPStatus.OK, record.resource(self.network.account_sid))

    def do_GET(self) -> None:
        """What each phone received, or the REST API's list of messages or calls."""
        path = urllib.parse.urlsplit(self.path)
        if path.path.rstrip("/") == "/phones":
            with self.network._lock:
                records = [asdict(r) for r in self.network.records]
            self._reply(HTTPStatus.OK, records)
            return
        match = self._api()
        if match is None:
            return
        kind = match.group("kind")
        to = dict(urllib.parse.parse_qsl(path.query)).get("To", "")
        if to and self._broken_reply(to):
            return
        items = self.network.listing(kind, to)
        key = "messages" if kind == "Messages" else "calls"
        self._reply(
            HTTPStatus.OK,
            {
                key: items,
                "page": 0,
                "page_size": len(items),
                "next_page_uri": None,
                "uri": path.path,
            },
        )

    def do_PUT(self) -> None:
        """Set how a phone, or the network as a whole, behaves."""
        try:
            changes = json.loads(self._body() or b"{}")
        except ValueError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"message": str(exc)})
            return
        if not isinstance(changes, dict):
            self._reply(HTTPStatus.BAD_REQUEST, {"message": "expected a JSON object"})
            return
        if self.path.rstrip("/") == "/network":
            target: object = self.network
            allowed = {"failures_left", "stall_creates", "stall_s"}
        elif self.path.startswith("/phones/"):
            target = self.network.script(urllib.parse.unquote(self.path.removeprefix("/phones/")))
            allowed = {f.name for f in fields(PhoneScript)}
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"message": "Not Found"})
            return
        unknown = sorted(set(changes) - allowed)
        if unknown:
            self._reply(HTTPStatus.BAD_REQUEST, {"message": f"unknown settings {unknown}"})
            return
        if changes.get("api_reply", "json") not in get_args(ApiReply):
            self._reply(
                HTTPStatus.BAD_REQUEST, {"message": f"api_reply is one of {get_args(ApiReply)}"}
            )
            return
        for key, value in changes.items():
            setattr(target, key, value)
        self._reply(HTTPStatus.OK, {key: getattr(target, key) for key in allowed})
