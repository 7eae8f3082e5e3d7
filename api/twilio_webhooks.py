"""Twilio webhooks: delivery status callbacks, the call's TwiML, and the secretary's keypress.

Every request must carry a valid X-Twilio-Signature computed over the public URL (so the
check holds behind a reverse proxy); anything else gets 403 and changes nothing.
"""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from alerts import Notification, render
from alerts.providers.twilio_provider import BAD_NUMBER_CODES
from alerts.templates import ACCEPTED_WORDS, DECLINABLE_MENUS, voice_menu
from gateway.application import Application, TicketError
from gateway.errors import GatewayError

log = logging.getLogger(__name__)
SAY_LANGUAGE = {"zh-CN": "cmn-CN", "en": "en-GB"}
XML = "application/xml"


def twilio_router(app: Application) -> APIRouter:  # noqa: PLR0915 - one closure per route
    """Routes under /webhooks/twilio, bound to one running gateway's facade."""
    settings = app.settings.notify
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    public = settings.public_url.rstrip("/")
    router = APIRouter(prefix="/webhooks/twilio")

    async def signed_form(request: Request) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        url = public + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not validator.validate(url, form, signature):
            app.reject_webhook("bad_signature")
            log.warning("webhook with a bad signature", extra={"path": request.url.path})
            raise HTTPException(status_code=403, detail="invalid Twilio signature")
        return form

    Form = Annotated[dict[str, str], Depends(signed_form)]  # noqa: N806 - a type alias

    async def notification(notification_id: int) -> Notification:
        found = await app.notification(notification_id)
        if found is None:
            raise HTTPException(status_code=404, detail="no such notification")
        return found

    @router.post("/status/{notification_id}", status_code=204)
    async def status(notification_id: int, form: Form) -> Response:
        sid = form.get("MessageSid") or form.get("CallSid") or ""
        state = form.get("MessageStatus") or form.get("CallStatus") or ""
        if not sid or not state:
            app.reject_webhook("incomplete")
            raise HTTPException(status_code=400, detail="MessageSid/CallSid and a status needed")
        error = form.get("ErrorCode", "")
        bad_number = error.isdigit() and int(error) in BAD_NUMBER_CODES
        await app.record_delivery_status(notification_id, sid, state, bad_number=bad_number)
        return Response(status_code=204)

    def spoken(n: Notification, *templates: str, **params: str) -> VoiceResponse:
        response = VoiceResponse()
        for template in templates:
            response.say(
                render(template, n.language, {**n.params, **params}),
                language=SAY_LANGUAGE.get(n.language, "cmn-CN"),
            )
        return response

    def twiml(response: VoiceResponse) -> Response:
        return Response(content=str(response), media_type=XML)

    async def accepted(n: Notification, notification_id: int, call_sid: str) -> VoiceResponse:
        """Thank the responder and, where the resident has a phone, put them through."""
        phone = None
        if settings.bridge_to_resident and call_sid and n.ticket_id is not None:
            assert n.contact_id is not None
            phone = await app.start_bridge(n.ticket_id, n.contact_id, call_sid)
        words = ACCEPTED_WORDS.get(voice_menu(n.template), "voice_accepted")
        if phone is None:
            return spoken(n, words)
        response = spoken(n, words, "voice_connecting")
        dial = Dial(
            caller_id=settings.twilio_from or None,
            action=f"/webhooks/twilio/bridge/{notification_id}",
        )
        dial.number(phone)
        response.append(dial)
        return response

    @router.post("/bridge/{notification_id}")
    async def bridge_ended(notification_id: int, form: Form) -> Response:
        n = await notification(notification_id)
        if n.ticket_id is not None:
            await app.end_bridge(n.ticket_id, form.get("CallSid", ""))
        response = VoiceResponse()
        response.hangup()
        return twiml(response)

    @router.post("/voice/{notification_id}")
    async def voice(notification_id: int, _form: Form) -> Response:
        found = await app.call_script(notification_id)
        if found is None:
            raise HTTPException(status_code=404, detail="no such notification")
        n, text = found
        language = SAY_LANGUAGE.get(n.language, "cmn-CN")
        response = VoiceResponse()
        gather = Gather(
            num_digits=1, timeout=8, action=f"/webhooks/twilio/gather/{notification_id}"
        )
        gather.say(text, language=language)
        menu = voice_menu(n.template)
        gather.say(render(menu, n.language, n.params), language=language)
        response.append(gather)
        response.say(render("voice_no_input", n.language, n.params), language=language)
        return twiml(response)

    async def resident_answer(n: Notification, notification_id: int, digit: str) -> Response:
        """The resident's own answer to "are you OK?" (no ticket, no contact): well, or away."""
        if digit not in ("1", "2"):
            response = VoiceResponse()
            response.redirect(f"/webhooks/twilio/voice/{notification_id}")
            return twiml(response)
        household = n.params.get("household", "")
        try:
            if digit == "1":
                await app.water_answered_by_phone(household)
            else:
                await app.water_away_by_phone(household)
        except GatewayError:
            log.warning("a safety call's answer found no watch", extra={"id": notification_id})
        return twiml(spoken(n, "voice_water_ok" if digit == "1" else "voice_water_away"))

    @router.post("/gather/{notification_id}")
    async def gather(notification_id: int, form: Form) -> Response:  # noqa: PLR0911 - one answer per menu and key
        n = await notification(notification_id)
        digit = form.get("Digits", "")
        if digit:
            await app.record_keypress(notification_id, digit)
        if voice_menu(n.template) == "voice_menu_water_ask":
            return await resident_answer(n, notification_id, digit)
        if n.ticket_id is None or n.contact_id is None:
            return twiml(spoken(n, "voice_closed"))
        menu = voice_menu(n.template)
        call_sid = form.get("CallSid", "")
        try:
            if digit == "1" and menu == "voice_menu_take_over":
                # Called because the owner has not arrived: pressing 1 hands it to them.
                await app.reassign_ticket(n.ticket_id, n.contact_id, n.contact_id, "voice_keypress")
                return twiml(spoken(n, "voice_taken_over"))
            if digit == "1" and menu == "voice_menu_owner":
                return twiml(spoken(n, "voice_owner_ack"))
            if digit == "1":
                result = await app.accept_ticket(n.ticket_id, n.contact_id, "voice_keypress")
                if result.won:
                    return twiml(await accepted(n, notification_id, call_sid))
                if result.owner_contact_id == n.contact_id:
                    # Their own ticket: never "someone else has it, you need not go".
                    return twiml(spoken(n, "voice_you_own"))
                name = await app.contact_name(result.owner_contact_id)
                owner = "-" if name is None else name
                return twiml(spoken(n, "voice_taken", owner=owner))
            if digit == "2" and menu in DECLINABLE_MENUS:
                await app.decline_ticket(n.ticket_id, n.contact_id, "voice_keypress")
                return twiml(spoken(n, "voice_passed_on"))
        except TicketError:
            return twiml(spoken(n, "voice_closed"))
        response = VoiceResponse()
        response.redirect(f"/webhooks/twilio/voice/{notification_id}")
        return twiml(response)

    return router
