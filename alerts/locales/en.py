"""English: the same texts, for contacts who asked for English."""

SMS_PREFIX = "[Bidao] "
"""The signature every SMS starts with."""
SENTENCE_END = "."
LIST_SEPARATOR = "; "

TEMPLATES: dict[str, str] = {
    "ticket_call": "[Bidao] ${resident}, ${place}, pressed the call key. Please call or visit. "
    "Ticket ${ticket}.",
    "ticket_call_repeat": "[Bidao] ${resident}, ${place}, pressed the call key again "
    "(${presses} times); nobody has accepted yet. Ticket ${ticket}.",
    "ticket_informed": "[Bidao] ${resident}, ${place}, has called the village secretary. "
    "For your information. Ticket ${ticket}.",
    "ticket_escalated": "[Bidao] Nobody accepted the call of ${resident}, ${place}, within "
    "${minutes} minutes; it is now yours. Ticket ${ticket}.",
    "ticket_not_arrived": "[Bidao] Ticket ${ticket} was accepted by ${owner}, who has not "
    "reached ${place} within ${minutes} minutes. Please follow up.",
    "ticket_taken": "[Bidao] Ticket ${ticket} was accepted by ${owner}; you need not go.",
    "ticket_cancelled_by_resident": "[Bidao] ${resident}, ${place}, cancelled the call. "
    "Please call back to confirm they are well. Ticket ${ticket}.",
    "ticket_overdue": "[Bidao] Ticket ${ticket} (${place}) is past its deadline. Please supervise.",
    "ticket_review": "[Bidao] ${resident} is not satisfied with ticket ${ticket}. "
    "Please follow up.",
    "ticket_access": "[Bidao] Ticket ${ticket}: key safe code at ${resident}'s home ${key_safe}; "
    "health notes: ${health}. For the visit only; do not forward.",
    "digest": "[Bidao] ${count} reminders: ${items}",
    "digest_same": "${text} (the same reminder ${count} times)",
    "not_recorded": "not recorded",
    "voice_menu": "Press 1 to accept and go, 2 if you cannot go and it should be passed on, "
    "9 to hear this again.",
    "voice_accepted": "You have accepted. Please go now; the resident is told help is coming.",
    "voice_taken": "This ticket was accepted by ${owner}; you need not go.",
    "voice_passed_on": "All right, it is passed on to the next person.",
    "voice_no_input": "No key was pressed. Goodbye.",
    "voice_closed": "This ticket is closed. Thank you.",
    "voice_connecting": "Connecting you to the resident now, please hold.",
    "device_unassigned_call": "[Bidao] Call box ${device} called for help but has no "
    "household, so nobody responsible was told. Please check at once.",
    "device_unknown_household_call": "[Bidao] Call box ${device} called for help but its "
    "household ${household} does not exist; nobody responsible was told. Please check.",
    "device_call_failed": "[Bidao] Call box ${device} of ${resident} (${place}) called for "
    "help but no ticket could be opened; nobody may have been told. Call the resident now.",
    "device_offline": "[Bidao] The call box at ${resident}'s home has had no signal for "
    "${hours} hours. Please help check its power and network.",
    "device_back_online": "[Bidao] The call box at ${resident}'s home has a signal again "
    "(after ${hours} hours without).",
}
