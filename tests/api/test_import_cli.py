"""`bidao import` as an administrator runs it: the README's examples land, bad cells refuse
the file.

Every case runs the installed console script as a subprocess against a real data folder,
and reads the SQLite file beside it.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import sqlite3
from pathlib import Path

import pytest

from gateway.services import grid_import
from tests.api.test_cli import bidao

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
UNITS = (EXAMPLES / "units.csv").read_text(encoding="utf-8")
HOUSEHOLDS = (EXAMPLES / "households.csv").read_text(encoding="utf-8")
CONTACTS = (EXAMPLES / "contacts.csv").read_text(encoding="utf-8")
HOUSEHOLDS_HEADER = HOUSEHOLDS.splitlines()[0]
CONTACTS_HEADER = CONTACTS.splitlines()[0]
NEIGHBOURHOOD = "341504-101-001-1-3-1"
HOUSEHOLDS_COLUMNS = grid_import.COLUMNS["households"][:-2]  # no call box
VILLAGE = "341504-101-001"


def readme_imports() -> list[list[str]]:
    """The `bidao import` commands of the README's "Importing the grid", as argv lists."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Importing the grid", 1)[1].split("\n## ", 1)[0]
    commands = []
    for line in section.splitlines():
        if line.startswith(".venv/bin/bidao import "):
            argv = shlex.split(line.split("#", 1)[0])
            commands.append(argv[1:])
    return commands


def rows(data: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(data / "bidao.db") as db:
        return db.execute(sql).fetchall()


def digest(data: Path) -> str:
    return hashlib.sha256((data / "bidao.db").read_bytes()).hexdigest()


@pytest.fixture
def village(tmp_path: Path) -> Path:
    """A data folder holding the example units and households (not the contacts)."""
    data = tmp_path / "data"
    for kind in ("units", "households"):
        done = bidao(data, "import", kind, str(EXAMPLES / f"{kind}.csv"))
        assert done.returncode == 0, done.stderr
    return data


def test_the_readme_commands_import_the_examples_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    commands = readme_imports()
    assert [c[1] for c in commands] == ["units", "units", "households", "contacts"]
    assert "--check" in commands[0]
    for argv in commands:
        done = bidao(data, *[str(ROOT / a) if a.startswith("examples/") else a for a in argv])
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        chinese, english = done.stdout.splitlines()
        assert "拒绝0" in chinese
        assert english.endswith(("0 rejected", "0 rejected; 0 new call boxes"))
    # Kept in one form, whatever form the files wrote them in.
    assert rows(data, "SELECT household_code, phone FROM residents ORDER BY id") == [
        ("341504-101-001-0001", "13900000020"),  # 139-0000-0020
        ("341504-101-001-0002", "05581234567"),  # 0558-1234567
        ("341504-101-001-0003", "13900000021"),  # +86 139 0000 0021
    ]
    assert rows(
        data,
        "SELECT name, role, phone, language, available_from, available_to FROM contacts"
        " WHERE name IN ('李书记', '赵网格员', '吴值班', '张小红', '王芳') ORDER BY id",
    ) == [
        ("李书记", "village_secretary", "13800000001", "zh-CN", "00:00", "24:00"),
        ("赵网格员", "grid_worker", "13800000003", "zh-CN", "07:00", "21:00"),
        ("吴值班", "township_duty", "05587654321", "zh-CN", "00:00", "24:00"),
        ("张小红", "family", "+447700900123", "en", "00:00", "24:00"),
        ("王芳", "family", "13700000031", "zh-CN", "08:00", "24:00"),
    ]
    assert rows(data, "SELECT level, count(*) FROM grid_units GROUP BY level ORDER BY 1") == [
        ("area", 1),
        ("county", 1),
        ("group", 1),
        ("neighbourhood", 2),
        ("township", 1),
        ("village", 1),
    ]
    # Running them again changes nothing.
    before = rows(data, "SELECT * FROM contacts ORDER BY id")
    again = bidao(data, "import", "contacts", str(EXAMPLES / "contacts.csv"))
    assert again.returncode == 0, again.stderr
    assert "0 inserted, 0 updated, 9 unchanged, 0 rejected" in again.stdout
    assert rows(data, "SELECT * FROM contacts ORDER BY id") == before


HYPERLINK = '"=HYPERLINK(""http://evil.example/"",""点我"")"'
BAD_CONTACTS = [
    pytest.param(
        f"{HYPERLINK},书记,{VILLAGE},,13800000009,,,",
        "姓名（name）：不能以“=”开头（表格软件会把它当作公式执行）",
        "name: must not begin with '=' (a spreadsheet runs it as a formula)",
        id="formula-name",
    ),
    pytest.param(
        f"@SUM(1+1),书记,{VILLAGE},,13800000009,,,",
        "姓名（name）：不能以“@”开头",
        "name: must not begin with '@'",
        id="at-name",
    ),
    pytest.param(
        f"-2+3,书记,{VILLAGE},,13800000009,,,",
        "姓名（name）：不能以“-”开头",
        "name: must not begin with '-'",
        id="minus-name",
    ),
    pytest.param(
        f"+李,书记,{VILLAGE},,13800000009,,,",
        "姓名（name）：不能以“+”开头",
        "name: must not begin with '+'",
        id="plus-name",
    ),
    pytest.param(
        f"李\x00书记,书记,{VILLAGE},,13800000009,,,",
        "姓名（name）：含有控制字符或不可见字符U+0000（第2个字符），请删去",
        "name: contains a control or invisible character U+0000 (character 2); remove it",
        id="nul-in-name",
    ),
    pytest.param(
        f"李\u202e书记,书记,{VILLAGE},,13800000009,,,",
        "姓名（name）：含有控制字符或不可见字符U+202E（第2个字符）",
        "name: contains a control or invisible character U+202E (character 2)",
        id="bidi-override-in-name",
    ),
    pytest.param(
        f"{'欧阳' * 11},书记,{VILLAGE},,13800000009,,,",
        "姓名（name）：太长：22个字符，最多20个",
        "name: too long: 22 characters, at most 20",
        id="long-name",
    ),
    pytest.param(
        f"李书记,书记,{VILLAGE},,139-0000-002,,,",
        "电话（phone）：不是有效的手机号码",
        "phone: not a mobile number (11 digits beginning 13 to 19, e.g. 139-0000-0020)",
        id="short-mobile",
    ),
    pytest.param(
        f"李书记,书记,{VILLAGE},,1234567,,,",
        "电话（phone）：不是有效的手机号码",
        "phone: not a mobile number",
        id="local-number",
    ),
    pytest.param(
        f"李书记,书记,{VILLAGE},,7654321,,,",
        "电话（phone）：座机号码缺少区号",
        "phone: a landline number needs its area code",
        id="landline-without-area-code",
    ),
    pytest.param(
        f"李书记,书记,{VILLAGE},,=1+13800000009,,,",
        "电话（phone）：不是电话号码",
        "phone: not a phone number: digits, a leading '+', spaces, '-' and brackets only",
        id="formula-phone",
    ),
    pytest.param(
        f"李书记,书记,{VILLAGE},,13800000009,,25:00,",
        "值守开始（available_from）：不是时间：请写成24小时制",
        "available_from: not a time: use the 24-hour clock",
        id="impossible-time",
    ),
    pytest.param(
        f"李书记,书记,{VILLAGE},,13800000009,,24:00,",
        "值守开始（available_from）：24:00是一天的结束，不能作为开始时间",
        "available_from: 24:00 is the end of the day, not a start",
        id="midnight-start",
    ),
    pytest.param(
        f"李书记,书记,{VILLAGE},,13800000009,,8点,08:00",
        "值守结束（available_to）：值守开始和结束都是08:00，这个人永远不会被联系",
        "available_to: available_from and available_to are both 08:00: never reachable",
        id="never-available",
    ),
    pytest.param(
        f"李书记,市长,{VILLAGE},,13800000009,,,",
        "角色（role）：角色只能是书记、副书记",
        "role: must be one of village_secretary, deputy_secretary",
        id="unknown-role",
    ),
]


@pytest.mark.parametrize(("row", "chinese", "english"), BAD_CONTACTS)
def test_a_bad_contact_cell_refuses_the_file(
    village: Path, tmp_path: Path, row: str, chinese: str, english: str
) -> None:
    good = "赵网格员,网格员,341504-101-001-1,,138-0000-0003,,7:00,21:00"
    bad = tmp_path / "bad contacts.csv"
    bad.write_text(f"{CONTACTS_HEADER}\n{good}\n{row}\n", encoding="utf-8")
    before = digest(village)
    done = bidao(village, "import", "contacts", str(bad))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stdout.splitlines() == [
        f"{bad}：文件被拒绝，什么也没有导入：2行联系人中有1行有错误；请改正后重新导入整个文件",
        (
            f"{bad}: file rejected, nothing imported: 1 of 2 contacts rows have errors; "
            "correct them and import the whole file again"
        ),
    ]
    zh, en = done.stderr.splitlines()
    assert zh.startswith(f"{bad} 第3行，{chinese}"), zh
    assert en.startswith(f"{bad} line 3, {english}"), en
    # Nothing of the file was written, not even its good row.
    assert digest(village) == before
    assert rows(village, "SELECT count(*) FROM contacts") == [(0,)]


BAD_HOUSEHOLDS = [
    pytest.param(
        {"address": "桥" * 100_000},
        "地址（address）：太长：100000个字符，最多100个",
        "address: too long: 100000 characters, at most 100",
        id="huge-address",
    ),
    pytest.param(
        {"address": "+SUM(A1:A9)"},
        "地址（address）：不能以“+”开头",
        "address: must not begin with '+'",
        id="formula-address",
    ),
    pytest.param(
        {"resident_name": "张\x07兰"},
        "姓名（resident_name）：含有控制字符或不可见字符U+0007（第2个字符）",
        "resident_name: contains a control or invisible character U+0007 (character 2)",
        id="bell-in-name",
    ),
    pytest.param(
        {"resident_phone": "+86 139 0000 00"},
        "电话（resident_phone）：不是有效的手机号码",
        "resident_phone: not a mobile number",
        id="short-number-after-86",
    ),
    pytest.param(
        {"health_notes": "@" + "高血压"},
        "健康提示（health_notes）：不能以“@”开头",
        "health_notes: must not begin with '@'",
        id="at-notes",
    ),
    pytest.param(
        {"health_notes": "高血压" * 40},
        "健康提示（health_notes）：太长：120个字符，最多100个",
        "health_notes: too long: 120 characters, at most 100",
        id="long-notes",
    ),
    pytest.param(
        {"household_code": "-341504"},
        "户号（household_code）：不能以“-”开头",
        "household_code: must not begin with '-'",
        id="minus-code",
    ),
    pytest.param(
        {"household_code": "341504/7"},
        "户号（household_code）：代码只能由字母、数字和“-”组成",
        "household_code: letters, digits and '-', beginning with a letter or digit",
        id="slash-code",
    ),
    pytest.param(
        {"lives_alone": "maybe"},
        "独居（lives_alone）：请填 是/否 或 1/0，不是“maybe”",
        "lives_alone: expected 1/0 or 是/否, got 'maybe'",
        id="not-yes-or-no",
    ),
    pytest.param(
        {"key_safe_code": "=1"},
        "钥匙盒密码（key_safe_code）：不能以“=”开头",
        "key_safe_code: must not begin with '='",
        id="formula-key-safe",
    ),
]


@pytest.mark.parametrize(("cells", "chinese", "english"), BAD_HOUSEHOLDS)
def test_a_bad_household_cell_refuses_the_file(
    tmp_path: Path, cells: dict[str, str], chinese: str, english: str
) -> None:
    data = tmp_path / "data"
    assert bidao(data, "import", "units", str(EXAMPLES / "units.csv")).returncode == 0
    columns = [*HOUSEHOLDS_COLUMNS]
    values = dict.fromkeys(columns, "")
    values.update(
        {"household_code": "H2", "neighbourhood_code": NEIGHBOURHOOD, "resident_name": "李德福"}
    )
    values.update(cells)
    text = (
        ",".join(columns)
        + f"\nH1,{NEIGHBOURHOOD},桥元村三组12号,张桂兰,139-0000-0020,是,否,是,是,4321,高血压\n"
        + ",".join(values[c] for c in columns)
        + "\n"
    )
    bad = tmp_path / "households.csv"
    bad.write_text(text, encoding="utf-8")
    before = digest(data)
    done = bidao(data, "import", "households", str(bad))
    assert done.returncode == 1
    zh, en = done.stderr.splitlines()
    # English headers: the Chinese line still names the column in Chinese too.
    assert zh.startswith(f"{bad} 第3行，{chinese}"), zh
    assert en.startswith(f"{bad} line 3, {english}"), en
    assert len(zh) < 300  # a 100,000-character cell is never echoed back
    assert digest(data) == before
    assert rows(data, "SELECT count(*) FROM households") == [(0,)]


def test_up_to_twenty_errors_are_listed_and_the_rest_counted(village: Path, tmp_path: Path) -> None:
    lines = [CONTACTS_HEADER]
    lines += [f"人{i},网格员,341504-101-001-1,,1380000{i:04d}9,,," for i in range(25)]
    bad = tmp_path / "contacts.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = bidao(village, "import", "contacts", str(bad))
    assert done.returncode == 1
    assert "25 of 25 contacts rows have errors" in done.stdout
    errors = done.stderr.splitlines()
    assert len(errors) == 2 * 20 + 2
    assert errors[0].startswith(f"{bad} 第2行，电话（phone）：")
    assert errors[1].startswith(f"{bad} line 2, phone: not a mobile number")
    assert errors[-2:] == [
        f"{bad}：另有5处错误未列出",
        f"{bad}: and 5 more errors not shown",
    ]
    assert rows(village, "SELECT count(*) FROM contacts") == [(0,)]


def test_chinese_headers_name_the_columns_in_errors_and_unknown_ones_refuse_the_file(
    village: Path, tmp_path: Path
) -> None:
    unknown = tmp_path / "contacts.csv"
    unknown.write_text(CONTACTS_HEADER + ",微信\n李书记,书记,341504-101-001,,13800000001,,,,x\n")
    done = bidao(village, "import", "contacts", str(unknown))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{unknown}：文件被拒绝，什么也没有导入",
        f"{unknown}: file rejected, nothing imported",
        (
            f"{unknown} 第1行，微信：联系人文件没有这一列（可用的列：name, role, unit_code, "
            "household_code, phone, language, available_from, available_to, notify）"
        ),
        (
            f"{unknown} line 1, 微信: unknown column for contacts (expected name, role, "
            "unit_code, household_code, phone, language, available_from, available_to, notify)"
        ),
    ]
    missing = tmp_path / "no phone.csv"
    missing.write_text("姓名,角色,单位代码\n李书记,书记,341504-101-001\n", encoding="utf-8")
    done = bidao(village, "import", "contacts", str(missing))
    assert done.returncode == 1
    assert f"{missing} 第1行，电话（phone）：缺少必需的列" in done.stderr
    assert f"{missing} line 1, phone: required column missing" in done.stderr
    assert rows(village, "SELECT count(*) FROM contacts") == [(0,)]


def test_check_reports_a_bad_file_without_writing(village: Path, tmp_path: Path) -> None:
    bad = tmp_path / "contacts.csv"
    bad.write_text(CONTACTS + "某人,家属,,341504-101-001-0009,13800000009,,,\n", encoding="utf-8")
    before = digest(village)
    done = bidao(village, "import", "contacts", str(bad), "--check")
    assert done.returncode == 1
    assert done.stdout.splitlines()[1] == (
        f"{bad}: checked, nothing written: 1 of 10 contacts rows have errors; "
        "an import would reject the whole file"
    )
    assert re.search(
        rf"{re.escape(str(bad))} line 11, household_code: unknown household "
        r"341504-101-001-0009: import the households first",
        done.stderr,
    )
    assert digest(village) == before
