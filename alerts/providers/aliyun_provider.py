"""Alibaba Cloud: mainland SMS (Dysmsapi) and voice (Dyvmsapi) through the official SDKs.

An SMS goes out as `SendSms` under the registered signature with the approved template of
its kind (alerts/carrier_templates.py) and the kind's variables; a call goes out as an
`IvrCall` whose start template says the message and its menu, with the words to play
after each key. Every request carries the notification id as `OutId`, which comes back in
the receipts (HTTP push to api/aliyun_webhooks.py) and in `QuerySendDetails`.

Errors are sorted by what they call for: an invalid or blacklisted number flags the contact;
a carrier's flow control is retried later; a template or signature not approved, a wrong
AccessKey or an empty balance alarms the operator (and is retried, bounded by the outbox's
attempts, except a template the provider refuses, which no retry will mend).

An in-doubt SMS is looked up with `QuerySendDetails` (by number and day, matched on OutId);
the listing has no BizId, so one found there is recorded under `out-<OutId>`, which its
receipt then matches.
The voice API's call detail query needs the CallId the lost answer carried, so an in-doubt
call is settled by its receipt (which carries OutId) instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client as SmsClient
from alibabacloud_dyvmsapi20170525 import models as voice_models
from alibabacloud_dyvmsapi20170525.client import Client as VoiceClient
from alibabacloud_tea_openapi import models as open_api
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException

from alerts.carrier_templates import (
    NO_KEY_WORDS,
    CarrierTemplate,
    CarrierTemplateError,
    by_name,
    menu_of,
    normalise,
    sms_kind,
    template_params,
)
from alerts.notification import Channel
from alerts.providers.base import (
    LookupUnavailableError,
    OutgoingMessage,
    ProviderError,
    Receipt,
    SentItem,
)

SMS_ENDPOINT = "dysmsapi.aliyuncs.com"
VOICE_ENDPOINT = "dyvmsapi.aliyuncs.com"
BEIJING = timezone(timedelta(hours=8))
CLOCK_SKEW_S = 300.0
LOOKUP_PAGE = 50
LOOKUP_DAYS = 3
"""At most this many days (Beijing dates) are searched for an in-doubt SMS."""

BAD_NUMBER_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.BLACK_LIST_CONTROL"})
"""Business codes for a number that will never work (invalid, blacklisted)."""
THROTTLED_CODES = frozenset(
    {"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling.User", "Throttling"}
)
"""The carrier's or provider's flow control: hold and try again later."""
TEMPLATE_CODES = frozenset(
    {
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.TTS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_PARAMETERS",
        "isv.PARAM_LENGTH_LIMIT",
    }
)
"""A template or signature the provider will not send: an administrator must act."""
ACCOUNT_CODES = frozenset(
    {
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isv.ACCOUNT_ABNORMAL",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "Forbidden.RAM",
    }
)
"""The account cannot send (no balance, wrong or disabled AccessKey): alarm the operator."""
SMS_BAD_NUMBER_RECEIPTS = frozenset({"MOBILE_IN_BLACK", "MOBILE_NOT_EXIST", "MK:0001"})
"""SmsReport err_codes for a number that will never receive (blacklisted, does not exist)."""
CALL_STATES: Mapping[str, tuple[str, bool]] = {
    "200000": ("completed", False),
    "200001": ("busy", False),
    "200002": ("busy", False),
    "200003": ("no-answer", False),
    "200004": ("failed", False),
    "200005": ("no-answer", False),
    "200010": ("failed", True),
    "200011": ("failed", True),
}
"""VoiceReport status_code → (our delivery state, a bad number); others are "failed"."""


class AccountAlarmError(ProviderError):
    """The provider refused for a reason only an administrator can mend."""

    operator_alarm = True


def lookup_id(out_id: str) -> str:
    """The id an SMS found by `QuerySendDetails` is recorded under (the listing has no BizId)."""
    return f"out-{out_id}"


def sms_receipt_state(success: bool, err_code: str) -> tuple[str, bool]:
    """(delivery state, bad number) of one SmsReport."""
    if success:
        return "delivered", False
    return "undelivered", err_code in SMS_BAD_NUMBER_RECEIPTS


def call_receipt_state(status_code: str) -> tuple[str, bool]:
    """(delivery state, bad number) of one VoiceReport."""
    return CALL_STATES.get(status_code, ("failed", False))


class AliyunProvider:
    """Sends through Alibaba Cloud's SMS and voice APIs; receipts are pushed to the API."""

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        show_number: str,
        template_codes: Mapping[str, str],
        *,
        sms_endpoint: str = SMS_ENDPOINT,
        voice_endpoint: str = VOICE_ENDPOINT,
        protocol: str = "https",
        timeout: float = 10.0,
    ) -> None:
        ms = int(timeout * 1000)

        def config(endpoint: str) -> open_api.Config:
            return open_api.Config(
                access_key_id=access_key_id,
                access_key_secret=access_key_secret,
                endpoint=endpoint,
                protocol=protocol,
                read_timeout=ms,
                connect_timeout=ms,
            )

        self._sms = SmsClient(config(sms_endpoint))
        self._voice = VoiceClient(config(voice_endpoint))
        self._sign_name = sign_name
        self._show_number = show_number
        self._codes = dict(template_codes)
        self._templates = by_name()

    @property
    def name(self) -> str:
        """The provider's name."""
        return "aliyun"

    def can_merge(self, _to: str) -> bool:
        """Never: a digest has no approved template, so held messages go one by one."""
        return False

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Send the SMS or place the call (the SDK is blocking: it runs in a thread)."""
        return await asyncio.to_thread(self._guarded, self._send, message)

    async def sent_since(self, channel: Channel, to: str, since: float) -> list[SentItem]:
        """The SMS the provider took for `to` since `since`, newest first; calls: unavailable."""
        if channel != "sms":
            raise LookupUnavailableError(
                "the call detail query needs the CallId; the call's receipt settles it",
                code="no_call_listing",
            )
        return await asyncio.to_thread(self._guarded, self._sent_since, to, since)

    async def end_call(self, provider_id: str) -> None:
        """Cancel a call not yet answered."""
        request = voice_models.CancelCallRequest(call_id=provider_id)
        await asyncio.to_thread(self._guarded, self._voice.cancel_call, request)

    # -- in a thread ----------------------------------------------------------------------

    @staticmethod
    def _guarded(call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except ClientException as exc:
            raise _provider_error(str(exc.code or ""), str(exc.message or exc)) from exc
        except ServerException as exc:
            raise ProviderError(str(exc.message or exc), code=str(exc.code or "")) from exc

    def _template(self, name: str) -> tuple[CarrierTemplate, str]:
        template = self._templates.get(name)
        code = self._codes.get(name, "")
        if template is None or not code:
            raise AccountAlarmError(
                f"no approved template for {name}", permanent=True, code="template_missing"
            )
        return template, code

    def _params(self, template: CarrierTemplate, params: Mapping[str, str]) -> str:
        try:
            values = template_params(template, params)
        except CarrierTemplateError as exc:
            raise ProviderError(str(exc), permanent=True, code="template_params") from exc
        return json.dumps(values, ensure_ascii=False)

    def _send(self, message: OutgoingMessage) -> Receipt:
        kind = sms_kind(message.template)
        number = normalise("phone", message.to)
        out_id = str(message.notification_id)
        if message.channel == "sms":
            template, code = self._template(f"sms.{kind}")
            sms = sms_models.SendSmsRequest(
                phone_numbers=number,
                sign_name=self._sign_name,
                template_code=code,
                template_param=self._params(template, message.params),
                out_id=out_id,
            )
            body = self._sms.send_sms(sms).body
            _check(body.code, body.message)
            return _receipt(body.biz_id)
        template, code = self._template(f"tts.{kind}")
        menu = []
        for key, words in menu_of(kind).items():
            reply, reply_code = self._template(f"tts.{words}")
            menu.append(
                voice_models.IvrCallRequestMenuKeyMap(
                    key=key, code=reply_code, tts_params=self._params(reply, message.params)
                )
            )
        _, bye = self._template(f"tts.{NO_KEY_WORDS}")
        call = voice_models.IvrCallRequest(
            called_number=number,
            called_show_number=self._show_number,
            start_code=code,
            start_tts_params=self._params(template, message.params),
            menu_key_map=menu,
            bye_code=bye,
            play_times=2,
            timeout=8000,
            out_id=out_id,
        )
        answer = self._voice.ivr_call(call).body
        _check(answer.code, answer.message)
        return _receipt(answer.call_id)

    def _sent_since(self, to: str, since: float) -> list[SentItem]:
        number = normalise("phone", to)
        earliest = since - CLOCK_SKEW_S
        first = datetime.fromtimestamp(earliest, BEIJING).date()
        last = max(first, datetime.now(BEIJING).date())
        days = [last - timedelta(days=n) for n in range((last - first).days + 1)][:LOOKUP_DAYS]
        items: list[SentItem] = []
        for day in days:
            request = sms_models.QuerySendDetailsRequest(
                phone_number=number,
                send_date=day.strftime("%Y%m%d"),
                page_size=LOOKUP_PAGE,
                current_page=1,
            )
            body = self._sms.query_send_details(request).body
            _check(body.code, body.message)
            dtos = body.sms_send_detail_dtos
            for dto in (dtos.sms_send_detail_dto if dtos else None) or []:
                sent = datetime.strptime(f"{dto.send_date} +0800", "%Y-%m-%d %H:%M:%S %z")
                if sent.timestamp() < earliest:
                    continue
                # A failure is left to its receipt, which makes the SMS fall back to a call.
                status = "delivered" if int(dto.send_status or 1) == 3 else "sent"
                reference = str(dto.out_id or "")
                items.append(
                    SentItem(lookup_id(reference), status, str(dto.content or ""), reference)
                )
        return items


def _check(code: object, message: object) -> None:
    """Business errors come back with HTTP 200 and their code."""
    if code != "OK":
        raise _provider_error(str(code or ""), str(message or ""))


def _receipt(provider_id: object) -> Receipt:
    if not isinstance(provider_id, str) or not provider_id:
        raise ProviderError("the answer carries no id", code="unreadable_answer")
    return Receipt(provider_id, "queued")


def _provider_error(code: str, message: str) -> ProviderError:
    """The provider's code mapped onto ours, with the reaction it calls for."""
    text = f"{message} ({code})" if code else message
    if code in BAD_NUMBER_CODES:
        return ProviderError(text, bad_number=True, code=code)
    if code in THROTTLED_CODES:
        return ProviderError(text, code=code)
    if code in TEMPLATE_CODES:
        return AccountAlarmError(text, permanent=True, code=code)
    if code in ACCOUNT_CODES:
        return AccountAlarmError(text, code=code)
    return ProviderError(text, code=code)
