"""English: every word `bidao tickets` and `bidao ticket N` print (shown after the Chinese)."""

STATUS = {
    "open": "open",
    "accepted": "accepted",
    "on_site": "on site",
    "resolved": "resolved",
    "rated": "rated",
    "cancelled": "cancelled",
}
ROLE = {
    "village_secretary": "village secretary",
    "deputy_secretary": "deputy secretary",
    "grid_worker": "grid worker",
    "neighbour_chief": "neighbour chief",
    "group_leader": "group leader",
    "area_chief": "area chief",
    "township_duty": "township duty officer",
    "family": "family",
    "installer": "installer",
}
CATEGORY = {"urgent": "urgent", "ordinary": "ordinary", "hard": "hard", "complex": "complex"}
RATING = {"up": "satisfied (thumbs up)", "down": "not satisfied (thumbs down)"}
ACTION_CHANNEL = {
    "box_key": "box key",
    "voice_keypress": "phone key",
    "dashboard": "dashboard",
    "api": "API",
    "cli": "command line",
    "link": "the SMS link page",
    "system": "system",
}
MESSAGE_CHANNEL = {"sms": "SMS", "voice": "call"}
TEMPLATE = {
    "ticket_call": "call for help",
    "ticket_call_repeat": "called again",
    "ticket_still_waiting": "still not accepted; can still accept",
    "ticket_informed": "told of the call",
    "ticket_escalated": "passed on to them",
    "ticket_escalated_no_answer": "the one before did not answer; passed on to them",
    "ticket_escalated_not_accepted": "nobody accepted; passed on to them",
    "ticket_escalated_declined": "the one before could not go; passed on to them",
    "ticket_escalated_unreachable": "the one before could not be reached; passed on to them",
    "ticket_not_arrived": "the owner has not arrived; asked to take over",
    "ticket_taken": "someone has taken it",
    "ticket_accepted": "accepted: how to report progress",
    "ticket_accepted_link": "accepted: the link to report progress",
    "ticket_pressed_again_accepted": "resident pressed again after acceptance",
    "ticket_pressed_again_on_site": "resident pressed again after arrival",
    "ticket_reassigned_to_you": "handed over to them",
    "ticket_reassigned_sms": "handed over to them: how to report progress",
    "ticket_reassigned_sms_link": "handed over to them: the link to report progress",
    "ticket_taken_over": "took it over: how to report progress",
    "ticket_taken_over_link": "took it over: the link to report progress",
    "ticket_reassigned_away": "handed over to someone else",
    "ticket_cancelled_by_resident": "resident cancelled, call back",
    "ticket_cancelled_no_phone": "resident cancelled, visit to check",
    "ticket_overdue": "overdue, follow up",
    "ticket_review": "resident not satisfied, visit again",
    "ticket_access": "key-safe code and health notes",
    "family_called": "family told: their elder called",
    "family_accepted": "family told: someone accepted",
    "family_arrived": "family told: the helper arrived",
    "family_resolved": "family told: resolved",
    "digest": "several reminders sent together",
    "device_unassigned_call": "box has no household, check it",
    "device_unknown_household_call": "box's household does not exist, check it",
    "device_call_failed": "no ticket could be made, contact the resident",
    "device_offline": "box offline",
    "device_back_online": "box back online",
    "no_water_alarm": "water alarm: no use for hours",
    "no_water_alarm_morning": "water alarm: no use by the usual time of day",
    "leak_alarm": "water alarm: continuous flow",
    "no_water_alarm_escalated": "no-water alarm not taken, passed on to them",
    "leak_alarm_escalated": "continuous-flow alarm not taken, passed on to them",
    "no_water_all_clear": "water used again, alarm over",
    "no_water_all_clear_key": "a key pressed on the box, alarm over",
    "no_water_all_clear_answer": "the resident answered the safety call, alarm over",
    "water_ask_resident": "the resident asked by phone if all is well",
    "water_ask_resident_morning": "no water this morning: the resident asked by phone",
    "no_water_all_clear_away": "marked away, alarm over",
    "leak_all_clear": "flow stopped, alarm over",
    "alarm_accepted": "alarm taken, how to report",
    "alarm_accepted_link": "alarm taken, link to report",
    "alarm_reassigned_sms": "alarm handed to them, how to report",
    "alarm_reassigned_sms_link": "alarm handed to them, link to report",
    "alarm_taken_over": "alarm taken over, how to report",
    "alarm_taken_over_link": "alarm taken over, link to report",
    "alarm_not_arrived": "the one who took it has not arrived; they may take over",
    "alarm_family_accepted": "family told: someone took the alarm",
    "alarm_family_resolved": "family told: alarm dealt with",
    "water_away_reminder": "back from away but no water yet: please check",
    "water_watch_blind": "meter without signal: the water watch is blind",
    "water_watch_restored": "meter back: the water watch is back",
    "water_first_use_today": "today's first water use (the family's chosen morning SMS)",
    "health_box_offline": "installer told: call box no signal",
    "health_box_offline_ok": "installer told: call box signal back",
    "health_meter_offline": "installer told: water meter no data",
    "health_meter_offline_ok": "installer told: water meter data back",
    "health_family_offline": "family told: call box no signal",
    "health_family_offline_ok": "family told: call box signal back",
    "health_box_low_battery": "installer told: call box low battery",
    "health_box_low_battery_ok": "installer told: call box battery good again",
    "health_meter_low_battery": "installer told: water meter low battery",
    "health_meter_low_battery_ok": "installer told: water meter battery good again",
    "health_family_low_battery": "family told: call box low battery",
    "health_family_low_battery_ok": "family told: call box battery good again",
    "health_box_tamper": "installer told: call box case opened or moved",
    "health_box_tamper_ok": "installer told: call box case alarm ended",
    "health_meter_tamper": "installer told: water meter tampered with",
    "health_meter_tamper_ok": "installer told: water meter tamper alarm ended",
    "health_family_tamper": "family told: call box case opened or moved",
    "health_family_tamper_ok": "family told: call box case alarm ended",
    "health_box_power_loss": "installer told: call box no mains power",
    "health_box_power_loss_ok": "installer told: call box power back",
    "health_meter_power_loss": "installer told: water meter no power",
    "health_meter_power_loss_ok": "installer told: water meter power back",
    "health_family_power_loss": "family told: call box no mains power",
    "health_family_power_loss_ok": "family told: call box power back",
}
DELIVERY = {
    "pending": "waiting to be sent",
    "sending": "being sent",
    "sent": "sent",
    "delivered": "delivered",
    "answered": "call connected",
    "failed": "failed",
    "no-answer": "no answer",
    "busy": "busy",
    "canceled": "cancelled",
    "merged": "sent together with #{into}",
    "quarantined": "given up after repeated failures",
}
KEYPRESS = {"1": "pressed 1: accept", "2": "pressed 2: pass on", "9": "pressed 9: repeat"}
KEYPRESS_OTHER = "pressed {digit}"
KEYPRESS_BY_MENU = {
    "voice_menu_alarm": {
        "1": "pressed 1: I will check",
        "2": "pressed 2: pass on",
        "9": "pressed 9: repeat",
    },
    "voice_menu_take_over": {"1": "pressed 1: take over", "9": "pressed 9: repeat"},
    "voice_menu_owner": {"1": "pressed 1: noted", "9": "pressed 9: repeat"},
}
"""What a key meant on calls whose menu is not a call's (alerts/templates.py VOICE_MENUS)."""
FOLLOW_UP = {"fallback": "SMS failed, called instead", "retry": "unanswered, called again"}
EVENT = {
    "opened": "call key pressed",
    "pressed_again": "call key pressed again",
    "owner_alerted": "owner told again",
    "no_household": "the box has no household",
    "accepted": "accepted",
    "accept_too_late": "accepted after someone else",
    "declined": "cannot go, passed on",
    "on_site": "arrived",
    "resolved": "resolved",
    "classified": "classified",
    "note": "note",
    "reassigned": "handed over",
    "no_answer": "did not answer",
    "escalated": "escalated",
    "escalation_exhausted": "nobody left to escalate to",
    "overdue": "overdue",
    "red_key": "red key pressed",
    "cancelled": "cancelled by the resident with the red key",
    "bridged": "put through to the resident",
    "bridge_ended": "call with the resident ended",
    "rated_up": "rated: satisfied",
    "rated_down": "rated: not satisfied",
    "rating": "rated",
    "alarm_raised": "water alarm",
    "all_clear": "all clear",
    "labelled": "outcome labelled",
}
PRESSES = "{count} in all"
VIA = "via {channel}"
CALL_ENDED = "call ended"
HANDED = "from {old} to {new}"
WHY = {
    "not_accepted": "nobody accepted within {minutes} min",
    "no answer": "no answer",
    "declined": "the one before could not go",
    "nobody to call": "nobody to call",
    "not accepted": "nobody accepted",
    "not arrived": "did not arrive in time",
}
TOLD = "told the {role}"
LABEL = {
    "ticket": "ticket",
    "resident": "resident",
    "address": "address",
    "place": "place",
    "household": "household",
    "box": "box",
    "owner": "owner",
    "category": "category",
    "rating": "rating",
    "opened": "opened",
    "age": "age",
    "status": "status",
    "none": "none",
    "unknown": "not recorded",
    "by": "by",
}
COUNT = "{n} ticket(s)"
AGE = {"minutes": "{n} min", "hours": "{n} h", "days": "{n} d"}
ERROR = {
    "no_ticket": "no ticket {ticket}",
    "no_village": "no village has the code or name {text!r}",
    "many_villages": "several villages are called {text!r}; use a code:",
    "no_contact": "no contact has the id, phone or name {text!r}",
    "many_contacts": "several contacts match {text!r}; use an id:",
    "days": "the number of days must be positive, not {days}",
    "refused": "refused",
    "state": "ticket {ticket} is {status}; it cannot {action}",
    "accept_by": "say with --by who accepted it (contact id, phone or name)",
    "taken": "ticket {ticket} was already accepted by {owner}; nothing changed",
}
ACTION = {
    "label": "be labelled",
    "accept": "be accepted",
    "arrive": "record an arrival",
    "resolve": "be resolved",
    "classify": "be classified",
    "note": "take a note",
    "reassign": "be handed over",
}
DONE = {
    "label": 'ticket {ticket}: labelled "{outcome}" by {who}',
    "label_nobody": 'ticket {ticket}: labelled "{outcome}"',
    "resolve_outcome": 'ticket {ticket}: resolved by {who}, labelled "{outcome}"',
    "accept": "ticket {ticket}: accepted by {who}",
    "arrive": "ticket {ticket}: {who} has arrived",
    "resolve": "ticket {ticket}: resolved by {who}",
    "classify": "ticket {ticket}: category {category}",
    "note": "ticket {ticket}: note added",
    "reassign": "ticket {ticket}: handed over to {who}",
}

# -- alarms of the water watch: what they are and what they turned out to be --------------

KIND = {"call": "call", "no_water": "no-water alarm", "leak": "continuous-flow alarm"}
"""What a ticket is: the resident's call, or an alarm of the water watch."""
OUTCOME = {
    "real": "real",
    "late_rising": "false: late rising",
    "away": "false: away",
    "hospital": "false: in hospital",
    "meter_fault": "false: meter fault",
    "other": "false: other",
}
"""What an alarm turned out to be, as the one who resolved it says it."""
ALL_CLEAR = {
    "water": "water used again",
    "key": "a key pressed on the box",
    "away": "marked away",
    "flow_stopped": "the water stopped",
}
"""How an alarm was cleared (the all-clear's detail; a leak's is the water stopping)."""
ALARM_LABEL = {
    "opened": "raised",
    "outcome": "outcome",
    "unlabelled": "not labelled",
    "kind": "kind",
}
ALARM_ERROR = {
    "unknown_outcome": 'unknown outcome "{text}"; one of: {choices}',
    "not_alarm": "ticket {ticket} is a call, not an alarm: only alarms are labelled real or false",
    "outcome_for_kind": 'ticket {ticket} is a {kind} and cannot be "{outcome}"; one of: {choices}',
}
