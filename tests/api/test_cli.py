"""The `bidao` command line: help, provisioning, listing, import, report, metrics, errors."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.cli import main
from tests.gateway import support
from tests.gateway.grid import CONTACTS_CSV, HOUSEHOLDS_CSV, UNITS_CSV

BIDAO = Path(sys.executable).with_name("bidao")  # the console script of this virtualenv
KEY = "000102030405060708090a0b0c0d0e0f"


def bidao(data_dir: Path, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run the installed `bidao` console script against one data folder."""
    return support.bidao(data_dir, *argv, timeout=timeout)


def write_grid(folder: Path) -> dict[str, Path]:
    """The test village's three files, saved with a BOM as Excel saves them."""
    files = {}
    for name, text in (
        ("units", UNITS_CSV),
        ("households", HOUSEHOLDS_CSV),
        ("contacts", CONTACTS_CSV),
    ):
        files[name] = folder / f"{name}.csv"
        files[name].write_text("\ufeff" + text, encoding="utf-8")
    return files


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "device", "import", "report", "metrics", "sim"):
        assert command in out
    assert "必到" in out


def test_sim_keeps_its_own_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: bidao sim")
    for action in ("box", "meter", "fleet", "phones"):
        assert action in out
    assert main(["sim", "box", "--device-id", "xyz", "--key", "00" * 16, "press", "green"]) == 2
    assert "--device-id: must be 16 hex digits" in capsys.readouterr().err


def test_device_add_and_list_with_a_table(tmp_path: Path) -> None:
    added = bidao(tmp_path, "device", "add", "B1DA000000000001", "--kind", "call_box", "--key", KEY)
    assert added.returncode == 0, added.stderr
    assert added.stdout == "已登记呼叫盒 b1da000000000001\nregistered b1da000000000001 (call_box)\n"
    generated = bidao(tmp_path, "device", "add", "b1da000000000002", "--kind", "water_meter")
    assert generated.returncode == 0, generated.stderr
    key = generated.stdout.splitlines()[-1].rsplit(" ", 1)[1]  # "key (shown once ...): KEY"
    assert len(bytes.fromhex(key)) == 16

    listing = bidao(tmp_path, "device", "list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stderr == ""
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["设备", "类型", "住户", "状态", "电量", "信号", "最后联系"]
    assert lines[1].split() == [
        "device",
        "kind",
        "household",
        "state",
        "battery",
        "rssi",
        "last",
        "seen",
    ]
    del lines[1]
    assert set(lines[1].strip()) == {"─"}  # the Rich table's rule under its header
    state = ["在用", "in", "use,", "未联系", "not", "heard", "-", "-", "-"]
    assert lines[2].split() == ["b1da000000000001", "呼叫盒", "call", "box", "-", *state]
    assert lines[3].split() == ["b1da000000000002", "水表", "water", "meter", "-", *state]
    assert lines[4:] == ["共 2 台设备", "2 devices"]
    assert KEY not in listing.stdout
    assert key not in listing.stdout


def test_a_closed_pipe_ends_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIDAO_DATA_DIR", str(tmp_path))
    for n in range(3):
        assert main(["device", "add", f"b1da{n:012x}", "--kind", "call_box", "--key", KEY]) == 0
    env = {**os.environ, "BIDAO_DATA_DIR": str(tmp_path)}
    # `bidao device list | head -1`, as a shell runs it.
    piped = subprocess.run(
        ["/bin/sh", "-c", f"'{BIDAO}' device list | head -1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env=env,
    )
    assert piped.stdout.split() == ["设备", "类型", "住户", "状态", "电量", "信号", "最后联系"]
    assert piped.stderr == ""
    # A reader that has gone before the first write: every write meets a closed pipe.
    for argv in (["device", "list"], ["report"], ["sim", "--help"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            closed = subprocess.run(
                [str(BIDAO), *argv],
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
                timeout=30,
                env=env,
            )
        finally:
            os.close(write_end)
        assert closed.stderr == "", argv
        assert closed.returncode in (0, 128 + signal.SIGPIPE), argv


def test_import_check_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = write_grid(tmp_path)
    assert bidao(data, "import", "units", str(files["units"])).returncode == 0
    database = data / "bidao.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    for _ in range(2):
        checked = bidao(data, "import", "households", str(files["households"]), "--check")
        assert checked.returncode == 0, checked.stderr
        # The second check still finds both households new: the first wrote nothing.
        assert "checked, nothing written: 2 households rows: 2 inserted" in checked.stdout
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    imported = bidao(data, "import", "households", str(files["households"]))
    assert imported.returncode == 0, imported.stderr
    assert "imported: 2 households rows: 2 inserted" in imported.stdout


@pytest.mark.parametrize(
    "command",
    [["device", "list"], ["report"], ["import", "units", "{units}", "--check"]],
    ids=["device-list", "report", "import-check"],
)
@pytest.mark.parametrize("damage", ["not-a-database", "truncated"])
def test_a_damaged_database_is_one_line_and_a_prompt_exit(
    tmp_path: Path, command: list[str], damage: str
) -> None:
    data = tmp_path / "data"
    files = write_grid(tmp_path)
    if damage == "truncated":
        assert bidao(data, "import", "units", str(files["units"])).returncode == 0
        whole = (data / "bidao.db").read_bytes()
        for leftover in data.glob("bidao.db-*"):
            leftover.unlink()
        (data / "bidao.db").write_bytes(whole[:100])
    else:
        data.mkdir()
        (data / "bidao.db").write_bytes(b"this is a spreadsheet, not a database\n" * 200)
    argv = [part.format(units=files["units"]) for part in command]
    started = time.monotonic()
    result = bidao(data, *argv, timeout=60)
    took = time.monotonic() - started
    print(f"{' '.join(argv)} on a {damage} file: exit {result.returncode} in {took:.2f} s")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"bidao: {data / 'bidao.db'} is not a Bidao database: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["device", "add", "not-hex", "--kind", "call_box"], "'not-hex' is not 16 hex digits"),
        (["device", "add", "b1da000000000001", "--kind", "toaster"], "'toaster' is not one of"),
        (["device", "add", "b1da000000000001", "--kind", "call_box", "--key", "abcd"], "32 hex"),
        (["device", "add", "b1da000000000001", "--kind", "call_box", "--key", "zz" * 16], "32 hex"),
        (["report", "--days", "-1"], "must be a positive number of days, got -1"),
        (["report", "--days", "0"], "must be a positive number of days, got 0"),
        (["import", "streets", "x.csv"], "'streets' is not one of"),
        (["device", "frobnicate"], "No such command"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path: Path, argv: list[str], message: str) -> None:
    result = bidao(tmp_path, *argv)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "bidao.db").exists()  # refused before the store was opened


def test_a_device_that_cannot_be_added_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIDAO_DATA_DIR", str(tmp_path))
    assert main(["device", "add", "b1da000000000001", "--kind", "call_box", "--key", KEY]) == 0
    capsys.readouterr()
    assert main(["device", "add", "b1da000000000001", "--kind", "call_box", "--key", KEY]) == 2
    err = capsys.readouterr().err
    assert err == (
        "错误：设备 b1da000000000001 已经登记过，未做任何更改；要绑定或更换住户请用"
        " bidao device attach 或 move。\n"
        "error: device b1da000000000001 is registered already; nothing was changed. To attach"
        " it or change its household use bidao device attach or move.\n"
    )


def test_an_unreadable_config_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.toml"
    assert main(["device", "list", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bidao: cannot read config file {missing}")


def test_metrics_without_a_running_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIDAO_DATA_DIR", str(tmp_path))
    assert main(["metrics"]) == 1
    assert "is the gateway running" in capsys.readouterr().err
    assert not (tmp_path / "bidao.db").exists()  # metrics reads the snapshot, not the store
    (tmp_path / "metrics.prom").write_text("bidao_frames_total 3.0\n", encoding="utf-8")
    assert main(["metrics"]) == 0
    assert capsys.readouterr().out == "bidao_frames_total 3.0\n"


def test_run_on_embedded_defaults_starts_and_stops_cleanly(tmp_path: Path) -> None:
    from gateway.runtime.broker import free_loopback_port

    env = {
        "BIDAO_DATA_DIR": str(tmp_path),
        "BIDAO_MQTT__PORT": str(free_loopback_port()),
        "BIDAO_HTTP__PORT": str(free_loopback_port()),
        "PATH": "/usr/sbin:/usr/bin:/bin",
    }
    process = subprocess.Popen([str(BIDAO), "run"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            # Up once the box link has its session; the downlink connection may come first.
            if "gateway running" in line:
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
    monkeypatch.setenv("BIDAO_DATA_DIR", str(tmp_path))
    files = write_grid(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(CONTACTS_CSV + "某人,mayor,341504,,13800000009,,,\n", encoding="utf-8")
    assert main(["import", "units", str(files["units"])]) == 0
    assert main(["import", "households", str(files["households"])]) == 0
    assert (
        "imported: 2 households rows: 2 inserted, 0 updated, 0 unchanged, 0 rejected; "
        "1 new call boxes" in capsys.readouterr().out
    )
    # A file with a bad row is rejected whole, the bad row reported; exit status 1.
    assert main(["import", "contacts", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "file rejected, nothing imported: 1 of 9 contacts rows have errors" in captured.out
    assert f"{bad} line 10, role: must be one of village_secretary" in captured.err
    assert main(["import", "contacts", str(files["contacts"])]) == 0
    assert "8 inserted, 0 updated, 0 unchanged, 0 rejected" in capsys.readouterr().out
    # A file that is not UTF-8 is refused whole.
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(CONTACTS_CSV.encode("gbk"))
    assert main(["import", "contacts", str(gbk)]) == 1
    assert "file rejected, nothing imported" in capsys.readouterr().err
    assert main(["import", "contacts", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["report", "--days", "7"]) == 0
    report = capsys.readouterr().out
    rows = [line.split() for line in report.splitlines()]
    assert "一、预警颜色（此刻）" in report
    assert ["桥元村", "村", "绿", "0", "0", "-"] in rows
    assert ["钱邻长", "桥元村一片三组一邻", "蓝牌", "无接单", "0"] in rows
    assert "近7天" in report
    assert "90天内没人按过呼叫键的呼叫器：0 台" in report
