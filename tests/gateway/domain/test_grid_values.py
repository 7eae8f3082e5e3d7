"""The rules for values typed into the grid: phones and times as people write them, clean text."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from gateway.domain.grid import (
    FieldError,
    clock_time,
    grid_code,
    key_safe_code,
    phone_number,
    plain_text,
)

WIDE = {ord(c): ord(c) + 0xFEE0 for c in "0123456789:()"}
"""Full-width digits, colon and brackets, as a Chinese input method types them."""


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("13900000020", "13900000020"),
        ("139-0000-0020", "13900000020"),
        ("139 0000 0020", "13900000020"),
        ("+86 139 0000 0020", "13900000020"),
        ("+86-139-0000-0020", "13900000020"),
        ("0086 139 0000 0020", "13900000020"),
        ("(+86) 13900000020", "13900000020"),
        ("13900000020".translate(WIDE), "13900000020"),
        ("0558-1234567", "05581234567"),
        ("(0558) 1234567", "05581234567"),
        ("0558 12345678", "055812345678"),
        ("010-12345678", "01012345678"),
        ("+86 10 1234 5678", "01012345678"),
        ("+86 558 1234567", "05581234567"),
        ("+86 (0)558 1234567", "05581234567"),
        ("0044 7700 900123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("+1 (202) 555-0100", "+12025550100"),
    ],
)
def test_phone_numbers_as_people_write_them_are_kept_in_one_form(typed: str, kept: str) -> None:
    assert phone_number(typed) == kept


@pytest.mark.parametrize(
    ("typed", "rule"),
    [
        ("12ab", "phone_characters"),
        ("139*0000*0020", "phone_characters"),
        ("=13900000020", "phone_characters"),
        ("139-0000-002", "phone_mobile"),  # 10 digits
        ("139000000200", "phone_mobile"),  # 12 digits
        ("12900000020", "phone_mobile"),  # no mobile begins 12
        ("+86 139 0000 00", "phone_mobile"),
        ("1234567", "phone_mobile"),
        ("7654321", "phone_area"),
        ("0558-123456", "phone_landline"),  # 6 digits after the area code
        ("0558-123456789", "phone_landline"),
        ("+0 123456789", "phone_international"),
        ("+44 12", "phone_international"),
        ("+4412345678901234", "phone_international"),  # 16 digits
        ("+", "phone_characters"),
        ("1" * 40, "too_long"),
    ],
)
def test_impossible_phone_numbers_are_refused(typed: str, rule: str) -> None:
    with pytest.raises(FieldError) as refused:
        phone_number(typed)
    assert refused.value.rule == rule


@pytest.mark.parametrize(
    ("typed", "end", "kept"),
    [
        ("8:00", False, "08:00"),
        ("08:00", False, "08:00"),
        ("8点", False, "08:00"),
        ("8时", False, "08:00"),
        ("8点半", False, "08:30"),
        ("8点15", False, "08:15"),
        ("8点15分", False, "08:15"),
        ("20:30".translate(WIDE), False, "20:30"),
        ("20:30", True, "20:30"),
        ("0:00", False, "00:00"),
        ("24:00", True, "24:00"),
        ("24点", True, "24:00"),
    ],
)
def test_times_as_people_write_them_are_kept_as_hh_mm(typed: str, end: bool, kept: str) -> None:
    assert clock_time(typed, end=end) == kept


@pytest.mark.parametrize(
    ("typed", "end", "rule"),
    [
        ("24:00", False, "time_24_start"),
        ("25:00", True, "time"),
        ("24:30", True, "time"),
        ("8:60", False, "time"),
        ("8", False, "time"),
        ("下午3点", False, "time"),
        ("8:0", False, "time"),
        ("=8:00", False, "time"),
    ],
)
def test_impossible_times_are_refused(typed: str, end: bool, rule: str) -> None:
    with pytest.raises(FieldError) as refused:
        clock_time(typed, end=end)
    assert refused.value.rule == rule


@pytest.mark.parametrize(
    ("value", "rule", "params"),
    [
        ('=HYPERLINK("http://x")', "formula", {"first": "="}),
        ("+1", "formula", {"first": "+"}),
        ("-1", "formula", {"first": "-"}),
        ("@x", "formula", {"first": "@"}),
        ("张\x00兰", "invisible", {"char": "U+0000", "position": "2"}),
        ("张\t兰", "invisible", {"char": "U+0009", "position": "2"}),
        ("张\u200b兰", "invisible", {"char": "U+200B", "position": "2"}),
        ("张兰\u2028", "invisible", {"char": "U+2028", "position": "3"}),
        ("张" * 21, "too_long", {"cap": "20", "length": "21"}),
    ],
)
def test_text_breaking_a_rule_is_refused_by_name(
    value: str, rule: str, params: dict[str, str]
) -> None:
    with pytest.raises(FieldError) as refused:
        plain_text(value, 20)
    assert (refused.value.rule, refused.value.params) == (rule, params)


def test_text_within_the_rules_is_kept_as_it_is() -> None:
    for value in (
        "张桂兰",
        "阿不都热合曼·买买提",
        "Mary O'Neil",
        "桥元村三组12号（东头）",
        "a=b",
        "3-1",
    ):
        assert plain_text(value, 20) == value
    assert plain_text("张" * 20, 20) == "张" * 20


def test_the_invisible_characters_are_exactly_the_control_and_format_categories() -> None:
    refused = set()
    for code in range(sys.maxunicode + 1):
        try:
            plain_text(f"a{chr(code)}", 2)
        except FieldError as exc:
            if exc.rule == "invisible":
                refused.add(code)
    expected = {
        code
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp", "Cs")
    }
    assert refused == expected


@pytest.mark.parametrize("code", ["341504-101-001", "H1", "a", "A" * 40])
def test_codes(code: str) -> None:
    assert grid_code(code) == code


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("-341504", "formula"),
        ("3415 04", "code"),
        ("341504/1", "code"),
        ("张", "code"),
        ("A" * 41, "too_long"),
    ],
)
def test_bad_codes(code: str, rule: str) -> None:
    with pytest.raises(FieldError) as refused:
        grid_code(code)
    assert refused.value.rule == rule


def test_key_safe_codes() -> None:
    assert key_safe_code("0000-0000-0000") == "0000-0000-0000"
    for bad, rule in (("=1", "formula"), ("12 34", "key_safe"), ("1" * 17, "too_long")):
        with pytest.raises(FieldError) as refused:
            key_safe_code(bad)
        assert refused.value.rule == rule
