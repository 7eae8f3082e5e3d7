"""What the box says and shows: the one table of indications (docs/protocol.md, section 11).

An INDICATION downlink carries a kind, a ticket number, an LED pattern and a voice prompt
id. The box plays the prompt it stores under that id and shows the pattern for the time
this table gives; the gateway builds every indication from this table
(`gateway.services.tickets.box_indication`) and the simulator prints the words from it.
Chinese first, English second: the box ships with the Chinese recordings; the English text
is for the English prompt set and for people reading logs.

"Help is coming" names who is coming by role (the box cannot speak a name it was not
recorded with); the family hears the helper's name by SMS.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_protocol.messages import Indication, IndicationKind, LedPattern

ARE_YOU_OK_ANSWER_S = 600
"""After "are you OK?", a thumbs-up received within this many seconds is the answer (the
issue's ten minutes); the box blinks amber as long, and the water watch's
`water.answer_window_s` defaults to it."""

ARE_YOU_OK_PROMPTS: dict[int, int] = {300: 12, 600: 5, 900: 13, 1200: 14, 1800: 15}
"""The answer windows a box can show, in seconds, and the prompt whose amber light lasts as
long (the same words; the frame carries no duration, so each window is a row of the table).
`water.answer_window_s` must be one of them, so the light ends when the answer window does."""

AWAY_NOTED_S = 24 * 3600
"""A long thumbs-up marks the home away for this long. The box's recorded words say
"24 hours", so the figure lives here with them, not in a setting the words could not follow."""


@dataclass(frozen=True, slots=True)
class LedTiming:
    """How a pattern is drawn: `on_ms` lit, then `off_ms` dark, repeated (off 0: steady)."""

    pattern: LedPattern
    colour: str
    on_ms: int
    off_ms: int


LED_TIMINGS: dict[LedPattern, LedTiming] = {
    LedPattern.OFF: LedTiming(LedPattern.OFF, "none", 0, 0),
    LedPattern.GREEN_SOLID: LedTiming(LedPattern.GREEN_SOLID, "green", 1000, 0),
    LedPattern.GREEN_BLINK: LedTiming(LedPattern.GREEN_BLINK, "green", 500, 500),
    LedPattern.RED_SOLID: LedTiming(LedPattern.RED_SOLID, "red", 1000, 0),
    LedPattern.RED_BLINK: LedTiming(LedPattern.RED_BLINK, "red", 250, 250),
    LedPattern.AMBER_BLINK: LedTiming(LedPattern.AMBER_BLINK, "amber", 500, 1500),
}


@dataclass(frozen=True, slots=True)
class BoxSays:
    """One row: a voice prompt, the indication kind it belongs to, its LED and its words."""

    prompt: int
    """The voice prompt id (byte 6..7 of the INDICATION payload)."""
    kind: IndicationKind
    led: LedPattern
    led_s: int
    """How long the pattern is shown, in seconds; a newer indication replaces it sooner."""
    zh: str
    en: str
    role: str | None = None
    """For "help is coming": the role of the one who accepted (None: not said)."""


INDICATIONS: tuple[BoxSays, ...] = (
    BoxSays(
        1,
        IndicationKind.CALL_REGISTERED,
        LedPattern.GREEN_BLINK,
        1800,
        "您的呼叫已登记，正在为您联系帮手，请稍候。",
        "Your call is registered. We are contacting someone to help you; please wait.",
    ),
    BoxSays(
        2,
        IndicationKind.HELPER_ON_THE_WAY,
        LedPattern.GREEN_SOLID,
        3600,
        "已有人接下您的呼叫，正在赶来。",
        "Someone has taken your call and is on the way.",
    ),
    BoxSays(
        3,
        IndicationKind.HELPER_ARRIVED,
        LedPattern.GREEN_SOLID,
        60,
        "帮手已到达。",
        "Your helper has arrived.",
    ),
    BoxSays(
        4,
        IndicationKind.RESOLVED,
        LedPattern.AMBER_BLINK,
        600,
        "事情已办结。满意请按大拇指向上键，不满意请按大拇指向下键。",
        "Your matter is resolved. If you are satisfied, press thumbs-up; if not, press "
        "thumbs-down.",
    ),
    BoxSays(
        5,
        IndicationKind.ARE_YOU_OK,
        LedPattern.AMBER_BLINK,
        ARE_YOU_OK_ANSWER_S,
        "您还好吗？平安请按大拇指向上键；需要帮助请按绿键。",
        "Are you OK? If you are, press thumbs-up. If you need help, press the green key.",
    ),
    BoxSays(
        6,
        IndicationKind.CANCELLED,
        LedPattern.RED_SOLID,
        10,
        "您的呼叫已取消。",
        "Your call is cancelled.",
    ),
    BoxSays(
        7,
        IndicationKind.NOTHING_TO_RATE,
        LedPattern.AMBER_BLINK,
        5,
        "现在没有需要评价的事。",
        "There is nothing to rate now.",
    ),
    BoxSays(
        8,
        IndicationKind.NOBODY_REACHED,
        LedPattern.RED_BLINK,
        600,
        "没有联系到能来帮助您的人。请拨打110或120，或联系您的家人。",
        "Nobody who can come to help you could be reached. Please call 110 or 120, or your family.",
    ),
    BoxSays(
        9,
        IndicationKind.ANSWER_NOTED,
        LedPattern.GREEN_SOLID,
        5,
        "收到您的回答，谢谢。",
        "Thank you, your answer is noted.",
    ),
    BoxSays(
        10,
        IndicationKind.AWAY_NOTED,
        LedPattern.GREEN_SOLID,
        10,
        "已记下您外出。24小时内家里不用水，也不会报警。提前回来，请再长按大拇指向上键。",
        "Noted: you are away. For 24 hours, no alarm is raised if no water is used at home. "
        "If you come back sooner, press and hold thumbs-up again.",
    ),
    BoxSays(
        11,
        IndicationKind.AWAY_ENDED,
        LedPattern.GREEN_SOLID,
        5,
        "欢迎回家，用水看护已恢复。",
        "Welcome back: the water watch is on again.",
    ),
    *(
        BoxSays(
            prompt,
            IndicationKind.ARE_YOU_OK,
            LedPattern.AMBER_BLINK,
            window_s,
            "您还好吗？平安请按大拇指向上键；需要帮助请按绿键。",
            "Are you OK? If you are, press thumbs-up. If you need help, press the green key.",
        )
        for window_s, prompt in sorted(ARE_YOU_OK_PROMPTS.items())
        if window_s != ARE_YOU_OK_ANSWER_S
    ),
    *(
        BoxSays(
            prompt,
            IndicationKind.HELPER_ON_THE_WAY,
            LedPattern.GREEN_SOLID,
            3600,
            f"{zh}已接下您的呼叫，正在赶来。",
            f"The {en} has taken your call and is on the way.",
            role,
        )
        for prompt, role, zh, en in (
            (21, "village_secretary", "村书记", "village secretary"),
            (22, "deputy_secretary", "副书记", "deputy secretary"),
            (23, "grid_worker", "网格员", "grid worker"),
            (24, "neighbour_chief", "邻长", "neighbour chief"),
            (25, "group_leader", "组长", "group leader"),
            (26, "area_chief", "片长", "area chief"),
            (27, "township_duty", "镇值班人员", "township duty officer"),
        )
    ),
)
"""Every voice prompt a box stores, by id; ids not listed here are never sent."""

BY_PROMPT: dict[int, BoxSays] = {row.prompt: row for row in INDICATIONS}
_BY_KIND: dict[IndicationKind, BoxSays] = {}
_BY_ROLE: dict[str, BoxSays] = {}
for _row in INDICATIONS:
    if _row.role is None:
        _BY_KIND.setdefault(_row.kind, _row)
    else:
        _BY_ROLE[_row.role] = _row


@dataclass(frozen=True, slots=True)
class BoxSaysAlone:
    """What the box says by itself, with no downlink: a prompt the gateway never sends."""

    prompt: int
    led: LedPattern
    led_s: int
    zh: str
    en: str


CALL_NOT_SENT = BoxSaysAlone(
    41,
    LedPattern.RED_BLINK,
    60,
    "呼叫盒暂时联系不上服务中心，会继续发送您的呼叫。如有急事，请拨打110或120，或联系您的家人。",
    "The call box cannot reach the service right now and keeps sending your call. "
    "If it is urgent, call 110 or 120, or your family.",
)
"""Played when a key press finds the box's queue full of calls and alarms (section 6): the
box has had no ACK for 32 frames, so it is cut off; the calls already waiting keep going."""

BOX_ALONE: tuple[BoxSaysAlone, ...] = (CALL_NOT_SENT,)
"""Every prompt the box plays by itself; their ids are never in an INDICATION."""


def says(kind: IndicationKind, role: str | None = None) -> BoxSays:
    """The row for `kind`; for "help is coming", the one naming `role` if it has one."""
    if kind == IndicationKind.HELPER_ON_THE_WAY and role is not None and role in _BY_ROLE:
        return _BY_ROLE[role]
    return _BY_KIND[kind]


def indication(kind: IndicationKind, ticket_ref: int, role: str | None = None) -> Indication:
    """The INDICATION message for `kind` (ticket 0: none), with its LED and prompt."""
    row = says(kind, role)
    return Indication(kind, ticket_ref, row.led, row.prompt)


def are_you_ok(window_s: float) -> Indication:
    """The "are you OK?" indication whose amber light lasts `window_s` (ARE_YOU_OK_PROMPTS)."""
    prompt = ARE_YOU_OK_PROMPTS.get(round(window_s)) if window_s == round(window_s) else None
    if prompt is None:
        windows = ", ".join(str(w) for w in sorted(ARE_YOU_OK_PROMPTS))
        raise ValueError(f"no 'are you OK?' prompt for {window_s} s; one of {windows}")
    row = BY_PROMPT[prompt]
    return Indication(IndicationKind.ARE_YOU_OK, 0, row.led, row.prompt)


def heard(message: Indication) -> BoxSays | None:
    """What a box does on receiving `message`: the row of its prompt (None: not stored)."""
    row = BY_PROMPT.get(message.voice_prompt)
    return row if row is not None and row.kind == message.kind else None


def answers_are_you_ok(
    asked_at: float, pressed_at: float, window_s: float = ARE_YOU_OK_ANSWER_S
) -> bool:
    """Whether a thumbs-up at `pressed_at` answers an "are you OK?" sent at `asked_at`."""
    return asked_at <= pressed_at <= asked_at + window_s
