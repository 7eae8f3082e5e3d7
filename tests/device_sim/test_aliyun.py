"""The fake Alibaba Cloud endpoint, driven through the official SDKs: it checks the V3
signature, enforces approved templates and their variable rules, records, plays the phone
and pushes receipts (held, reversed, duplicated, pushed again until acknowledged)."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client as SmsClient
from alibabacloud_dyvmsapi20170525 import models as voice_models
from alibabacloud_dyvmsapi20170525.client import Client as VoiceClient
from alibabacloud_tea_openapi import models as open_api
from alibabacloud_tea_openapi.exceptions import ClientException

from device_sim.aliyun import BEIJING, ApprovedTemplate, FakeAliyun

KEY_ID, SECRET = "LTAI5tFakeKeyId0001", "fake-access-key-secret"
SECRETARY = "13800000001"
TEMPLATES = [
    ApprovedTemplate(
        "SMS_100",
        "sms",
        "${resident}按了呼叫键，工单${ticket}。",
        {"resident": "name", "ticket": "characterWithNumber"},
    ),
    ApprovedTemplate("SMS_101", "sms", "尚未批准的模板。", {}, approved=False),
    ApprovedTemplate("TTS_200", "tts", "${resident}按了呼叫键。接单请按1。", {"resident": "name"}),
    ApprovedTemplate("TTS_201", "tts", "您已接单。", {}),
    ApprovedTemplate("TTS_202", "tts", "没有收到按键，再见。", {}),
]


class Receipts:
    """A receipt endpoint: records each pushed batch; refuses the first `refuse` pushes."""

    def __init__(self, refuse: int = 0) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.refuse = refuse
        self.lock = threading.Lock()

    def items(self) -> list[dict[str, Any]]:
        with self.lock:
            return [item for batch in self.batches for item in batch]


@contextmanager
def receipt_server(receipts: Receipts) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib
            """Quiet."""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receipts.lock:
                refused = receipts.refuse > 0
                receipts.refuse -= 1
                if not refused:
                    receipts.batches.append(json.loads(body))
            answer = json.dumps({"code": 1 if refused else 0, "msg": "成功"}).encode()
            self.send_response(500 if refused else 200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="receipts")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def config(fake: FakeAliyun, secret: str = SECRET, key_id: str = KEY_ID) -> open_api.Config:
    return open_api.Config(
        access_key_id=key_id, access_key_secret=secret, endpoint=fake.endpoint, protocol="http"
    )


def send_sms(fake: FakeAliyun, code: str = "SMS_100", secret: str = SECRET, **params: str) -> Any:
    request = sms_models.SendSmsRequest(
        phone_numbers=SECRETARY,
        sign_name="必到",
        template_code=code,
        template_param=json.dumps(params or {"resident": "张秀英", "ticket": "12"}),
        out_id="41",
    )
    return SmsClient(config(fake, secret)).send_sms(request).body


def ivr(fake: FakeAliyun, to: str = SECRETARY) -> Any:
    request = voice_models.IvrCallRequest(
        called_number=to,
        called_show_number="057100000000",
        start_code="TTS_200",
        start_tts_params=json.dumps({"resident": "张秀英"}),
        menu_key_map=[voice_models.IvrCallRequestMenuKeyMap(key="1", code="TTS_201")],
        bye_code="TTS_202",
        out_id="42",
    )
    return VoiceClient(config(fake)).ivr_call(request).body


@pytest.fixture
def receipts() -> Iterator[tuple[Receipts, str]]:
    got = Receipts()
    with receipt_server(got) as url:
        yield got, url


def test_a_signed_sms_is_rendered_under_its_signature_recorded_and_receipted(
    receipts: tuple[Receipts, str],
) -> None:
    got, url = receipts
    with FakeAliyun(KEY_ID, SECRET, TEMPLATES, sms_report_url=url) as fake:
        answer = send_sms(fake)
        fake.wait_idle()
        assert answer.code == "OK"
        [record] = fake.received(SECRETARY)
        assert (record.id, record.text) == (answer.biz_id, "【必到】张秀英按了呼叫键，工单12。")
        assert (record.template_code, record.params, record.out_id) == (
            "SMS_100",
            {"resident": "张秀英", "ticket": "12"},
            "41",
        )
        [item] = got.items()
        assert (item["biz_id"], item["out_id"], item["success"]) == (answer.biz_id, "41", True)
        today = datetime.now(BEIJING).strftime("%Y%m%d")
        query = sms_models.QuerySendDetailsRequest(
            phone_number=SECRETARY, send_date=today, page_size=10, current_page=1
        )
        listed = SmsClient(config(fake)).query_send_details(query).body.to_map()
        [dto] = listed["SmsSendDetailDTOs"]["SmsSendDetailDTO"]
        assert (dto["OutId"], dto["Content"], dto["SendStatus"]) == ("41", record.text, 3)


@pytest.mark.parametrize(
    ("secret", "key_id", "code"),
    [
        ("not-the-secret", KEY_ID, "SignatureDoesNotMatch"),
        (SECRET, "LTAI5tSomeoneElse", "InvalidAccessKeyId.NotFound"),
    ],
)
def test_a_request_signed_with_another_secret_or_key_is_refused_and_sends_nothing(
    secret: str, key_id: str, code: str
) -> None:
    with FakeAliyun(KEY_ID, SECRET, TEMPLATES) as fake:
        client = SmsClient(config(fake, secret, key_id))
        request = sms_models.SendSmsRequest(
            phone_numbers=SECRETARY,
            sign_name="必到",
            template_code="SMS_100",
            template_param=json.dumps({"resident": "张秀英", "ticket": "12"}),
        )
        with pytest.raises(ClientException) as refused:
            client.send_sms(request)
        assert refused.value.code == code
        assert fake.records == []
        assert fake.rejected == [code]


def test_a_request_changed_after_signing_is_refused() -> None:
    with FakeAliyun(KEY_ID, SECRET, TEMPLATES) as fake:
        request = urllib.request.Request(
            f"{fake.url}/?PhoneNumbers={SECRETARY}&TemplateCode=SMS_100", method="POST"
        )
        request.add_header(
            "Authorization",
            f"ACS3-HMAC-SHA256 Credential={KEY_ID},SignedHeaders=host;x-acs-action;"
            "x-acs-content-sha256;x-acs-date;x-acs-version,Signature=" + "0" * 64,
        )
        for name, value in {
            "x-acs-action": "SendSms",
            "x-acs-version": "2017-05-25",
            "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
        }.items():
            request.add_header(name, value)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        refused.value.close()
        assert refused.value.code == 400
        assert fake.records == []
        assert fake.rejected == ["SignatureDoesNotMatch"]


@pytest.mark.parametrize(
    ("code", "params", "refusal"),
    [
        ("SMS_999", {}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ("SMS_101", {}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ("TTS_200", {"resident": "张秀英"}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ("SMS_100", {"resident": "张秀英"}, "isv.TEMPLATE_MISSING_PARAMETERS"),
        ("SMS_100", {"resident": "张秀英", "ticket": "T-12"}, "isv.INVALID_PARAMETERS"),
        ("SMS_100", {"resident": "张" * 36, "ticket": "12"}, "isv.INVALID_PARAMETERS"),
        ("SMS_100", {"resident": "见https://x.cn", "ticket": "12"}, "isv.INVALID_PARAMETERS"),
    ],
)
def test_templates_and_their_variable_rules_are_enforced(
    code: str, params: dict[str, str], refusal: str
) -> None:
    with FakeAliyun(KEY_ID, SECRET, TEMPLATES) as fake:
        answer = send_sms(fake, code, **params) if params else send_sms(fake, code, x="1")
        assert answer.code == refusal
        assert fake.records == []
        assert fake.refused == [(SECRETARY, refusal)]


def test_an_answered_ivr_call_reports_the_key_and_what_the_phone_heard(
    receipts: tuple[Receipts, str],
) -> None:
    got, url = receipts
    with FakeAliyun(KEY_ID, SECRET, TEMPLATES, voice_report_url=url) as fake:
        answer = ivr(fake)
        fake.wait_idle()
        [record] = fake.received(SECRETARY)
        assert record.heard == ["张秀英按了呼叫键。接单请按1。", "您已接单。"]
        [item] = got.items()
        assert (item["call_id"], item["out_id"], item["dtmf"], item["status_code"]) == (
            answer.call_id,
            "42",
            "1",
            "200000",
        )


@pytest.mark.parametrize(
    ("behaviour", "digits", "status", "heard"),
    [
        ("answer", "", "200000", ["张秀英按了呼叫键。接单请按1。", "没有收到按键，再见。"]),
        ("no_answer", "1", "200005", []),
        ("busy", "1", "200002", []),
        ("blacklisted", "1", "200011", []),
    ],
)
def test_the_phone_plays_its_part(
    receipts: tuple[Receipts, str], behaviour: str, digits: str, status: str, heard: list[str]
) -> None:
    got, url = receipts
    with FakeAliyun(KEY_ID, SECRET, TEMPLATES, voice_report_url=url) as fake:
        phone = fake.phone(SECRETARY)
        phone.behaviour, phone.digits = behaviour, digits  # type: ignore[assignment]
        ivr(fake)
        fake.wait_idle()
        [item] = got.items()
        assert (item["status_code"], item["dtmf"]) == (status, "")
        assert fake.received(SECRETARY)[0].heard == heard


def test_an_invalid_number_is_refused_at_once() -> None:
    with FakeAliyun(KEY_ID, SECRET, TEMPLATES) as fake:
        fake.phone(SECRETARY).behaviour = "invalid"
        assert ivr(fake).code == "isv.MOBILE_NUMBER_ILLEGAL"
        assert send_sms(fake).code == "isv.MOBILE_NUMBER_ILLEGAL"
        assert fake.records == []


def test_held_receipts_come_reversed_and_twice_and_a_refused_push_comes_again() -> None:
    got = Receipts(refuse=2)
    with (
        receipt_server(got) as url,
        FakeAliyun(KEY_ID, SECRET, TEMPLATES, sms_report_url=url, voice_report_url=url) as fake,
    ):
        fake.push_retry_s = 0.01
        fake.hold_receipts = True
        first = send_sms(fake).biz_id
        second = send_sms(fake, resident="李四", ticket="13").biz_id
        fake.wait_idle()
        assert got.items() == []
        fake.release_receipts(reverse=True, duplicate=True)
        fake.wait_idle()
        assert [i["biz_id"] for i in got.items()] == [second, second, first, first]
        assert fake.push_errors == 2
