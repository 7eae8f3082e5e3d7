"""Every message template, rendered in every situation the rules use it, in zh-CN and en.

Each situation drives `decide` and checks the facts in the words against the ticket's
history: who, where (the imported address), the resident's phone, the minutes since the
call or the acceptance, who accepted, the ticket number. Every SMS fits three parts.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace

import pytest

from alerts import fits_sms, render
from alerts.templates import CATALOGS, LINK_VARIANTS
from gateway.domain.devices import HEALTH_KINDS, DeviceKind, DeviceRecord, HealthAlarm
from gateway.domain.grid import Contact
from gateway.domain.tickets import (
    ALARM_TEMPLATES,
    Accept,
    AllClear,
    Arrive,
    CallUnanswered,
    ClockKind,
    Command,
    Context,
    Decline,
    Due,
    Notify,
    Open,
    OpenAlarm,
    PressGreen,
    PressRed,
    Reassign,
    Resolve,
    Thumbs,
    Ticket,
    TicketKind,
    TicketStatus,
    decide,
)
from gateway.services.device_health import alarm_template, family_template, health_words
from gateway.services.devices import alarm_words, notice_words
from tests.gateway.domain.test_ticket_rules import (
    BAD_SECRETARY,
    CHIEF,
    DEPUTY,
    HOUR,
    HOUSEHOLD,
    PEOPLE,
    SECRETARY,
    T0,
    ZONE,
    directory,
    ticket,
)

MINUTE = 60.0
DAUGHTER = 8
FAMILY = Contact(
    DAUGHTER, "张小红", "family", "+447700900123", language="en", household_code=HOUSEHOLD.code
)
PLACE = "桥元村三组12号"
PHONE = "13912345678"
SECRETARY_PHONE = "13800000001"
DEPUTY_PHONE = "13800000002"
LINK = "https://bidao.gov.cn/r/7.1.1799999999.AAAAAAAAAAAAAAAA"


def context(
    notified: tuple[int, ...] = (SECRETARY, CHIEF), household: object = HOUSEHOLD
) -> Context:
    base = directory([*PEOPLE, FAMILY], notified)
    return Context(household, base, ZONE)  # type: ignore[arg-type]


def accepted(minutes_ago_accepted: float, at: float) -> Ticket:
    """Accepted by the secretary `minutes_ago_accepted` before `at` (seconds after T0)."""
    since = T0 + at - minutes_ago_accepted * MINUTE
    return replace(
        ticket(TicketStatus.ACCEPTED, owner=SECRETARY), accepted_at=since, owner_since=since
    )


@dataclass(frozen=True)
class Situation:
    name: str
    before: Ticket
    command: Command
    at: float
    context: Context
    facts: dict[str, dict[str, str]]
    """For each template sent: the facts its parameters must carry."""


COMMON = {"resident": "张桂兰", "place": PLACE, "phone": PHONE, "ticket": "7"}

SITUATIONS = [
    Situation(
        "the green key",
        ticket(),
        Open(1),
        0,
        context(notified=()),
        {"ticket_call": {}, "ticket_informed": {}, "family_called": {}},
    ),
    Situation(
        "the secretary cannot be called",
        ticket(),
        Open(1),
        0,
        BAD_SECRETARY,
        {"ticket_escalated_unreachable": {}, "ticket_informed": {}},
    ),
    Situation(
        "pressed again 3 minutes after the first, nobody accepted",
        ticket(presses=2),
        PressGreen(1),
        3 * MINUTE,
        context(),
        {"ticket_call_repeat": {"presses": "3", "minutes": "3"}},
    ),
    Situation(
        "pressed again 48 minutes after the secretary accepted",
        accepted(48, 50 * MINUTE),
        PressGreen(1),
        50 * MINUTE,
        context(),
        {"ticket_pressed_again_accepted": {"minutes": "48"}},
    ),
    Situation(
        "pressed again 20 minutes after the secretary arrived",
        replace(
            accepted(30, 30 * MINUTE), status=TicketStatus.ON_SITE, on_site_at=T0 + 40 * MINUTE
        ),
        PressGreen(1),
        60 * MINUTE,
        context(),
        {"ticket_pressed_again_on_site": {"minutes": "20"}},
    ),
    Situation(
        "cancelled by the red key",
        ticket(),
        PressRed(),
        30,
        context(),
        {"ticket_cancelled_by_resident": {}},
    ),
    Situation(
        "cancelled by a resident with no phone",
        ticket(),
        PressRed(),
        30,
        context(household=replace(HOUSEHOLD, resident_phone=None)),
        {"ticket_cancelled_no_phone": {}},
    ),
    Situation(
        "accepted by the secretary",
        ticket(),
        Accept(SECRETARY, "voice_keypress"),
        2 * MINUTE,
        context(notified=(SECRETARY, CHIEF, DAUGHTER)),
        {
            "ticket_taken": {"owner": "李书记", "owner_phone": SECRETARY_PHONE},
            "ticket_accepted": {},
            "ticket_access": {"key_safe": "4321", "health": "高血压"},
            "family_accepted": {"owner": "李书记", "owner_phone": SECRETARY_PHONE},
        },
    ),
    Situation(
        "the secretary cannot go",
        ticket(),
        Decline(SECRETARY, "voice_keypress"),
        4 * MINUTE,
        context(),
        {
            "ticket_escalated_declined": {"previous": "李书记", "minutes": "4"},
            "ticket_still_waiting": {"minutes": "4"},
        },
    ),
    Situation(
        "the secretary's call rang out",
        ticket(),
        CallUnanswered(SECRETARY),
        2 * MINUTE,
        context(),
        {"ticket_escalated_no_answer": {"minutes": "2"}, "ticket_still_waiting": {"minutes": "2"}},
    ),
    Situation(
        "nobody accepted in 5 minutes",
        ticket(),
        Due(ClockKind.ACCEPT, T0 + 5 * MINUTE),
        5 * MINUTE,
        context(),
        {
            "ticket_escalated_not_accepted": {"minutes": "5"},
            "ticket_still_waiting": {"minutes": "5"},
        },
    ),
    Situation(
        "accepted 30 minutes ago and not arrived",
        accepted(30, 32 * MINUTE),
        Due(ClockKind.ARRIVE, T0 + 32 * MINUTE),
        32 * MINUTE,
        context(),
        {
            "ticket_not_arrived": {
                "owner": "李书记",
                "owner_phone": SECRETARY_PHONE,
                "minutes": "30",
                "called_minutes": "32",
            }
        },
    ),
    Situation(
        "a classified matter missed its day",
        replace(ticket(TicketStatus.ON_SITE, owner=SECRETARY, category="ordinary")),
        Due(ClockKind.DAY, T0 + HOUR),
        HOUR,
        context(),
        {"ticket_overdue": {}},
    ),
    Situation(
        "the secretary arrived",
        accepted(10, 10 * MINUTE),
        Arrive(SECRETARY, "box_key"),
        10 * MINUTE,
        context(),
        {"family_arrived": {"owner": "李书记"}},
    ),
    Situation(
        "resolved",
        replace(accepted(10, 10 * MINUTE), status=TicketStatus.ON_SITE),
        Resolve(SECRETARY, "link"),
        HOUR,
        context(),
        {"family_resolved": {"owner": "李书记"}},
    ),
    Situation(
        "thumbs down",
        ticket(TicketStatus.RESOLVED, owner=SECRETARY, resolved=HOUR),
        Thumbs("down"),
        2 * HOUR,
        context(),
        {"ticket_review": {"owner": "李书记"}},
    ),
    Situation(
        "an operator hands it to the deputy",
        accepted(10, 10 * MINUTE),
        Reassign(DEPUTY, None, "cli"),
        10 * MINUTE,
        context(),
        {
            "ticket_reassigned_to_you": {"previous": "李书记"},
            "ticket_reassigned_sms": {"previous": "李书记"},
            "ticket_access": {"key_safe": "4321", "health": "高血压"},
            "ticket_reassigned_away": {"owner": "王副书记", "owner_phone": DEPUTY_PHONE},
            "family_accepted": {"owner": "王副书记", "owner_phone": DEPUTY_PHONE},
        },
    ),
    Situation(
        "the deputy takes it over in the not-arrived call",
        accepted(30, 32 * MINUTE),
        Reassign(DEPUTY, DEPUTY, "voice_keypress"),
        32 * MINUTE,
        context(),
        {
            "ticket_taken_over": {"previous": "李书记"},
            "ticket_access": {"key_safe": "4321", "health": "高血压"},
            "ticket_reassigned_away": {"owner": "王副书记", "owner_phone": DEPUTY_PHONE},
            "family_accepted": {"owner": "王副书记", "owner_phone": DEPUTY_PHONE},
        },
    ),
]


def alarm(before: Ticket, kind: TicketKind = "no_water") -> Ticket:
    """The same ticket as an alarm of the water watch (nobody pressed a key)."""
    return replace(before, kind=kind, device_id=None)


def as_alarm_words(facts: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """A call's expected words as an alarm's: the alarm's own where a call's would be untrue."""
    words = ALARM_TEMPLATES["no_water"]
    escalated = {t for t in facts if t.startswith("ticket_escalated")}
    out = {words.get(t, t): f for t, f in facts.items() if t not in escalated}
    out.pop("ticket_still_waiting", None)  # an alarm's first step is not called again
    for t in escalated:
        out[words["escalated"]] = facts[t]
    return out


ALARM_FACTS = {"since": "06:30", "now": "14:40", "hours": "8.2"}
MORNING_FACTS = {
    "since": "03-04 21:10",
    "now": "09:20",
    "hours": "0.0",
    "reason": "morning",
    "usual": "07:40",
}
"""The morning check's alarm: the hours of quiet counted so far are not its reason."""
SITUATIONS += [
    Situation(
        f"(water alarm) {s.name}",
        alarm(s.before),
        s.command,
        s.at,
        s.context,
        as_alarm_words(s.facts),
    )
    for s in SITUATIONS
    if s.name
    in {
        "accepted by the secretary",
        "nobody accepted in 5 minutes",
        "the secretary cannot go",
        "accepted 30 minutes ago and not arrived",
        "resolved",
        "an operator hands it to the deputy",
        "the deputy takes it over in the not-arrived call",
    }
]
SITUATIONS += [
    Situation(
        "the water watch: eight quiet active hours, no answer on the box",
        alarm(ticket()),
        OpenAlarm(ALARM_FACTS),
        0,
        context(notified=()),
        {"no_water_alarm": ALARM_FACTS},
    ),
    Situation(
        "the water watch: the morning check, no answer on the box",
        alarm(ticket()),
        OpenAlarm(MORNING_FACTS),
        0,
        context(notified=()),
        {"no_water_alarm_morning": MORNING_FACTS},
    ),
    Situation(
        "the water watch: the meter ran for two hours",
        alarm(ticket(), "leak"),
        OpenAlarm({"since": "09:15", "now": "11:15", "hours": "2"}),
        0,
        context(notified=()),
        {"leak_alarm": {"since": "09:15", "hours": "2"}},
    ),
    Situation(
        "the water watch: nobody took the leak alarm in 5 minutes",
        alarm(ticket(), "leak"),
        Due(ClockKind.ACCEPT, T0 + 5 * MINUTE),
        5 * MINUTE,
        context(),
        {"leak_alarm_escalated": {"minutes": "5"}},
    ),
    Situation(
        "the water watch: water again",
        alarm(ticket()),
        AllClear({"now": "15:07", "cleared_by": "water"}),
        HOUR,
        context(notified=(SECRETARY, DAUGHTER)),
        {"no_water_all_clear": {"now": "15:07"}},
    ),
    Situation(
        "the water watch: a key on the box",
        alarm(ticket()),
        AllClear({"now": "15:07", "cleared_by": "key"}),
        HOUR,
        context(notified=(SECRETARY, DAUGHTER)),
        {"no_water_all_clear_key": {"now": "15:07"}},
    ),
    Situation(
        "the water watch: she pressed 1 on the safety call after the alarm went out",
        alarm(ticket()),
        AllClear({"now": "14:41", "cleared_by": "answer"}),
        HOUR,
        context(notified=(SECRETARY, DAUGHTER)),
        {"no_water_all_clear_answer": {"now": "14:41"}},
    ),
    Situation(
        "the water watch: the home marked away",
        alarm(ticket()),
        AllClear({"now": "15:07", "until": "03-05 18:00", "cleared_by": "away"}),
        HOUR,
        context(notified=(SECRETARY, DAUGHTER)),
        {"no_water_all_clear_away": {"until": "03-05 18:00"}},
    ),
    Situation(
        "the water watch: the meter stopped running",
        alarm(ticket(), "leak"),
        AllClear({"now": "11:30", "cleared_by": "water"}),
        HOUR,
        context(notified=(SECRETARY, DAUGHTER)),
        {"leak_all_clear": {"now": "11:30"}},
    ),
]
WATER_NOTICES = {
    "water_away_reminder": {"until": "03-05 18:00", "now": "03-05 20:00"},
    "water_watch_blind": {"since": "09:10"},
    "water_watch_restored": {"now": "16:20"},
    "water_first_use_today": {"first_use": "07:12"},
}
"""Plain notices of the water watch (gateway/services/water.py), with their facts."""
WATER_CALLS = {
    "water_ask_resident": {"since": "06:30", "hours": "8.0"},
    "water_ask_resident_morning": {"usual": "07:40"},
}
"""Calls of the water watch to the resident, with their facts (spoken: no SMS limit)."""

BOX = "b1da000000000002"
UNKNOWN_HOUSEHOLD = "341504-101-001-9999"


def box(household_code: str | None = None, label: str | None = None) -> DeviceRecord:
    return DeviceRecord(
        BOX, "call_box", bytes(16), 60, T0, household_code=household_code, label=label
    )


@dataclass(frozen=True)
class DeviceSituation:
    """A notice about a box, worded as gateway/services/devices.py words it."""

    name: str
    template: str
    params: dict[str, str]
    expected: str
    """The template the situation calls for."""
    facts: dict[str, str]


DEVICE_SITUATIONS = [
    DeviceSituation(
        "a green press from a box with no household",
        *alarm_words(box(), None, "unassigned_call"),
        "device_unassigned_call",
        {"device": BOX},
    ),
    DeviceSituation(
        "a green press from a labelled box with no household",
        *alarm_words(box(label="张家门口"), None, "unassigned_call"),
        "device_unassigned_call",
        {"device": f"{BOX}（张家门口）"},
    ),
    DeviceSituation(
        "a green press from a box registered to a household that does not exist",
        *alarm_words(box(UNKNOWN_HOUSEHOLD), None, "unknown_household"),
        "device_unknown_household_call",
        {"device": BOX, "household": UNKNOWN_HOUSEHOLD},
    ),
    DeviceSituation(
        "a green press of a known household that could not become a ticket",
        *alarm_words(box(HOUSEHOLD.code), HOUSEHOLD, "call_failed"),
        "device_call_failed",
        {"device": BOX, "resident": "张桂兰", "place": PLACE},
    ),
    DeviceSituation(
        "a box silent for 24 hours 59 minutes",
        "device_offline",
        notice_words(HOUSEHOLD, 24 * HOUR + 59 * MINUTE),
        "device_offline",
        {"resident": "张桂兰", "hours": "24"},
    ),
    DeviceSituation(
        "a box heard again after 49 hours of silence",
        "device_back_online",
        notice_words(HOUSEHOLD, 49 * HOUR + 5 * MINUTE),
        "device_back_online",
        {"resident": "张桂兰", "hours": "49"},
    ),
]
"""Every SMS gateway/services/devices.py sends, each in the situation it is sent in."""


def _health_situations() -> list[DeviceSituation]:
    """Every device health alarm and all-clear, to installers and to family.

    The spell began at 07:30 on 2 March (T0 is 10:00 local time) and ended at 09:45.
    """
    out: list[DeviceSituation] = []
    spell = {"since": "03-02 07:30", "until": "03-02 09:45"}
    for device_kind, noun in (("call_box", "box"), ("water_meter", "meter")):
        kind: DeviceKind = device_kind  # type: ignore[assignment]
        device = replace(box(HOUSEHOLD.code, "门口"), kind=kind)
        for health in HEALTH_KINDS:
            alarm = HealthAlarm(BOX, health, T0 - 150 * MINUTE)
            for ok in (False, True):
                until = T0 - 15 * MINUTE if ok else None
                params = health_words(device, HOUSEHOLD, alarm, str(ZONE), until)
                facts = {
                    "device": f"{BOX}（门口）",
                    "resident": "张桂兰",
                    "place": PLACE,
                    "since": spell["since"],
                }
                if ok:
                    facts["until"] = spell["until"]
                suffix = "_ok" if ok else ""
                out.append(
                    DeviceSituation(
                        f"{health} of a {device_kind}{' ended' if ok else ''}, to its installer",
                        alarm_template(device, health, ok=ok),
                        params,
                        f"health_{noun}_{health}{suffix}",
                        facts,
                    )
                )
                if device_kind == "call_box":
                    family_facts = {k: v for k, v in facts.items() if k != "device"}
                    out.append(
                        DeviceSituation(
                            f"{health} of a call box{' ended' if ok else ''}, to the family",
                            family_template(health, ok=ok),
                            health_words(device, HOUSEHOLD, alarm, str(ZONE), until, family=True),
                            f"health_family_{health}{suffix}",
                            family_facts,
                        )
                    )
    return out


DEVICE_SITUATIONS += _health_situations()

NOT_BY_THE_RULES = {"digest", "digest_same", "not_recorded"}
"""Rendered by the outbox (merging) and for missing values, not chosen by the rules."""


def placeholders(text: str) -> set[str]:
    return {m[1] or m[2] for m in string.Template.pattern.findall(text) if m[1] or m[2]}


def rendered(n: Notify, language: str, template: str) -> str:
    missing = render("not_recorded", language, {})
    params = {k: missing if v is None else v for k, v in n.params.items()}
    params["link"] = LINK
    return render(template, language, params)


def test_every_template_in_every_situation_tells_what_happened() -> None:
    used: set[str] = set()
    for s in SITUATIONS:
        decision = decide(s.before, s.command, s.context, T0 + s.at)
        sent = {n.template for n in decision.notifications}
        assert sent == set(s.facts), s.name
        for n in decision.notifications:
            facts = {**COMMON, **s.facts[n.template]}
            names = [n.template]
            if n.template in LINK_VARIANTS:
                names.append(LINK_VARIANTS[n.template])
            for template in names:
                used.add(template)
                for language in ("zh-CN", "en"):
                    text = rendered(n, language, template)
                    needed = placeholders(CATALOGS[language][template])
                    for key in needed:
                        if key == "link":
                            assert LINK in text
                            continue
                        assert key in facts, f"{s.name}: {template} says {key} unchecked"
                        assert n.params[key] == facts[key], (s.name, template, key)
                        assert facts[key] in text, (s.name, template, language, text)
                    if n.channel == "sms":
                        assert fits_sms(text), (s.name, template, language, text)
                    assert "未登记" not in text
                    assert "not recorded" not in text
            if n.template != "ticket_access":
                assert "4321" not in str(n.params.values())
    for d in DEVICE_SITUATIONS:
        assert d.template == d.expected, d.name
        used.add(d.template)
        assert set(d.params) == set(d.facts), d.name
        for language in ("zh-CN", "en"):
            text = render(d.template, language, d.params)
            assert placeholders(CATALOGS[language][d.template]) == set(d.facts), d.name
            for key, fact in d.facts.items():
                assert d.params[key] == fact, (d.name, key)
                assert fact in text, (d.name, language, text)
            assert fits_sms(text), (d.name, language, text)
            assert "未登记" not in text
            assert "not recorded" not in text
    used |= water_notices_tell_what_happened()
    spoken = {t for t in CATALOGS["zh-CN"] if t.startswith("voice_")}
    assert used == set(CATALOGS["zh-CN"]) - spoken - NOT_BY_THE_RULES


def water_notices_tell_what_happened() -> set[str]:
    """Each plain notice of the water watch says its facts, and fits an SMS."""
    for template, facts in WATER_NOTICES.items():
        params = {"resident": "张桂兰", "place": PLACE, **facts}
        for language in ("zh-CN", "en"):
            text = render(template, language, params)
            assert placeholders(CATALOGS[language][template]) == set(params), template
            assert all(fact in text for fact in params.values()), (template, text)
            assert fits_sms(text), (template, language, text)
    for template, facts in WATER_CALLS.items():
        params = {"resident": "张桂兰", "place": PLACE, **facts}
        for language in ("zh-CN", "en"):
            text = render(template, language, params)
            assert placeholders(CATALOGS[language][template]) <= set(params), template
            assert all(fact in text for fact in facts.values()), (template, text)
    return set(WATER_NOTICES) | set(WATER_CALLS)


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_the_stale_ticket_words(language: str) -> None:
    decision = decide(accepted(48, 50 * MINUTE), PressGreen(1), context(), T0 + 50 * MINUTE)
    n = decision.notifications[0]
    expected = {
        "zh-CN": "【必到】张桂兰（桥元村三组12号，电话13912345678）在您接单48分钟后又按了呼叫键，"
        "仍在等您，请尽快前往。工单7。",
        "en": "[Bidao] 张桂兰 (桥元村三组12号, phone 13912345678) pressed the call key again "
        "48 min after you accepted and is still waiting for you. Please go now. Ticket 7.",
    }
    assert rendered(n, language, n.template) == expected[language]
