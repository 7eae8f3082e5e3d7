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

A call's TwiML is fetched from its Url and acted out verb by verb as Twilio does, and what
the phone heard goes to the call's transcript in order:

- <Say> and <Play> are heard (`loop` times; loop="0" plays until the phone hangs up),
  <Pause> is silence;
- <Gather>: what is nested is heard, then the phone answers with its next key and Twilio
  requests the action (default: the document's own URL) with Digits; the rest of the
  document is NOT played. With no key the timeout passes and the call goes on with the
  verb after the <Gather> (or requests the action if actionOnEmptyResult="true");
- <Dial> rings the number (<Number> or text) as that phone's script says; answered, the
  two talk until the callee's talk time is over or the call is hung up through the API.
  With an action, Twilio requests it (DialCallStatus, DialCallSid, DialCallDuration) and
  follows its TwiML; without, the call goes on with the next verb;
- <Redirect> fetches another document; <Hangup> and <Reject> end the call; so does the
  end of the document, and anything Twilio could not play (an application error).

Status callbacks are sent as the call moves (initiated, ringing, in-progress, then
completed, busy, no-answer or failed), numbered by SequenceNumber, only for the events
named in StatusCallbackEvent (default: the end only), with AnsweredBy only when
MachineDetection was asked for: see `_Callbacks`.
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
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any, Literal, get_args

from device_sim.fake_http import FakeHandler, FakeService, call_back

API_VERSION = "2010-04-01"
AUDIO = ("Say", "Play", "Pause")
"""The verbs a phone just hears."""
MAX_DOCUMENTS = 50
"""TwiML documents one call may fetch before the fake network calls it a loop and ends it."""
SPEECH_CHARS_PER_S = 4.0
"""How fast <Say> speaks, for a call's modelled duration (Chinese: about 4 characters a second)."""
Behaviour = Literal["answer", "no_answer", "voicemail", "busy", "fail", "invalid"]
ApiReply = Literal["json", "html", "truncated", "empty"]
"""How the REST API answers requests about a number: as Twilio does, or broken with 200 OK
(an HTML page from a proxy or captive portal, JSON cut short, an empty body)."""
ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Service notice</title></head>"
    "<body><h1>We'll be right back</h1></body></html>"
)
_KEYS = re.compile(r"[0-9*#,]*")
_API = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/(?P<kind>Messages|Calls)"
    r"(?:/(?P<sid>CA\w+))?\.json$"
)


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AnswerLost(Exception):  # noqa: N818 - what happened, not an error of ours
    """Raised by a fake's `before_reply`: the message or call is taken, the answer is not.

    The connection closes with no answer (a network cut), so the gateway cannot know it went.
    """


@dataclass
class PhoneScript:
    """How one phone behaves."""

    behaviour: Behaviour = "answer"
    digits: str = "1"
    """The keys pressed at the call's successive <Gather>s, separated by commas: "1" answers
    the first menu with 1 and lets any later one time out; "9,1" asks to hear it again, then
    presses 1; empty presses nothing. A "#" ends the keys of one answer."""
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


HeardKind = Literal["say", "play", "pause", "keypress", "no_key", "dial", "bridged", "end"]
"""One line of a call's transcript: text spoken (`text`, in `detail`'s language), a sound
played (its URL), a pause (seconds), the keys pressed, a menu left without a key (its
timeout in seconds), a number dialled (with DialCallStatus in `detail`), a call put through
to this phone (from whom), and how the call ended: "hangup" (<Hangup>), "done" (the TwiML
ran out), "api" (hung up through the API), "callee" (the other side hung up), "self" (this
phone, put through, hung up when its talk time was over), "error"
(TwiML Twilio could not play; `detail` says what)."""


@dataclass
class Heard:
    """One thing that happened on a call, as the phone lived it."""

    kind: HeardKind
    text: str
    detail: str = ""
    repeat: int = 1
    """For <Say> and <Play>: how many times it was played (0: until the phone hung up)."""
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class _Step:
    """The next TwiML document to fetch, and what Twilio sends with the request."""

    url: str
    method: str
    params: dict[str, str]


@dataclass
class Record:
    """One SMS or call as the network saw it."""

    sid: str
    kind: Literal["sms", "call"]
    to: str
    sender: str
    body: str = ""
    url: str = ""
    status_callback: str = ""
    statuses: list[str] = field(default_factory=list)
    updated_at: float = 0.0
    """When the last status was reached."""
    spoken: list[str] = field(default_factory=list)
    """For a call: every TwiML document fetched, in order, as it was served."""
    transcript: list[Heard] = field(default_factory=list)
    """For a call: what the phone heard and did, in order (only what Twilio would play)."""
    pressed: str = ""
    """The keys pressed, one answer per <Gather>, separated by commas."""
    answered_by: str = ""
    """"human" or "machine_start" (voicemail) once answered."""
    error_code: str = ""
    """Twilio's error code when a message was not delivered."""
    duration_s: float = 0.0
    """How long the call took, modelled from what was played and how long it talked."""
    created_at: float = field(default_factory=time.time)
    connected_to: str = ""
    """For a call: the number it was put through to (<Dial>); for that leg: the caller."""
    ended_by: str = ""
    """How a call ended early or a connected call ended: "hangup" (through the API) or
    "callee" (talk over)."""
    parent_sid: str = ""
    """For the dialled side of a connected call (placed by <Dial>): the call it belongs to."""

    def hear(self, kind: HeardKind, text: str, detail: str = "", repeat: int = 1) -> None:
        """Add a line to the transcript."""
        self.transcript.append(Heard(kind, text, detail, repeat))

    def listen(self, verb: ET.Element) -> bool:
        """Hear a <Say>, <Play> or <Pause>; True if it would play for ever (loop="0")."""
        if verb.tag == "Pause":
            length = verb.get("length", "1")
            seconds = int(length) if length.isdigit() else 1
            self.hear("pause", str(seconds))
            self.duration_s += seconds
            return False
        loop = verb.get("loop", "1")
        times = int(loop) if loop.isdigit() else 1
        text = "".join(verb.itertext()).strip()
        if verb.tag == "Say":
            self.hear("say", text, verb.get("language", ""), times)
            self.duration_s += max(1, times) * len(text) / SPEECH_CHARS_PER_S
        else:
            self.hear("play", text, "", times)
        return times == 0

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


class FakePhoneNetwork(FakeService):
    """An HTTP server on 127.0.0.1 in a thread; start() and stop(), or a context manager."""

    _thread_name = "fake-phone-network"

    def __init__(self, account_sid: str, auth_token: str, port: int = 0) -> None:
        super().__init__(port)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._ids = itertools.count(1)
        self.records: list[Record] = []
        self.scripts: dict[str, PhoneScript] = {}
        self.failures_left = 0
        """The next N API requests get a 503, as during a provider outage."""
        self.stall_creates = 0
        """The next N creations are taken, but answered only after `stall_s` (a timeout)."""
        self.stall_s = 0.0
        self.before_reply: Callable[[Record], None] | None = None
        """Called once a message or call is taken, before the API answers (crash tests); it
        may raise `AnswerLost` to drop the answer."""
        self.callback_errors = 0
        self.broken_replies = 0
        """Requests answered 200 OK with a broken body (see PhoneScript.api_reply)."""
        self._live: dict[str, threading.Event] = {}

    def _handler(self) -> type[FakeHandler]:
        return _Handler

    @property
    def url(self) -> str:
        """Base URL of the fake API."""
        return self.base_url

    def script(self, number: str) -> PhoneScript:
        """The script of a phone (created with the defaults on first use)."""
        with self._lock:
            return self.scripts.setdefault(number, PhoneScript())

    def received(self, number: str) -> list[Record]:
        """What one phone got, oldest first."""
        with self._lock:
            return [r for r in self.records if r.to == number]

    def snapshot(self) -> list[dict[str, Any]]:
        """Every message and call so far as plain data (what GET /phones answers), oldest first."""
        with self._lock:
            return [asdict(r) for r in self.records]

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

    def _create(
        self, kind: str, form: dict[str, str], events: frozenset[str] = frozenset()
    ) -> tuple[int, dict[str, Any]]:
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
            status_callback=form.get("StatusCallback", ""),
        )
        with self._lock:
            self.records.append(record)
            stall = self.stall_s if self.stall_creates > 0 else 0.0
            self.stall_creates = max(0, self.stall_creates - 1)
        self._start_worker(lambda: self._play(record, script, form, events), f"phone-{sid}")
        if self.before_reply is not None:
            self.before_reply(record)
        self._stopping.wait(stall)
        # As Twilio does: the answer to a creation says "queued", whatever happened since.
        return 201, {**record.resource(self.account_sid), "status": "queued"}

    def _play(
        self, record: Record, script: PhoneScript, form: dict[str, str], events: frozenset[str]
    ) -> None:
        callbacks = _Callbacks(self, record, script, form.get("StatusCallback", ""), events)
        if record.kind == "sms":
            callbacks.status("sent")
            if script.sms_fails:
                record.error_code = script.sms_error_code
                callbacks.status("undelivered", ErrorCode=script.sms_error_code)
            else:
                callbacks.status("delivered")
        else:
            self._call(record, script, callbacks, form)
        callbacks.flush()

    def _call(
        self, record: Record, script: PhoneScript, callbacks: _Callbacks, form: dict[str, str]
    ) -> None:
        """Ring the phone and, once it answers, act out the call's TwiML as Twilio does."""
        callbacks.status("initiated")
        if script.behaviour in ("busy", "fail"):
            callbacks.status("busy" if script.behaviour == "busy" else "failed", CallDuration="0")
            return
        callbacks.status("ringing")
        if script.behaviour == "no_answer":
            callbacks.status("no-answer", CallDuration="0")
            return
        record.answered_by = "machine_start" if script.behaviour == "voicemail" else "human"
        # Twilio says who answered only when asked to detect machines.
        detected = {"AnsweredBy": record.answered_by} if form.get("MachineDetection") else {}
        params = {
            "CallSid": record.sid,
            "AccountSid": self.account_sid,
            "From": record.sender,
            "To": record.to,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
            **detected,
        }
        # As Twilio does: a call in progress hung up through the API ends wherever it is,
        # before it was put through to another phone as well as after.
        ended = threading.Event()
        with self._lock:
            self._live[record.sid] = ended
        try:
            callbacks.status("in-progress", **detected)
            # A machine presses nothing; a person answers successive menus with the script's keys.
            answers = script.digits.split(",") if script.behaviour == "answer" else []
            self._converse(record, params, answers, ended)
        finally:
            with self._lock:
                self._live.pop(record.sid, None)
        if ended.is_set() and not record.ended_by:
            record.ended_by = "hangup"
        callbacks.status("completed", CallDuration=str(max(1, round(record.duration_s))))

    def _converse(
        self, record: Record, params: dict[str, str], answers: list[str], ended: threading.Event
    ) -> None:
        """Fetch and follow TwiML documents until the call is over."""
        step: _Step | None = _Step(record.url, "POST", {})
        fetched = 0
        while step is not None:
            if ended.is_set():
                record.hear("end", "api")
                return
            if fetched == MAX_DOCUMENTS:
                record.hear("end", "error", f"more than {MAX_DOCUMENTS} TwiML documents")
                return
            fetched += 1
            twiml = self._request(step.url, {**params, **step.params}, step.method)
            record.spoken.append(twiml)
            step = self._follow(record, step.url, twiml, answers, ended)

    def _follow(
        self,
        record: Record,
        url: str,
        twiml: str,
        answers: list[str],
        ended: threading.Event,
    ) -> _Step | None:
        """Act out one TwiML document, verb by verb, as Twilio does.

        What the phone hears, the keys it presses and how the call ends go to the record's
        transcript. The result is the next document to fetch (a <Gather> answered, a
        <Redirect>, a <Dial> with an action), or None when the call is over.
        """
        try:
            root: ET.Element | None = ET.fromstring(twiml)  # noqa: S314 - TwiML from loopback
        except ET.ParseError:
            root = None
        if root is None or root.tag != "Response":
            # Twilio plays "an application error has occurred" and hangs up.
            _hang_up(record, "error", f"no TwiML <Response> from {url}")
            return None
        for verb in root:
            if ended.is_set():
                _hang_up(record, "api")
                return None
            outcome = self._verb(record, url, verb, answers, ended)
            if isinstance(outcome, _Step):
                return outcome
            if outcome is not None:
                return None
        _hang_up(record, "done")
        return None

    def _verb(
        self,
        record: Record,
        url: str,
        verb: ET.Element,
        answers: list[str],
        ended: threading.Event,
    ) -> _Step | _Over | None:
        """Act out one verb: the next document, the call over, or None to go on."""
        if verb.tag in AUDIO:
            # Played for ever, it is the phone that hangs up.
            return _hang_up(record, "callee") if record.listen(verb) else None
        if verb.tag == "Gather":
            return _gather(record, url, verb, answers)
        if verb.tag == "Dial":
            return self._dial(record, url, verb, ended)
        if verb.tag == "Redirect":
            target = (verb.text or "").strip() or url
            return _Step(urllib.parse.urljoin(url, target), _method(verb), {})
        if verb.tag in ("Hangup", "Reject"):
            return _hang_up(record, "hangup")
        return _hang_up(record, "error", f"<{verb.tag}> is not a verb the fake network plays")

    def _dial(
        self, record: Record, url: str, verb: ET.Element, ended: threading.Event
    ) -> _Step | _Over | None:
        """Dial; then the action's TwiML if there is one, else the next verb."""
        outcome = self._connect(record, verb, ended)
        if ended.is_set():
            return _hang_up(record, "api")
        action = verb.get("action")
        return _Step(urllib.parse.urljoin(url, action), _method(verb), outcome) if action else None

    def _connect(self, record: Record, dial: ET.Element, ended: threading.Event) -> dict[str, str]:
        """Ring the dialled number; if it answers, keep both on the line until one side ends it.

        The result is what Twilio tells the <Dial>'s action: DialCallStatus and the leg.
        """
        number = next((n.text.strip() for n in dial.iter("Number") if n.text), "")
        number = number or (dial.text or "").strip()
        if not number or ended.is_set():
            record.hear("dial", number, "failed")
            return {"DialCallStatus": "failed"}
        callee = self.script(number)
        leg = Record(f"CA{next(self._ids):032x}", "call", number, record.to, parent_sid=record.sid)
        with self._lock:
            self.records.append(leg)
        if callee.behaviour not in ("answer", "voicemail"):
            status = {"no_answer": "no-answer", "busy": "busy"}.get(callee.behaviour, "failed")
            leg.statuses.append(status)
            leg.updated_at = time.time()
            record.hear("dial", number, status)
            return {"DialCallStatus": status, "DialCallSid": leg.sid, "DialCallDuration": "0"}
        leg.connected_to, record.connected_to = record.to, number
        leg.statuses.extend(["ringing", "in-progress"])
        record.hear("dial", number, "in-progress")
        dialled = record.transcript[-1]
        leg.hear("bridged", record.to)
        hung_up = ended.wait(callee.talk_s)
        record.ended_by = leg.ended_by = "hangup" if hung_up else "callee"
        leg.statuses.append("completed")
        leg.updated_at = time.time()
        dialled.detail = "completed"
        talk = str(max(1, round(callee.talk_s)))
        record.duration_s += callee.talk_s
        leg.duration_s = callee.talk_s
        leg.hear("end", "api" if hung_up else "self")
        return {"DialCallStatus": "completed", "DialCallSid": leg.sid, "DialCallDuration": talk}

    def _request(self, url: str, params: dict[str, str], method: str = "POST") -> str:
        """Ask the application for TwiML as Twilio does; the body, or "" if there is none.

        A GET carries the parameters in the query.
        """
        if method == "GET":
            split = urllib.parse.urlsplit(url)
            query = "&".join(q for q in (split.query, urllib.parse.urlencode(params)) if q)
            target = urllib.parse.urlunsplit(split._replace(query=query))
            request = urllib.request.Request(target, method="GET")  # noqa: S310 - loopback
            request.add_header("X-Twilio-Signature", twilio_signature(self.auth_token, target, {}))
            return self._send(request)
        return self._post(url, params)

    def _post(self, url: str, params: dict[str, str]) -> str:
        data = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 - loopback
        request.add_header("X-Twilio-Signature", twilio_signature(self.auth_token, url, params))
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> str:
        try:
            return call_back(request).decode()
        except OSError:
            with self._lock:
                self.callback_errors += 1
            return ""


_CALL_EVENTS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
"""Which StatusCallbackEvent reports a call status; every final status is "completed"."""


class _Callbacks:
    """The status callbacks of one message or call.

    Sent as they happen (in Twilio's order, numbered), or held back and sent late, reversed
    or twice, as the phone's script says.
    """

    def __init__(
        self,
        network: FakePhoneNetwork,
        record: Record,
        script: PhoneScript,
        url: str,
        events: frozenset[str],
    ) -> None:
        self._network, self._record, self._script, self._url = network, record, script, url
        # As Twilio does: without StatusCallbackEvent, a call reports only its end.
        self._events = events or frozenset({"completed"})
        self._sequence = itertools.count()
        self._hold = script.callback_delay_s > 0 or script.reverse_callbacks
        self._held: list[dict[str, str]] = []

    def status(self, status: str, **extra: str) -> None:
        """The record moved to `status`: note it and report it if asked to."""
        record = self._record
        with self._network._lock:
            record.statuses.append(status)
            record.updated_at = time.time()
        if not self._url:
            return
        base = {"AccountSid": self._network.account_sid, "From": record.sender, "To": record.to}
        if record.kind == "sms":
            params = {"MessageSid": record.sid, "SmsSid": record.sid, "MessageStatus": status}
            params["SmsStatus"] = status
        else:
            if _CALL_EVENTS.get(status, "completed") not in self._events:
                return
            params = {
                "CallSid": record.sid,
                "CallStatus": status,
                "Direction": "outbound-api",
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(next(self._sequence)),
                "Timestamp": format_datetime(datetime.fromtimestamp(record.updated_at, UTC)),
            }
        params = {**base, **params, "ApiVersion": API_VERSION, **extra}
        if self._hold:
            self._held.append(params)
        else:
            self._deliver(params)

    def flush(self) -> None:
        """Send what was held back: after the script's delay, in its order."""
        if not self._held:
            return
        time.sleep(self._script.callback_delay_s)
        if self._script.reverse_callbacks:
            self._held.reverse()
        for params in self._held:
            self._deliver(params)
        self._held.clear()

    def _deliver(self, params: dict[str, str]) -> None:
        for _ in range(2 if self._script.duplicate_callbacks else 1):
            self._network._post(self._url, params)


class _Over:
    """The call is over."""


def _hang_up(record: Record, how: str, detail: str = "") -> _Over:
    """End the call's transcript with how it ended."""
    record.hear("end", how, detail)
    return _Over()


def _method(verb: ET.Element) -> str:
    return verb.get("method", "POST").upper()


def _gather(record: Record, url: str, verb: ET.Element, answers: list[str]) -> _Step | _Over | None:
    """Act out a <Gather>: the next document, the call over, or None to go on.

    What is nested is heard first; then the phone answers with its next key (Twilio requests
    the action and the rest of the document is not played), or lets the timeout pass and
    the call goes on with the verb after the <Gather>.
    """
    endless = [record.listen(child) for child in verb if child.tag in AUDIO]
    action = urllib.parse.urljoin(url, verb.get("action") or url)
    digits = _keys(answers.pop(0) if answers else "", verb)
    if digits:
        record.hear("keypress", digits)
        record.pressed = f"{record.pressed},{digits}" if record.pressed else digits
        return _Step(action, _method(verb), {"Digits": digits})
    if any(endless):
        return _hang_up(record, "callee")
    timeout = verb.get("timeout", "5")
    seconds = int(timeout) if timeout.isdigit() else 5
    record.hear("no_key", str(seconds))
    record.duration_s += seconds
    if verb.get("actionOnEmptyResult") == "true":
        return _Step(action, _method(verb), {})
    return None


def _keys(answer: str, gather: ET.Element) -> str:
    """The Digits Twilio reports for keys pressed at a <Gather>.

    Up to its finishOnKey (which is not reported), at most numDigits of them.
    """
    finish = gather.get("finishOnKey", "#")
    if finish and finish in answer:
        answer = answer[: answer.index(finish)]
    limit = gather.get("numDigits", "")
    return answer[: int(limit)] if limit.isdigit() and int(limit) > 0 else answer


class _Handler(FakeHandler):
    fake: FakePhoneNetwork

    def _authorised(self) -> bool:
        expected = base64.b64encode(
            f"{self.fake.account_sid}:{self.fake.auth_token}".encode()
        ).decode()
        return hmac.compare_digest(self.headers.get("Authorization", ""), f"Basic {expected}")

    def _broken_reply(self, number: str) -> bool:
        """Answer 200 OK with a broken body if `number`'s script says so; True if it did."""
        mode = self.fake.script(number).api_reply
        if mode == "json":
            return False
        body, kind = {
            "html": (ERROR_PAGE, "text/html; charset=utf-8"),
            "truncated": ('{"sid": "SM', "application/json"),
            "empty": ("", "application/json"),
        }[mode]
        with self.fake._lock:
            self.fake.broken_replies += 1
        self._send(HTTPStatus.OK, body.encode(), kind)
        return True

    def _api(self) -> re.Match[str] | None:
        """The matched REST path if the request is authorised; otherwise replies and None."""
        match = _API.match(urllib.parse.urlsplit(self.path).path)
        if match is None:
            self._reply(HTTPStatus.NOT_FOUND, {"code": 20404, "message": "Not Found"})
            return None
        if not self._authorised() or match.group("account") != self.fake.account_sid:
            self._reply(HTTPStatus.UNAUTHORIZED, {"code": 20003, "message": "Authenticate"})
            return None
        return match

    def on_post(self) -> None:
        """Create a message or a call, or hang a call up."""
        match = self._api()
        if match is None:
            return
        fields_ = urllib.parse.parse_qs(self._body().decode(), keep_blank_values=True)
        form = {key: values[-1] for key, values in fields_.items()}
        # The twilio library sends a list (StatusCallbackEvent) as the key repeated.
        events = frozenset(" ".join(fields_.get("StatusCallbackEvent", [])).split())
        sid = match.group("sid")
        if sid is None:
            if self._broken_reply(form.get("To", "")):
                return
            try:
                status, body = self.fake._create(match.group("kind"), form, events)
            except AnswerLost:
                self.close_connection = True  # taken, and no answer ever comes back
                return
            self._reply(status, body)
            return
        record = next((r for r in self.fake.records if r.sid == sid), None)
        if record is None or match.group("kind") != "Calls":
            self._reply(HTTPStatus.NOT_FOUND, {"code": 20404, "message": "Not Found"})
            return
        if form.get("Status") == "completed":
            self.fake.hang_up(sid)
        self._reply(HTTPStatus.OK, record.resource(self.fake.account_sid))

    def on_get(self) -> None:
        """What each phone received, or the REST API's list of messages or calls."""
        path = urllib.parse.urlsplit(self.path)
        if path.path.rstrip("/") == "/phones":
            self._reply(HTTPStatus.OK, self.fake.snapshot())
            return
        match = self._api()
        if match is None:
            return
        kind = match.group("kind")
        to = dict(urllib.parse.parse_qsl(path.query)).get("To", "")
        if to and self._broken_reply(to):
            return
        items = self.fake.listing(kind, to)
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

    def on_put(self) -> None:
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
            target: object = self.fake
            allowed = {"failures_left", "stall_creates", "stall_s"}
        elif self.path.startswith("/phones/"):
            target = self.fake.script(urllib.parse.unquote(self.path.removeprefix("/phones/")))
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
        if not isinstance(changes.get("digits", ""), str) or not _KEYS.fullmatch(
            changes.get("digits", "")
        ):
            self._reply(
                HTTPStatus.BAD_REQUEST,
                {"message": "digits are keys (0-9, * and #), one answer per menu, comma-separated"},
            )
            return
        for key, value in changes.items():
            setattr(target, key, value)
        self._reply(HTTPStatus.OK, {key: getattr(target, key) for key in allowed})
