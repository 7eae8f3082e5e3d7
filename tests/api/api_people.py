"""Two villages and the people who use the API, for tests/api/test_api_*.py.

The example village (桥元村, tests/api/village.py: a real broker, its call box, the fake phone
network, the gateway's HTTP server on a loopback port) gets a neighbour village (柳树村)
imported with the `bidao` command, two unplaced boxes, and users of every role. Users are
added through the facade (the command line that does the same is tested in
test_cli_users.py); everything the tests then read or do goes over real HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from device_sim.device import SimulatedDevice
from gateway.application import Application, UserRole, for_service
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.village import Village, open_village
from tests.gateway.grid import HOUSEHOLD, HOUSEHOLDS_HEADER

VILLAGE_A = "341504-101-001"
VILLAGE_B = "341504-101-002"
HOUSEHOLD_A = HOUSEHOLD
HOUSEHOLD_A2 = "341504-101-001-0002"
HOUSEHOLD_B = "341504-101-002-0001"
KEY_SAFE_A = "4321"
KEY_SAFE_B = "8765"
LOOSE_BOX_A = "b1da0000000000a1"
LOOSE_BOX_B = "b1da0000000000b1"
PASSWORD = "correct-horse-battery"
SECRETARY_PHONE = "13800000001"
GRID_WORKER_PHONE = "13800000003"
DAUGHTER_PHONE = "+447700900123"

UNITS_B = f"""code,level,name,parent_code
{VILLAGE_B},village,柳树村,341504-101
{VILLAGE_B}-1,area,一片,{VILLAGE_B}
{VILLAGE_B}-1-1,group,一组,{VILLAGE_B}-1
{VILLAGE_B}-1-1-1,neighbourhood,一邻,{VILLAGE_B}-1-1
"""
HOUSEHOLDS_B = f"""{HOUSEHOLDS_HEADER}
{HOUSEHOLD_B},{VILLAGE_B}-1-1-1,柳树村一组3号,王老汉,13911110000,1,0,0,1,{KEY_SAFE_B},糖尿病,,
"""
CONTACTS_B = f"""name,role,unit_code,household_code,phone,language,available_from,available_to
陈书记,village_secretary,{VILLAGE_B},,13800000021,zh-CN,,
王大儿,family,,{HOUSEHOLD_B},13800000022,zh-CN,,
刘安装,installer,{VILLAGE_B},,13800000023,zh-CN,,
"""

# (login, role, units, contact as typed by an administrator)
USERS: tuple[tuple[str, UserRole, tuple[str, ...], str | None], ...] = (
    ("admin", "administrator", (), None),
    ("li", "secretary", (VILLAGE_A,), "1"),
    ("zhao", "grid_worker", (f"{VILLAGE_A}-1",), "3"),
    ("chen", "secretary", (VILLAGE_B,), "13800000021"),
    ("liu", "installer", (VILLAGE_B,), "13800000023"),
    ("wu", "township_officer", ("341504-101",), None),
    ("xiaohong", "family", (), "张小红"),
    ("dawang", "family", (), "王大儿"),
)


@dataclass
class People:
    """The villages running, and a way to be any of their users over HTTP."""

    v: Village
    app: Application
    base_url: str
    token: str
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def as_user(self, login: str, password: str = PASSWORD) -> httpx.AsyncClient:
        """A client signed in as `login` with its session cookie."""
        client = httpx.AsyncClient(base_url=self.base_url)
        self.clients.append(client)
        response = await client.post("/api/v1/session", json={"login": login, "password": password})
        assert response.status_code == 200, response.text
        return client

    def anonymous(self) -> httpx.AsyncClient:
        """A client with no credential."""
        client = httpx.AsyncClient(base_url=self.base_url)
        self.clients.append(client)
        return client

    def with_token(self, token: str) -> httpx.AsyncClient:
        """A client that sends `token` as its bearer credential."""
        client = httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}
        )
        self.clients.append(client)
        return client


async def _import(v: Village, tmp: Path, kind: str, text: str) -> None:
    path = tmp / f"b-{kind}.csv"
    path.write_text(text, encoding="utf-8")
    await v.cli("import", kind, str(path))


@asynccontextmanager
async def open_people(
    tmp_path: Path,
    broker: MosquittoBroker,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    *,
    devices: Sequence[tuple[SimulatedDevice, str]] = (),
) -> AsyncIterator[People]:
    """The two villages with their users (and `devices`, each added to its household);
    closes every client it made."""
    # Cheap argon2 for tests (the gateway and every `bidao` subprocess read the environment).
    monkeypatch.setenv("BIDAO_HTTP__PASSWORD_TIME_COST", "1")
    monkeypatch.setenv("BIDAO_HTTP__PASSWORD_MEMORY_KIB", "8")
    async with open_village(tmp_path, broker, clock, devices=devices) as v:
        for kind, text in (
            ("units", UNITS_B),
            ("households", HOUSEHOLDS_B),
            ("contacts", CONTACTS_B),
        ):
            await _import(v, tmp_path, kind, text)
        app = for_service(v.gw)
        await app.register_device(LOOSE_BOX_A, "call_box", unit_code=VILLAGE_A, actor="test")
        await app.register_device(LOOSE_BOX_B, "call_box", unit_code=VILLAGE_B, actor="test")
        for login, role, units, contact in USERS:
            await app.add_user(login, login, role, PASSWORD, units, contact, "test")
        _, token = await app.issue_api_token("admin", "monitoring", None, "test")
        people = People(v, app, str(v.http.base_url).rstrip("/"), token)
        try:
            yield people
        finally:
            await asyncio.gather(*(c.aclose() for c in people.clients))
