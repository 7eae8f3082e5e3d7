"""Carrier templates: one SMS and one TTS template per message kind, each variable declared
with a property, and every template within the provider's rules at the longest values."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from alerts.carrier_templates import (
    MAX_TEMPLATE_CHARS,
    VARIABLES,
    CarrierTemplate,
    CarrierTemplateError,
    carrier_templates,
    check_value,
    export_text,
    menu_of,
    message_kinds,
    sms_kind,
    template_params,
)
from alerts.locales import zh_cn
from alerts.templates import LINK_VARIANTS, VOICE_MENUS
from device_sim.aliyun import variable_problem
from gateway.config import load_settings
from gateway.errors import ConfigError
from tests.alerts.test_templates import LONGEST as LONGEST_TEXT
from tests.gateway.support import bidao

LONGEST = {**LONGEST_TEXT, "away_days": "99", "count": "99"}
"""The longest values the programmes write (as for the SMS limits), and the counts."""

TEMPLATES = carrier_templates()
RESERVED = {"email", "mobile", "id", "nick", "site"}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,24}")


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.name)
def test_every_template_fits_the_rules_at_the_longest_values(template: CarrierTemplate) -> None:
    names = [
        m["named"] or m["braced"]
        for m in string.Template.pattern.finditer(template.text)
        if m["named"] or m["braced"]
    ]
    assert len(names) == len(set(names)), "a variable may appear once"
    for name in names:
        assert _NAME.fullmatch(name), name
        assert name not in RESERVED, name
        assert name in VARIABLES, f"{name} has no declared property"
    fixed = string.Template(template.text).substitute(dict.fromkeys(names, ""))
    assert len(re.findall(r"[\u4e00-\u9fff]", fixed)) >= 4, "fixed text must say what it is"
    assert "【" not in template.text
    assert "http" not in template.text
    values = template_params(template, LONGEST)
    for name, prop in template.variables:
        assert check_value(prop, values[name]) is None
        # The fake endpoint, written from the provider's rules on its own, agrees.
        assert variable_problem(prop, values[name]) is None, (name, values[name])
    text = string.Template(template.text).substitute(values)
    assert len(text) <= MAX_TEMPLATE_CHARS


def test_every_kind_has_an_sms_and_a_tts_template_and_every_menu_its_replies() -> None:
    names = {t.name for t in TEMPLATES}
    kinds = message_kinds()
    assert "ticket_call" in kinds
    assert not {"voice_menu", "digest", "digest_same"} & set(kinds)
    for kind in kinds:
        assert {f"sms.{kind}", f"tts.{kind}"} <= names
        for words in menu_of(kind).values():
            assert f"tts.{words}" in names
    for plain, linked in LINK_VARIANTS.items():
        assert sms_kind(linked) == plain
        assert f"sms.{linked}" not in names
    assert set(VOICE_MENUS) <= set(zh_cn.TEMPLATES)
    assert all("重听" not in t.text for t in TEMPLATES)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("phone", "+44 7700 900123", "not a phone number"),
        ("resident", "张" * 36, "longer than 35"),
        ("place", "见 https://bidao.gov.cn", "contains a link"),
        ("ticket", "T-12", "not letters and digits"),
        ("since", "明天", "not a time"),
        ("place", "", "empty"),
    ],
)
def test_a_value_the_carrier_would_refuse_is_named_before_sending(
    name: str, value: str, problem: str
) -> None:
    template = next(t for t in TEMPLATES if name in t.rule())
    params = {**LONGEST, name: value}
    with pytest.raises(CarrierTemplateError, match=rf"\${{{name}}} is {problem}"):
        template_params(template, params)


def test_a_mainland_number_goes_without_its_country_code() -> None:
    template = next(t for t in TEMPLATES if t.name == "sms.ticket_call")
    assert template_params(template, LONGEST)["phone"] == "13912345678"


def test_the_export_lists_every_template_with_its_variables() -> None:
    text = export_text({"sms.ticket_call": "SMS_123456789"})
    for t in TEMPLATES:
        assert f"[{t.name}]" in text
    assert "[sms.ticket_call]  短信通知 (SMS notification)  code: SMS_123456789" in text
    assert "  ${phone}: 电话号码 (mobilePhone)" in text


def aliyun(**more: object) -> dict[str, object]:
    codes = {t.name: f"CODE_{i}" for i, t in enumerate(TEMPLATES)}
    return {
        "provider": "aliyun",
        "public_url": "https://bidao.example.cn",
        "aliyun_access_key_id": "LTAI5tExample",
        "aliyun_access_key_secret": "secret",
        "aliyun_sign_name": "必到",
        "aliyun_show_number": "057188880000",
        "aliyun_receipt_token": "token",
        "aliyun_templates": codes,
        **more,
    }


def test_a_template_without_its_code_stops_the_start_with_its_name() -> None:
    settings = aliyun()
    codes = dict(settings["aliyun_templates"])  # type: ignore[call-overload]
    del codes["tts.leak_alarm"]
    with pytest.raises(ConfigError, match=r"no approved template code for tts\.leak_alarm"):
        load_settings(environ={}, notify={**settings, "aliyun_templates": codes})
    assert load_settings(environ={}, notify=settings).notify.provider == "aliyun"


def test_missing_credentials_stop_the_start() -> None:
    with pytest.raises(ConfigError, match=r"notify\.aliyun_access_key_secret, notify\.aliyun_sign"):
        load_settings(environ={}, notify=aliyun(aliyun_access_key_secret="", aliyun_sign_name=""))


def test_bidao_templates_export_prints_what_to_submit_and_the_settings_to_fill(
    tmp_path: Path,
) -> None:
    done = bidao(tmp_path, "templates", "export")
    assert (done.returncode, done.stderr) == (0, "")
    out = done.stdout
    assert "[sms.ticket_call]  短信通知 (SMS notification)" in out
    assert (
        "  ${resident}（${place}，电话${phone}）按下了呼叫键，请尽快联系或上门。工单${ticket}。"
        in out
    )
    assert "[notify.aliyun_templates]" in out
    assert out.count('" = ""') == len(TEMPLATES)
