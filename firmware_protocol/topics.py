"""MQTT topics: `bidao/v1/<device_id>/up` from devices, `bidao/v1/<device_id>/down` to them."""

from __future__ import annotations

from firmware_protocol.errors import InvalidDeviceIdError, InvalidTopicError, TopicMismatchError
from firmware_protocol.frame import DeviceId, Frame, parse_device_id

TOPIC_PREFIX = "bidao/v1"
UPLINK_SUBSCRIPTION = f"{TOPIC_PREFIX}/+/up"
MAX_TOPIC_LEN = 64


def uplink_topic(device_id: DeviceId) -> str:
    """Where a device publishes its frames (QoS 1)."""
    return f"{TOPIC_PREFIX}/{parse_device_id(device_id)}/up"


def downlink_topic(device_id: DeviceId) -> str:
    """Where the gateway publishes frames for a device (QoS 1)."""
    return f"{TOPIC_PREFIX}/{parse_device_id(device_id)}/down"


def parse_uplink_topic(topic: str) -> DeviceId:
    """The device id an uplink topic names; InvalidTopicError for anything else."""
    if len(topic) > MAX_TOPIC_LEN:
        raise InvalidTopicError("topic too long")
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX or parts[3] != "up":
        raise InvalidTopicError(f"not a Bidao uplink topic: {topic!r}")
    try:
        device_id = parse_device_id(parts[2])
    except InvalidDeviceIdError as exc:
        raise InvalidTopicError(f"bad device id in topic {topic!r}") from exc
    if device_id != parts[2]:
        raise InvalidTopicError(f"device id in topic must be lowercase: {topic!r}")
    return device_id


def check_topic_matches(topic_device_id: DeviceId, frame: Frame) -> None:
    """TopicMismatchError unless the topic names the device that sent the frame."""
    if topic_device_id != frame.device_id:
        raise TopicMismatchError(
            f"topic names {topic_device_id} but the frame is from {frame.device_id}"
        )
