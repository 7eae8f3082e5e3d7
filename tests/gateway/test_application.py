"""The application facade over the store alone: what the command line calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.application import NoMetricsError, TicketError, offline
from gateway.clock import ManualClock
from gateway.config import load_settings
from gateway.errors import RegistryError, StoreError
from tests.gateway.grid import HOUSEHOLDS_CSV, UNITS_CSV


async def test_store_only_commands_and_queries(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    clock = ManualClock()
    async with offline(settings, clock) as application:
        record = await application.register_device("B1DA0000000000FF", "water_meter")
        assert record.device_id == "b1da0000000000ff"
        with pytest.raises(RegistryError):
            await application.register_device("b1da0000000000ff", "water_meter")
        assert (await application.import_grid("units", UNITS_CSV)).rejected == 0
        checked = await application.import_grid("households", HOUSEHOLDS_CSV, check=True)
        assert checked.inserted == 2
        assert [d.device_id for d in await application.list_devices()] == ["b1da0000000000ff"]
        imported = await application.import_grid("households", HOUSEHOLDS_CSV)
        assert imported.inserted == 2
        devices = await application.list_devices()
        assert [d.device_id for d in devices] == sorted(d.device_id for d in devices)
        assert len(devices) == 2  # the meter and the household's call box
        report = await application.report(7)
        assert report.end == clock.now()
        assert report.start == clock.now() - 7 * 86_400
        assert "341504-101-001" in report.colours
        assert await application.list_tickets() == []
        assert await application.list_tickets(days=7) == []
        # Ticket actions work beside a gateway too (the command line): this one has no ticket.
        with pytest.raises(TicketError, match="no ticket 1"):
            await application.accept_ticket(1, 1, "api")
        with pytest.raises(NoMetricsError):
            application.metrics_text()


async def test_metrics_alone_opens_no_store(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    settings.metrics_path.write_bytes(b"bidao_frames_total 1.0\n")
    async with offline(settings) as application:
        assert application.metrics_text() == b"bidao_frames_total 1.0\n"
    assert not settings.database_path.exists()


async def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    settings.database_path.write_bytes(b"not sqlite\n" * 100)
    with pytest.raises(StoreError, match="is not a Bidao database: file is not a database"):
        async with offline(settings) as application:
            await application.list_devices()
