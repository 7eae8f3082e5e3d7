"""The access service over a real SQLite store: sign-in limits, sessions, principals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.config import HttpSettings
from gateway.services.access import _FAILURE_KEYS_MAX, AccessError, AccessService, _Failures
from gateway.store.sqlite import SqliteStore
from tests.gateway.store_contract.contract import seed_grid

HTTP = HttpSettings(password_time_cost=1, password_memory_kib=8, session_ttl_s=600)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    instance = SqliteStore(tmp_path / "access.db")
    await instance.open()
    await seed_grid(instance)
    try:
        yield instance
    finally:
        await instance.close()


async def test_limits_sessions_and_the_principal(store: SqliteStore, clock: ManualClock) -> None:
    outcomes: list[str] = []
    access = AccessService(store, clock, HTTP, outcomes.append)
    await access.add_user(
        "zhao", "赵", "grid_worker", "a-long-password", ["341504-101-001-1"], "3", "test"
    )
    for _ in range(HTTP.signin_max_failures_per_login):
        with pytest.raises(AccessError):
            await access.sign_in("zhao", "wrong-password", "10.0.0.1")
    with pytest.raises(AccessError) as limited:
        await access.sign_in("ZHAO", "a-long-password", "10.0.0.2")
    assert limited.value.code == "rate_limited"
    assert int(limited.value.params["retry_after_s"]) == int(HTTP.signin_window_s) + 1
    await clock.advance(HTTP.signin_window_s)
    signed = await access.sign_in("zhao", "a-long-password", "10.0.0.1")
    assert outcomes == ["bad_credentials"] * 5 + ["rate_limited", "ok"]
    principal = await access.from_session(signed.secret)
    assert principal.roots == ("341504-101-001-1",)
    assert principal.units is not None
    assert "341504-101-001-1-3-1" in principal.units
    assert "341504-101-001" not in principal.units
    assert not principal.sees_private(consent=True)
    await clock.advance(HTTP.session_ttl_s)
    with pytest.raises(AccessError) as expired:
        await access.from_session(signed.secret)
    assert expired.value.code == "session_expired"


def test_failures_forget_expired_keys_when_there_are_many() -> None:
    failures = _Failures(window_s=60.0, limit=3)
    for n in range(_FAILURE_KEYS_MAX):
        failures.add(f"login{n}", 0.0)
    assert failures.blocked_for("login0", 1.0) == 0.0
    failures.add("late", 61.0)  # over the cap: every key from t=0 has expired
    assert len(failures._seen) == 1
    for _ in range(3):
        failures.add("late", 62.0)
    assert failures.blocked_for("late", 62.0) == pytest.approx(60.0)
