"""Fixtures of the storage contract suite: every test runs once per store implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store.ports import Store
from tests.gateway.store_contract.contract import BACKENDS, Backend


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """One store implementation over a fresh database."""
    name: str = request.param
    return BACKENDS[name](tmp_path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    """An open store on an empty, migrated database."""
    instance = backend.make()
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()
