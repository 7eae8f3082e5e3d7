"""The simulated device builds real frames and applies downlinks as firmware would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import firmware_protocol as fp
from device_sim.device import (
    BACKOFF_FIRST_S,
    BACKOFF_MAX_S,
    PRESS_COUNT_MAX,
    QUEUE_MAX,
    MeterModel,
    MeterSample,
    SimulatedDevice,
    fleet_identity,
)
from firmware_protocol import Ack, AckCode, Envelope, Key, decode, encode, parse_frame
from firmware_protocol.indications import CALL_NOT_SENT

ID = "b1da0000000000aa"
KEY = bytes(range(16))
NEW_KEY = bytes(range(50, 66))
DAY = 86_400 * 20_000  # a UTC midnight


def downlink(
    seq: int,
    message: fp.Message,
    key: bytes = KEY,
    device_id: str = ID,
    session: int = 1,
    key_id: int = 0,
) -> bytes:
    return encode(Envelope(device_id, seq, 0, message, session, key_id), key)


def ack_for(
    device: SimulatedDevice,
    seq: int,
    code: AckCode = AckCode.ACCEPTED,
    last: tuple[int, int] = (0, 0),
    key: bytes = KEY,
    key_id: int = 0,
) -> bytes:
    """The gateway's ACK for the device's queued frame with this seq (its session and MAC)."""
    session, frame = next((s, f) for s, q, f in device.queued_frames if q == seq)
    ack = Ack(seq, code, session, frame[-fp.MAC_LEN :][:4], *last)
    return downlink(0, ack, key=key, session=session, key_id=key_id)


def box(**kwargs: object) -> SimulatedDevice:
    return SimulatedDevice(ID, "call_box", KEY, **kwargs)  # type: ignore[arg-type]


def test_frames_decode_and_seq_increments() -> None:
    device = box(first_seq=7, clock=lambda: 1000.0)
    first = decode(device.press(Key.GREEN_CALL, 2), KEY)
    second = decode(device.heartbeat(interval_s=30), KEY)
    assert (first.device_id, first.seq, first.timestamp) == (ID, 7, 1000)
    assert first.message == fp.KeyEvent(Key.GREEN_CALL, 2, False)
    assert isinstance(second.message, fp.Heartbeat)
    assert (second.seq, second.message.heartbeat_interval_s) == (8, 30)
    assert sorted(device.pending) == [7, 8]
    assert device.next_seq == 9


def test_every_uplink_kind_decodes() -> None:
    meter = SimulatedDevice(ID, "water_meter", KEY, clock=lambda: 50.0)
    reading = decode(meter.water_reading(1234, 56, fp.MeterStatus.LEAK), KEY).message
    alarm = decode(meter.alarm(fp.AlarmKind.LOW_BATTERY, active=False, value=2900), KEY).message
    beat = decode(meter.heartbeat(), KEY).message
    assert reading == fp.WaterReading(1234, 56, fp.MeterStatus.LEAK)
    assert alarm == fp.DeviceAlarm(fp.AlarmKind.LOW_BATTERY, False, 2900)
    assert isinstance(beat, fp.Heartbeat)
    assert (beat.heartbeat_interval_s, beat.uptime_s) == (900, 0)
    long_press = decode(box().press(Key.RED_HANGUP, long_press=True), KEY).message
    assert long_press == fp.KeyEvent(Key.RED_HANGUP, 1, True)


def test_a_frame_that_cannot_be_encoded_takes_no_seq() -> None:
    device = box()
    with pytest.raises(fp.InvalidMessageError):
        device.press(Key.GREEN_CALL, count=0)
    assert (device.next_seq, device.pending) == (1, {})
    assert decode(device.press(Key.GREEN_CALL), KEY).seq == 1


def test_constructor_rejects_bad_identity() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        SimulatedDevice(ID, "call_box", bytes(15))
    with pytest.raises(ValueError, match="kind"):
        SimulatedDevice(ID, "toaster", KEY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="first_seq"):
        box(first_seq=2**32)
    with pytest.raises(fp.InvalidDeviceIdError):
        SimulatedDevice("b1da", "call_box", KEY)
    assert KEY.hex() not in repr(box())


def test_ack_clears_pending_and_nack_is_recorded() -> None:
    device = box()
    device.press(Key.GREEN_CALL)
    device.press(Key.RED_HANGUP)
    device.press(Key.THUMBS_UP)
    assert device.handle_downlink(ack_for(device, 1, AckCode.ACCEPTED)) is not None
    assert device.handle_downlink(ack_for(device, 2, AckCode.NACK_INVALID_PAYLOAD)) is not None
    assert device.handle_downlink(ack_for(device, 3, AckCode.DUPLICATE)) is not None
    assert device.pending == {}
    assert device.acked == {1, 3}
    assert device.duplicate_acks == 1
    assert device.nacked == {2: AckCode.NACK_INVALID_PAYLOAD}


def test_retry_later_keeps_the_frame_until_acked() -> None:
    device = box()
    frame = device.press(Key.GREEN_CALL)
    device.handle_downlink(ack_for(device, 1, AckCode.NACK_RETRY_LATER))
    assert device.retransmit_due() == [frame]
    assert device.nacked == {1: AckCode.NACK_RETRY_LATER}
    device.handle_downlink(ack_for(device, 1))
    assert (device.pending, device.acked, device.nacked) == ({}, {1}, {})


def test_ack_for_an_unknown_frame_changes_nothing_pending() -> None:
    device = box()
    frame = device.press(Key.GREEN_CALL)
    assert device.handle_downlink(downlink(0, Ack(99, acked_session=1))) is None
    # Same numbers, another frame's MAC: an old ACK for content that reused them.
    other_mac = bytes(b ^ 0xFF for b in frame[-8:-4])
    assert device.handle_downlink(downlink(0, Ack(1, AckCode.ACCEPTED, 1, other_mac))) is None
    assert sorted(device.pending) == [1]


def test_forged_and_replayed_downlinks_are_ignored() -> None:
    device = box()
    device.press(Key.GREEN_CALL)
    assert device.handle_downlink(ack_for(device, 1, key=bytes(16))) is None  # bad MAC
    assert device.handle_downlink(b"\x00garbage") is None
    assert device.pending_count == 1
    resolved = fp.Indication(fp.IndicationKind.RESOLVED)
    assert device.handle_downlink(downlink(5, resolved)) is not None
    assert device.handle_downlink(downlink(5, resolved)) is None  # same downlink seq again
    assert device.handle_downlink(downlink(4, resolved)) is None
    assert device.handle_downlink(downlink(9, resolved, session=7)) is None  # another session
    assert device.indications == [resolved]
    assert device.rejected_downlinks == 5
    assert device.stale_downlinks == 3
    assert device.heartbeat_wanted  # the heartbeat tells the gateway its last downlink seq
    assert device.last_downlink_seq == 5
    beat = decode(device.heartbeat(), KEY).message
    assert isinstance(beat, fp.Heartbeat)
    assert (beat.last_downlink_seq, beat.refused_downlinks) == (5, 5)
    assert device.handle_downlink(ack_for(device, 1)) is not None


def test_misdirected_and_uplink_type_downlinks_are_ignored() -> None:
    device = box()
    other = downlink(1, fp.Indication(fp.IndicationKind.RESOLVED), device_id="b1da0000000000bb")
    uplink_kind = downlink(2, fp.KeyEvent(Key.GREEN_CALL))
    assert device.handle_downlink(other) is None
    assert device.handle_downlink(uplink_kind) is None
    assert (device.rejected_downlinks, device.last_downlink_seq) == (2, 0)


def test_indication_and_config_are_applied() -> None:
    now = [1000.0]
    device = box(clock=lambda: now[0])
    shown = fp.Indication(fp.IndicationKind.HELPER_ON_THE_WAY, 42, fp.LedPattern.GREEN_BLINK, 7)
    device.handle_downlink(downlink(1, shown))
    device.handle_downlink(downlink(2, fp.Config(120, 600, 1_800_000_000)))
    assert device.indications == [shown]
    assert (device.heartbeat_interval_s, device.report_interval_s) == (120, 600)
    now[0] += 5
    assert device.now() == 1_800_000_005
    beat = decode(device.heartbeat(), KEY)
    assert beat.timestamp == 1_800_000_005
    assert isinstance(beat.message, fp.Heartbeat)
    assert beat.message.heartbeat_interval_s == 120
    device.handle_downlink(downlink(3, fp.Config(60, 60, 0)))  # 0: leave the clock alone
    assert device.now() == 1_800_000_005
    device.handle_downlink(downlink(4, fp.Config(0, 0, 1_900_000_000)))  # 0: leave intervals
    assert (device.heartbeat_interval_s, device.report_interval_s) == (60, 60)
    assert device.now() == 1_900_000_000


def test_provision_stores_slot_b_and_the_first_ack_with_it_confirms() -> None:
    device = box()
    waiting = device.press(Key.GREEN_CALL)
    wrapped, check = fp.wrap_key(KEY, ID, 1, 3, NEW_KEY)
    assert device.handle_downlink(downlink(3, fp.Provision(1, wrapped, check))) is not None
    # Slot B is used for sending at once; slot A stays active until confirmed.
    assert (device.key, device.key_id, device.key_version) == (NEW_KEY, 1, 0)
    assert device.take_resend()  # the waiting frame, re-MACed, goes again at once
    pressed = parse_frame(device.press(Key.THUMBS_UP))
    assert pressed.key_id == 1
    resent = device.retransmit_due()[0]
    # Same numbers and content; only the key id (byte 10) and the MAC differ.
    assert resent[:10] + resent[11 : -fp.MAC_LEN] == waiting[:10] + waiting[11 : -fp.MAC_LEN]
    assert (waiting[10], resent[10]) == (0, 1)
    assert decode(resent, NEW_KEY).seq == 1
    # Downlinks under the old key still count until the new key is confirmed.
    assert (
        device.handle_downlink(downlink(4, fp.Indication(fp.IndicationKind.RESOLVED))) is not None
    )
    assert device.handle_downlink(ack_for(device, 1, key=NEW_KEY, key_id=1)) is not None
    assert (device.active.key, device.stored) == (NEW_KEY, None)
    assert device.handle_downlink(downlink(5, fp.Indication(fp.IndicationKind.RESOLVED))) is None


def test_provision_with_a_bad_check_value_keeps_the_key() -> None:
    device = box()
    wrapped, _check = fp.wrap_key(KEY, ID, 1, 3, NEW_KEY)
    bad = fp.Provision(3, wrapped, b"\x00\x00\x00\x00")
    assert device.handle_downlink(downlink(3, bad)) is not None
    assert (device.key, device.key_version, device.rejected_provisions) == (KEY, 0, 1)
    wrong_seq = fp.Provision(3, *fp.wrap_key(KEY, ID, 1, 9, NEW_KEY))  # for another seq
    device.handle_downlink(downlink(4, wrong_seq))
    assert (device.key, device.rejected_provisions) == (KEY, 2)


def test_unknown_key_nack_reverts_to_the_key_that_signed_it() -> None:
    device = box()
    device.press(Key.GREEN_CALL)
    wrapped, check = fp.wrap_key(KEY, ID, 1, 3, NEW_KEY)
    device.handle_downlink(downlink(3, fp.Provision(1, wrapped, check)))
    assert device.key_id == 1
    device.take_resend()
    # The gateway never had key 1 (the rotation was restarted): it answers with key 0.
    assert device.handle_downlink(ack_for(device, 1, AckCode.NACK_UNKNOWN_KEY)) is not None
    assert (device.key, device.key_id, device.stored) == (KEY, 0, None)
    assert decode(device.take_resend()[0], KEY).seq == 1


def test_resync_renumbers_the_nacked_frame_into_a_new_session() -> None:
    device = box(session=2)
    green = device.press(Key.GREEN_CALL)
    device.heartbeat()
    assert (
        device.handle_downlink(ack_for(device, 1, AckCode.NACK_RESYNC, last=(5, 900))) is not None
    )
    # Only the nacked frame: the heartbeat may be stored already, its ACK on the way.
    assert device.pending_positions == [(2, 2), (6, 1)]
    assert (device.session, device.flash_session, device.next_seq, device.resyncs) == (6, 6, 2, 1)
    again = [decode(f, KEY) for f in device.take_resend()]
    assert [(e.session, e.seq, e.message) for e in again] == [(6, 1, decode(green, KEY).message)]
    # A second stale frame goes on in the new session; new frames too.
    device.handle_downlink(ack_for(device, 2, AckCode.NACK_RESYNC, last=(5, 900)))
    assert device.pending_positions == [(6, 1), (6, 2)]
    assert decode(device.press(Key.RED_HANGUP), KEY).session == 6


def test_seq_reused_nack_moves_the_box_on() -> None:
    device = box(session=4)
    device.press(Key.GREEN_CALL)
    device.handle_downlink(ack_for(device, 1, AckCode.NACK_SEQ_REUSED, last=(4, 1)))
    assert device.pending_positions == [(5, 1)]
    assert device.nacked == {1: AckCode.NACK_SEQ_REUSED}


def test_reboot_reads_the_session_from_flash() -> None:
    device = box(session=7)
    device.press(Key.GREEN_CALL)
    device.reboot()
    assert (device.session, device.next_seq, device.pending_positions) == (8, 1, [(7, 1)])
    device.reboot(erase_counter=True)  # erased flash reads 0xFFFFFFFF
    assert device.session == 0
    device.reboot(flash_value=0xFFFFFFFE)  # the next would be reserved
    assert device.session == 0
    device.reboot(flash_value=41)
    assert device.session == 42
    assert decode(device.press(Key.GREEN_CALL), KEY).session == 42


def test_retransmit_sends_the_same_frames_again() -> None:
    device = box()
    frames = [device.press(Key.GREEN_CALL), device.heartbeat(), device.alarm(fp.AlarmKind.TAMPER)]
    device.handle_downlink(ack_for(device, 2))
    assert device.retransmit_due() == [frames[0], frames[2]]
    assert device.retransmit_due() == [frames[0], frames[2]]


@given(st.binary(max_size=300))
def test_random_downlink_bytes_never_raise(data: bytes) -> None:
    device = box()
    assert device.handle_downlink(data) is None
    assert device.rejected_downlinks == 1


@given(st.integers(0, 2**32 - 1), st.binary(min_size=1, max_size=fp.MAX_FRAME_LEN))
def test_corrupted_downlinks_are_rejected(flip_at: int, noise: bytes) -> None:
    device = box()
    good = bytearray(downlink(1, fp.Indication(fp.IndicationKind.RESOLVED)))
    good[flip_at % len(good)] ^= noise[0] | 1
    assert device.handle_downlink(bytes(good)) is None


def test_meter_model_daily_pattern() -> None:
    model = MeterModel()
    assert model.total_at(100, DAY, DAY + 86_400) == 100 + model.daily_litres
    assert model.total_at(100, DAY, DAY) == 100
    # 00:00 UTC is 08:00 in China: the busiest hour of the default pattern.
    assert model.flow_at(DAY) == model.hourly_litres[8] == 30
    utc = MeterModel(utc_offset_s=0)
    assert utc.total_at(0, DAY + 7 * 3600, DAY + 8 * 3600) == utc.hourly_litres[7]
    assert utc.total_at(0, DAY + 7 * 3600 + 1800, DAY + 8 * 3600 + 1800) == (60 + 30) // 2


def test_meter_model_no_use_and_readings() -> None:
    idle = MeterModel(no_use=True)
    assert idle.total_at(100, DAY, DAY + 86_400) == 100
    assert idle.flow_at(DAY + 8 * 3600) == 0
    assert idle.daily_litres == 0
    samples = list(MeterModel(utc_offset_s=0).readings(500, DAY + 6 * 3600, 3600, 3))
    assert samples == [
        MeterSample(DAY + 6 * 3600, 500, 40),
        MeterSample(DAY + 7 * 3600, 540, 60),
        MeterSample(DAY + 8 * 3600, 600, 30),
    ]
    with pytest.raises(ValueError, match="24"):
        MeterModel(hourly_litres=(1, 2, 3))


def test_meter_model_feeds_a_meter() -> None:
    meter = SimulatedDevice(ID, "water_meter", KEY, clock=lambda: DAY)
    model = MeterModel()
    sample = next(model.readings(0, DAY, 900, 1))
    reading = decode(meter.water_reading(sample.total_litres, sample.flow_lph), KEY).message
    assert reading == fp.WaterReading(0, 30)


def test_fleet_identity_is_stable() -> None:
    assert fleet_identity(0)[0] == "b1da000000000000"
    assert fleet_identity(257)[0] == "b1da000000000101"
    assert fleet_identity(1) == fleet_identity(1)
    assert fleet_identity(1)[1] != fleet_identity(2)[1]
    assert fleet_identity(1)[1].hex() == "4f3c0ec95f69a823c389c9e59425baf5"


def test_a_full_queue_drops_the_oldest_heartbeat_or_reading_never_a_call() -> None:
    device = box()
    green = device.press(Key.GREEN_CALL)
    beats = [device.heartbeat() for _ in range(QUEUE_MAX - 2)]
    alarm = device.alarm(fp.AlarmKind.TAMPER)
    assert (device.pending_count, device.dropped_frames) == (QUEUE_MAX, 0)
    red = device.press(Key.RED_HANGUP)
    assert (device.pending_count, device.dropped_frames) == (QUEUE_MAX, 1)
    assert device.retransmit_due() == [green, alarm, *beats[1:], red]


def test_a_full_queue_drops_red_and_thumbs_then_the_oldest_alarm_a_newer_one_replaces() -> None:
    device = box()
    thumbs = device.press(Key.THUMBS_UP)
    tamper = device.alarm(fp.AlarmKind.TAMPER)
    battery = device.alarm(fp.AlarmKind.LOW_BATTERY)
    cleared = device.alarm(fp.AlarmKind.TAMPER, active=False)
    calls = [device.press(Key.GREEN_CALL) for _ in range(QUEUE_MAX - 4)]
    assert device.pending_count == QUEUE_MAX
    device.heartbeat()  # ranks below everything queued: not taken
    assert (device.pending_count, device.dropped_frames) == (QUEUE_MAX, 1)
    assert device.said_alone == []  # nobody pressed anything
    first = device.press(Key.GREEN_CALL)  # the thumbs press makes room for a call
    second = device.press(Key.GREEN_CALL)  # then the tamper alarm its clearing replaces
    third = device.press(Key.GREEN_CALL)  # then the oldest alarm
    assert device.retransmit_due() == [cleared, *calls, first, second, third]
    assert not {thumbs, tamper, battery} & set(device.pending.values())
    assert (device.dropped_frames, device.held_presses) == (4, 0)


def test_a_queue_full_of_calls_holds_more_presses_as_one_call_and_says_the_box_is_cut_off() -> None:
    now = [1000.0]
    device = box(clock=lambda: now[0])
    calls = [device.press(Key.GREEN_CALL) for _ in range(QUEUE_MAX)]
    now[0] += 30
    # No place: the press is held, the box says so, and sends its oldest call again at once.
    assert device.press(Key.GREEN_CALL) == calls[0]
    assert device.said_alone == [CALL_NOT_SENT]
    now[0] += 5
    assert device.press(Key.GREEN_CALL, 2) == calls[0]
    assert device.press(Key.RED_HANGUP) == calls[0]  # a red key has no place: dropped
    assert device.alarm(fp.AlarmKind.POWER_LOSS) == calls[0]  # an alarm yields to calls
    assert (device.pending_count, device.held_presses, device.dropped_frames) == (QUEUE_MAX, 3, 2)
    assert device.said_alone == [CALL_NOT_SENT] * 3  # each key press; not the alarm
    assert device.retransmit_due() == calls  # never a call dropped, nothing else queued
    # The first ACK frees a place: the held presses go at once as one call, stamped with
    # the last of them and numbered after every call before it.
    assert device.handle_downlink(ack_for(device, 1)) is not None
    [merged] = device.take_resend()
    envelope = decode(merged, KEY)
    assert envelope.message == fp.KeyEvent(Key.GREEN_CALL, 3)
    assert (envelope.seq, envelope.timestamp) == (QUEUE_MAX + 1, 1035)
    assert (device.pending_count, device.held_presses) == (QUEUE_MAX, 0)
    assert device.retransmit_due() == [*calls[1:], merged]


def test_held_presses_saturate_at_the_largest_press_count() -> None:
    device = box()
    for _ in range(QUEUE_MAX):
        device.press(Key.GREEN_CALL)
    for _ in range(3):
        device.press(Key.GREEN_CALL, 100)
    assert device.held_presses == PRESS_COUNT_MAX


def test_green_calls_and_alarms_are_resent_before_readings_and_other_keys() -> None:
    device = box()
    beat = device.heartbeat()
    red = device.press(Key.RED_HANGUP)
    green = device.press(Key.GREEN_CALL)
    alarm = device.alarm(fp.AlarmKind.LOW_BATTERY)
    thumbs = device.press(Key.THUMBS_UP)
    assert device.retransmit_due() == [green, alarm, beat, red, thumbs]


class _Edges:
    """A stand-in random source that always gives the lowest or highest jitter."""

    def __init__(self) -> None:
        self.high = False

    def uniform(self, low: float, high: float) -> float:
        return high if self.high else low


def test_resend_backoff_doubles_to_five_minutes_with_jitter_and_any_ack_resets_it() -> None:
    edges = _Edges()
    device = box()
    device.jitter = edges
    device.press(Key.GREEN_CALL)
    device.heartbeat()
    assert device.resend_delay_s() == pytest.approx(BACKOFF_FIRST_S * 0.8)
    delays = []
    for _ in range(10):
        device.retransmit_due()
        delays.append(device.backoff_s)
    assert delays == [4, 8, 16, 32, 64, 128, 256, BACKOFF_MAX_S, BACKOFF_MAX_S, BACKOFF_MAX_S]
    edges.high = True
    assert device.resend_delay_s() == pytest.approx(BACKOFF_MAX_S * 1.2)
    assert device.handle_downlink(ack_for(device, 2)) is not None  # any ACK, not the call's
    assert device.backoff_s == BACKOFF_FIRST_S
    assert device.unanswered == 0
    # A nack that keeps the frame is an answer too: the backoff starts again.
    device.retransmit_due()
    assert device.handle_downlink(ack_for(device, 1, AckCode.NACK_RETRY_LATER)) is not None
    assert (device.backoff_s, device.pending_count) == (BACKOFF_FIRST_S, 1)


def test_a_refused_stale_downlink_sends_a_heartbeat_at_most_once_a_minute() -> None:
    now = [1000.0]
    device = box(clock=lambda: now[0])
    resolved = fp.Indication(fp.IndicationKind.RESOLVED)
    assert device.take_wanted_heartbeat() is None  # nothing refused: no heartbeat
    assert device.handle_downlink(downlink(5, resolved)) is not None
    assert device.handle_downlink(downlink(3, resolved)) is None  # stale: the gateway restored
    wanted = device.take_wanted_heartbeat()
    assert wanted is not None
    beat = decode(wanted, KEY).message
    assert isinstance(beat, fp.Heartbeat)
    assert beat.last_downlink_seq == 5
    now[0] += 59
    assert device.handle_downlink(downlink(4, resolved)) is None
    assert device.take_wanted_heartbeat() is None  # within the minute
    assert device.heartbeat_wanted  # still owed
    now[0] += 1
    assert device.take_wanted_heartbeat() is not None
    assert device.take_wanted_heartbeat() is None  # asked for once
