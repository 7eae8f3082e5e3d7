"""`bidao device add|attach|move|replace|remove|list|history` and `bidao alarms`, run by people."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.grid import BOX_ID, CONTACTS_CSV, HOUSEHOLD, HOUSEHOLDS_CSV, UNITS_CSV
from tests.gateway.support import bidao

# Hang guard only: each test starts the `bidao` command many times, and on a loaded machine
# one start takes seconds.
pytestmark = pytest.mark.timeout(300)

KEY = "000102030405060708090a0b0c0d0e0f"
OTHER_HOUSEHOLD = "341504-101-001-0002"
NEW_BOX = "b1da0000000000aa"
LOOSE_BOX = "b1da0000000000bb"


@pytest.fixture
def village(tmp_path: Path) -> Path:
    for name, text in (
        ("units", UNITS_CSV),
        ("households", HOUSEHOLDS_CSV),
        ("contacts", CONTACTS_CSV),
    ):
        path = tmp_path / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        done = bidao(tmp_path, "import", name, str(path))
        assert done.returncode == 0, done.stderr
    return tmp_path


def test_an_unknown_household_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    refused = bidao(tmp_path, "device", "add", NEW_BOX, "--kind", "call_box", "--household", "H999")
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr == (
        "错误：住户 H999 不存在，未做任何更改。请先导入该住户（bidao import households），"
        "或检查住户编码。\n"
        "error: no household H999; nothing was changed. Import it first "
        "(bidao import households) or check the code.\n"
    )
    listing = bidao(tmp_path, "device", "list")
    assert listing.stdout.splitlines()[-2:] == ["共 0 台设备", "0 devices"]
    unit = bidao(tmp_path, "device", "add", NEW_BOX, "--kind", "call_box", "--unit", "X1")
    assert unit.returncode == 2
    assert unit.stderr.startswith("错误：网格单元 X1 不存在，未做任何更改。\n")


def test_a_box_is_attached_moved_replaced_and_removed_with_its_history(village: Path) -> None:
    added = bidao(village, "device", "add", LOOSE_BOX, "--kind", "call_box", "--key", KEY)
    assert added.returncode == 0, added.stderr
    assert added.stdout == f"已登记呼叫盒 {LOOSE_BOX}\nregistered {LOOSE_BOX} (call_box)\n"
    assert added.stderr.startswith(f"注意：{LOOSE_BOX} 未绑定住户。按下呼叫键时无法通知任何责任人")

    wrong = bidao(village, "device", "move", LOOSE_BOX, OTHER_HOUSEHOLD)
    assert wrong.returncode == 2
    assert wrong.stderr.startswith(
        f"错误：设备 {LOOSE_BOX} 还没有绑定住户；请用 bidao device attach。"
    )
    attached = bidao(village, "device", "attach", LOOSE_BOX, OTHER_HOUSEHOLD, "--by", "李工")
    assert attached.returncode == 0, attached.stderr
    assert attached.stdout.splitlines()[:2] == [
        f"已将 {LOOSE_BOX} 绑定到住户 {OTHER_HOUSEHOLD}",
        f"attached {LOOSE_BOX} to household {OTHER_HOUSEHOLD}",
    ]
    same = bidao(village, "device", "move", LOOSE_BOX, OTHER_HOUSEHOLD)
    assert same.returncode == 2
    assert "已经绑定在住户" in same.stderr
    nowhere = bidao(village, "device", "move", LOOSE_BOX, "H999")
    assert nowhere.returncode == 2
    assert nowhere.stderr.startswith("错误：住户 H999 不存在，未做任何更改。")

    # The imported box breaks; a new one (not registered yet) takes over its household.
    replaced = bidao(village, "device", "replace", BOX_ID, NEW_BOX, "--by", "李工")
    assert replaced.returncode == 0, replaced.stderr
    lines = replaced.stdout.splitlines()
    assert lines[:2] == [
        f"{NEW_BOX} 已接替 {BOX_ID}（住户 {HOUSEHOLD}），{BOX_ID} 已停用",
        f"{NEW_BOX} replaces {BOX_ID} (household {HOUSEHOLD}); {BOX_ID} is retired",
    ]
    assert len(bytes.fromhex(lines[3].rsplit(" ", 1)[1])) == 16  # the new key, shown once
    again = bidao(village, "device", "move", BOX_ID, OTHER_HOUSEHOLD)
    assert again.returncode == 2
    assert again.stderr.startswith(f"错误：设备 {BOX_ID} 已停用，不能再更改。")

    removed = bidao(village, "device", "remove", LOOSE_BOX, "--by", "李工")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.startswith(
        f"已停用 {LOOSE_BOX}（原住户 {OTHER_HOUSEHOLD}），历史记录保留；它再发来的消息会被拒绝\n"
    )

    listing = bidao(village, "device", "list").stdout
    rows = {line.split()[0]: line.split() for line in listing.splitlines() if "b1da" in line}
    assert rows[BOX_ID][4:6] == ["-", "已停用"]
    assert rows[NEW_BOX][4:7] == [HOUSEHOLD, "在用", "in"]
    assert rows[LOOSE_BOX][4:6] == ["-", "已停用"]

    history = bidao(village, "device", "history", LOOSE_BOX)
    assert history.returncode == 0, history.stderr
    actions = [line.split()[2] for line in history.stdout.splitlines()[3:]]
    assert actions == ["登记", "绑定住户", "停用"]
    assert history.stdout.count("李工") == 2
    old = bidao(village, "device", "history", BOX_ID).stdout
    assert "被替换" in old
    assert NEW_BOX in old
    new = bidao(village, "device", "history", NEW_BOX).stdout
    assert "替换旧盒" in new
    unknown = bidao(village, "device", "history", "b1da0000000000cc")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("错误：设备 b1da0000000000cc 未登记。")


def test_alarms_with_none_and_clearing_one_that_is_not_there(tmp_path: Path) -> None:
    none = bidao(tmp_path, "alarms")
    assert none.returncode == 0, none.stderr
    assert none.stdout == "没有未清除的告警\nno open alarms\n"
    missing = bidao(tmp_path, "alarms", "clear", "7")
    assert missing.returncode == 2
    assert missing.stderr == "错误：没有编号为 7 的未清除告警。\nerror: no open alarm 7.\n"


def test_rotate_key_configure_and_reset_counters_are_recorded(village: Path) -> None:
    rotated = bidao(village, "device", "rotate-key", BOX_ID, "--by", "李工")
    assert rotated.returncode == 0, rotated.stderr
    lines = rotated.stdout.splitlines()
    assert lines[0].startswith(f"{BOX_ID}：新密钥（密钥编号 1）已就绪")
    assert lines[1].startswith(f"{BOX_ID}: a new key (key id 1) is ready")
    again = bidao(village, "device", "rotate-key", BOX_ID)
    assert "密钥编号 2" in again.stdout  # restarted: a fresh id, never the abandoned one
    configured = bidao(village, "device", "configure", BOX_ID, "--heartbeat-s", "300", "--clock")
    assert configured.returncode == 0, configured.stderr
    assert "心跳间隔 300 秒和当前时间" in configured.stdout
    assert "heartbeat every 300 s and the time" in configured.stdout
    nothing = bidao(village, "device", "configure", BOX_ID)
    assert nothing.returncode == 2
    assert "nothing to configure" in nothing.stderr
    zero = bidao(village, "device", "configure", BOX_ID, "--heartbeat-s", "0")
    assert zero.returncode == 2
    reset = bidao(village, "device", "reset-counters", BOX_ID)
    assert reset.returncode == 0, reset.stderr
    assert "网关已清除该设备的帧计数" in reset.stdout
    unknown = bidao(village, "device", "reset-counters", "b1da00000000ffff")
    assert unknown.returncode == 2
    assert "unknown device b1da00000000ffff" in unknown.stderr
    history = bidao(village, "device", "history", BOX_ID).stdout
    for words in (
        "更换密钥",
        "key rotation",
        "下发配置",
        "configured",
        "重置计数",
        "counters reset",
    ):
        assert words in history
