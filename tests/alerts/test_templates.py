"""Templates: the same texts in every language, within SMS limits, secrets only where meant."""

from __future__ import annotations

import string

import pytest

from alerts import fit_sms, fits_sms, render, render_digest
from alerts.templates import CATALOGS, ELLIPSIS, sms_units

# The longest values the programmes produce: names of up to 8 characters, a place of a
# township, village and group, seven-digit ticket numbers, long health notes.
LONGEST = {
    "resident": "欧阳慕容司马长孙",
    "place": "三元镇桥元村第十三村民小组108号",
    "phone": "+8613912345678",
    "ticket": "9999999",
    "owner": "欧阳慕容司马长孙",
    "owner_phone": "+8613912345678",
    "previous": "欧阳慕容司马长孙",
    "minutes": "1440",
    "called_minutes": "1440",
    "link": "https://bidao.gov.cn/r/9999999.9999999.1799999999.AAAAAAAAAAAAAAAA",
    "presses": "255",
    "key_safe": "0000-0000-0000",
    "health": "高血压、糖尿病、心脏起搏器，独居，行动不便需轮椅，对青霉素过敏",
    "device": "b1da000000000001（三元镇桥元村第十三村民小组东头）",
    "household": "341504-101-001-1-3-1-0001",
    "hours": "9999",
    "since": "12-31 23:59",
    "now": "12-31 23:59",
    "until": "12-31 23:59",
    "first_use": "21:59",
    "usual": "21:59",
}
SPOKEN_ONLY = {k for k in CATALOGS["zh-CN"] if k.startswith("voice_")} | {"not_recorded"}
SECRETS = {"key_safe", "health"}


# The place is the imported address: the longest the programmes write has a township,
# village, group and house number; names of 8 characters; a 14-character phone; the link.


def placeholders(text: str) -> set[str]:
    return {m[1] or m[2] for m in string.Template.pattern.findall(text) if m[1] or m[2]}


def test_every_language_has_the_same_templates_and_parameters() -> None:
    zh, en = CATALOGS["zh-CN"], CATALOGS["en"]
    assert zh.keys() == en.keys()
    for name in zh:
        assert placeholders(zh[name]) == placeholders(en[name]), name


@pytest.mark.parametrize("language", sorted(CATALOGS))
@pytest.mark.parametrize("name", sorted(set(CATALOGS["zh-CN"]) - SPOKEN_ONLY - {"digest_same"}))
def test_every_sms_fits_three_parts_with_the_longest_values(language: str, name: str) -> None:
    params = {**LONGEST, "count": "99", "items": "", "text": ""}
    text = render(name, language, params)
    used, allowed = sms_units(text)
    assert used <= allowed, f"{name} ({language}) needs {used} of {allowed} units: {text}"


def test_only_the_access_message_carries_the_key_safe_code_and_health_notes() -> None:
    for catalog in CATALOGS.values():
        for name, text in catalog.items():
            if placeholders(text) & SECRETS:
                assert name == "ticket_access"


def test_chinese_is_the_default() -> None:
    params = {"ticket": "7", "owner": "李书记", "owner_phone": "13800000001"}
    assert render("ticket_taken", "yue", params) == render("ticket_taken", "zh-CN", params)
    assert render("ticket_taken", "zh-CN", params).startswith("【必到】")


def overdue(language: str, ticket: int, place: str) -> str:
    return render("ticket_overdue", language, {"ticket": str(ticket), "place": place})


def test_digest_of_different_texts_lists_them_and_fits() -> None:
    texts = [
        render("ticket_overdue", "zh-CN", {"ticket": str(n), "place": "桥元村三组"}) for n in (1, 2)
    ]
    assert render_digest("zh-CN", texts) == (
        "【必到】您有2条提醒：工单1（桥元村三组）已超过办理时限，请督办；"
        "工单2（桥元村三组）已超过办理时限，请督办"
    )
    english = [
        render("ticket_overdue", "en", {"ticket": str(n), "place": "Qiaoyuan"}) for n in (1, 2)
    ]
    assert render_digest("en", english) == (
        "[Bidao] 2 reminders: Ticket 1 (Qiaoyuan) is past its deadline. Please supervise; "
        "Ticket 2 (Qiaoyuan) is past its deadline. Please supervise"
    )
    many = fit_sms(render_digest("zh-CN", texts * 40))
    assert fits_sms(many)
    assert many.endswith(ELLIPSIS)
    assert sms_units(many)[0] == sms_units(many)[1]  # cut at the limit, not before


def test_sms_units_count_gsm7_and_ucs2() -> None:
    assert sms_units("a" * 459) == (459, 459)
    assert sms_units("[x]") == (5, 459)  # GSM-7 extension characters take two units
    assert sms_units("中" * 201) == (201, 201)
    assert not fits_sms("中" * 202)
    assert fit_sms("short") == "short"
