"""Twilio: SMS and voice calls through the official library (abroad, demos, non-mainland numbers).

Twilio places no outbound calls into mainland China and has no two-way SMS there; mainland
numbers go to the domestic provider. Status callbacks and the call's TwiML are served by
the API's webhooks under `public_url`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from alerts.notification import Channel
from alerts.providers.base import OutgoingMessage, ProviderError, Receipt, SentItem

# Twilio error codes for numbers that will never work: invalid, not mobile, unreachable,
# blocked or opted out; 30005 (unknown handset) and 13224 (invalid number) come in status
# callbacks of messages and calls.
BAD_NUMBER_CODES = frozenset({13224, 21211, 21214, 21217, 21407, 21408, 21610, 21612, 21614, 30005})
LOOKUP_PAGE = 50
CLOCK_SKEW_S = 300.0
"""How far Twilio's clock may be behind ours when settling an in-doubt send."""


class _RedirectingHttpClient(TwilioHttpClient):  # type: ignore[misc] # twilio has no type hints
    """Sends the library's requests to another base URL (the fake phone network in tests)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        """Rewrite scheme and host, keep the path."""
        parts = urlsplit(url)
        target = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, ""))
        return super().request(method, target, *args, **kwargs)


class TwilioProvider:
    """Sends through Twilio's REST API; callbacks come back to `public_url`."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        public_url: str,
        api_base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        http_client = (
            _RedirectingHttpClient(api_base_url, timeout)
            if api_base_url
            else TwilioHttpClient(timeout=timeout)
        )
        self._client = Client(account_sid, auth_token, http_client=http_client)
        self._from = from_number
        self._public_url = public_url.rstrip("/")

    @property
    def name(self) -> str:
        """The provider's name."""
        return "twilio"

    def callback_url(self, notification_id: int) -> str:
        """Where Twilio reports delivery of one notification."""
        return f"{self._public_url}/webhooks/twilio/status/{notification_id}"

    def voice_url(self, notification_id: int) -> str:
        """Where Twilio fetches the TwiML of one call."""
        return f"{self._public_url}/webhooks/twilio/voice/{notification_id}"

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Create the message or call (the library is blocking: it runs in a thread)."""
        try:
            return await asyncio.to_thread(self._send, message)
        except TwilioRestException as exc:
            raise _provider_error(exc) from exc
        except ValueError as exc:
            raise _unreadable(exc) from exc

    async def sent_since(self, channel: Channel, to: str, since: float) -> list[SentItem]:
        """The newest messages or calls to `to` created since `since`, newest first."""
        try:
            return await asyncio.to_thread(self._sent_since, channel, to, since)
        except TwilioRestException as exc:
            raise _provider_error(exc) from exc
        except ValueError as exc:
            raise _unreadable(exc) from exc

    async def end_call(self, provider_id: str) -> None:
        """Complete a call in progress (a bridged call ends for both sides)."""
        try:
            await asyncio.to_thread(
                lambda: self._client.calls(provider_id).update(status="completed")
            )
        except TwilioRestException as exc:
            raise _provider_error(exc) from exc
        except ValueError as exc:
            raise _unreadable(exc) from exc

    def _sent_since(self, channel: Channel, to: str, since: float) -> list[SentItem]:
        earliest = datetime.fromtimestamp(since - CLOCK_SKEW_S, UTC)
        if channel == "sms":
            return [
                SentItem(str(m.sid), str(m.status), str(m.body))
                for m in self._client.messages.list(to=to, limit=LOOKUP_PAGE)
                if m.date_created is None or m.date_created >= earliest
            ]
        return [
            SentItem(str(c.sid), str(c.status))
            for c in self._client.calls.list(to=to, limit=LOOKUP_PAGE)
            if (c.date_created is None or c.date_created >= earliest) and not c.parent_call_sid
        ]

    def _send(self, message: OutgoingMessage) -> Receipt:
        callback = self.callback_url(message.notification_id)
        if message.channel == "sms":
            sms = self._client.messages.create(
                to=message.to, from_=self._from, body=message.text, status_callback=callback
            )
            return _receipt(sms.sid, sms.status)
        call = self._client.calls.create(
            to=message.to,
            from_=self._from,
            url=self.voice_url(message.notification_id),
            status_callback=callback,
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            machine_detection="Enable",
        )
        return _receipt(call.sid, call.status)


def _receipt(sid: object, status: object) -> Receipt:
    """What Twilio took, under its id; an answer without an id is no answer."""
    if not isinstance(sid, str) or not sid:
        raise _unreadable(ValueError("no sid in the answer"))
    return Receipt(sid, str(status or "queued"))


def _unreadable(exc: ValueError) -> ProviderError:
    """Twilio (or something in its place) answered success with a body that is not JSON."""
    return ProviderError(
        f"the answer is not Twilio's JSON (an HTML page?): {exc}", code="unreadable_answer"
    )


def _provider_error(exc: TwilioRestException) -> ProviderError:
    code = int(exc.code or 0)
    permanent = code in BAD_NUMBER_CODES or 400 <= int(exc.status) < 500
    return ProviderError(
        exc.msg, permanent=permanent, bad_number=code in BAD_NUMBER_CODES, code=str(code)
    )
