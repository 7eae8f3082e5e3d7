"""A household's watch as the store keeps it: every field written, and read back the same."""

from __future__ import annotations

import dataclasses
import json
from typing import cast

import pytest

from gateway.domain.water import (
    DayHistory,
    DayRecord,
    Phase,
    Routine,
    WaterWatch,
    watch_from_record,
    watch_to_record,
)


def _watch() -> WaterWatch:
    """A watch four weeks old with every field set (none left at its default)."""
    history = tuple(
        DayRecord(20000 + d, 400 + d, longest_quiet_s=3600.0 + d, lived=True, alarmed=d == 3)
        for d in range(28)
    )
    routine = Routine(28, 28, 3, 20000.0, 480, 27000.0)
    values = {
        f.name: 1.0 + n
        for n, f in enumerate(dataclasses.fields(WaterWatch))
        if f.type == "float | None"
    }
    return WaterWatch(
        household="341504-101-001-0001",
        phase=Phase.ASKING,
        backflow=True,
        reason="morning",
        alerted=(1, 2),
        blind_told=(3,),
        stale=True,
        leak_alerted=(4, 5, 6),
        today=DayRecord(20028, None, longest_quiet_s=12.5),
        history=history,
        routine=routine,
        **values,
    )


def test_every_field_is_written_as_asdict_would() -> None:
    watch = _watch()
    defaults = WaterWatch(household=watch.household)
    assert all(
        getattr(watch, f.name) != getattr(defaults, f.name)
        for f in dataclasses.fields(WaterWatch)
        if f.name != "household"
    )
    # The history is written as a row per day: DayRecord's fields in order.
    expected = dataclasses.asdict(dataclasses.replace(watch, history=()))
    expected["history"] = [list(dataclasses.astuple(day)) for day in watch.history]
    assert watch_to_record(watch) == expected


def test_the_stored_text_reads_back_as_the_same_watch() -> None:
    watch = _watch()
    text = json.dumps(watch_to_record(watch), separators=(",", ":"))
    assert watch_from_record(json.loads(text)) == watch


def test_the_history_is_kept_packed_and_reads_back_day_by_day() -> None:
    watch = _watch()
    days = tuple(
        DayRecord(20000 + d, 400 + d, longest_quiet_s=3600.0 + d, lived=True, alarmed=d == 3)
        for d in range(28)
    )
    assert isinstance(watch.history, DayHistory)
    assert tuple(watch.history) == days
    assert watch.history == days
    assert watch.history == DayHistory(days)
    assert hash(watch.history) == hash(DayHistory(days))
    assert watch.history[3] == days[3]
    assert watch.history[-1] == days[-1]
    assert watch.history[1:3] == days[1:3]
    assert watch.history[::-7] == DayHistory(days[::-7])
    none_first = DayHistory([DayRecord(20000, None, longest_quiet_s=0.1 + 0.2)])
    assert none_first[0] == DayRecord(20000, None, longest_quiet_s=0.1 + 0.2)
    with pytest.raises(IndexError):
        _ = watch.history[28]
    assert len(watch.history) == 28
    assert dataclasses.replace(watch, history=days) == watch


def test_a_watch_stored_with_a_dict_per_day_reads_back_the_same() -> None:
    watch = _watch()
    record = watch_to_record(watch)
    record["history"] = [dataclasses.asdict(day) for day in watch.history]  # the older form
    text = json.dumps(record, separators=(",", ":"))
    assert watch_from_record(json.loads(text)) == watch


def test_the_history_packs_to_fifteen_bytes_a_day_and_reads_back() -> None:
    watch = _watch()
    packed = cast("DayHistory", watch.history).packed()
    assert len(packed) == 15 * 28
    assert DayHistory.from_packed(packed) == watch.history
    assert DayHistory.from_packed(b"") == ()
    # The store keeps the history apart from the rest of the watch.
    record = watch_to_record(watch, history=False)
    assert "history" not in record
    text = json.dumps(record, separators=(",", ":"))
    assert watch_from_record(json.loads(text), packed_history=packed) == watch


def test_a_packed_history_of_a_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="15 bytes a day"):
        DayHistory.from_packed(bytes(16))
