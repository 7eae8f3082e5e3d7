"""A fake Alibaba Cloud endpoint speaking the SMS and voice API subset Bidao uses.

One loopback HTTP server answers the RPC-style OpenAPI requests of both products, told
apart by the `x-acs-action` and `x-acs-version` headers:

    Dysmsapi 2017-05-25   SendSms, QuerySendDetails
    Dyvmsapi 2017-05-25   SingleCallByTts, IvrCall, QueryCallDetailByCallId, CancelCall
    GET  /phones          every SMS and call, as recorded (JSON)
    PUT  /phones/{number} how that phone behaves (JSON body, fields of `AliyunPhone`)

Every API request must be signed as the service checks it (V3, `ACS3-HMAC-SHA256`): the
canonical request (method, path, sorted query, the signed headers, the body's SHA-256) is
hashed, and its HMAC-SHA256 under the AccessKey secret must equal the Signature of the
Authorization header; the body hash, the date (within 15 minutes) and a fresh nonce are
checked too. Anything else gets the service's error (SignatureDoesNotMatch,
InvalidAccessKeyId.NotFound, ...) and is not recorded.

Templates are enforced: a code must be one the fake was given and approved, for the right
product; the parameters must name exactly the template's variables, each within the rules
of its property. Business errors come back with HTTP 200 and their `Code`, as the service
answers them.

Receipts are pushed as the service's HTTP push does (消息回执, a JSON array per request to
the URL configured for each report type, acknowledged with `{"code": 0}`, pushed again
until acknowledged): SmsReport for messages, VoiceReport for calls (with the key pressed
in `dtmf`). They can be held back and released late, reversed and duplicated.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import string
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any, Literal

from device_sim.fake_http import FakeHandler, FakeService, call_back
from device_sim.phones import AnswerLost

SMS_VERSION = VOICE_VERSION = "2017-05-25"
ALGORITHM = "ACS3-HMAC-SHA256"
DATE_SKEW_S = 15 * 60
"""How far a request's x-acs-date may be from the service's clock."""
BEIJING = timezone(timedelta(hours=8))
MAX_VARIABLE_CHARS = 35
PHONE_DIGITS = (5, 11)
SIGNED_REQUIRED = ("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-version")

# Codes as the service names them.
OK = "OK"
INVALID_NUMBER = "isv.MOBILE_NUMBER_ILLEGAL"
THROTTLED = "isv.BUSINESS_LIMIT_CONTROL"
TEMPLATE_ILLEGAL = "isv.SMS_TEMPLATE_ILLEGAL"
TTS_TEMPLATE_ILLEGAL = "isv.TTS_TEMPLATE_ILLEGAL"
SIGNATURE_ILLEGAL = "isv.SMS_SIGNATURE_ILLEGAL"
MISSING_PARAMETERS = "isv.TEMPLATE_MISSING_PARAMETERS"
INVALID_PARAMETERS = "isv.INVALID_PARAMETERS"
BALANCE = "isv.AMOUNT_NOT_ENOUGH"
SMS_DELIVERED = "DELIVERED"
SMS_BLACKLISTED = "MOBILE_IN_BLACK"
SMS_UNDELIVERED = "UNDELIV"
CALL_DONE, CALL_BUSY, CALL_NO_ANSWER, CALL_BLACKLISTED = "200000", "200002", "200005", "200011"
CALL_WORDS = {
    CALL_DONE: "用户听完挂断",
    CALL_BUSY: "用户忙",
    CALL_NO_ANSWER: "用户未接听",
    CALL_BLACKLISTED: "被叫号码在黑名单中",
}

Behaviour = Literal["answer", "no_answer", "busy", "invalid", "blacklisted"]
_AUTH = re.compile(
    r"^ACS3-HMAC-SHA256 Credential=(?P<ak>[^,]+),SignedHeaders=(?P<headers>[^,]+),"
    r"Signature=(?P<signature>[0-9a-f]+)$"
)
_DIGITS = re.compile(r"[0-9]+")
_LETTERS_DIGITS = re.compile(r"[0-9A-Za-z]+")
_DATE = re.compile(r"[0-9年月日时分秒:：/\- ]+")
_LINK = re.compile(r"https?://|www\.|\.(?:com|cn|net)\b", re.IGNORECASE)
_MENU = re.compile(r"^MenuKeyMap\.(\d+)\.(Key|Code|TtsParams)$")


@dataclass(frozen=True)
class ApprovedTemplate:
    """A template the account has: its code, product, text and variable rules."""

    code: str
    kind: Literal["sms", "tts"]
    text: str
    rule: dict[str, str]
    """Variable → property (name, address, mobilePhone, characterWithNumber, date, other)."""
    approved: bool = True


@dataclass
class AliyunPhone:
    """How one phone behaves."""

    behaviour: Behaviour = "answer"
    digits: str = "1"
    """The key pressed at a call's menu; empty: none (the call ends after the menu)."""
    sms_fails: bool = False
    duplicate_receipts: bool = False


@dataclass
class AliyunRecord:
    """One SMS or call as the service took it."""

    id: str
    """BizId of an SMS, CallId of a call."""
    kind: Literal["sms", "call"]
    action: str
    to: str
    template_code: str
    params: dict[str, str]
    text: str
    """What the phone read or heard first (an SMS starts with 【signature】)."""
    out_id: str = ""
    sign_name: str = ""
    created_at: float = field(default_factory=time.time)
    status: str = "sending"
    err_code: str = ""
    pressed: str = ""
    heard: list[str] = field(default_factory=list)
    """For a call: every text it heard, in order."""
    menu: dict[str, str] = field(default_factory=dict)
    """For an IVR call: key → template code of the words played after it."""


class FakeAliyun(FakeService):
    """The fake endpoint on 127.0.0.1 in a thread; start() and stop(), or a context manager."""

    _thread_name = "fake-aliyun"

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        templates: Sequence[ApprovedTemplate],
        *,
        sign_name: str = "必到",
        sms_report_url: str = "",
        voice_report_url: str = "",
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.templates = {t.code: t for t in templates}
        self.sign_names = {sign_name}
        self.sms_report_url = sms_report_url
        self.voice_report_url = voice_report_url
        self._ids = itertools.count(1)
        self._nonces: set[str] = set()
        self.records: list[AliyunRecord] = []
        self.phones: dict[str, AliyunPhone] = {}
        self.rejected: list[str] = []
        """The error code of every request refused before it reached a product (signing)."""
        self.refused: list[tuple[str, str]] = []
        """(to, code) of every business error answered."""
        self.balance: int | None = None
        """Messages and calls the account can still pay for; None: unlimited."""
        self.per_number_per_hour: int | None = None
        """The provider's flow control per number and hour; None: off."""
        self.hold_receipts = False
        """Keep receipts back until `release_receipts`."""
        self.held: list[tuple[str, dict[str, Any]]] = []
        self.pushes: list[tuple[str, list[dict[str, Any]]]] = []
        """Every receipt push acknowledged: (url, items)."""
        self.push_errors = 0
        self.push_retry_s = 0.1
        self.push_attempts = 600
        self.before_reply: Callable[[AliyunRecord], None] | None = None
        """Called once a message or call is taken, before the API answers (crash tests); it may
        raise `AnswerLost` to drop the answer."""

    # -- life -------------------------------------------------------------------------------

    def _handler(self) -> type[FakeHandler]:
        return _Handler

    @property
    def url(self) -> str:
        """Base URL of the fake endpoint."""
        return self.base_url

    @property
    def endpoint(self) -> str:
        """host:port, as the SDK's `endpoint` setting wants it."""
        return self.url.removeprefix("http://")

    def phone(self, number: str) -> AliyunPhone:
        """The script of a phone (created with the defaults on first use)."""
        with self._lock:
            return self.phones.setdefault(number, AliyunPhone())

    def received(self, number: str) -> list[AliyunRecord]:
        """What one phone got, oldest first."""
        with self._lock:
            return [r for r in self.records if r.to == number]

    def release_receipts(self, *, reverse: bool = False, duplicate: bool = False) -> None:
        """Push the held receipts, one batch per URL (reversed, twice each, or as held)."""
        with self._lock:
            held, self.held = self.held, []
            self.hold_receipts = False
        if reverse:
            held.reverse()
        batches: dict[str, list[dict[str, Any]]] = {}
        for url, item in held:
            batches.setdefault(url, []).extend([item, item] if duplicate else [item])

        # Pushed from a thread of its own, as the service does: never from the caller's.
        def push_all() -> None:
            for url, items in batches.items():
                self._push(url, items)

        self._start_worker(push_all, "aliyun-release")

    # -- the products ----------------------------------------------------------------------

    def handle(self, action: str, query: dict[str, str]) -> dict[str, Any]:
        """Answer one verified API request."""
        request_id = str(uuid.uuid4()).upper()
        handlers: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "SendSms": self._send_sms,
            "QuerySendDetails": self._query_sms,
            "SingleCallByTts": self._tts_call,
            "IvrCall": self._ivr_call,
            "QueryCallDetailByCallId": self._call_detail,
            "CancelCall": self._cancel_call,
        }
        handler = handlers.get(action)
        if handler is None:
            return {"RequestId": request_id, "Code": "InvalidAction.NotFound", "Message": action}
        return {"RequestId": request_id, **handler(query)}

    def _refuse(self, to: str, code: str, message: str) -> dict[str, Any]:
        with self._lock:
            self.refused.append((to, code))
        return {"Code": code, "Message": message}

    def _common_refusal(self, to: str) -> dict[str, Any] | None:
        phone = self.phone(to)
        if not _DIGITS.fullmatch(to) or phone.behaviour == "invalid":
            return self._refuse(to, INVALID_NUMBER, "invalid mobile number")
        with self._lock:
            if self.balance is not None and self.balance <= 0:
                refusal: tuple[str, str] | None = (BALANCE, "account balance not enough")
            elif self.per_number_per_hour is not None and self._last_hour(to) >= (
                self.per_number_per_hour
            ):
                refusal = (THROTTLED, "触发号码天级/小时级流控")
            else:
                refusal = None
        return None if refusal is None else self._refuse(to, *refusal)

    def _last_hour(self, to: str) -> int:
        since = time.time() - 3600
        return sum(1 for r in self.records if r.to == to and r.created_at >= since)

    def _render(
        self, code: str, kind: str, raw_params: str, to: str
    ) -> tuple[ApprovedTemplate, dict[str, str], str] | dict[str, Any]:
        """The template, its parameters and the text; or the refusal."""
        template = self.templates.get(code)
        illegal = TEMPLATE_ILLEGAL if kind == "sms" else TTS_TEMPLATE_ILLEGAL
        if template is None or template.kind != kind or not template.approved:
            return self._refuse(to, illegal, f"template {code!r} is not approved for {kind}")
        try:
            params = json.loads(raw_params or "{}")
        except ValueError:
            return self._refuse(to, INVALID_PARAMETERS, "TemplateParam is not JSON")
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return self._refuse(to, INVALID_PARAMETERS, "TemplateParam is not a JSON object")
        missing = sorted(set(template.rule) - set(params))
        if missing:
            return self._refuse(to, MISSING_PARAMETERS, f"missing {missing}")
        for name, prop in template.rule.items():
            problem = variable_problem(prop, params[name])
            if problem is not None:
                return self._refuse(to, INVALID_PARAMETERS, f"${{{name}}} {problem}")
        text = string.Template(template.text).safe_substitute(params)
        return template, params, text

    def _take(self, record: AliyunRecord, play: Callable[[], None]) -> None:
        with self._lock:
            self.records.append(record)
            if self.balance is not None:
                self.balance -= 1
        self._start_worker(play, f"aliyun-{record.id}")
        if self.before_reply is not None:
            self.before_reply(record)

    def _send_sms(self, q: dict[str, str]) -> dict[str, Any]:
        to = q.get("PhoneNumbers", "")
        if "," in to:
            return self._refuse(to, INVALID_PARAMETERS, "Bidao sends to one number at a time")
        if q.get("SignName", "") not in self.sign_names:
            return self._refuse(to, SIGNATURE_ILLEGAL, "signature not approved")
        refusal = self._common_refusal(to)
        if refusal is not None:
            return refusal
        rendered = self._render(q.get("TemplateCode", ""), "sms", q.get("TemplateParam", ""), to)
        if isinstance(rendered, dict):
            return rendered
        template, params, text = rendered
        biz_id = f"{next(self._ids):06d}^{uuid.uuid4().int % 10**10:010d}"
        record = AliyunRecord(
            biz_id,
            "sms",
            "SendSms",
            to,
            template.code,
            params,
            f"【{q['SignName']}】{text}",
            out_id=q.get("OutId", ""),
            sign_name=q["SignName"],
        )
        self._take(record, lambda: self._deliver_sms(record))
        return {"Code": OK, "Message": "OK", "BizId": biz_id}

    def _deliver_sms(self, record: AliyunRecord) -> None:
        phone = self.phone(record.to)
        if phone.behaviour == "blacklisted":
            success, code = False, SMS_BLACKLISTED
        elif phone.sms_fails:
            success, code = False, SMS_UNDELIVERED
        else:
            success, code = True, SMS_DELIVERED
        with self._lock:
            record.status, record.err_code = ("delivered" if success else "failed"), code
        now = _beijing(time.time())
        item = {
            "phone_number": record.to,
            "send_time": _beijing(record.created_at),
            "report_time": now,
            "success": success,
            "err_code": code,
            "err_msg": "用户接收成功" if success else "用户接收失败",
            "sms_size": "1",
            "biz_id": record.id,
            "out_id": record.out_id,
        }
        self._report(self.sms_report_url, item, phone.duplicate_receipts)

    def _call_common(
        self, q: dict[str, str], action: str, code: str, raw: str
    ) -> tuple[AliyunRecord, ApprovedTemplate] | dict[str, Any]:
        to = q.get("CalledNumber", "")
        refusal = self._common_refusal(to)
        if refusal is not None:
            return refusal
        rendered = self._render(code, "tts", raw, to)
        if isinstance(rendered, dict):
            return rendered
        template, params, text = rendered
        call_id = f"{next(self._ids):06d}^{uuid.uuid4().int % 10**12:012d}"
        record = AliyunRecord(
            call_id, "call", action, to, template.code, params, text, out_id=q.get("OutId", "")
        )
        return record, template

    def _tts_call(self, q: dict[str, str]) -> dict[str, Any]:
        taken = self._call_common(q, "SingleCallByTts", q.get("TtsCode", ""), q.get("TtsParam", ""))
        if isinstance(taken, dict):
            return taken
        record, _ = taken
        self._take(record, lambda: self._play_call(record, {}, ""))
        return {"Code": OK, "Message": "OK", "CallId": record.id}

    def _ivr_call(self, q: dict[str, str]) -> dict[str, Any]:
        start, raw = q.get("StartCode", ""), q.get("StartTtsParams", "")
        taken = self._call_common(q, "IvrCall", start, raw)
        if isinstance(taken, dict):
            return taken
        record, _ = taken
        entries: dict[str, dict[str, str]] = {}
        for key, value in q.items():
            match = _MENU.match(key)
            if match:
                entries.setdefault(match[1], {})[match[2]] = value
        menu: dict[str, tuple[str, str]] = {}
        for entry in entries.values():
            words = self._render(entry.get("Code", ""), "tts", entry.get("TtsParams", ""), "")
            if isinstance(words, dict):
                return words
            menu[entry.get("Key", "")] = (entry.get("Code", ""), words[2])
        bye = ""
        if q.get("ByeCode"):
            said = self._render(q["ByeCode"], "tts", q.get("ByeTtsParams", ""), "")
            if isinstance(said, dict):
                return said
            bye = said[2]
        record.menu = {k: code for k, (code, _) in menu.items()}
        self._take(record, lambda: self._play_call(record, menu, bye))
        return {"Code": OK, "Message": "OK", "CallId": record.id}

    def _play_call(self, record: AliyunRecord, menu: dict[str, tuple[str, str]], bye: str) -> None:
        phone = self.phone(record.to)
        code = {
            "answer": CALL_DONE,
            "no_answer": CALL_NO_ANSWER,
            "busy": CALL_BUSY,
            "blacklisted": CALL_BLACKLISTED,
        }.get(phone.behaviour, CALL_NO_ANSWER)
        dtmf = ""
        with self._lock:
            if code == CALL_DONE:
                record.heard.append(record.text)
                if menu and phone.digits in menu:
                    dtmf = phone.digits
                    record.pressed = dtmf
                    record.heard.append(menu[dtmf][1])
                elif menu and bye:
                    record.heard.append(bye)
            record.status, record.err_code = ("completed" if code == CALL_DONE else "failed"), code
        now = time.time()
        item = {
            "call_id": record.id,
            "out_id": record.out_id,
            "callee": record.to,
            "start_time": _beijing(record.created_at),
            "end_time": _beijing(now),
            "status_time": _beijing(now),
            "duration": "30" if code == CALL_DONE else "0",
            "status_code": code,
            "status_msg": CALL_WORDS[code],
            "dtmf": dtmf,
            "hangup_direction": "1" if code == CALL_DONE else "",
            "toll_type": "LOCAL",
        }
        self._report(self.voice_report_url, item, phone.duplicate_receipts)

    def _query_sms(self, q: dict[str, str]) -> dict[str, Any]:
        to, day = q.get("PhoneNumber", ""), q.get("SendDate", "")
        size = min(50, int(q.get("PageSize", "10") or 10))
        page = max(1, int(q.get("CurrentPage", "1") or 1))
        with self._lock:
            found = [
                r
                for r in self.records
                if r.kind == "sms"
                and r.to == to
                and _beijing(r.created_at, "%Y%m%d") == day
                and (not q.get("BizId") or r.id == q["BizId"])
            ]
        found.reverse()
        shown = found[(page - 1) * size : page * size]
        status = {"sending": 1, "failed": 2, "delivered": 3}
        return {
            "Code": OK,
            "Message": "OK",
            "TotalCount": str(len(found)),
            "SmsSendDetailDTOs": {
                "SmsSendDetailDTO": [
                    {
                        "PhoneNum": r.to,
                        "SendStatus": status.get(r.status, 1),
                        "ErrCode": r.err_code,
                        "TemplateCode": r.template_code,
                        "Content": r.text,
                        "SendDate": _beijing(r.created_at),
                        "ReceiveDate": _beijing(r.created_at),
                        "OutId": r.out_id,
                    }
                    for r in shown
                ]
            },
        }

    def _call_detail(self, q: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            record = next((r for r in self.records if r.id == q.get("CallId")), None)
        if record is None:
            return {"Code": OK, "Message": "OK", "Data": ""}
        data = {
            "callee": record.to,
            "state": record.err_code or "-1",
            "stateDesc": CALL_WORDS.get(record.err_code, "呼叫中"),
            "startDate": _beijing(record.created_at),
            "dtmf": record.pressed,
        }
        return {"Code": OK, "Message": "OK", "Data": json.dumps(data, ensure_ascii=False)}

    def _cancel_call(self, q: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            found = any(r.id == q.get("CallId") for r in self.records)
        return {"Code": OK, "Message": "OK", "Status": found}

    # -- receipts --------------------------------------------------------------------------

    def _report(self, url: str, item: dict[str, Any], duplicate: bool) -> None:
        if not url:
            return
        with self._lock:
            if self.hold_receipts:
                self.held.append((url, item))
                return
        self._push(url, [item, item] if duplicate else [item])

    def _push(self, url: str, items: list[dict[str, Any]]) -> None:
        """POST the batch until it is acknowledged, as the service retries its pushes."""
        data = json.dumps(items, ensure_ascii=False).encode()
        for _ in range(self.push_attempts):
            request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 - loopback
            request.add_header("Content-Type", "application/json")
            try:
                answer = json.loads(call_back(request) or b"{}")
                if isinstance(answer, dict) and answer.get("code") == 0:
                    with self._lock:
                        self.pushes.append((url, items))
                    return
            except (OSError, ValueError):
                pass
            with self._lock:
                self.push_errors += 1
            if self._stopping.wait(self.push_retry_s):
                return


def variable_problem(prop: str, value: str) -> str | None:  # noqa: PLR0911 - one per rule
    """Why the service refuses `value` for a variable of property `prop`; None if it is fine."""
    if not value:
        return "is empty"
    if len(value) > MAX_VARIABLE_CHARS:
        return f"is longer than {MAX_VARIABLE_CHARS} characters"
    if "【" in value or "】" in value or _LINK.search(value):
        return "holds 【】 or a link"
    if prop == "mobilePhone":
        low, high = PHONE_DIGITS
        if not _DIGITS.fullmatch(value) or not low <= len(value) <= high:
            return "is not a phone number"
    elif prop == "characterWithNumber":
        if not _LETTERS_DIGITS.fullmatch(value):
            return "is not letters and digits"
    elif prop == "date" and not _DATE.fullmatch(value):
        return "is not a time"
    return None


def acs3_signature(
    secret: str, method: str, path: str, query: dict[str, str], headers: dict[str, str]
) -> str:
    """The V3 signature of a request; `headers` are the signed ones (names in lower case)."""
    canonical_query = "&".join(
        f"{k}={urllib.parse.quote(query[k], safe='~')}" for k in sorted(query)
    )
    names = sorted(headers)
    canonical_headers = "".join(f"{n}:{headers[n].strip()}\n" for n in names)
    canonical = "\n".join(
        [
            method,
            path or "/",
            canonical_query,
            canonical_headers,
            ";".join(names),
            headers.get("x-acs-content-sha256", ""),
        ]
    )
    to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def _beijing(at: float, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return datetime.fromtimestamp(at, BEIJING).strftime(fmt)


class _Handler(FakeHandler):
    fake: FakeAliyun
    json_type = "application/json;charset=utf-8"

    def _refuse(self, status: int, code: str, message: str) -> None:
        with self.fake._lock:
            self.fake.rejected.append(code)
        self._reply(status, {"RequestId": str(uuid.uuid4()), "Code": code, "Message": message})

    def _verified(self, body: bytes) -> bool:  # noqa: PLR0911 - one refusal per check
        """Check the request's V3 signature; refuse it (and say why) if it does not hold."""
        match = _AUTH.match(self.headers.get("Authorization", ""))
        if match is None:
            self._refuse(400, "MissingAuthorization", "no ACS3-HMAC-SHA256 Authorization")
            return False
        if match["ak"] != self.fake.access_key_id:
            self._refuse(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
            return False
        signed = match["headers"].split(";")
        if any(name not in signed for name in SIGNED_REQUIRED):
            self._refuse(
                400, "SignatureDoesNotMatch", f"these headers must be signed: {SIGNED_REQUIRED}"
            )
            return False
        headers = {name: ",".join(self.headers.get_all(name) or []) for name in signed}
        if headers["x-acs-content-sha256"] != hashlib.sha256(body).hexdigest():
            self._refuse(400, "SignatureDoesNotMatch", "x-acs-content-sha256 is not the body's")
            return False
        try:
            stamp = datetime.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=UTC
            )
        except ValueError:
            self._refuse(400, "InvalidTimeStamp.Format", "x-acs-date is not ISO 8601 UTC")
            return False
        if abs(stamp.timestamp() - time.time()) > DATE_SKEW_S:
            self._refuse(400, "InvalidTimeStamp.Expired", "x-acs-date is too far from now")
            return False
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        expected = acs3_signature(
            self.fake.access_key_secret, self.command, split.path, query, headers
        )
        if not hmac.compare_digest(expected, match["signature"]):
            self._refuse(
                400, "SignatureDoesNotMatch", "Specified signature does not match our calculation."
            )
            return False
        nonce = self.headers.get("x-acs-signature-nonce", "")
        with self.fake._lock:
            used = not nonce or nonce in self.fake._nonces
            self.fake._nonces.add(nonce)
        if used:
            self._refuse(400, "SignatureNonceUsed", "the signature nonce has been used")
            return False
        return True

    def _api(self) -> None:
        body = self._body()
        if not self._verified(body):
            return
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        if body:
            query.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        if self.headers.get("x-acs-version") != SMS_VERSION:
            self._refuse(400, "InvalidVersion", "unknown API version")
            return
        try:
            answer = self.fake.handle(self.headers.get("x-acs-action", ""), query)
        except AnswerLost:
            self.close_connection = True  # taken, and no answer ever comes back
            return
        self._reply(HTTPStatus.OK, answer)

    def on_post(self) -> None:
        """An API request (the SDK POSTs RPC actions)."""
        self._api()

    def on_get(self) -> None:
        """What every phone received; or an API request."""
        if urllib.parse.urlsplit(self.path).path.rstrip("/") == "/phones":
            with self.fake._lock:
                records = [asdict(r) for r in self.fake.records]
            self._reply(HTTPStatus.OK, records)
            return
        self._api()

    def on_put(self) -> None:
        """Set how a phone behaves."""
        if not self.path.startswith("/phones/"):
            self._reply(HTTPStatus.NOT_FOUND, {"message": "Not Found"})
            return
        try:
            changes = json.loads(self._body() or b"{}")
        except ValueError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"message": str(exc)})
            return
        allowed = {f.name for f in fields(AliyunPhone)}
        if not isinstance(changes, dict) or set(changes) - allowed:
            self._reply(
                HTTPStatus.BAD_REQUEST, {"message": f"settings are among {sorted(allowed)}"}
            )
            return
        phone = self.fake.phone(urllib.parse.unquote(self.path.removeprefix("/phones/")))
        for key, value in changes.items():
            setattr(phone, key, value)
        self._reply(HTTPStatus.OK, asdict(phone))
