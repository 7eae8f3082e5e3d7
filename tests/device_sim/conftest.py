"""Simulator fixtures: a stand-in gateway on the real test broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_sim.device import fleet_identity
from gateway.runtime.broker import MosquittoBroker
from tests.device_sim.support import BOX_ID, BOX_KEY, FLEET_SIZE, EchoGateway


@pytest.fixture
def echo(broker: MosquittoBroker) -> Iterator[EchoGateway]:
    """A stand-in gateway that knows BOX_ID and the first FLEET_SIZE fleet devices."""
    keys = dict(fleet_identity(i) for i in range(FLEET_SIZE))
    keys[BOX_ID] = BOX_KEY
    with EchoGateway(broker.port, keys) as gateway:
        yield gateway
