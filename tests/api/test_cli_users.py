"""`bidao user add|passwd|token|list|disable`, run as a subprocess against a data folder with
the example village imported: what an administrator types and reads, and what is stored."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from gateway.application import AccessError, offline
from gateway.config import load_settings
from tests.gateway.support import BIDAO

pytestmark = pytest.mark.timeout(300)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VILLAGE = "341504-101-001"
FAST_HASH = {"BIDAO_HTTP__PASSWORD_TIME_COST": "1", "BIDAO_HTTP__PASSWORD_MEMORY_KIB": "8"}


def run(data: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BIDAO_DATA_DIR": str(data), **FAST_HASH}
    return subprocess.run(
        [str(BIDAO), *argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("users") / "data"
    for kind in ("units", "households", "contacts"):
        done = run(data, "import", kind, str(EXAMPLES / f"{kind}.csv"))
        assert done.returncode == 0, done.stderr
    return data


def test_add_a_secretary_with_a_password_from_stdin_and_sign_in(village: Path) -> None:
    done = run(
        village,
        "user",
        "add",
        "li.shuji",
        "--role",
        "secretary",
        "--unit",
        VILLAGE,
        "--contact",
        "1",
        "--name",
        "李书记",
        "--password-stdin",
        stdin="qiaoyuan-2026\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        "已添加用户 li.shuji（李书记，村书记）。",
        "Added user li.shuji (李书记, village secretary).",
    ]
    assert "qiaoyuan" not in done.stdout + done.stderr

    async def signed_in() -> tuple[str, frozenset[str] | None, int | None]:
        settings = load_settings(
            data_dir=village, http={"password_time_cost": 1, "password_memory_kib": 8}
        )
        async with offline(settings) as application:
            session = await application.sign_in("LI.SHUJI", "qiaoyuan-2026", "127.0.0.1")
            principal = await application.principal_for_session(session.secret)
            log = await application.audit_log(10)
            assert [(e.action, e.outcome) for e in log[:2]] == [
                ("sign_in", "ok"),
                ("user.add", "ok"),
            ]
            with pytest.raises(AccessError) as wrong:
                await application.sign_in("li.shuji", "not-the-password", "127.0.0.1")
            assert wrong.value.code == "bad_credentials"
            return principal.role, principal.units, principal.contact_id

    role, units, contact = asyncio.run(signed_in())
    assert role == "secretary"
    assert units is not None
    assert VILLAGE in units
    assert "341504-101-001-1-3-1" in units
    assert "341504-101" not in units
    assert contact == 1


def test_passwd_ends_sessions_and_refuses_a_short_password(village: Path) -> None:
    done = run(
        village,
        "user",
        "add",
        "zhao",
        "--role",
        "grid_worker",
        "--unit",
        "341504-101-001-1",
        "--contact",
        "赵网格员",
        "--password-stdin",
        stdin="first-password-1\n",
    )
    assert done.returncode == 0, done.stderr
    short = run(village, "user", "passwd", "zhao", "--password-stdin", stdin="short\n")
    assert short.returncode == 2
    assert short.stderr.splitlines() == [
        "错误：密码太短：至少需要 10 个字符。",
        "error: The password is too short: at least 10 characters.",
    ]
    empty = run(village, "user", "passwd", "zhao", "--password-stdin", stdin="")
    assert empty.returncode == 2
    assert "No password on standard input." in empty.stderr
    changed = run(village, "user", "passwd", "zhao", "--password-stdin", stdin="second-password\n")
    assert changed.returncode == 0, changed.stderr
    assert "New password set for zhao; their earlier sign-ins have ended." in changed.stdout


def test_token_is_shown_once_and_only_its_digest_is_stored(village: Path) -> None:
    added = run(village, "user", "add", "monitor", "--role", "administrator", "--no-password")
    assert added.returncode == 0, added.stderr
    assert "bidao user token monitor" in added.stdout
    done = run(village, "user", "token", "monitor", "--name", "prometheus", "--days", "30")
    assert done.returncode == 0, done.stderr
    secret = next(line for line in done.stdout.splitlines() if line.startswith("bdo_"))
    assert len(secret) > 40
    database = (village / "bidao.db").read_bytes()
    assert secret.encode() not in database

    async def who() -> str:
        settings = load_settings(data_dir=village)
        async with offline(settings) as application:
            return (await application.principal_for_token(secret)).login

    assert asyncio.run(who()) == "monitor"


def test_refusals_say_what_to_do_in_chinese_then_english(village: Path) -> None:
    county = run(
        village, "user", "add", "wrong", "--role", "secretary", "--unit", "341504", "--no-password"
    )
    assert county.returncode == 2
    assert county.stderr.splitlines() == [
        "错误：单位 341504 是县，村书记需要村。",
        "error: Unit 341504 is a county; a village secretary needs a village.",
    ]
    worker = run(
        village, "user", "add", "gw", "--role", "grid_worker", "--unit", "341504", "--no-password"
    )
    assert worker.stderr.splitlines()[0] == "错误：单位 341504 是县，网格员需要村或片或组或邻。"
    none = run(village, "user", "add", "gw", "--role", "grid_worker", "--no-password")
    assert "error: A grid worker needs the unit they answer for: give its code with --unit." in (
        none.stderr
    )
    family = run(
        village, "user", "add", "fam", "--role", "family", "--contact", "1", "--no-password"
    )
    assert family.returncode == 2
    assert "a family user needs a family" in family.stderr
    bad = run(village, "user", "add", "x", "--role", "administrator", "--no-password")
    assert bad.returncode == 2
    assert "error: Login x cannot be used" in bad.stderr
    missing = run(village, "user", "passwd", "nobody", "--password-stdin", stdin="whatever-long\n")
    assert missing.returncode == 2
    assert "error: No user nobody. See bidao user list." in missing.stderr


def test_disable_then_list_then_enable(village: Path) -> None:
    added = run(
        village,
        "user",
        "add",
        "wang.fang",
        "--role",
        "family",
        "--contact",
        "王芳",
        "--password-stdin",
        stdin="family-password\n",
    )
    assert added.returncode == 0, added.stderr
    off = run(village, "user", "disable", "wang.fang")
    assert off.returncode == 0, off.stderr
    listed = run(village, "user", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if "wang.fang" in x)
    assert line.endswith("家属/family  -  9  已停用/disabled")

    async def refused() -> str:
        settings = load_settings(
            data_dir=village, http={"password_time_cost": 1, "password_memory_kib": 8}
        )
        async with offline(settings) as application:
            with pytest.raises(AccessError) as exc:
                await application.sign_in("wang.fang", "family-password", "127.0.0.1")
            return exc.value.code

    assert asyncio.run(refused()) == "disabled"
    on = run(village, "user", "disable", "wang.fang", "--enable")
    assert on.returncode == 0, on.stderr
    assert "Enabled user wang.fang again." in on.stdout
