"""Rendering templates kept in one module per language (alerts/locales), within SMS limits."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from types import ModuleType

from alerts.locales import en, zh_cn

LOCALES: dict[str, ModuleType] = {"zh-CN": zh_cn, "en": en}
CATALOGS: dict[str, Mapping[str, str]] = {lang: m.TEMPLATES for lang, m in LOCALES.items()}
DEFAULT_LANGUAGE = "zh-CN"

SMS_MAX_PARTS = 3
"""A message may span at most this many concatenated SMS parts."""
GSM7_PART_CHARS = 153
UCS2_PART_UNITS = 67
_GSM7_EXTENDED = frozenset("^{}\\[~]|€")
ELLIPSIS = "…"


LINK_VARIANTS: Mapping[str, str] = {
    "ticket_accepted": "ticket_accepted_link",
    "ticket_reassigned_sms": "ticket_reassigned_sms_link",
    "ticket_taken_over": "ticket_taken_over_link",
    "alarm_accepted": "alarm_accepted_link",
    "alarm_reassigned_sms": "alarm_reassigned_sms_link",
    "alarm_taken_over": "alarm_taken_over_link",
}
"""Messages to the one who has a ticket, and their variant with the signed link (`${link}`);
without links configured the plain one is sent, never a broken link."""

VOICE_MENUS: Mapping[str, str] = {
    "ticket_call": "voice_menu",
    "ticket_call_repeat": "voice_menu",
    "ticket_still_waiting": "voice_menu",
    "ticket_escalated_no_answer": "voice_menu",
    "ticket_escalated_not_accepted": "voice_menu",
    "ticket_escalated_declined": "voice_menu",
    "ticket_escalated_unreachable": "voice_menu",
    "ticket_not_arrived": "voice_menu_take_over",
    "ticket_pressed_again_accepted": "voice_menu_owner",
    "ticket_pressed_again_on_site": "voice_menu_owner",
    "ticket_reassigned_to_you": "voice_menu_owner",
    "no_water_alarm": "voice_menu_alarm",
    "no_water_alarm_morning": "voice_menu_alarm",
    "leak_alarm": "voice_menu_alarm",
    "no_water_alarm_escalated": "voice_menu_alarm",
    "leak_alarm_escalated": "voice_menu_alarm",
    "alarm_not_arrived": "voice_menu_take_over",
    "water_ask_resident": "voice_menu_water_ask",
    "water_ask_resident_morning": "voice_menu_water_ask",
}
"""What a call offers after its message, by the message's template: only what is true for
the one called (accept a call nobody has; take over from one who has not arrived; the
owner confirms). A template not listed offers accept/pass on."""


DECLINABLE_MENUS = frozenset({"voice_menu", "voice_menu_alarm"})
"""Menus whose 2 passes the call on."""
ACCEPTED_WORDS: Mapping[str, str] = {"voice_menu_alarm": "voice_alarm_accepted"}
"""What is said to one who pressed 1, by menu (not listed: `voice_accepted`, a call's)."""


def voice_menu(template: str) -> str:
    """The menu template a call with `template` ends with."""
    return VOICE_MENUS.get(template, "voice_menu")


class TemplateError(Exception):
    """Unknown template or a parameter missing."""


def _locale(language: str) -> ModuleType:
    return LOCALES.get(language, LOCALES[DEFAULT_LANGUAGE])


ADDED_LATER = ("phone", "owner_phone")
"""Parameters added to existing templates after messages were written without them (an
outbox row from before an upgrade): shown as "not recorded" rather than failing the send."""


def render(template: str, language: str, params: Mapping[str, str]) -> str:
    """The text of `template` in `language` (Chinese if the language is not available)."""
    catalog = CATALOGS.get(language, CATALOGS[DEFAULT_LANGUAGE])
    try:
        text = catalog[template]
    except KeyError:
        raise TemplateError(f"unknown template {template!r}") from None
    if any(name not in params for name in ADDED_LATER):
        missing = catalog.get("not_recorded", "")
        params = {**dict.fromkeys(ADDED_LATER, missing), **params}
    try:
        return string.Template(text).substitute(params)
    except KeyError as exc:
        raise TemplateError(f"template {template!r} needs parameter {exc}") from None


def sms_units(text: str) -> tuple[int, int]:
    """(units used, units allowed) of `text` as an SMS of at most SMS_MAX_PARTS parts.

    Plain ASCII goes as GSM-7 (extension characters take two units); anything else, such
    as Chinese, goes as UCS-2, where a character outside the BMP takes two units.
    """
    if text.isascii():
        used = len(text) + sum(1 for c in text if c in _GSM7_EXTENDED)
        return used, SMS_MAX_PARTS * GSM7_PART_CHARS
    return _ucs2_units(text), SMS_MAX_PARTS * UCS2_PART_UNITS


def fits_sms(text: str) -> bool:
    """Whether `text` goes in at most SMS_MAX_PARTS parts."""
    used, allowed = sms_units(text)
    return used <= allowed


def fit_sms(text: str) -> str:
    """`text`, cut short with an ellipsis if it would need more than SMS_MAX_PARTS parts."""
    if fits_sms(text):
        return text
    # With the ellipsis the text is UCS-2: keep the longest prefix that leaves room for it.
    room = SMS_MAX_PARTS * UCS2_PART_UNITS - _ucs2_units(ELLIPSIS)
    used = cut = 0
    for char in text:
        used += _ucs2_units(char)
        if used > room:
            break
        cut += 1
    return text[:cut] + ELLIPSIS


def _ucs2_units(text: str) -> int:
    """UTF-16 code units of `text` (a character outside the BMP takes two)."""
    return sum(2 if ord(c) > 0xFFFF else 1 for c in text)


def render_digest(language: str, texts: Sequence[str]) -> str:
    """One message standing for several: identical texts counted, different ones listed."""
    count = str(len(texts))
    if len(set(texts)) == 1:
        return render("digest_same", language, {"text": texts[0], "count": count})
    locale = _locale(language)
    items = locale.LIST_SEPARATOR.join(
        t.removeprefix(locale.SMS_PREFIX).rstrip(locale.SENTENCE_END) for t in texts
    )
    return render("digest", language, {"count": count, "items": items})
