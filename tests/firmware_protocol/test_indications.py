"""The one table of what boxes say: complete, consistent, and the document word for word."""

from __future__ import annotations

from pathlib import Path

from firmware_protocol import (
    Envelope,
    IndicationKind,
    LedPattern,
    decode,
    encode,
)
from firmware_protocol.indications import (
    ARE_YOU_OK_ANSWER_S,
    AWAY_NOTED_S,
    BOX_ALONE,
    BY_PROMPT,
    CALL_NOT_SENT,
    INDICATIONS,
    LED_TIMINGS,
    answers_are_you_ok,
    heard,
    indication,
    says,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
KEY = bytes(range(16))


def doc_table(heading: str) -> list[list[str]]:
    """The rows of the first table after `heading` in docs/protocol.md, cells stripped."""
    text = DOC.read_text(encoding="utf-8").split(heading, 1)[1]
    lines = [ln for ln in text.split("\n\n", 2)[1].splitlines() if ln.startswith("|")]
    return [[cell.strip() for cell in ln.strip("|").split("|")] for ln in lines[2:]]


def test_every_kind_and_pattern_has_its_row() -> None:
    assert {row.kind for row in INDICATIONS if row.role is None} == set(IndicationKind)
    assert set(LED_TIMINGS) == set(LedPattern)
    assert len(BY_PROMPT) == len(INDICATIONS)  # prompt ids are unique
    assert all(1 <= row.prompt <= 0xFFFF and row.led_s > 0 for row in INDICATIONS)
    assert all(row.zh and row.en for row in INDICATIONS)


def test_the_words_that_matter_most() -> None:
    assert (says(IndicationKind.CALL_REGISTERED).zh, says(IndicationKind.CALL_REGISTERED).en) == (
        "您的呼叫已登记，正在为您联系帮手，请稍候。",
        "Your call is registered. We are contacting someone to help you; please wait.",
    )
    nobody = says(IndicationKind.NOBODY_REACHED)
    assert (nobody.zh, nobody.en, nobody.led) == (
        "没有联系到能来帮助您的人。请拨打110或120，或联系您的家人。",
        "Nobody who can come to help you could be reached. Please call 110 or 120, or your family.",
        LedPattern.RED_BLINK,
    )
    coming = says(IndicationKind.HELPER_ON_THE_WAY, "grid_worker")
    assert (coming.prompt, coming.zh) == (23, "网格员已接下您的呼叫，正在赶来。")
    # A role without a prompt of its own: the box says someone is coming, not who.
    assert says(IndicationKind.HELPER_ON_THE_WAY, "family").prompt == 2
    assert says(IndicationKind.HELPER_ON_THE_WAY).zh == "已有人接下您的呼叫，正在赶来。"
    # "Accepted" is said only once someone has accepted.
    early = [says(IndicationKind.CALL_REGISTERED), says(IndicationKind.NOBODY_REACHED)]
    assert not any("接下" in row.zh or "taken" in row.en for row in early)


def test_an_indication_is_built_from_the_table_and_survives_the_wire() -> None:
    message = indication(IndicationKind.HELPER_ON_THE_WAY, 4242, "village_secretary")
    assert (message.led, message.voice_prompt) == (LedPattern.GREEN_SOLID, 21)
    frame = encode(Envelope("b1da000000000001", 7, 0, message), KEY)
    decoded = decode(frame, KEY).message
    assert decoded == message
    said = heard(decoded)
    assert said is not None
    assert said.en == "The village secretary has taken your call and is on the way."


def test_the_answer_window() -> None:
    assert ARE_YOU_OK_ANSWER_S == 600  # the issue: thumbs-up within ten minutes
    assert says(IndicationKind.ARE_YOU_OK).led_s == ARE_YOU_OK_ANSWER_S
    assert answers_are_you_ok(1000.0, 1000.0)
    assert answers_are_you_ok(1000.0, 1540.0)  # nine minutes: an answer
    assert answers_are_you_ok(1000.0, 1600.0)
    assert not answers_are_you_ok(1000.0, 1660.0)  # eleven minutes: none
    assert not answers_are_you_ok(1000.0, 999.0)


def test_the_away_words_say_for_how_long_and_how_to_end_it() -> None:
    noted = says(IndicationKind.AWAY_NOTED)
    assert AWAY_NOTED_S == 24 * 3600
    assert "24小时" in noted.zh
    assert "For 24 hours" in noted.en
    assert "再长按大拇指向上键" in noted.zh  # how to end it early
    assert "press and hold thumbs-up again" in noted.en
    ended = says(IndicationKind.AWAY_ENDED)
    assert "用水看护已恢复" in ended.zh
    assert "the water watch is on again" in ended.en


def test_the_document_is_the_table_word_for_word() -> None:
    leds = doc_table("### 11.1 LED patterns")
    assert leds == [
        [str(int(p)), f"`{p.name}`", t.colour, str(t.on_ms), str(t.off_ms)]
        for p, t in LED_TIMINGS.items()
    ]
    prompts = doc_table("### 11.2 Indication kinds and voice prompts")
    assert prompts == [
        [
            str(r.prompt),
            f"{int(r.kind)} `{r.kind.name}`",
            f"`{r.led.name}`",
            str(r.led_s),
            f"`{r.role}`" if r.role else "",
            r.zh,
            r.en,
        ]
        for r in INDICATIONS
    ]


def test_what_the_box_says_by_itself_is_in_the_document_and_never_sent() -> None:
    alone = doc_table("### 11.5 What the box says by itself")
    assert alone == [
        [str(r.prompt), f"`{r.led.name}`", str(r.led_s), r.zh, r.en] for r in BOX_ALONE
    ]
    assert not {r.prompt for r in BOX_ALONE} & set(BY_PROMPT)  # no INDICATION carries them
    # True when it is played: the call is not lost, and it says where else help is.
    assert "继续发送您的呼叫" in CALL_NOT_SENT.zh
    assert "110" in CALL_NOT_SENT.zh
    assert "keeps sending your call" in CALL_NOT_SENT.en
