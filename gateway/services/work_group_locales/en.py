"""The work group's posts in English (the same keys and parameters as the Chinese)."""

TEXT: dict[str, str] = {
    "opened": "[Bidao] Ticket ${ticket}: ${resident} (${place}) pressed the call key at ${now}; "
    "the responders are being told.",
    "accepted": "[Bidao] Ticket ${ticket}: accepted by ${owner} at ${now}, on the way.",
    "on_site": "[Bidao] Ticket ${ticket}: ${owner} arrived at ${now}.",
    "resolved": "[Bidao] Ticket ${ticket}: resolved at ${now} (${owner}).",
    "rated_up": "[Bidao] Ticket ${ticket}: the resident pressed thumbs up at ${now}.",
    "rated_down": "[Bidao] Ticket ${ticket}: the resident pressed thumbs down at ${now}; "
    "please follow up.",
    "overdue": "[Bidao] Ticket ${ticket}: the call of ${resident} (${place}) is still not "
    "resolved at ${now}; please look into it.",
}
