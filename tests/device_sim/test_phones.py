"""The fake phone network hangs calls up as Twilio does, wherever the call is."""

from __future__ import annotations

import base64
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from device_sim.phones import FakePhoneNetwork

ACCOUNT = "AC" + "5eed" * 8
TOKEN = "phones-test-token"
SECRETARY_PHONE, RESIDENT_PHONE = "13800000001", "13912345678"

Answer = Callable[[dict[str, str]], str]


@contextmanager
def twiml_server(answer: Answer) -> Iterator[str]:
    """An HTTP server on loopback answering each POST with `answer(form)`; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib
            """Quiet."""

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
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


def place_call(network: FakePhoneNetwork, to: str, url: str) -> None:
    """Ask the network's REST API for a call to `to` that follows the TwiML at `url`."""
    data = urllib.parse.urlencode({"To": to, "From": "+8657100000000", "Url": url}).encode()
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
