"""`bidao sim aliyun`: the fake endpoint served from the command line with the templates
`bidao templates export --json` prints, a phone set, and what it received."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client as SmsClient
from alibabacloud_tea_openapi import models as open_api

from device_sim.cli import main
from device_sim.cli_aliyun import DEFAULT_KEY_ID, DEFAULT_SECRET
from tests.gateway.support import bidao


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`bidao sim aliyun serve` in its own process on a free port; yields its host:port."""
    exported = bidao(tmp_path, "templates", "export", "--json")
    assert exported.returncode == 0, exported.stderr
    templates = tmp_path / "templates.json"
    templates.write_text(exported.stdout, encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from api.entry import main; raise SystemExit(main())",
            *("sim", "aliyun", "serve", "--port", "0", "--templates", str(templates)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("fake Alibaba Cloud on http://127.0.0.1:"), first
        assert f"({len(json.loads(exported.stdout))} templates)" in first
        yield first.split()[4].removeprefix("http://")
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_serve_set_and_received(served: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://{served}"
    assert main(["aliyun", "received", "--url", url]) == 0
    assert "nothing received yet" in capsys.readouterr().out
    assert main(["aliyun", "set", "13800000001", "--url", url, "--sms-fails"]) == 0
    assert "sms_fails=True" in capsys.readouterr().out
    config = open_api.Config(
        access_key_id=DEFAULT_KEY_ID,
        access_key_secret=DEFAULT_SECRET,
        endpoint=served,
        protocol="http",
    )
    request = sms_models.SendSmsRequest(
        phone_numbers="13800000001",
        sign_name="必到",
        template_code="sms.ticket_informed",
        template_param=json.dumps({"resident": "张桂兰", "place": "桥元村三组12号", "ticket": "1"}),
        out_id="1",
    )
    assert SmsClient(config).send_sms(request).body.code == "OK"
    assert main(["aliyun", "received", "13800000001", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "sms.ticket_informed" in out
    assert "【必到】张桂兰（桥元村三组12号）已呼叫书记，请知悉。工单1。" in out
    assert main(["aliyun", "set", "13800000001", "--url", url, "--behaviour", "busy"]) == 0
    assert "behaviour=busy" in capsys.readouterr().out
