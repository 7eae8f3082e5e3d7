"""Alibaba Cloud receipts: SMS and voice reports pushed over HTTP (消息回执, HTTP push).

The provider pushes a JSON array of reports to the URL configured for each report type and
retries until it gets `{"code": 0}`. Its push is not signed, so the URL holds a secret
token (`notify.aliyun_receipt_token`); a wrong token gets 403 and changes nothing. Each
report names its notification by the `out_id` it was sent with and the provider's id
(`biz_id`, `call_id`), which must be the one recorded for that notification.

Reports are applied idempotently: a status never moves back, so a duplicated or late
report changes nothing, and a call's key (`dtmf`) is acted on only by the report that
first makes the call final. The key is recorded before the call's final state, so a call
answered with a key is never retried as unanswered.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from alerts import Notification
from alerts.providers.aliyun_provider import call_receipt_state, lookup_id, sms_receipt_state
from alerts.templates import DECLINABLE_MENUS, voice_menu
from gateway.application import Application, TicketError
from gateway.errors import GatewayError

log = logging.getLogger(__name__)
ACK = {"code": 0, "msg": "成功"}
MAX_BODY = 1 << 20
"""The largest push taken (the provider batches at most a few hundred reports)."""

Report = dict[str, Any]


def aliyun_router(app: Application) -> APIRouter:
    """Routes under /webhooks/aliyun/<token>, bound to one running gateway's facade."""
    token = app.settings.notify.aliyun_receipt_token.get_secret_value()
    router = APIRouter(prefix="/webhooks/aliyun")

    async def reports(request: Request, given: str) -> list[Report]:
        if not hmac.compare_digest(given.encode(), token.encode()):
            app.reject_webhook("bad_token")
            log.warning("receipt push with a wrong token")
            raise HTTPException(status_code=403, detail="unknown receipt URL")
        body = await request.body()
        if len(body) > MAX_BODY:
            app.reject_webhook("unreadable")
            raise HTTPException(status_code=413, detail="push too large")
        try:
            items = json.loads(body)
        except ValueError as exc:
            app.reject_webhook("unreadable")
            raise HTTPException(status_code=400, detail=f"not a JSON array: {exc}") from None
        if not isinstance(items, list):
            app.reject_webhook("unreadable")
            raise HTTPException(status_code=400, detail="not a JSON array")
        return [item for item in items if isinstance(item, dict)]

    def notification_id(item: Report) -> int | None:
        out_id = str(item.get("out_id") or "")
        if not out_id.isdigit():
            app.reject_webhook("incomplete")
            return None
        return int(out_id)

    @router.post("/{given}/sms-report")
    async def sms_report(given: str, request: Request) -> JSONResponse:
        for item in await reports(request, given):
            nid, biz_id = notification_id(item), str(item.get("biz_id") or "")
            if nid is None or not biz_id:
                continue
            state, bad = sms_receipt_state(item.get("success") is True, str(item.get("err_code")))
            if not await app.record_delivery_status(nid, biz_id, state, bad_number=bad):
                # Found by the in-doubt lookup, it is recorded under its OutId instead.
                await app.record_delivery_status(nid, lookup_id(str(nid)), state, bad_number=bad)
        return JSONResponse(ACK)

    @router.post("/{given}/voice-report")
    async def voice_report(given: str, request: Request) -> JSONResponse:
        for item in await reports(request, given):
            nid, call_id = notification_id(item), str(item.get("call_id") or "")
            if nid is None or not call_id:
                continue
            state, bad = call_receipt_state(str(item.get("status_code") or ""))
            digit = str(item.get("dtmf") or "")[:1]
            if digit and state == "completed":
                await app.record_keypress(nid, digit)
            if await app.record_delivery_status(nid, call_id, state, bad_number=bad) and digit:
                n = await app.notification(nid)
                if n is not None:
                    await act_on_key(app, n, digit)
        return JSONResponse(ACK)

    return router


async def act_on_key(app: Application, n: Notification, digit: str) -> None:
    """What a key pressed in a call's menu does (the words after it were already played)."""
    if voice_menu(n.template) == "voice_menu_water_ask":
        household = n.params.get("household", "")
        answer = {"1": app.water_answered_by_phone, "2": app.water_away_by_phone}.get(digit)
        if answer is not None:
            try:
                await answer(household)
            except GatewayError:
                log.warning("a safety call's answer found no watch", extra={"key": digit})
        return
    if n.ticket_id is None or n.contact_id is None:
        return
    ticket, contact = n.ticket_id, n.contact_id
    menu = voice_menu(n.template)
    actions: dict[tuple[str, str], Callable[[], Coroutine[Any, Any, object]]] = {
        ("1", "voice_menu_take_over"): lambda: app.reassign_ticket(
            ticket, contact, contact, "voice_keypress"
        ),
        ("1", "voice_menu"): lambda: app.accept_ticket(ticket, contact, "voice_keypress"),
        ("1", "voice_menu_alarm"): lambda: app.accept_ticket(ticket, contact, "voice_keypress"),
    }
    if digit == "2" and menu in DECLINABLE_MENUS:
        actions[("2", menu)] = lambda: app.decline_ticket(ticket, contact, "voice_keypress")
    action = actions.get((digit, menu))
    if action is None:
        return
    try:
        await action()
    except TicketError:
        log.info("a key for a ticket that has moved on", extra={"ticket": ticket, "key": digit})
