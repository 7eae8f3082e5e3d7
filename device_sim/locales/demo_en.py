"""`bidao demo` in English (shown second): labels, the story's words, what to do next."""

from __future__ import annotations

WORDS: dict[str, str] = {
    # labels of the lines that say where things are
    "gateway": "gateway",
    "phones": "phone network",
    "data": "data",
    "village": "village",
    "dashboard": "dashboard",
    "login": "login",
    "password": "password",
    "setting": "demo setting",
    "box": "box",
    "browser": "phone's browser",
    # the opening
    "title": (
        "Bidao demo: a village, the call boxes of three residents living alone, the phones "
        "of its cadres and families, all on this computer."
    ),
    "starting": "Starting the gateway and the fake phone network, importing the village...",
    "link_mqtt": "devices over MQTT, through the gateway's own mosquitto: 127.0.0.1:{port}",
    "link_serial": "devices on a serial line (no broker needed): {url}",
    "phones_note": "a fake phone network that takes every SMS and call",
    "data_temporary": "removed at exit",
    "data_kept": "kept after exit",
    "village_summary": (
        "{areas} areas, {groups} groups, {neighbourhoods} neighbourhoods, {households} "
        "households ({alone} residents living alone with call boxes), {contacts} contacts"
    ),
    "login_note": "{name}, the village secretary",
    "setting_retry": "an unanswered call is placed again after {seconds} s (default 60 s)",
    "watch_along": "Open the dashboard in a browser now to watch along.",
    # story 1
    "s1_press": "Story 1: {name} (lives alone, {address}) presses the green key on her box.",
    "s1_arrive": "{helper} is at {name}'s door and holds the green key on her box: arrived.",
    "s1_link": "{helper} has sorted it out; he opens the link in his SMS: resolved.",
    "s1_rate": "{name} is satisfied and presses thumbs-up.",
    # story 2
    "s2_phones": (
        "Story 2: when nobody answers. {names} do not answer their phones (the demo sets "
        "the phone network so)."
    ),
    "s2_press": "{name} (lives alone, {address}) presses the green key on his box.",
    # what was seen
    "ok_on_the_way": "{helper} answered and pressed 1; the box tells {name} help is coming",
    "ok_arrived": "the box confirms that {helper} has arrived",
    "ok_resolved": "ticket {ticket} resolved; the box asks {name} to rate it",
    "ok_rated": "ticket {ticket} rated: satisfied",
    "ok_escalated": "{secretary} did not answer; ticket {ticket} went up the chain to {deputy}",
    "ok_exhausted": (
        "nobody on the chain answered: the box tells {name} the truth; ticket {ticket} stays open"
    ),
    "not_seen": "not seen within {seconds} s: {what}",
    # events
    "press": "press",
    "long": "long",
    "acked": "acked by the gateway",
    "wont_answer": "will not answer",
    "opens": "opens",
    "submits": "submits: resolved, an ordinary matter, note “{note}”",
    "page": "page",
    "page_resolved": "shows it resolved",
    "note": "灯泡坏了，已换好",
    # after the story
    "over": "The story is over. The demo keeps running until Ctrl-C.",
    "ready": "All set. The demo keeps running until Ctrl-C.",
    "next_accept": (
        "Open ticket {ticket} on the dashboard and press 我来接单 (accept): {name}'s box "
        "will say help is on the way."
    ),
    "next_box": "Press {name}'s box:",
    "next_answer": "Let {name} answer the phone again:",
    "next_received": "Every SMS and call:",
    "next_tickets": "The tickets:",
    # stopping
    "stopping": "Stopping...",
    "still_stopping": "Stopping, please wait (no process is left behind).",
    "stopped": "Everything stopped.",
    "gateway_died": "the gateway stopped unexpectedly (exit status {code}); the end of its log:",
    "story_failed": "The story did not finish. The demo keeps running until Ctrl-C.",
}
