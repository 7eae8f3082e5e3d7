"""Logs never carry phone numbers or keys, and rejects are logged once per interval."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.logs import MaskingJsonFormatter, RateLimitedLog, mask


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("call 13812345678 now", "12345678", "138****5678"),
        ("family +8613812345678", "12345678", "+86138****5678"),
        ("abroad +447700900123", "7700900", "+447****23"),
        ("key 000102030405060708090a0b0c0d0e0f", "0001020304", "<key>"),
    ],
)
def test_mask(text: str, hidden: str, kept: str) -> None:
    masked = mask(text)
    assert hidden not in masked
    assert kept in masked


def test_device_ids_and_numbers_that_are_not_phones_stay() -> None:
    assert mask("device b1da000000000001 seq 4096") == "device b1da000000000001 seq 4096"


def test_json_formatter_masks_extra_fields_too() -> None:
    record = logging.LogRecord(
        "bidao", logging.WARNING, "x", 1, "sms to %s", ("13900001111",), None
    )
    record.phone = "13900001111"
    out = json.loads(MaskingJsonFormatter().format(record))
    assert out["msg"] == "sms to 139****1111"
    assert out["phone"] == "139****1111"
    assert out["level"] == "WARNING"


def test_rate_limited_log(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logging.getLogger("bidao.test"), interval_s=60)
    with caplog.at_level(logging.WARNING, logger="bidao.test"):
        for second in range(0, 120, 10):
            limited.warning(("dev", "bad_mac"), float(second), "frame rejected")
        limited.warning(("other", "bad_mac"), 5.0, "frame rejected")
    assert len(caplog.records) == 3
    assert [getattr(r, "suppressed_since_last", None) for r in caplog.records] == [0, 5, 0]
