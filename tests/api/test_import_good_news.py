"""The contacts file's `notify` column takes the morning message (早安 / first_use), for family."""

from __future__ import annotations

from pathlib import Path

from tests.api.test_import_cli import rows, village
from tests.gateway.support import bidao

__all__ = ["village"]  # the fixture, shared with the import tests

HEADER = "姓名,角色,单位代码,户号,电话,语言,值守开始,值守结束,通知事项"


def test_family_choose_the_morning_message_in_chinese_or_english(
    village: Path, tmp_path: Path
) -> None:
    path = tmp_path / "family.csv"
    path.write_text(
        f"{HEADER}\n"
        "张小红,家属,,341504-101-001-0001,13900000021,中文,,,呼叫、接单、到达、办结、早安\n"
        "张大明,家属,,341504-101-001-0001,13900000022,中文,,,good_morning\n",
        encoding="utf-8",
    )
    done = bidao(village, "import", "contacts", str(path))
    assert done.returncode == 0, done.stderr
    assert rows(village, "SELECT name, notify FROM contacts ORDER BY id") == [
        ("张小红", "called,accepted,arrived,resolved,first_use"),
        ("张大明", "first_use"),
    ]


def test_the_morning_message_is_for_family_only(village: Path, tmp_path: Path) -> None:
    path = tmp_path / "worker.csv"
    path.write_text(
        f"{HEADER}\n赵网格员,网格员,341504-101-001-1,,13800000003,中文,,,接单、早安\n",
        encoding="utf-8",
    )
    done = bidao(village, "import", "contacts", str(path))
    assert done.returncode == 1
    assert f"{path} 第2行，通知事项（notify）：“早安”（每天第一次用水的短信）只能发给家属" in (
        done.stderr
    )
    assert f"{path} line 2, notify: first_use (the day's first water use) is for family only" in (
        done.stderr
    )
    assert rows(village, "SELECT count(*) FROM contacts") == [(0,)]
