"""schemathesis against the API's own OpenAPI schema, over real HTTP, signed in with a token.

Every operation gets a few generated requests (bounded: MAX_EXAMPLES each, so the run takes
well under a minute): none may answer 5xx, and every answer must match its declared schema.
The calls are synchronous (requests), so they run in a worker thread while the gateway
serves on the test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.api_people import People, open_people

pytestmark = pytest.mark.timeout(300)

MAX_EXAMPLES = 6


@pytest.fixture
async def people(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[People]:
    async with open_people(tmp_path, broker, clock, monkeypatch) as p:
        yield p


def fuzz(raw: dict[str, object], base_url: str, token: str) -> tuple[int, list[str]]:
    """Run every operation's examples; how many requests were made, and what failed."""
    schema = schemathesis.openapi.from_dict(raw)
    failures: list[str] = []
    calls = 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                failures.append(f"unusable operation in the schema: {result.err()}")
                continue
            operation = result.ok()
            if not operation.path.startswith("/api/v1/"):
                continue

            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def check(case: Case[Any]) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(
                    base_url=base_url,
                    session=session,
                    headers={"Authorization": f"Bearer {token}"},
                    checks=[
                        not_a_server_error,
                        response_schema_conformance,
                        content_type_conformance,
                    ],
                )

            try:
                check()
            except Exception as exc:  # noqa: BLE001 - every operation's failure is collected
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    return calls, failures


async def test_no_server_error_and_every_answer_matches_the_schema(people: People) -> None:
    admin = people.with_token(people.token)
    raw = (await admin.get("/api/openapi.json")).json()
    calls, failures = await asyncio.to_thread(fuzz, raw, people.base_url, people.token)
    print(f"schemathesis: {calls} requests")
    assert failures == []
    operations = sum(len(methods) for path, methods in raw["paths"].items() if "/api/v1/" in path)
    assert operations >= 20
    assert calls >= operations
