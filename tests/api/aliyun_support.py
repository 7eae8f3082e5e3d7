"""The fake Alibaba Cloud endpoint for gateway tests: every carrier template approved under
a code, and the gateway's `notify` settings that point the real SDKs at the fake."""

from __future__ import annotations

from alerts.carrier_templates import carrier_templates
from device_sim.aliyun import ApprovedTemplate, FakeAliyun

KEY_ID = "LTAI5tBidaoTestKey01"
SECRET = "bidao-test-access-key-secret"
RECEIPT_TOKEN = "receipt-token-5f1d2c"
SIGN_NAME = "必到"
SHOW_NUMBER = "057188880000"


def approved() -> tuple[dict[str, str], list[ApprovedTemplate]]:
    """(name → code, the templates as the account holds them) for every carrier template."""
    codes: dict[str, str] = {}
    held: list[ApprovedTemplate] = []
    for i, t in enumerate(carrier_templates()):
        code = f"{'SMS' if t.kind == 'sms' else 'TTS'}_{100000 + i}"
        codes[t.name] = code
        held.append(ApprovedTemplate(code, t.kind, t.text, t.rule()))
    return codes, held


def fake_aliyun(public_url: str) -> FakeAliyun:
    """The fake endpoint, its receipts pushed to the gateway at `public_url`."""
    _, held = approved()
    base = f"{public_url}/webhooks/aliyun/{RECEIPT_TOKEN}"
    return FakeAliyun(
        KEY_ID,
        SECRET,
        held,
        sign_name=SIGN_NAME,
        sms_report_url=f"{base}/sms-report",
        voice_report_url=f"{base}/voice-report",
    )


def aliyun_notify(public_url: str, fake: FakeAliyun, **more: object) -> dict[str, object]:
    """The `notify` settings of a gateway whose aliyun provider talks to `fake`."""
    codes, _ = approved()
    return {
        "provider": "aliyun",
        "public_url": public_url,
        "aliyun_access_key_id": KEY_ID,
        "aliyun_access_key_secret": SECRET,
        "aliyun_sign_name": SIGN_NAME,
        "aliyun_show_number": SHOW_NUMBER,
        "aliyun_templates": codes,
        "aliyun_receipt_token": RECEIPT_TOKEN,
        "aliyun_sms_endpoint": fake.endpoint,
        "aliyun_voice_endpoint": fake.endpoint,
        "aliyun_protocol": "http",
        **more,
    }
