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
}
CATEGORY = {"urgent": "urgent", "ordinary": "ordinary", "hard": "hard", "complex": "complex"}
RATING = {"up": "satisfied (thumbs up)", "down": "not satisfied (thumbs down)"}
ACTION_CHANNEL = {
    "box_key": "box key",
    "voice_keypress": "phone key",
    "dashboard": "dashboard",
    "api": "API",
    "cli": "command line",
    "system": "system",
}
MESSAGE_CHANNEL = {"sms": "SMS", "voice": "call"}
TEMPLATE = {
    "ticket_call": "call for help",
    "ticket_call_repeat": "called again",
    "ticket_informed": "told of the call",
    "ticket_escalated": "passed on to them",
    "ticket_not_arrived": "not arrived, follow up",
    "ticket_taken": "someone has taken it",
    "ticket_cancelled_by_resident": "resident cancelled, call back",
    "ticket_overdue": "overdue, follow up",
    "ticket_review": "resident not satisfied, visit again",
    "ticket_access": "key-safe code and health notes",
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
FOLLOW_UP = {"fallback": "SMS failed, called instead", "retry": "unanswered, called again"}
EVENT = {
    "opened": "call key pressed",
    "pressed_again": "call key pressed again",
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
}
PRESSES = "{count} in all"
VIA = "via {channel}"
CALL_ENDED = "call ended"
HANDED_FROM = "from"
WHY = {
    "not_accepted": "nobody accepted within {minutes} min",
    "no answer": "no answer",
    "declined": "the one before could not go",
    "nobody to call": "nobody to call",
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
    "tickets": "tickets",
}
AGE = {"minutes": "{n} min", "hours": "{n} h", "days": "{n} d"}
ERROR = {
    "no_ticket": "no ticket {ticket}",
    "no_village": "no village has the code or name {text!r}",
    "many_villages": "several villages are called {text!r}; use a code:",
    "no_contact": "no contact has the id, phone or name {text!r}",
    "many_contacts": "several contacts match {text!r}; use an id:",
    "days": "the number of days must be positive, not {days}",
    "refused": "refused",
}
DONE = {
    "arrive": "ticket {ticket}: {who} has arrived",
    "resolve": "ticket {ticket}: resolved by {who}",
    "classify": "ticket {ticket}: category {category}",
    "note": "ticket {ticket}: note added",
    "reassign": "ticket {ticket}: handed over to {who}",
}
