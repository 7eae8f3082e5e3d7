"""The fake phone network plays a call's TwiML as Twilio does, and hangs calls up wherever
they are; its transcript says what the phone heard, in order."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from twilio.request_validator import RequestValidator

from alerts.providers.base import OutgoingMessage
from alerts.providers.twilio_provider import TwilioProvider
from device_sim.phones import Behaviour, FakePhoneNetwork, Record

ACCOUNT = "AC" + "5eed" * 8
TOKEN = "phones-test-token"
SECRETARY_PHONE, RESIDENT_PHONE = "13800000001", "13912345678"

Answer = Callable[[dict[str, str]], str]


@contextmanager
def twiml_server(answer: Answer) -> Iterator[str]:
    """An HTTP server on loopback answering each POST with `answer(form)`; yields its URL.

    The form has the request's path under "_path" (GET parameters come in the query).
    """

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib
            """Quiet."""

        def do_GET(self) -> None:
            self._answer(urllib.parse.urlsplit(self.path).query)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self._answer(self.rfile.read(length).decode())

        def _answer(self, query: str) -> None:
            form = dict(urllib.parse.parse_qsl(query))
            form["_path"] = urllib.parse.urlsplit(self.path).path
            form["_method"] = self.command
            form["_signature"] = self.headers.get("X-Twilio-Signature", "")
            body = answer(form).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="twiml-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/voice"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def place_call(network: FakePhoneNetwork, to: str, url: str, **more: str) -> None:
    """Ask the network's REST API for a call to `to` that follows the TwiML at `url`."""
    form = {"To": to, "From": "+8657100000000", "Url": url, **more}
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(
        f"{network.url}/2010-04-01/Accounts/{ACCOUNT}/Calls.json", data=data, method="POST"
    )
    credentials = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    request.add_header("Authorization", f"Basic {credentials}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def test_a_call_hung_up_before_it_is_put_through_ends_there() -> None:
    with FakePhoneNetwork(ACCOUNT, TOKEN) as network:
        network.script(RESIDENT_PHONE).talk_s = 60.0
        hung_up: list[bool] = []

        def answer(form: dict[str, str]) -> str:
            # The call is hung up through the API while its <Dial> is on its way.
            hung_up.append(network.hang_up(form["CallSid"]))
            return f"<Response><Dial><Number>{RESIDENT_PHONE}</Number></Dial></Response>"

        with twiml_server(answer) as url:
            place_call(network, SECRETARY_PHONE, url)
            network.wait_idle()
        assert hung_up == [True]
        (call,) = network.received(SECRETARY_PHONE)
        assert (call.ended_by, call.connected_to, call.statuses[-1]) == ("hangup", "", "completed")
        assert not network.received(RESIDENT_PHONE), "a call already over is put through"


def test_a_call_put_through_ends_when_hung_up() -> None:
    with FakePhoneNetwork(ACCOUNT, TOKEN) as network:
        network.script(RESIDENT_PHONE).talk_s = 60.0

        def answer(_form: dict[str, str]) -> str:
            return f"<Response><Dial><Number>{RESIDENT_PHONE}</Number></Dial></Response>"

        with twiml_server(answer) as url:
            place_call(network, SECRETARY_PHONE, url)
            (call,) = network.received(SECRETARY_PHONE)
            leg: list[bool] = []
            for _ in range(1000):  # until the resident's phone rings (bounded)
                if network.received(RESIDENT_PHONE):
                    leg.append(network.hang_up(call.sid))
                    break
                time.sleep(0.01)
            network.wait_idle()
        assert leg == [True]
        (resident,) = network.received(RESIDENT_PHONE)
        assert (call.ended_by, resident.ended_by, resident.parent_sid) == (
            "hangup",
            "hangup",
            call.sid,
        )


# -- TwiML as Twilio plays it ------------------------------------------------------------

MENU = (
    '<Gather numDigits="1" timeout="8" action="/gather">'
    '<Say language="cmn-CN">张桂兰，桥元村三组，按下了呼叫键。</Say>'
    '<Say language="cmn-CN">接单并前往请按1，重听请按9。</Say>'
    "</Gather>"
    '<Say language="cmn-CN">没有收到按键，再见。</Say>'
)
HEARD_MENU = [
    ("say", "张桂兰，桥元村三组，按下了呼叫键。"),
    ("say", "接单并前往请按1，重听请按9。"),
]


def response(*verbs: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{"".join(verbs)}</Response>'


def act(
    documents: Callable[[dict[str, str]], str],
    digits: str = "1",
    setup: Callable[[FakePhoneNetwork], None] | None = None,
) -> tuple[list[Record], list[dict[str, str]]]:
    """Place one call to the secretary that plays `documents(request)` (by "_path");
    every record the network made, and every request the application got."""
    requests: list[dict[str, str]] = []

    def answer(form: dict[str, str]) -> str:
        requests.append(form)
        return documents(form)

    with FakePhoneNetwork(ACCOUNT, TOKEN) as network:
        network.script(SECRETARY_PHONE).digits = digits
        if setup is not None:
            setup(network)
        with twiml_server(answer) as url:
            place_call(network, SECRETARY_PHONE, url)
            network.wait_idle()
        return list(network.records), requests


def heard(record: Record) -> list[tuple[str, str]]:
    return [(h.kind, h.text) for h in record.transcript]


def test_a_key_goes_to_the_action_and_the_rest_of_the_document_is_not_played() -> None:
    pages = {"/voice": response(MENU), "/gather": response("<Say>您已接单，请尽快前往。</Say>")}
    (call,), requests = act(lambda form: pages[form["_path"]])
    assert heard(call) == [
        *HEARD_MENU,
        ("keypress", "1"),
        ("say", "您已接单，请尽快前往。"),
        ("end", "done"),
    ]
    assert [(r["_path"], r.get("Digits")) for r in requests] == [
        ("/voice", None),
        ("/gather", "1"),
    ]
    assert (call.pressed, call.statuses[-1]) == ("1", "completed")


def test_no_key_lets_the_timeout_pass_and_the_next_verb_is_played() -> None:
    (call,), requests = act(lambda _form: response(MENU), digits="")
    assert heard(call) == [
        *HEARD_MENU,
        ("no_key", "8"),
        ("say", "没有收到按键，再见。"),
        ("end", "done"),
    ]
    assert [r["_path"] for r in requests] == ["/voice"]
    assert call.pressed == ""


def test_keys_answer_successive_menus_and_a_redirect_fetches_the_menu_again() -> None:
    def pages(form: dict[str, str]) -> str:
        if form["_path"] == "/voice":
            return response(MENU)
        if form["Digits"] == "9":
            return response("<Redirect>/voice</Redirect><Say>不会播放</Say>")
        return response("<Say>您已接单，请尽快前往。</Say>")

    (call,), requests = act(pages, digits="9,1")
    assert heard(call) == [
        *HEARD_MENU,
        ("keypress", "9"),
        *HEARD_MENU,
        ("keypress", "1"),
        ("say", "您已接单，请尽快前往。"),
        ("end", "done"),
    ]
    assert [r["_path"] for r in requests] == ["/voice", "/gather", "/voice", "/gather"]
    assert call.pressed == "9,1"


def test_gather_defaults_finish_key_get_and_action_on_empty_result() -> None:
    def pages(form: dict[str, str]) -> str:
        if form["_path"] == "/voice" and "Digits" not in form:
            # No action: the keys go back to this document's own URL, by GET here.
            return response('<Gather method="GET"><Say>请输入房号。</Say></Gather>')
        if form["_path"] == "/voice":
            return response(
                f"<Say>收到{form['Digits']}。</Say>"
                '<Gather timeout="3" actionOnEmptyResult="true" action="/empty">'
                "<Say>还有吗？</Say></Gather><Say>不会播放</Say>"
            )
        return response("<Hangup/><Say>挂断之后不会播放</Say>")

    (call,), requests = act(pages, digits="12#9")
    assert heard(call) == [
        ("say", "请输入房号。"),
        ("keypress", "12"),
        ("say", "收到12。"),
        ("say", "还有吗？"),
        ("no_key", "3"),
        ("end", "hangup"),
    ]
    assert [(r["_path"], r.get("Digits")) for r in requests] == [
        ("/voice", None),
        ("/voice", "12"),
        ("/empty", None),
    ]


def test_dial_with_an_action_follows_the_action_not_the_next_verb() -> None:
    def pages(form: dict[str, str]) -> str:
        if form["_path"] == "/voice":
            return response(
                "<Say>正在为您接通。</Say>",
                f'<Dial action="/dialled"><Number>{RESIDENT_PHONE}</Number></Dial>',
                "<Say>不会播放</Say>",
            )
        return response("<Say>通话结束，再见。</Say><Hangup/>")

    (call, leg), requests = act(pages)
    assert heard(call) == [
        ("say", "正在为您接通。"),
        ("dial", RESIDENT_PHONE),
        ("say", "通话结束，再见。"),
        ("end", "hangup"),
    ]
    assert call.transcript[1].detail == "completed"
    assert heard(leg) == [("bridged", SECRETARY_PHONE), ("end", "self")]
    dialled = requests[-1]
    assert (dialled["_path"], dialled["DialCallStatus"], dialled["DialCallSid"]) == (
        "/dialled",
        "completed",
        leg.sid,
    )
    assert (call.connected_to, leg.parent_sid, leg.statuses) == (
        RESIDENT_PHONE,
        call.sid,
        ["ringing", "in-progress", "completed"],
    )


@pytest.mark.parametrize(
    ("behaviour", "status"), [("busy", "busy"), ("no_answer", "no-answer"), ("fail", "failed")]
)
def test_dial_not_answered_goes_on_with_the_next_verb_or_tells_the_action(
    behaviour: Behaviour, status: str
) -> None:
    def callee(network: FakePhoneNetwork) -> None:
        network.script(RESIDENT_PHONE).behaviour = behaviour

    dial = f"<Dial><Number>{RESIDENT_PHONE}</Number></Dial>"
    (call, leg), _ = act(lambda _form: response(dial, "<Say>老人没有接。</Say>"), setup=callee)
    assert heard(call) == [("dial", RESIDENT_PHONE), ("say", "老人没有接。"), ("end", "done")]
    assert (call.transcript[0].detail, leg.statuses, call.connected_to) == (status, [status], "")

    def pages(form: dict[str, str]) -> str:
        if form["_path"] == "/voice":
            return response(f'<Dial action="/dialled">{RESIDENT_PHONE}</Dial><Say>不会播放</Say>')
        return response()

    (call, _leg), requests = act(pages, setup=callee)
    assert requests[-1]["DialCallStatus"] == status
    assert heard(call) == [("dial", RESIDENT_PHONE), ("end", "done")]


def test_say_loop_pause_and_play_for_ever() -> None:
    document = response(
        '<Say loop="2">请注意。</Say>',
        '<Pause length="2"/>',
        '<Play loop="0">http://127.0.0.1:9/ring.mp3</Play>',
        "<Say>不会播放</Say>",
    )
    (call,), _ = act(lambda _form: document)
    assert [(h.kind, h.text, h.repeat) for h in call.transcript] == [
        ("say", "请注意。", 2),
        ("pause", "2", 1),
        ("play", "http://127.0.0.1:9/ring.mp3", 0),
        ("end", "callee", 1),
    ]


@pytest.mark.parametrize("body", ["", "not TwiML", "<Other/>"])
def test_twiml_twilio_cannot_play_ends_the_call_with_an_error(body: str) -> None:
    (call,), _ = act(lambda _form: body)
    assert [h.kind for h in call.transcript] == ["end"]
    assert (call.transcript[0].text, call.statuses[-1]) == ("error", "completed")


def test_a_verb_the_network_does_not_play_is_an_error_not_silence() -> None:
    (call,), _ = act(lambda _form: response("<Say>你好</Say><Record/><Say>不会播放</Say>"))
    assert heard(call) == [("say", "你好"), ("end", "error")]
    assert "<Record>" in call.transcript[-1].detail


# -- Status callbacks, as the twilio library asks for them -------------------------------

CALL_STATUSES = {
    "answer": ["initiated", "ringing", "in-progress", "completed"],
    "voicemail": ["initiated", "ringing", "in-progress", "completed"],
    "busy": ["initiated", "busy"],
    "no_answer": ["initiated", "ringing", "no-answer"],
    "fail": ["initiated", "failed"],
}


@pytest.mark.parametrize("behaviour", sorted(CALL_STATUSES))
def test_call_status_callbacks_follow_twilios_order_and_values(behaviour: Behaviour) -> None:
    requests: list[dict[str, str]] = []

    def answer(form: dict[str, str]) -> str:
        requests.append(form)
        return response("<Say>工单3。</Say>") if "/voice/" in form["_path"] else ""

    with FakePhoneNetwork(ACCOUNT, TOKEN) as network, twiml_server(answer) as url:
        network.script(SECRETARY_PHONE).behaviour = behaviour
        base = url.removesuffix("/voice")
        provider = TwilioProvider(ACCOUNT, TOKEN, "+8657100000000", base, network.url)
        message = OutgoingMessage(7, "voice", SECRETARY_PHONE, "工单3。", "ticket_call")
        asyncio.run(provider.send(message))
        network.wait_idle()
    callbacks = [r for r in requests if r["_path"] == "/webhooks/twilio/status/7"]
    assert [c["CallStatus"] for c in callbacks] == CALL_STATUSES[behaviour]
    assert [c["SequenceNumber"] for c in callbacks] == [str(i) for i in range(len(callbacks))]
    validator = RequestValidator(TOKEN)
    for c in callbacks:
        params = {k: v for k, v in c.items() if not k.startswith("_")}
        assert validator.validate(f"{base}{c['_path']}", params, c["_signature"])
        assert (c["Direction"], c["To"]) == ("outbound-api", SECRETARY_PHONE)
    assert int(callbacks[-1]["CallDuration"]) >= (1 if behaviour in ("answer", "voicemail") else 0)
    fetched = [r for r in requests if r["_path"] == "/webhooks/twilio/voice/7"]
    if behaviour in ("answer", "voicemail"):
        # Machine detection was asked for: Twilio says who answered.
        who = "human" if behaviour == "answer" else "machine_start"
        assert callbacks[2]["AnsweredBy"] == fetched[0]["AnsweredBy"] == who
    else:
        assert fetched == []


def test_without_status_callback_events_only_the_end_is_reported() -> None:
    requests: list[dict[str, str]] = []

    def answer(form: dict[str, str]) -> str:
        requests.append(form)
        return response("<Say>你好</Say>")

    with FakePhoneNetwork(ACCOUNT, TOKEN) as network, twiml_server(answer) as url:
        place_call(network, SECRETARY_PHONE, url, StatusCallback=url.replace("/voice", "/status"))
        network.wait_idle()
    assert [(r["_path"], r.get("CallStatus")) for r in requests] == [
        ("/voice", "in-progress"),
        ("/status", "completed"),
    ]
    assert "AnsweredBy" not in requests[0]  # no machine detection asked for
