"""Templates as mainland carriers see them: fixed text, variables and their rules.

A mainland SMS goes out only under a registered signature (签名) and an approved template
(模板): fixed text with `${name}` variables, each declared with a property that limits what
it may hold. Voice notifications likewise speak approved TTS templates. This module derives
both from the Simplified Chinese catalog (alerts/locales/zh_cn.py), so that what a carrier
approves is exactly what Bidao renders:

- `sms.<kind>`: the SMS text of a message kind without the signature (the carrier adds
  `【signature】` in front);
- `tts.<kind>`: what a call of that kind says, followed by its key menu (an IVR start);
- `tts.<reply>`: the words played after a key is pressed in a menu.

Kinds that carry a web link (`*_link`) are sent as their plain variant: carriers allow no
variable links. Digests are sent as the newest message's own template.

The variable properties and limits are our reading of the provider's rules for notification
templates (every variable 1 to 35 characters, no links, no 【】, a phone number 5 to 11
digits); `check_value` enforces them and tests/alerts/test_carrier_templates.py checks every
template at the longest realistic values.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from alerts.locales import zh_cn
from alerts.templates import LINK_VARIANTS, VOICE_MENUS, voice_menu

TemplateKind = Literal["sms", "tts"]
VarProperty = Literal["name", "address", "mobilePhone", "characterWithNumber", "date", "other"]

MAX_VARIABLE_CHARS = 35
"""The longest value any variable may take."""
MAX_TEMPLATE_CHARS = 500
"""The longest a template may be, variables at their values included."""
PHONE_DIGITS = (5, 11)

VARIABLES: Mapping[str, VarProperty] = {
    "resident": "name",
    "owner": "name",
    "previous": "name",
    "place": "address",
    "phone": "mobilePhone",
    "owner_phone": "mobilePhone",
    "ticket": "characterWithNumber",
    "minutes": "characterWithNumber",
    "called_minutes": "characterWithNumber",
    "presses": "characterWithNumber",
    "hours": "characterWithNumber",
    "count": "characterWithNumber",
    "away_days": "characterWithNumber",
    "since": "date",
    "now": "date",
    "until": "date",
    "first_use": "date",
    "usual": "date",
    "device": "other",
    "household": "other",
    "key_safe": "other",
    "health": "other",
}
"""Each variable Bidao sends, with the property it is declared with."""

PROPERTY_WORDS: Mapping[VarProperty, str] = {
    "name": "个人姓名",
    "address": "地址",
    "mobilePhone": "电话号码",
    "characterWithNumber": "其他号码",
    "date": "时间",
    "other": "其他",
}
"""The property as the provider's console names it (for `bidao templates export`)."""

MENU_KEYS: Mapping[str, Mapping[str, str]] = {
    "voice_menu": {"1": "voice_accepted", "2": "voice_passed_on"},
    "voice_menu_alarm": {"1": "voice_alarm_accepted", "2": "voice_passed_on"},
    "voice_menu_take_over": {"1": "voice_taken_over"},
    "voice_menu_owner": {"1": "voice_owner_ack"},
    "voice_menu_water_ask": {"1": "voice_water_ok", "2": "voice_water_away"},
}
"""What is played after each key of a menu (the key is then reported with the call)."""
NO_KEY_WORDS = "voice_no_input"
"""What is played when the menu got no key."""

_NOT_SENT = frozenset({"digest", "digest_same", "not_recorded", *LINK_VARIANTS.values()})
_DIGITS = re.compile(r"[0-9]+")
_LETTERS_DIGITS = re.compile(r"[0-9A-Za-z]+")
_DATE = re.compile(r"[0-9年月日时分秒:：/\- ]+")
_LINK = re.compile(r"https?://|www\.|\.(?:com|cn|net)\b", re.IGNORECASE)


class CarrierTemplateError(ValueError):
    """A value a carrier would refuse for a variable, or a kind without a template."""


@dataclass(frozen=True, slots=True)
class CarrierTemplate:
    """One template as an administrator submits it for approval."""

    name: str
    kind: TemplateKind
    text: str
    variables: tuple[tuple[str, VarProperty], ...]

    def rule(self) -> dict[str, str]:
        """The variables and their properties (the provider's TemplateRule)."""
        return dict(self.variables)


def _strip(text: str) -> str:
    return text.removeprefix(zh_cn.SMS_PREFIX)


def _variables(text: str) -> tuple[tuple[str, VarProperty], ...]:
    names: list[str] = []
    for match in string.Template.pattern.finditer(text):
        name = match["named"] or match["braced"]
        if name and name not in names:
            names.append(name)
    return tuple((name, VARIABLES.get(name, "other")) for name in names)


def message_kinds() -> list[str]:
    """Every message kind sent to a phone, each with an SMS and a TTS template."""
    return [k for k in zh_cn.TEMPLATES if not k.startswith("voice_") and k not in _NOT_SENT]


def reply_words() -> list[str]:
    """Every reply played after a menu key, and the words for no key."""
    words = {w for keys in MENU_KEYS.values() for w in keys.values()}
    return sorted(words | {NO_KEY_WORDS})


def sms_kind(template: str) -> str:
    """The kind whose SMS template carries a message of `template` (a link variant's plain)."""
    for plain, linked in LINK_VARIANTS.items():
        if template == linked:
            return plain
    return template


def _no_repeat(menu: str) -> str:
    """The menu without "press 9 to hear it again": an IVR menu plays one reply per key."""
    for sep in ("，", "；"):
        menu = menu.replace(f"{sep}重听请按9。", "。")
    return menu


def _make(name: str, kind: TemplateKind, text: str) -> CarrierTemplate:
    return CarrierTemplate(name, kind, text, _variables(text))


def carrier_templates() -> list[CarrierTemplate]:
    """Every template to submit: one SMS and one TTS template per kind, and the replies."""
    out: list[CarrierTemplate] = []
    for kind in message_kinds():
        text = _strip(zh_cn.TEMPLATES[kind])
        out.append(_make(f"sms.{kind}", "sms", text))
        menu = _no_repeat(zh_cn.TEMPLATES[voice_menu(kind)])
        out.append(_make(f"tts.{kind}", "tts", text + menu))
    out.extend(_make(f"tts.{w}", "tts", zh_cn.TEMPLATES[w]) for w in reply_words())
    return out


def menu_of(kind: str) -> Mapping[str, str]:
    """Key → reply words of the menu a call of `kind` ends with."""
    return MENU_KEYS[VOICE_MENUS.get(kind, "voice_menu")]


def normalise(name: str, value: str) -> str:
    """`value` as it goes into variable `name`: a mainland number without +86, else as is."""
    if VARIABLES.get(name) == "mobilePhone":
        for prefix in ("+86", "0086"):
            if value.startswith(prefix):
                return value.removeprefix(prefix)
    return value


def check_value(prop: str, value: str) -> str | None:  # noqa: PLR0911 - one answer per rule
    """Why a carrier would refuse `value` for a variable of property `prop`; None if fine."""
    if not value:
        return "empty"
    if len(value) > MAX_VARIABLE_CHARS:
        return f"longer than {MAX_VARIABLE_CHARS} characters"
    if "【" in value or "】" in value:
        return "contains 【】"
    if _LINK.search(value):
        return "contains a link"
    if prop == "mobilePhone":
        low, high = PHONE_DIGITS
        if not _DIGITS.fullmatch(value) or not low <= len(value) <= high:
            return f"not a phone number of {low} to {high} digits"
    elif prop == "characterWithNumber":
        if not _LETTERS_DIGITS.fullmatch(value):
            return "not letters and digits only"
    elif prop == "date" and not _DATE.fullmatch(value):
        return "not a time"
    return None


def template_params(template: CarrierTemplate, params: Mapping[str, str]) -> dict[str, str]:
    """The variables of `template` from `params`, normalised and checked.

    CarrierTemplateError names the variable and the rule it breaks.
    """
    out: dict[str, str] = {}
    for name, prop in template.variables:
        value = normalise(name, params.get(name, ""))
        problem = check_value(prop, value)
        if problem is not None:
            raise CarrierTemplateError(f"{template.name}: ${{{name}}} is {problem}: {value!r}")
        out[name] = value
    return out


def by_name() -> dict[str, CarrierTemplate]:
    """Every carrier template by its name."""
    return {t.name: t for t in carrier_templates()}


def export_text(codes: Mapping[str, str] | None = None) -> str:
    """What an administrator submits for approval, one block per template, and the codes."""
    codes = codes or {}
    lines: list[str] = []
    for t in carrier_templates():
        words = "短信通知 (SMS notification)" if t.kind == "sms" else "语音通知 TTS (voice)"
        lines.append(f"[{t.name}]  {words}  code: {codes.get(t.name) or '-'}")
        lines.append(f"  {t.text}")
        for name, prop in t.variables:
            lines.append(f"  ${{{name}}}: {PROPERTY_WORDS[prop]} ({prop})")
        lines.append("")
    return "\n".join(lines)
