"""English: the same texts, for contacts who asked for English."""

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
}
