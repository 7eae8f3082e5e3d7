"""Scenario report words in English: what each step expects, and the report's frame."""

from __future__ import annotations

WORDS: dict[str, str] = {
    "title": "Scenario {name}",
    "passed": "PASSED: {ok}/{total} steps",
    "failed": "FAILED: {ok}/{total} steps, wrong from step {first}",
    "not_reached": "not run (an earlier step failed)",
    "expected": "expected",
    "seen": "seen",
    "gateway_up": "the gateway is up and the devices are online",
    "green_acked": "the resident presses green; the box gets the gateway's ack",
    "secretary_accepts": "the secretary's phone rings and he presses 1 to accept",
    "deputy_accepts": "the secretary does not answer; the deputy is called and presses 1",
    "on_the_way": "the box tells the resident someone is on the way",
    "link_sent": "the one who accepted gets an SMS with a link to report",
    "arrived": "the helper arrives and holds green; the box confirms the arrival",
    "resolved": "the helper reports it resolved on the link; the box asks for a rating",
    "rated": "the resident presses thumbs-up; the ticket shows it rated",
    "accepted_by_deputy": "the ticket records the deputy as the one who accepted",
    "red_acked": "the resident presses red within a minute to cancel",
    "cancelled": "the box tells the resident the call is cancelled",
    "ticket_cancelled": "the ticket shows it cancelled",
    "good_frame": "a good frame is acknowledged",
    "forged_rejected": "a forged frame (wrong key) is rejected and never acknowledged",
    "replay_rejected": "a replayed old frame is taken as a duplicate, no new event",
    "still_serving": "good frames are still acknowledged afterwards",
    "before_reboot": "a heartbeat before the reboot is acknowledged",
    "resynced": "after a reboot that lost its counter the gateway resynchronises the box",
    "back_in_service": "a green press after the reboot is acked by the gateway",
    "call_registered": "the box tells the resident the call is registered",
}
WORDS.update(
    {
        "meter_reading": "the meter's reading and heartbeat are acknowledged",
        "are_you_ok": "no water for six active hours: the box asks the resident 'are you OK?'",
        "water_alarm": "nobody answers within ten minutes: the grid worker gets the water alarm",
        "all_clear": "she uses water again: the grid worker gets the all-clear",
        "meter_offline_seen": "the meter stops reporting: the device list shows it offline",
        "meter_back": "the meter reports again: the device list shows it online",
        "broker_alarm": "the broker or the serial line goes down: one operator alarm",
        "broker_cleared": "the link is back: the alarm clears and box presses are acked",
        "rotated": "key rotation: the box gets a new key and frames MACed with it are acked",
        "storm_acked": "many boxes and meters send at the chosen rate; every frame is acked",
    }
)
WORDS["gateway_sees_crowd"] = "many boxes and meters are registered and online"
WORDS["call_after_rotation"] = "a green press after the rotation is acked by the gateway"
