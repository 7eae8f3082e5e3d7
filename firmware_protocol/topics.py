"""MQTT topics: `bidao/v2/<shard>/<device_id>/up` from devices, `.../down` to them.

The shard segment lets a province split its devices across ingest processes later (each
process subscribes to its own shards) without changing the firmware of a single box: a box
is given its shard when it is installed and never computes it.
"""

from __future__ import annotations

import re

from firmware_protocol.errors import InvalidDeviceIdError, InvalidTopicError, TopicMismatchError
from firmware_protocol.frame import DeviceId, Frame, parse_device_id

TOPIC_PREFIX = "bidao/v2"
DEFAULT_SHARD = "0"
SHARD_PATTERN = re.compile(r"^[0-9a-z]{1,8}$")
"""A shard is 1 to 8 lowercase letters or digits (a county code, a number)."""
UPLINK_SUBSCRIPTION = f"{TOPIC_PREFIX}/+/+/up"
MAX_TOPIC_LEN = 64


def _shard(shard: str) -> str:
    if not isinstance(shard, str) or not SHARD_PATTERN.match(shard):
        raise InvalidTopicError(f"shard must be 1-8 lowercase letters or digits, got {shard!r}")
    return shard


def uplink_subscription(shard: str = "+") -> str:
    """The subscription of an ingest process for one shard, or for all ("+")."""
    return f"{TOPIC_PREFIX}/{shard if shard == '+' else _shard(shard)}/+/up"


def uplink_topic(device_id: DeviceId, shard: str = DEFAULT_SHARD) -> str:
    """Where a device publishes its frames (QoS 1)."""
    return f"{TOPIC_PREFIX}/{_shard(shard)}/{parse_device_id(device_id)}/up"


def downlink_topic(device_id: DeviceId, shard: str = DEFAULT_SHARD) -> str:
    """Where the gateway publishes frames for a device (QoS 1)."""
    return f"{TOPIC_PREFIX}/{_shard(shard)}/{parse_device_id(device_id)}/down"


def parse_uplink_topic_shard(topic: str) -> tuple[str, DeviceId]:
    """(shard, device id) of an uplink topic; InvalidTopicError for anything else."""
    if len(topic) > MAX_TOPIC_LEN:
        raise InvalidTopicError("topic too long")
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX or parts[4] != "up":
        raise InvalidTopicError(f"not a Bidao uplink topic: {topic!r}")
    shard = _shard(parts[2])
    try:
        device_id = parse_device_id(parts[3])
    except InvalidDeviceIdError as exc:
        raise InvalidTopicError(f"bad device id in topic {topic!r}") from exc
    if device_id != parts[3]:
        raise InvalidTopicError(f"device id in topic must be lowercase: {topic!r}")
    return shard, device_id


def parse_uplink_topic(topic: str) -> DeviceId:
    """The device id an uplink topic names; InvalidTopicError for anything else."""
    return parse_uplink_topic_shard(topic)[1]


def check_topic_matches(topic_device_id: DeviceId, frame: Frame) -> None:
    """TopicMismatchError unless the topic names the device that sent the frame."""
    if topic_device_id != frame.device_id:
        raise TopicMismatchError(
            f"topic names {topic_device_id} but the frame is from {frame.device_id}"
        )
