"""The `bidao` command line: help, provisioning, listing, metrics."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from api.cli import main


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "device", "metrics", "sim"):
        assert command in out


def test_console_script_help_in_a_subprocess() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; raise SystemExit(main())", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "必到" in result.stdout


def test_device_add_and_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIDAO_DATA_DIR", str(tmp_path))
    key = "000102030405060708090a0b0c0d0e0f"
    assert main(["device", "add", "B1DA000000000001", "--kind", "call_box", "--key", key]) == 0
    assert "registered b1da000000000001" in capsys.readouterr().out
    assert main(["device", "add", "b1da000000000002", "--kind", "water_meter"]) == 0
    out = capsys.readouterr().out
    generated = out.split("key: ")[1].strip()
    assert len(bytes.fromhex(generated)) == 16
    assert main(["device", "list"]) == 0
    listing = capsys.readouterr().out
    assert "b1da000000000001  call_box" in listing
    assert "b1da000000000002  water_meter" in listing
    assert key not in listing


def test_bad_input_gets_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIDAO_DATA_DIR", str(tmp_path))
    assert main(["device", "add", "not-hex", "--kind", "call_box"]) == 2
    assert "bidao:" in capsys.readouterr().err
    assert main(["device", "add", "b1da000000000001", "--kind", "call_box", "--key", "abcd"]) == 2
    assert "16 bytes" in capsys.readouterr().err
    key = "00" * 16
    assert main(["device", "add", "b1da000000000001", "--kind", "call_box", "--key", key]) == 0
    assert main(["device", "add", "b1da000000000001", "--kind", "call_box", "--key", key]) == 2
    assert "cannot be added" in capsys.readouterr().err


def test_metrics_without_a_running_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIDAO_DATA_DIR", str(tmp_path))
    assert main(["metrics"]) == 1
    assert "is the gateway running" in capsys.readouterr().err


def test_run_on_embedded_defaults_starts_and_stops_cleanly(tmp_path: Path) -> None:
    from gateway.broker import free_loopback_port

    env = {
        "BIDAO_DATA_DIR": str(tmp_path),
        "BIDAO_MQTT__PORT": str(free_loopback_port()),
        "BIDAO_HTTP__PORT": str(free_loopback_port()),
        "PATH": "/usr/sbin:/usr/bin:/bin",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import main; raise SystemExit(main())", "run"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if "MQTT connected" in line:
                break
        else:
            pytest.fail("".join(lines))
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        metrics = (tmp_path / "metrics.prom").read_text()
        assert 'bidao_link_connects_total{link="mqtt"} 1.0' in metrics
        assert (tmp_path / "bidao.db").exists()
        assert (tmp_path / "mosquitto" / "mosquitto.conf").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_import_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.gateway.grid import CONTACTS_CSV, HOUSEHOLDS_CSV, UNITS_CSV

    monkeypatch.setenv("BIDAO_DATA_DIR", str(tmp_path))
    files = {}
    for name, text in (
        ("units", UNITS_CSV),
        ("households", HOUSEHOLDS_CSV),
        ("contacts", CONTACTS_CSV),
    ):
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text("\ufeff" + text, encoding="utf-8")  # as Excel saves it
    bad = tmp_path / "bad.csv"
    bad.write_text(CONTACTS_CSV + "某人,mayor,341504,,13800000009,,,\n", encoding="utf-8")
    assert main(["import", "units", str(files["units"])]) == 0
    # --check reports what would happen and writes nothing.
    assert main(["import", "households", str(files["households"]), "--check"]) == 0
    out = capsys.readouterr().out
    assert "checked, nothing written: 2 households rows: 2 inserted" in out
    assert main(["import", "households", str(files["households"])]) == 0
    assert (
        "imported: 2 households rows: 2 inserted, 0 updated, 0 unchanged, 0 rejected; "
        "1 new call boxes" in capsys.readouterr().out
    )
    # The good rows of a file with a bad row land; the bad one is reported; exit status 1.
    assert main(["import", "contacts", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "8 inserted, 0 updated, 0 unchanged, 1 rejected" in captured.out
    assert "1 rows rejected:" in captured.err
    assert "  line 10, role: must be one of village_secretary" in captured.err
    assert main(["import", "contacts", str(files["contacts"])]) == 0
    assert "0 inserted, 0 updated, 8 unchanged, 0 rejected" in capsys.readouterr().out
    # A file that is not UTF-8 is refused whole.
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(CONTACTS_CSV.encode("gbk"))
    assert main(["import", "contacts", str(gbk)]) == 1
    assert "file rejected, nothing imported" in capsys.readouterr().err
    assert main(["import", "contacts", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["report", "--days", "7"]) == 0
    report = capsys.readouterr().out
    assert "village       341504-101-001           桥元村" in report
    assert "card 钱邻长: blue" in report
