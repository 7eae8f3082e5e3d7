"""The bench publisher's ways of picking the device of each frame (bench.harness)."""

from __future__ import annotations

from bench.harness import PublishPlan, _Sender


def _meter_share(pick: str, frames: int) -> float:
    """The share of `frames` publishes that were meter readings (each adds a litre)."""
    sender = _Sender(PublishPlan(1883, (0, 200), (0, 200), 1000.0, 1.0, 1, pick))
    for packet_id in range(1, frames + 1):
        sender.packet(packet_id)
    readings = sum(litres - 1000 for litres in sender.litres.values())
    return readings / frames


def test_rated_picks_each_kind_as_often_as_its_interval_makes_it_report() -> None:
    # 200 boxes every 60 s and 200 meters every 900 s: one meter frame in 16.
    assert abs(_meter_share("rated", 8000) - 1 / 16) < 0.015


def test_random_picks_every_device_alike() -> None:
    assert abs(_meter_share("random", 8000) - 1 / 2) < 0.03


def test_shuffled_picks_every_device_once_in_a_random_order_each_pass() -> None:
    sender = _Sender(PublishPlan(1883, (0, 200), (0, 200), 1000.0, 1.0, 1, "shuffled"))
    passes = []
    for _ in range(2):
        picked = []
        for packet_id in range(1, 401):
            sender.packet(packet_id)
            picked.append(sender.picked)
        passes.append(picked)
    for picked in passes:
        assert sorted(picked) == list(range(400))
    assert passes[0] != list(range(400))
    assert passes[0] != passes[1]
