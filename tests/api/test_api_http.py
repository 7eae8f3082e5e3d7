"""The JSON API under /api/v1 over real HTTP: sign-in, scope, every route, ticket actions.

Two villages run in one gateway (a real broker, the call box, the fake phone network); the
people of tests/api/api_people.py sign in and read or act. Scope leaks are tried on purpose:
each must answer 403 or 404 with nothing of the other village in the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from firmware_protocol import IndicationKind, Key
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.api_people import (
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    HOUSEHOLD_A,
    HOUSEHOLD_A2,
    HOUSEHOLD_B,
    KEY_SAFE_A,
    KEY_SAFE_B,
    LOOSE_BOX_A,
    LOOSE_BOX_B,
    PASSWORD,
    SECRETARY_PHONE,
    VILLAGE_A,
    VILLAGE_B,
    People,
    open_people,
)
from tests.gateway.grid import BOX_ID
from tests.gateway.support import sample, wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def people(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[People]:
    async with open_people(tmp_path, broker, clock, monkeypatch) as p:
        yield p


def refused(response: httpx.Response, status: int, code: str, *secrets: str) -> None:
    """The response is the JSON refusal `code`, and none of `secrets` is in it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    zh, _, en = body["message"].partition(" / ")
    assert zh
    assert en
    for secret in secrets:
        assert secret not in response.text


async def open_call(people: People) -> int:
    """The resident presses green with nobody taking it by phone; the new ticket's id."""
    for phone in (SECRETARY_PHONE, GRID_WORKER_PHONE, DAUGHTER_PHONE):
        people.v.phones.script(phone).digits = ""
    await people.v.press(Key.GREEN_CALL)
    admin = people.with_token(people.token)
    page = (await admin.get("/api/v1/tickets", params={"status": "open"})).json()
    assert page["total"] == 1
    return int(page["items"][0]["id"])


async def test_sign_in_me_and_sign_out(people: People) -> None:
    anon = people.anonymous()
    refused(await anon.get("/api/v1/me"), 401, "not_signed_in")
    wrong = await anon.post("/api/v1/session", json={"login": "li", "password": "nope-nope-1"})
    refused(wrong, 401, "bad_credentials")
    assert "登录名或密码不对" in wrong.json()["message"]
    unknown = await anon.post("/api/v1/session", json={"login": "nobody", "password": "x"})
    refused(unknown, 401, "bad_credentials")

    li = await people.as_user("li")
    assert li.cookies.get("bidao_session")
    me = (await li.get("/api/v1/me")).json()
    assert me["login"] == "li"
    assert me["role"] == "secretary"
    assert me["units"] == [VILLAGE_A]
    assert me["contact_id"] == 1
    assert me["via"] == "session"
    assert "read_private" in me["capabilities"]
    # A page of another site cannot make the browser write with the cookie.
    evil = await li.delete("/api/v1/session", headers={"Origin": "http://evil.example"})
    refused(evil, 403, "cross_site")
    fetched = await li.delete("/api/v1/session", headers={"Sec-Fetch-Site": "cross-site"})
    refused(fetched, 403, "cross_site")
    assert (await li.get("/api/v1/me", headers={"Origin": "http://evil.example"})).is_success
    own = f"http://{li.base_url.netloc.decode()}"
    assert (await li.delete("/api/v1/session", headers={"Origin": own})).status_code == 204
    refused(await li.get("/api/v1/me"), 401, "not_signed_in")
    log = await people.app.audit_log(20)
    assert ("sign_out", "li") in {(e.action, e.login) for e in log}
    assert ("sign_in", "bad_credentials") in {(e.action, e.outcome) for e in log}


async def test_a_session_expires(people: People) -> None:
    li = await people.as_user("li")
    assert (await li.get("/api/v1/me")).status_code == 200
    await people.v.clock.advance(people.app.settings.http.session_ttl_s + 1)
    refused(await li.get("/api/v1/me"), 401, "session_expired")


async def test_sign_in_is_rate_limited_per_login_and_per_address(people: People) -> None:
    anon = people.anonymous()
    http = people.app.settings.http
    for _ in range(http.signin_max_failures_per_login):
        response = await anon.post("/api/v1/session", json={"login": "zhao", "password": "bad"})
        refused(response, 401, "bad_credentials")
    # Even the right password is refused now, without being looked at.
    limited = await anon.post("/api/v1/session", json={"login": "zhao", "password": PASSWORD})
    refused(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    assert sample(people.v.gw, "bidao_signin_attempts_total", outcome="rate_limited") == 1
    assert sample(people.v.gw, "bidao_signin_attempts_total", outcome="bad_credentials") == 5
    # Another login from the same address still works until the address's own limit.
    assert (await people.as_user("li")).cookies.get("bidao_session")
    logins = [f"guess{i}" for i in range(http.signin_max_failures_per_address - 5)]
    for login in logins:
        response = await anon.post("/api/v1/session", json={"login": login, "password": "bad"})
        refused(response, 401, "bad_credentials")
    blocked = await anon.post("/api/v1/session", json={"login": "li", "password": PASSWORD})
    refused(blocked, 429, "rate_limited")
    # The window passes: the right password works again.
    await people.v.clock.advance(http.signin_window_s + 1)
    assert (await people.as_user("zhao")).cookies.get("bidao_session")


async def test_api_tokens(people: People) -> None:
    system = people.with_token(people.token)
    me = (await system.get("/api/v1/me")).json()
    assert (me["login"], me["via"]) == ("admin", "token")
    refused(await people.with_token("bdo_forged").get("/api/v1/me"), 401, "bad_token")
    basic = httpx.AsyncClient(base_url=people.base_url, headers={"Authorization": "Basic eA=="})
    people.clients.append(basic)
    refused(await basic.get("/api/v1/me"), 401, "bad_token")
    await people.app.set_user_disabled("admin", True, "test")
    refused(await system.get("/api/v1/me"), 403, "disabled")


async def test_units_and_households_pages_and_filters(people: People) -> None:
    admin = people.with_token(people.token)
    units = [u["code"] for u in (await admin.get("/api/v1/units")).json()]
    assert VILLAGE_A in units
    assert VILLAGE_B in units
    first = (await admin.get("/api/v1/households", params={"limit": 1})).json()
    assert first["total"] == 3
    assert [h["code"] for h in first["items"]] == [HOUSEHOLD_A]
    second = (
        await admin.get("/api/v1/households", params={"limit": 1, "after": first["next_after"]})
    ).json()
    assert [h["code"] for h in second["items"]] == [HOUSEHOLD_A2]
    by_name = (await admin.get("/api/v1/households", params={"q": "王老汉"})).json()
    assert [h["code"] for h in by_name["items"]] == [HOUSEHOLD_B]
    assert by_name["next_after"] is None
    under = (await admin.get("/api/v1/households", params={"unit": VILLAGE_B})).json()
    assert [h["code"] for h in under["items"]] == [HOUSEHOLD_B]
    alone = (await admin.get("/api/v1/households", params={"lives_alone": "true"})).json()
    assert alone["total"] == 3
    one = (await admin.get(f"/api/v1/households/{HOUSEHOLD_A}")).json()
    assert one["residents"][0]["name"] == "张桂兰"
    residents = (await admin.get(f"/api/v1/households/{HOUSEHOLD_A}/residents")).json()
    assert residents == one["residents"]
    refused(await admin.get("/api/v1/households", params={"limit": 0}), 422, "bad_input")

    li = await people.as_user("li")
    mine = (await li.get("/api/v1/households")).json()
    assert mine["total"] == 2
    assert {h["code"] for h in mine["items"]} == {HOUSEHOLD_A, HOUSEHOLD_A2}
    assert "王老汉" not in str(mine)
    contacts = (await li.get("/api/v1/contacts")).json()["items"]
    assert {c["name"] for c in contacts} >= {"李书记", "张小红"}
    assert "陈书记" not in str(contacts)
    assert next(u["code"] for u in (await li.get("/api/v1/units")).json()) == VILLAGE_A


async def test_key_safe_codes_and_health_notes_only_for_those_who_need_them(
    people: People,
) -> None:
    path = f"/api/v1/households/{HOUSEHOLD_A}"
    admin = (await people.with_token(people.token).get(path)).json()
    assert admin["residents"][0]["key_safe_code"] == KEY_SAFE_A
    assert admin["residents"][0]["health_notes"] == "高血压"
    li = (await (await people.as_user("li")).get(path)).json()
    assert li["residents"][0]["key_safe_code"] == KEY_SAFE_A
    for login in ("zhao", "wu", "liu"):
        client = await people.as_user(login)
        response = await client.get(path)
        if login == "liu":  # the installer's units are the other village
            refused(response, 404, "not_found", KEY_SAFE_A, "高血压")
            continue
        assert response.status_code == 200
        resident = response.json()["residents"][0]
        assert resident["key_safe_code"] is None
        assert resident["health_notes"] is None
        assert KEY_SAFE_A not in response.text
        assert "高血压" not in response.text
        listed = await client.get("/api/v1/households")
        assert KEY_SAFE_A not in listed.text
    # Family read their own elder's household, without the secrets either.
    family = await people.as_user("xiaohong")
    theirs = await family.get(path)
    assert theirs.json()["residents"][0]["name"] == "张桂兰"
    assert theirs.json()["residents"][0]["key_safe_code"] is None
    assert KEY_SAFE_A not in theirs.text
    assert "高血压" not in theirs.text


async def test_scope_leaks_are_refused_with_nothing_in_the_body(people: People) -> None:
    ticket = await open_call(people)
    li = await people.as_user("li")
    chen = await people.as_user("chen")
    # A secretary asks for another village's tickets, residents and contacts.
    refused(
        await chen.get("/api/v1/tickets", params={"village": VILLAGE_A}), 404, "not_found", "张桂兰"
    )
    refused(
        await chen.get("/api/v1/tickets", params={"household": HOUSEHOLD_A}),
        404,
        "not_found",
        "张桂兰",
    )
    refused(await chen.get(f"/api/v1/tickets/{ticket}"), 404, "not_found", "张桂兰")
    refused(await chen.get(f"/api/v1/tickets/{ticket}/notifications"), 404, "not_found")
    listed = (await chen.get("/api/v1/tickets")).json()
    assert listed["total"] == 0
    assert "张桂兰" not in str(listed)
    refused(await chen.post(f"/api/v1/tickets/{ticket}/accept"), 404, "not_found", "张桂兰")
    refused(await li.get(f"/api/v1/households/{HOUSEHOLD_B}"), 404, "not_found", "王老汉")
    refused(await li.get(f"/api/v1/households/{HOUSEHOLD_B}/residents"), 404, "not_found", "王老汉")
    refused(
        await li.get("/api/v1/households", params={"unit": VILLAGE_B}), 404, "not_found", "王老汉"
    )
    refused(
        await li.get("/api/v1/contacts", params={"unit": VILLAGE_B}), 404, "not_found", "陈书记"
    )
    refused(await li.get(f"/api/v1/households/{HOUSEHOLD_B}/water"), 404, "not_found", "王老汉")
    # An installer reads and binds a device outside their area.
    liu = await people.as_user("liu")
    refused(await liu.get(f"/api/v1/devices/{BOX_ID}"), 404, "not_found", "张桂兰")
    refused(await liu.get(f"/api/v1/devices/{LOOSE_BOX_A}"), 404, "not_found")
    refused(
        await liu.post(
            f"/api/v1/devices/{LOOSE_BOX_A}/attach", json={"household_code": HOUSEHOLD_B}
        ),
        404,
        "not_found",
    )
    refused(
        await liu.post(
            f"/api/v1/devices/{LOOSE_BOX_B}/attach", json={"household_code": HOUSEHOLD_A2}
        ),
        404,
        "not_found",
    )
    assert [d["device_id"] for d in (await liu.get("/api/v1/devices")).json()["items"]] == [
        LOOSE_BOX_B
    ]
    refused(await liu.get("/api/v1/tickets"), 403, "forbidden")
    # A secretary may read devices but not bind them.
    refused(
        await li.post(
            f"/api/v1/devices/{LOOSE_BOX_A}/attach", json={"household_code": HOUSEHOLD_A2}
        ),
        403,
        "forbidden",
    )
    # Family read another elder.
    dawang = await people.as_user("dawang")
    refused(await dawang.get(f"/api/v1/households/{HOUSEHOLD_A}/water"), 404, "not_found", "张桂兰")
    refused(
        await dawang.get("/api/v1/tickets", params={"household": HOUSEHOLD_A}),
        404,
        "not_found",
        "张桂兰",
    )
    refused(await dawang.get(f"/api/v1/tickets/{ticket}"), 404, "not_found", "张桂兰")
    assert (await dawang.get("/api/v1/tickets")).json()["total"] == 0
    for path in ("/api/v1/units", "/api/v1/households", "/api/v1/contacts", "/api/v1/devices"):
        refused(await dawang.get(path), 403, "forbidden", "张桂兰", "王老汉")
    # A grid worker reads a key-safe code: the field is there, empty.
    zhao = await people.as_user("zhao")
    household = await zhao.get(f"/api/v1/households/{HOUSEHOLD_A}")
    assert household.json()["residents"][0]["key_safe_code"] is None
    assert KEY_SAFE_A not in household.text
    assert KEY_SAFE_B not in (await zhao.get("/api/v1/households")).text
    assert sample(people.v.gw, "bidao_api_refused_total", reason="not_found") >= 10


async def test_devices_read_and_an_installer_attaches_a_box_in_their_area(people: People) -> None:
    admin = people.with_token(people.token)
    everything = (await admin.get("/api/v1/devices")).json()["items"]
    assert {d["device_id"] for d in everything} == {BOX_ID, LOOSE_BOX_A, LOOSE_BOX_B}
    assert "key" not in everything[0]
    meters = (await admin.get("/api/v1/devices", params={"kind": "water_meter"})).json()
    assert meters == {"items": [], "total": 0, "offset": 0, "limit": 100}
    page = (await admin.get("/api/v1/devices", params={"offset": 1, "limit": 1})).json()
    assert page["total"] == 3
    assert [d["device_id"] for d in page["items"]] == [LOOSE_BOX_A]
    box = (await admin.get(f"/api/v1/devices/{BOX_ID.upper()}")).json()
    assert box["household_code"] == HOUSEHOLD_A
    assert box["unit_code"] == "341504-101-001-1-3-1"
    li = await people.as_user("li")
    assert {d["device_id"] for d in (await li.get("/api/v1/devices")).json()["items"]} == {
        BOX_ID,
        LOOSE_BOX_A,
    }
    liu = await people.as_user("liu")
    attached = await liu.post(
        f"/api/v1/devices/{LOOSE_BOX_B}/attach", json={"household_code": HOUSEHOLD_B}
    )
    assert attached.status_code == 200, attached.text
    assert attached.json()["household_code"] == HOUSEHOLD_B
    again = await liu.post(
        f"/api/v1/devices/{LOOSE_BOX_B}/attach", json={"household_code": HOUSEHOLD_B}
    )
    refused(again, 409, "device_refused")
    log = await people.app.audit_log(50)
    assert any(e.action == "device.attach" and e.login == "liu" for e in log)


async def test_a_ticket_taken_and_closed_through_the_api(people: People) -> None:
    v = people.v
    ticket = await open_call(people)
    li = await people.as_user("li")
    listed = (await li.get("/api/v1/tickets", params={"status": ["open", "accepted"]})).json()
    assert [t["id"] for t in listed["items"]] == [ticket]
    assert listed["items"][0]["resident"] == "张桂兰"
    # A township officer with no responder contact cannot act.
    wu = await people.as_user("wu")
    assert (await wu.get(f"/api/v1/tickets/{ticket}")).status_code == 200
    refused(await wu.post(f"/api/v1/tickets/{ticket}/accept"), 403, "no_contact")
    # An installer may not act on tickets at all.
    refused(
        await (await people.as_user("liu")).post(f"/api/v1/tickets/{ticket}/accept"),
        403,
        "forbidden",
    )

    accepted = await li.post(f"/api/v1/tickets/{ticket}/accept")
    assert accepted.json() == {"won": True, "owner_contact_id": 1}
    await v.box_hears(IndicationKind.HELPER_ON_THE_WAY)
    refused(
        await li.post(f"/api/v1/tickets/{ticket}/label", json={"outcome": "real"}),
        409,
        "not_an_alarm",
    )
    assert (
        await li.post(f"/api/v1/tickets/{ticket}/classify", json={"category": "ordinary"})
    ).json() == {
        "ok": True,
        "ticket_id": ticket,
    }
    note = await li.post(f"/api/v1/tickets/{ticket}/note", json={"text": "老人说膝盖疼"})
    assert note.status_code == 200
    refused(await li.post(f"/api/v1/tickets/{ticket}/note", json={"text": ""}), 422, "bad_input")
    # Handed to the grid worker, who arrives and resolves.
    handed = await li.post(f"/api/v1/tickets/{ticket}/reassign", json={"to_contact_id": 3})
    assert handed.status_code == 200, handed.text
    refused(
        await li.post(f"/api/v1/tickets/{ticket}/reassign", json={"to_contact_id": 10}),
        404,
        "not_found",
    )
    refused(await li.post(f"/api/v1/tickets/{ticket}/arrive"), 409, "ticket_conflict")
    zhao = await people.as_user("zhao")
    assert (await zhao.post(f"/api/v1/tickets/{ticket}/arrive")).status_code == 200
    await v.box_hears(IndicationKind.HELPER_ARRIVED)
    resolved = await zhao.post(f"/api/v1/tickets/{ticket}/resolve", json={"note": "已送医"})
    assert resolved.status_code == 200, resolved.text
    await v.box_hears(IndicationKind.RESOLVED)

    detail = (await li.get(f"/api/v1/tickets/{ticket}")).json()
    assert detail["ticket"]["status"] == "resolved"
    assert detail["ticket"]["owner"]["name"] == "赵网格员"
    assert detail["places"][0] == "叶集区"
    kinds = [item["kind"] for item in detail["timeline"]]
    for kind in ("opened", "accepted", "classified", "note", "reassigned", "on_site", "resolved"):
        assert kind in kinds, kinds
    channels = {item["channel"] for item in detail["timeline"] if item["kind"] == "accepted"}
    assert channels == {"dashboard"}
    messages = (await li.get(f"/api/v1/tickets/{ticket}/notifications")).json()
    assert any(m["recipient"] == SECRETARY_PHONE for m in messages)
    # Family see their elder's ticket and who handled it, not the call log.
    family = await people.as_user("xiaohong")
    theirs = (await family.get("/api/v1/tickets")).json()
    assert [t["id"] for t in theirs["items"]] == [ticket]
    assert theirs["items"][0]["owner"]["name"] == "赵网格员"
    refused(await family.get(f"/api/v1/tickets/{ticket}/notifications"), 403, "forbidden")
    family_detail = (await family.get(f"/api/v1/tickets/{ticket}")).json()
    assert all(item["kind"] != "message" for item in family_detail["timeline"])
    refused(
        await family.post(f"/api/v1/tickets/{ticket}/note", json={"text": "x"}), 403, "forbidden"
    )
    audit = [(e.login, e.action, e.outcome) for e in await people.app.audit_log(100)]
    assert ("li", "ticket.accept", "ok") in audit
    assert ("li", "ticket.arrive", "refused") in audit
    assert ("zhao", "ticket.resolve", "ok") in audit


async def test_a_dashboard_accept_races_a_phone_keypress_and_another_dashboard(
    people: People,
) -> None:
    v = people.v
    ticket = await open_call(people)
    li = await people.as_user("li")
    zhao = await people.as_user("zhao")
    # Two people press "accept" at once: exactly one owns it, the other is told who does.
    first, second = await asyncio.gather(
        li.post(f"/api/v1/tickets/{ticket}/accept"),
        zhao.post(f"/api/v1/tickets/{ticket}/accept"),
    )
    answers = [first.json(), second.json()]
    assert sorted(a["won"] for a in answers) == [False, True]
    owner = next(a["owner_contact_id"] for a in answers if a["won"])
    assert {a["owner_contact_id"] for a in answers} == {owner}
    detail = (await li.get(f"/api/v1/tickets/{ticket}")).json()
    assert detail["ticket"]["owner"]["id"] == owner
    assert [i["kind"] for i in detail["timeline"]].count("accepted") == 1
    loser = zhao if owner == 1 else li
    refused(await loser.post(f"/api/v1/tickets/{ticket}/arrive"), 409, "ticket_conflict")
    await v.box_hears(IndicationKind.HELPER_ON_THE_WAY)

    # The next call: the grid worker's phone takes it by keypress; the dashboard comes second.
    winner_id = owner
    await (li if winner_id == 1 else zhao).post(f"/api/v1/tickets/{ticket}/resolve", json={})
    await v.box_hears(IndicationKind.RESOLVED)
    v.box.indications.clear()
    v.phones.script(SECRETARY_PHONE).digits = "1"
    await v.press(Key.GREEN_CALL)
    admin = people.with_token(people.token)

    async def taken() -> bool:
        page = (await admin.get("/api/v1/tickets", params={"status": "accepted"})).json()
        return bool(page["total"] == 1)

    await wait_for(taken, timeout=60, what="the phone keypress took the new ticket")
    page = (await admin.get("/api/v1/tickets", params={"status": "accepted"})).json()
    new_ticket = page["items"][0]["id"]
    assert new_ticket != ticket
    late = (await zhao.post(f"/api/v1/tickets/{new_ticket}/accept")).json()
    assert late == {"won": False, "owner_contact_id": 1}


async def test_alarms_statistics_settings_and_the_water_watch(people: People) -> None:
    admin = people.with_token(people.token)
    alarms = await admin.get("/api/v1/alarms")
    assert alarms.status_code == 200
    assert alarms.json()["water"] == []
    stats = await admin.get("/api/v1/statistics", params={"days": 30})
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["days"] == 30
    assert VILLAGE_A in body["colours"]
    refused(await admin.get("/api/v1/statistics", params={"days": 0}), 422, "bad_input")
    settings = (await admin.get("/api/v1/settings")).json()
    assert settings["timezone"] == "Asia/Shanghai"
    assert "default" in settings["tickets"]
    assert "twilio" not in str(settings)
    li = await people.as_user("li")
    scoped = (await li.get("/api/v1/statistics")).json()
    assert VILLAGE_A in scoped["colours"]
    assert VILLAGE_B not in scoped["colours"]
    refused(await (await people.as_user("liu")).get("/api/v1/statistics"), 403, "forbidden")

    family = await people.as_user("xiaohong")
    watch = await family.get(f"/api/v1/households/{HOUSEHOLD_A}/water")
    assert watch.status_code == 200, watch.text
    assert watch.json()["household_code"] == HOUSEHOLD_A
    assert watch.json()["watched"] is False
    assert watch.json()["log"] is None
    refused(
        await family.post(f"/api/v1/households/{HOUSEHOLD_A}/water/away", json={"until": 2e9}),
        403,
        "forbidden",
    )
    refused(
        await li.post(f"/api/v1/households/{HOUSEHOLD_A}/water/away", json={"until": 2e9}),
        409,
        "water_refused",
    )
    refused(await li.delete(f"/api/v1/households/{HOUSEHOLD_A}/water/away"), 409, "water_refused")
    refused(await li.get("/api/v1/households/nowhere/water"), 404, "not_found")
    openapi = await li.get("/api/openapi.json")
    paths = openapi.json()["paths"]
    assert "/api/v1/tickets/{ticket_id}/accept" in paths
    assert "/api/v1/households/{code}/water/away" in paths
