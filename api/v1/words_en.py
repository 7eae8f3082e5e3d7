"""English: the API's error messages, after the Chinese."""

from typing import Final

TEXT: Final[dict[str, str]] = {
    "not_signed_in": (
        "Not signed in: sign in first (POST /api/v1/session) or send an API token"
        " (Authorization: Bearer ...)."
    ),
    "session_expired": "Your sign-in has expired: sign in again.",
    "bad_token": (
        "The API token is unknown, revoked or expired: ask an administrator for a new one"
        " (bidao user token)."
    ),
    "bad_credentials": "Wrong login or password: check them and try again.",
    "rate_limited": "Too many failed sign-ins: try again in {retry_after_s} s.",
    "disabled": "This user is disabled: ask an administrator.",
    "forbidden": "Your role may not do this.",
    "not_found": "Not found: no {what} {key}, or it is outside the units you answer for.",
    "no_contact": (
        "Your account is not linked to a responder contact, so it cannot act on tickets: ask an"
        " administrator to link one (bidao user add --contact)."
    ),
    "bad_input": "Bad input: {detail}",
    "ticket_conflict": "The ticket's state does not allow this: {detail}. Reload and look again.",
    "not_an_alarm": "This ticket is a call, not an alarm: it has no alarm outcome.",
    "bad_outcome": "This kind of alarm cannot have that outcome: {detail}",
    "not_running": "This needs the running gateway.",
    "water_refused": "The water watch request was refused: {detail}",
    "device_refused": "The device request was refused: {detail}",
    "no_metrics": "No metrics yet.",
    "cross_site": "Refused: the request came from another site. Use this system's own pages.",
    "internal": "Internal error: it was logged; try again later or ask an administrator.",
}
